"""Serving `python -m gateway`: Sanic's check, the sockets, the metrics directory, the workers.

Imported by `gateway.__main__` only after the settings passed, so `python -m gateway
--check-config` stays a fraction of a second (it never imports Sanic).
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import sys

from sanic import Sanic
from sanic.worker.loader import AppLoader

from common.errors import ConfigError
from common.exits import ExitCode
from gateway.app import configure_logging, create_app
from gateway.config import AuthMode, GatewayConfig
from gateway.edge.protocol import StrictHttpProtocol
from gateway.listen import bind_listener
from gateway.metrics import mark_process_dead
from gateway.metrics_dir import own_metrics_dir
from gateway.sanic_compat import SanicIncompatible, check_sanic_internals
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
    with own_metrics_dir(config) as made:
        if made is not None:
            config = dataclasses.replace(config, multiproc_dir=str(made))
        print(_banner(config), file=sys.stderr, flush=True)
        _serve(config, api_sock, main_sock)
    return ExitCode.OK


def _serve(config: GatewayConfig, api_sock: socket.socket,
           main_sock: socket.socket | None) -> None:
    # The PORT socket travels to each worker inside the factory, pickled at every worker start
    # the way Sanic passes its own socket (multiprocessing duplicates the descriptor).
    loader = AppLoader(factory=functools.partial(create_app, config, main_sock))
    app = loader.load()
    keeper = WorkerKeeper(lambda pid: mark_process_dead(pid, config.multiproc_dir))
    app.main_process_ready(keeper.start)
    app.main_process_stop(lambda _app: keeper.stop())
    app.prepare(sock=api_sock, workers=config.workers, access_log=config.debug, motd=False,
                debug=False, protocol=StrictHttpProtocol)
    try:
        Sanic.serve(primary=app, app_loader=loader)
    finally:
        if main_sock is not None:
            main_sock.close()
