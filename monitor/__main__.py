"""`python -m monitor`: configuration, logging, signals and exit codes of the monitor process.

Exit codes (`common.exits.ExitCode`): 0 after SIGTERM/SIGINT (record unlinked), CONFIG_ERROR (2)
when a setting is bad, STARTUP_FAILURE (3) when the record cannot be opened (the message names the
variable and its value), 1 on a crash.

`python -m monitor --check-config` only validates the settings: exit 0 silently, or CONFIG_ERROR
with the message (the supervisor checks every child this way before starting any).

Without PROMETHEUS_MULTIPROC_DIR, the monitor uses the directory a `python -m gateway` with
several workers makes for the same API_SERVER_PORT (`common.metrics_dir`), if it exists, so its
series reach the gateway's /metrics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence

from common.errors import ConfigError
from common.exits import ExitCode
from common.metrics_dir import derived_metrics_dir
from monitor.config import MonitorConfig, export_multiproc_dir
from monitor.errors import MonitorError
from monitor.record import PATH_ENV, RecordError, RecordWriter

logger = logging.getLogger("monitor")



class RecordUnavailable(MonitorError):
    """The status record cannot be opened (another monitor holds it, or the path is unusable)."""


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")


def _open_writer(config: MonitorConfig) -> RecordWriter:
    writer = RecordWriter(config.record_path, config.interval_s)
    try:
        writer.open()
    except (RecordError, OSError) as exc:
        raise RecordUnavailable(f"Config '{PATH_ENV}' has value '{config.record_path}'. "
                                f"Cannot open the record: {exc}") from exc
    return writer


async def _serve(config: MonitorConfig, writer: RecordWriter) -> None:
    # Imported here: prometheus_client reads PROMETHEUS_MULTIPROC_DIR when first imported, and
    # the config check above has made sure the directory exists by then.
    # The probes (aiohttp) and psutil too: `--check-config` must not pay for them.
    from monitor.metrics import MonitorMetrics
    from monitor.probes import Prober, targets_from_config
    from monitor.processes import ProcessSampler
    from monitor.service import Monitor

    try:
        metrics = MonitorMetrics(config.multiproc_dir)
    except ConfigError:
        writer.close()
        raise
    monitor = Monitor(config, writer, Prober(targets_from_config(config), config.probe_timeout_s),
                      ProcessSampler(config.components_file), metrics)
    should_exit = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Handlers only set the event; the loop notices it and shuts down in order.
        loop.add_signal_handler(signum, should_exit.set)
    try:
        await monitor.startup()
        await monitor.main_loop(should_exit)
    finally:
        await monitor.shutdown()


def _beside_gateway(config: MonitorConfig) -> MonitorConfig:
    """Adopt the gateway's own metrics directory when none is named (see the docstring)."""
    if config.multiproc_dir is not None:
        return config
    derived = derived_metrics_dir(config.api_server_port)
    if not derived.is_dir():
        return config
    export_multiproc_dir(derived)  # before prometheus_client's first import, in _serve
    return dataclasses.replace(config, multiproc_dir=derived)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the monitor until SIGTERM/SIGINT; the only place that calls sys.exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config = MonitorConfig.from_env()
    except ConfigError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG_ERROR)
    if "--check-config" in args:
        sys.exit(ExitCode.OK)
    _configure_logging(config.debug)
    config = _beside_gateway(config)
    try:
        writer = _open_writer(config)
        asyncio.run(_serve(config, writer))
    except ConfigError as exc:
        logger.error("monitor: %s", exc)
        sys.exit(ExitCode.CONFIG_ERROR)
    except RecordUnavailable as exc:
        logger.error("monitor: %s", exc)
        sys.exit(ExitCode.STARTUP_FAILURE)
    except Exception:
        logger.exception("monitor [%d] crashed", os.getpid())
        sys.exit(ExitCode.FAILED)
    sys.exit(ExitCode.OK)


if __name__ == "__main__":
    main()
