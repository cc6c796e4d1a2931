"""`python -m gateway`: validate the configuration, print how to open the IDE, run the workers."""

from __future__ import annotations

import functools
import sys

from sanic import Sanic
from sanic.exceptions import SanicException
from sanic.worker.loader import AppLoader

from common.errors import ConfigError
from common.exits import ExitCode
from gateway.app import APP_NAME, App, configure_logging, create_app
from gateway.config import AuthMode, GatewayConfig
from gateway.sanic_compat import SanicIncompatible, check_sanic_internals


def _banner(config: GatewayConfig) -> str:
    shown_host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    url = f"http://{shown_host}:{config.port}/"
    if config.auth is AuthMode.HUB:
        return (f"WAIIDE gateway on {config.host}:{config.port} -> WAIIDE at "
                f"{config.upstream_label}, {config.workers} worker(s), JupyterHub auth for "
                f"user {config.user}.")
    if config.auth is AuthMode.TOKEN:
        source = "generated" if config.token_generated else "from GATEWAY_TOKEN"
        return (f"WAIIDE gateway on {config.host}:{config.port} -> WAIIDE at "
                f"{config.upstream_label}, {config.workers} worker(s), token {source}.\n"
                f"    Open: {url}?token={config.token}")
    return (f"WAIIDE gateway on {config.host}:{config.port} -> WAIIDE at {config.upstream_label}, "
            f"{config.workers} worker(s), authentication OFF (GATEWAY_AUTH=none).\n    Open: {url}")


def _app(config: GatewayConfig) -> App:
    """The app: made in the main process; a forked worker finds the main's copy registered."""
    try:
        return Sanic.get_app(APP_NAME)
    except SanicException:  # not made yet: this is the main process
        return create_app(config)


def main() -> int:
    try:
        config = GatewayConfig.from_env()
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    configure_logging(config.debug)
    try:
        check_sanic_internals()
    except SanicIncompatible as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return ExitCode.STARTUP_FAILURE
    print(_banner(config), file=sys.stderr, flush=True)
    print(f"gateway: {config.workers} worker(s): {config.workers_reason}", file=sys.stderr,
          flush=True)
    # Workers are forked, not spawned: they share the main process's imported modules copy on
    # write instead of importing everything again, Sanic's sync manager is a fork too, and no
    # multiprocessing resource tracker is started (its semaphores are unlinked at once under
    # fork). About 60 MiB PSS less with 2 workers (bench/memory.py). Everything per worker
    # (record reader, metric files, upstream pool) is opened after the fork, in
    # before_server_start.
    Sanic.start_method = "fork"
    loader = AppLoader(factory=functools.partial(_app, config))
    app = loader.load()
    try:
        app.prepare(host=config.host, port=config.port, workers=config.workers,
                    access_log=config.debug, motd=False, debug=False)
    except OSError as exc:
        print(f"gateway: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return ExitCode.STARTUP_FAILURE
    Sanic.serve(primary=app, app_loader=loader)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
