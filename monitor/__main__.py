"""`python -m monitor`: configuration, logging, signals and exit codes of the monitor process.

Exit codes (`common.exits.ExitCode`): 0 after SIGTERM/SIGINT (record unlinked), CONFIG_ERROR (2)
when a setting is bad, STARTUP_FAILURE (3) when the record cannot be opened (the message names the
variable and its value), 1 on a crash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from common.errors import ConfigError
from common.exits import ExitCode
from monitor.config import MonitorConfig
from monitor.errors import MonitorError
from monitor.probes import Prober, targets_from_config
from monitor.processes import ProcessSampler
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
    from monitor.metrics import MonitorMetrics
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


def main() -> None:
    """Run the monitor until SIGTERM/SIGINT; the only place that calls sys.exit."""
    try:
        config = MonitorConfig.from_env()
    except ConfigError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG_ERROR)
    _configure_logging(config.debug)
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
