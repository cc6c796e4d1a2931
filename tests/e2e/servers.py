"""alice's (default) server on a test hub: spawn and stop it through the REST API, find its
processes and its gateway port, wait for its stack to be healthy.

The spawner's pid is `state.pid` in the users API (the e2e service's `admin:servers` may read
it); the entrypoint execs supervisor_main.py, so that pid is the supervisor and its process tree
is the whole server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from tests.e2e.hub import (
    SPAWN_TIMEOUT_S,
    HubProcess,
    ProcInfo,
    process_tree,
    server_api_path,
    server_prefix,
    wait_gone,
)

USER = "alice"
STOP_TIMEOUT_S = 30.0
STATUS_TIMEOUT_S = 20.0


@dataclass
class WaiideServer:
    """alice's running (default) server: where it answers and which processes are its."""

    hub: HubProcess
    user: str
    pid: int
    api_port: int
    procs: list[ProcInfo] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return server_prefix(self.user)

    @property
    def public_url(self) -> str:
        """The server through the hub's proxy (CHP)."""
        return f"{self.hub.url}{self.prefix}"

    @property
    def gateway_url(self) -> str:
        """The gateway's own port (API_SERVER_PORT), not routed by the hub."""
        return f"http://127.0.0.1:{self.api_port}"

    def snapshot(self) -> list[ProcInfo]:
        """Add the server's current process tree to what it is known to own."""
        try:
            tree = process_tree(self.pid)
        except psutil.NoSuchProcess:
            tree = []
        now = {(p.pid, p.create_time): p for p in tree}
        # The newest look at each: one first seen between its fork and its exec still showed its
        # parent's command line (the monitor, once, as "supervisor_main.py" for good).
        self.procs = [now.pop((p.pid, p.create_time), p) for p in self.procs]
        self.procs.extend(now.values())
        self.hub.remember(self.procs)
        return list(self.procs)


def _get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_gateway_healthy(server: WaiideServer, timeout_s: float = STATUS_TIMEOUT_S, *,
                         url: str | None = None) -> dict[str, Any]:
    """Poll the gateway's /api/status (or `url` serving it) until every component is up.

    The monitor probes each component every MONITOR_INTERVAL; on two busy cores a probe may
    time out now and then, so one 503 is not a failure, a deadline without a 200 is.
    """
    url = url or f"{server.gateway_url}/api/status"
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body = _get_json(url)
        except OSError as exc:
            last = exc
        else:
            if status == 200 and body.get("status") == "healthy":
                return dict(body)
            last = (status, body)
        time.sleep(0.2)
    raise server.hub.fail(f"{url} was not healthy within {timeout_s}s: {last}")


def spawn(hub: HubProcess, user: str = USER,
          options: Mapping[str, Any] | None = None) -> WaiideServer:
    """POST the spawn, wait for `ready`, find the gateway port, wait for a healthy stack.

    `options` are the spawn's user_options (e.g. {"env": {...}} for a hub started with
    JH_SPAWN_ENV_OPTION=true).
    """
    api = hub.api
    status, reply = api.request("POST", server_api_path(user), dict(options or {}))
    if status not in (201, 202):
        raise hub.fail(f"spawn answered {status}: {reply}")
    deadline = time.monotonic() + SPAWN_TIMEOUT_S
    model = None
    while time.monotonic() < deadline:
        model = api.server(user)
        if model is not None and model["ready"]:
            break
        if model is None:
            raise hub.fail(f"{user}'s server vanished while starting")
        time.sleep(0.2)
    else:
        raise hub.fail(f"{user}'s server not ready within {SPAWN_TIMEOUT_S}s: {model}")
    pid = int(model["state"]["pid"])
    # The entrypoint execs supervisor_main.py, so the spawner's pid is the supervisor, whose
    # environment holds the gateway port the hub config chose for this server.
    api_port = int(psutil.Process(pid).environ()["API_SERVER_PORT"])
    server = WaiideServer(hub, user, pid, api_port)
    server.snapshot()
    wait_gateway_healthy(server)
    server.snapshot()  # now with the gateway's workers and the monitor
    return server


def stop(server: WaiideServer) -> tuple[int, list[ProcInfo]]:
    """DELETE the server through the hub; (the answer's status, processes still alive)."""
    procs = server.snapshot()
    status, reply = server.hub.api.request(
        "DELETE", server_api_path(server.user), timeout_s=STOP_TIMEOUT_S)
    if status not in (202, 204):
        raise server.hub.fail(f"DELETE answered {status}: {reply}")
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while server.hub.api.server(server.user) is not None:
        if time.monotonic() > deadline:
            raise server.hub.fail(f"{server.user}'s server still listed after "
                                  f"{STOP_TIMEOUT_S}s")
        time.sleep(0.2)
    return status, wait_gone(procs, max(1.0, deadline - time.monotonic()))
