"""Serving `python -m gateway`: Sanic's check, the sockets, the metrics directory, the workers.

Imported by `gateway.__main__` only after the settings passed, so `python -m gateway
--check-config` stays a fraction of a second (it never imports Sanic).
"""

from __future__ import annotations

import functools
import socket
import sys

from sanic import Sanic
from sanic.exceptions import SanicException
from sanic.worker.loader import AppLoader

from common.errors import ConfigError
from common.exits import ExitCode
from gateway.app import APP_NAME, App, configure_logging, create_app
from gateway.config import AuthMode, GatewayConfig
from gateway.edge.protocol import StrictHttpProtocol
from gateway.forking import ForkedChildren
from gateway.listen import bind_listener
from gateway.metrics import mark_process_dead
from gateway.sanic_compat import SanicIncompatible, check_sanic_internals
from gateway.stop_signals import StopSignals
from gateway.workers import WorkerKeeper


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


def run(config: GatewayConfig) -> int:
    """Serve until stopped; the exit code."""
    configure_logging(config.debug)
    try:
        check_sanic_internals()
    except SanicIncompatible as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return ExitCode.STARTUP_FAILURE
    try:
        api_sock = bind_listener("API_SERVER_PORT", config.host, config.port)
        main_sock = (bind_listener("PORT", config.host, config.main_port)
                     if config.serves_main_port else None)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    print(_banner(config), file=sys.stderr, flush=True)
    print(f"gateway: {config.workers} worker(s): {config.workers_reason}", file=sys.stderr,
          flush=True)
    _serve(config, api_sock, main_sock)
    return ExitCode.OK


def _app(config: GatewayConfig, main_sock: socket.socket | None) -> App:
    """The app: made in the main process; a forked worker finds the main's copy registered."""
    try:
        return Sanic.get_app(APP_NAME)
    except SanicException:  # not made yet: this is the main process
        return create_app(config, main_sock)


def _serve(config: GatewayConfig, api_sock: socket.socket,
           main_sock: socket.socket | None) -> None:
    # Forked workers share the main process's imports (gateway.forking says what each forked
    # child does at birth). Everything per worker (record reader, metric files, upstream pool)
    # is opened after the fork, in before_server_start.
    Sanic.start_method = "fork"
    children = ForkedChildren([sock for sock in (api_sock, main_sock) if sock is not None])
    children.install()
    loader = AppLoader(factory=functools.partial(_app, config, main_sock))
    app = loader.load()
    keeper = WorkerKeeper(lambda pid: mark_process_dead(pid, config.multiproc_dir))
    app.main_process_start(children.servers_next)
    app.main_process_ready(StopSignals().install)
    app.main_process_ready(keeper.start)
    app.main_process_stop(lambda _app: keeper.stop())
    app.prepare(sock=api_sock, workers=config.workers, access_log=config.debug, motd=False,
                debug=False, protocol=StrictHttpProtocol)
    try:
        Sanic.serve(primary=app, app_loader=loader)
    finally:
        if main_sock is not None:
            main_sock.close()
