"""Starts that must be refused at once, with one message naming the problem: a bad setting of
any component, a taken port (also one shared with SO_REUSEPORT), a live previous instance."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.faults.stack import BANNER, RECOVERY, base_env, new_ports, start, stop


def _refused(tmp_path: Path, env_changes: dict[str, str], name: str,
             ports: dict[str, int] | None = None) -> tuple[int, str, float]:
    ports = ports or new_ports()
    env = base_env(tmp_path, ports)
    env.update(env_changes)
    began = time.monotonic()
    stack = start(tmp_path, env, ports, name)
    try:
        code = stack.exit_code(60)
        took = time.monotonic() - began
    finally:
        stop(stack)
    return code, stack.text(), took


@pytest.mark.parametrize(("variable", "value", "component"), [
    ("MONITOR_INTERVAL", "abc", "monitor"),
    ("MONITOR_PROBE_TIMEOUT", "9", "monitor"),  # more than MONITOR_INTERVAL (0.5)
    ("GATEWAY_WORKERS", "many", "gateway"),
    ("GATEWAY_READ_TIMEOUT", "-1", "gateway"),
    ("SUPERVISOR_PROBE_INTERVAL", "soon", "supervisor"),
    ("WAIIDE_PORT", "80800", "supervisor"),
])
def test_a_bad_setting_of_any_component_stops_the_start(tmp_path: Path, variable: str,
                                                        value: str, component: str) -> None:
    """Issue 12: MONITOR_INTERVAL=abc gave a ready banner and a monitor restarting forever."""
    code, text, took = _refused(tmp_path, {variable: value}, variable)
    RECOVERY[f"bad {variable} ({component}): refused after"] = took
    assert code == 2, text[-3000:]
    assert f"'{variable}' has value '{value}'" in text, text[-3000:]
    assert BANNER not in text
    assert "child waiide" not in text and "started" not in text.split("has value")[-1]


@contextmanager
def _listener(port: int, *, reuse_port: bool = False) -> Iterator[socket.socket]:
    sock = socket.socket()
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


@pytest.mark.parametrize(("variable", "key"), [("PORT", "main"), ("API_SERVER_PORT", "api"),
                                               ("WAIIDE_PORT", "waiide")])
def test_a_taken_port_stops_the_start_naming_it(tmp_path: Path, variable: str, key: str) -> None:
    """Issue 12: exit 3 after 5.5 s with a Sanic traceback; for the IDE's port, another app's
    404 counted as the IDE being ready and the gateway served that app."""
    ports = new_ports()
    with _listener(ports[key]):
        code, text, took = _refused(tmp_path, {}, variable, ports)
    RECOVERY[f"taken {variable}: refused after"] = took
    assert code == 2, text[-3000:]
    assert f"Config '{variable}' has value '{ports[key]}'. 127.0.0.1:{ports[key]} is already " \
           f"in use" in text, text[-3000:]
    assert "Traceback" not in text and "child waiide" not in text


def test_a_foreign_reuseport_listener_on_port_is_refused(tmp_path: Path) -> None:
    """Issue 12: a stranger bound PORT with SO_REUSEPORT and got 9 of 20 requests."""
    ports = new_ports()
    with _listener(ports["main"], reuse_port=True):
        code, text, _ = _refused(tmp_path, {}, "reuseport", ports)
    assert code == 2 and "'PORT' has value" in text and "already in use" in text, text[-3000:]
