"""Gateway settings: defaults, and a bad value stops the start naming the variable."""

from __future__ import annotations

import os
import subprocess

import pytest

from common.errors import ConfigError
from gateway.config import AuthMode, GatewayConfig
from tests.procs import PYTHON, ROOT


def test_defaults() -> None:
    cfg = GatewayConfig.from_env({})
    assert (cfg.host, cfg.port, cfg.waiide_host, cfg.waiide_port) == ("0.0.0.0", 8091,
                                                                      "127.0.0.1", 8080)
    assert cfg.auth is AuthMode.TOKEN and cfg.token_generated
    assert len(cfg.token) == 32  # 24 random bytes, URL-safe base64
    assert cfg.token != GatewayConfig.from_env({}).token  # generated afresh, never a constant
    assert cfg.workers == (os.cpu_count() or 1)
    assert (cfg.connect_timeout_s, cfg.read_timeout_s) == (10.0, 60.0)
    assert (cfg.ws_max_message_bytes, cfg.ws_ping_interval_s) == (256 * 1024 * 1024, 30.0)
    assert (cfg.max_body_bytes, cfg.upstream_pool_size) == (0, 64)
    assert (cfg.waiide_socket, cfg.multiproc_dir, cfg.hub, cfg.internal_secret) == (
        None, None, None, "")
    assert (cfg.service_prefix, cfg.main_port, cfg.all_components, cfg.debug) == (
        "/", 8090, True, False)


def test_token_given_is_used() -> None:
    cfg = GatewayConfig.from_env({"GATEWAY_TOKEN": "abc"})
    assert cfg.token == "abc" and not cfg.token_generated


@pytest.mark.parametrize(("key", "value"), [
    ("API_SERVER_PORT", "http"), ("API_SERVER_PORT", "70000"), ("WAIIDE_PORT", "-1"),
    ("GATEWAY_WORKERS", "0"), ("GATEWAY_READ_TIMEOUT", "-3"), ("DEBUG", "yes"),
    ("GATEWAY_AUTH", "maybe"), ("WAIIDE_HOST", "10.0.0.5"), ("WAIIDE_HOST", "example.com"),
    ("WAIIDE_SOCKET", "relative.sock"), ("GATEWAY_WS_MAX_MESSAGE_BYTES", "12"),
    ("JUPYTERHUB_SERVICE_PREFIX", "user/x/"),
])
def test_bad_values_name_the_variable(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GatewayConfig.from_env({key: value})
    assert key in str(caught.value) and value in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "::1", "localhost"])
def test_loopback_upstreams_are_accepted(host: str) -> None:
    assert GatewayConfig.from_env({"WAIIDE_HOST": host}).waiide_host == host


def test_bad_setting_stops_the_process_with_a_message() -> None:
    proc = subprocess.run([PYTHON, "-m", "gateway"], cwd=ROOT, capture_output=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "API_SERVER_PORT": "eighty"}, check=False)
    assert proc.returncode == 2  # CONFIG_ERROR: the supervisor never restarts it
    assert b"API_SERVER_PORT" in proc.stderr and b"eighty" in proc.stderr
