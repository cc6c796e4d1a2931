"""A gateway worker that dies is replaced (Sanic alone leaves it dead, sanic#3062), and the
forked processes die with the gateway's main process (gateway.forking)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import Server, gateway_process


def workers(server: Server) -> set[int]:
    """Pids of the gateway's worker processes: the children that hold the listening socket.

    Sanic forks them (gateway/serve.py), so their command line and environment are the main
    process's; its other child, the sync manager, closes its copies at birth (gateway.forking).
    """
    leader = psutil.Process(server.pid)
    found = set()
    for proc in leader.children():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and any(
                    c.status == psutil.CONN_LISTEN and c.laddr.port == server.port
                    for c in proc.net_connections(kind="tcp")):
                found.add(proc.pid)
        except psutil.Error:  # exited meanwhile
            continue
    return found


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_requests_keep_working(tmp_path: Path,
                                                               upstream: Server) -> None:
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    with gateway_process(tmp_path, upstream.port,
                         {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as gw:
        before = workers(gw)
        assert len(before) == 2, before
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = workers(gw)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.2)
        assert len(now) == 2 and victim not in now, now
        assert "died; restarting it" in gw.log_text()
        assert not list(metrics_dir.glob(f"gauge_live*_{victim}.db")), \
            "the dead worker's live gauges linger"
        # Both workers serve again: the replacement and the survivor each answer some of the
        # new connections (the kernel hands each to whichever worker accepts first).
        answered = serving_pids(gw, expected=now)
        assert answered == now, f"only {answered} of the workers {now} answered"
        for i in range(20):  # and proxying works
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
            conn.request("GET", f"/after/{i}")
            assert conn.getresponse().status == 200
            conn.close()


@pytest.mark.slow
def test_only_workers_hold_the_port_and_every_child_dies_with_a_killed_main(
        tmp_path: Path, upstream: Server) -> None:
    """Forked children inherit the main process's listening socket: Sanic's sync manager must
    close its copy, and nothing forked may outlive a SIGKILLed main holding the port."""
    with gateway_process(tmp_path, upstream.port) as gw:
        main = psutil.Process(gw.pid)
        children = main.children()
        serving = workers(gw)
        assert len(serving) == 2, serving
        others = [proc for proc in children if proc.pid not in serving]
        assert len(others) == 1, f"expected Sanic's sync manager besides 2 workers: {others}"
        manager = others[0]
        assert not [c for c in manager.net_connections(kind="tcp")
                    if c.status == psutil.CONN_LISTEN], "the sync manager holds a listener"
        os.kill(gw.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        alive = children
        while alive and time.monotonic() < deadline:
            alive = [proc for proc in alive
                     if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.05)
        assert not alive, f"outlived the killed main process: {alive}"
        probe = socket.socket()
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", gw.port))  # free again: nobody holds the port
        finally:
            probe.close()


def serving_pids(server: Server, expected: set[int], max_connections: int = 2000,
                 timeout_s: float = 30.0) -> set[int]:
    """Pids that answer /api/healthz over new connections, until all of `expected` did (or
    the bounds run out)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    for _ in range(max_connections):
        if seen >= expected or time.monotonic() > deadline:
            break
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("GET", "/api/healthz")
            resp = conn.getresponse()
            assert resp.status == 200
            seen.add(int(json.loads(resp.read())["pid"]))
        finally:
            conn.close()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "group-term"])
def test_a_signal_to_the_whole_process_group_ends_it_cleanly(tmp_path: Path, upstream: Server,
                                                               signum: int) -> None:
    """Ctrl-C in a terminal signals the whole group: the main process, Sanic's sync manager and
    the workers at once. It must end with exit 0 and no traceback (with spawned workers the
    sync manager died first and the main process logged a BrokenPipe traceback)."""
    with gateway_process(tmp_path, upstream.port) as gw:
        os.killpg(gw.pid, signum)
        deadline = time.monotonic() + 15
        while psutil.pid_exists(gw.pid) and time.monotonic() < deadline:
            try:
                if psutil.Process(gw.pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        log = gw.log_text()
        assert "Server Stopped" in log, log[-2000:]
        assert "Traceback" not in log and "BrokenPipe" not in log, log[-3000:]
