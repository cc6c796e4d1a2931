"""SupervisorConfig.from_env: defaults, derived values and a named error for every bad value."""

from __future__ import annotations

import os

import pytest

from common.errors import ConfigError
from supervisor.config import Mode, SupervisorConfig

HOME = "/home/alice"
BASE = {"HOME": HOME}
HUB = {**BASE, "JUPYTERHUB_API_TOKEN": "hub-secret",
       "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:38619/user/alice/ide/",
       "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/ide/"}


def load(**env: str) -> SupervisorConfig:
    return SupervisorConfig.from_env({**BASE, **env}, euid=1000, python="/py")


def test_defaults() -> None:
    config = load()
    assert config.mode is Mode.FULL and not config.under_hub
    assert (config.host, config.port, config.api_port) == ("0.0.0.0", 8090, 8091)
    # The IDE is on a private unix socket unless TCP is asked for (supervisor.ide_socket).
    sock = f"/tmp/waiide-hub-{os.getuid()}-8091/waiide.sock"
    assert (config.waiide_socket, config.waiide_socket_default) == (sock, True)
    assert config.waiide_argv == (
        f"{HOME}/.cache/waiide-hub/code-server/bin/code-server", "--socket", sock,
        "--socket-mode", "600", "--auth", "none", "--disable-telemetry",
        "--disable-update-check", "--disable-workspace-trust",
        "--disable-getting-started-override",
        "--user-data-dir", f"{HOME}/.local/share/code-server", "--abs-proxy-base-path", "/WAIIDE",
        HOME)
    assert config.workspace == HOME
    assert config.credentials_dir == f"{HOME}/.local/share/waiide-hub"
    assert config.waiide_default_command
    assert config.waiide_ready_path == "/healthz"
    assert config.waiide_ready_timeout_s == 120.0
    assert config.gateway_argv == ("/py", "-m", "gateway")
    assert config.monitor_argv == ("/py", "-m", "monitor")
    # Generated: 24 random bytes each (URL-safe base64 for the gateway, hex for Jupyter).
    assert len(config.gateway_token) == 32 and config.gateway_token_generated
    assert len(config.jupyter_token) == 48 and config.jupyter_token_generated
    assert set(config.jupyter_token) <= set("0123456789abcdef")
    assert load().gateway_token != config.gateway_token
    assert config.restart.backoff_initial_s == 1.0 and config.restart.backoff_max_s == 30.0
    assert config.liveness.failures == 3
    assert config.stop_timeout_s == 5.0
    assert not config.allow_root and not config.debug
    assert config.status_path is None and config.metrics_dir is None
    assert config.service_prefix == "/"
    assert config.notes == ()


def test_waiide_command_placeholders_and_quoting() -> None:
    config = load(WAIIDE_COMMAND="ide --listen '{host}:{port}' --json '{\"a\": 1}' 'two words'",
                  WAIIDE_PORT="9000")
    assert config.waiide_argv == ("ide", "--listen", "127.0.0.1:9000", "--json", '{"a": 1}',
                                  "two words")
    assert not config.waiide_default_command


def test_socket_default_command_and_placeholder() -> None:
    config = load(WAIIDE_SOCKET="/run/ide.sock", WAIIDE_HUB_HOME="/opt/hub",
                  WAIIDE_WORKSPACE="/srv/work", DEBUG="true", XDG_DATA_HOME="/data",
                  JUPYTERHUB_SERVICE_PREFIX="/user/al/")
    assert config.waiide_argv == (
        "/opt/hub/code-server/bin/code-server", "--socket", "/run/ide.sock", "--socket-mode",
        "600", "--auth", "none", "--disable-telemetry", "--disable-update-check",
        "--disable-workspace-trust", "--disable-getting-started-override",
        "--user-data-dir", "/data/code-server", "--abs-proxy-base-path", "/user/al/WAIIDE",
        "--log", "debug", "/srv/work")
    assert not config.waiide_socket_default  # a named socket's directory is the user's business
    assert config.credentials_dir == "/data/waiide-hub"
    custom = load(WAIIDE_SOCKET="/run/ide.sock", WAIIDE_COMMAND="ide --socket={socket}")
    assert custom.waiide_argv == ("ide", "--socket=/run/ide.sock")


def test_tcp_only_when_asked_for_and_then_a_warning() -> None:
    for asked in ({"WAIIDE_PORT": "8123"}, {"WAIIDE_HOST": "127.0.0.1"},
                  {"WAIIDE_COMMAND": "ide --port {port}"}):
        config = load(**asked)
        assert config.waiide_socket is None, asked
        assert any("every process on this machine" in note for note in config.notes), asked
    # a command that uses {socket} gets the private default socket
    custom = load(WAIIDE_COMMAND="ide --socket={socket}", XDG_RUNTIME_DIR="/run/user/1000")
    assert custom.waiide_argv == ("ide", "--socket=/run/user/1000/waiide-hub-8091/waiide.sock")
    assert custom.notes == ()


def test_socket_placeholder_with_tcp_asked_for_is_an_error() -> None:
    with pytest.raises(ConfigError, match="uses {socket} but WAIIDE_SOCKET is not set"):
        load(WAIIDE_COMMAND="ide --socket {socket}", WAIIDE_PORT="8123")


def test_memory_limit_from_the_variable() -> None:
    assert load(WAIIDE_MEMORY_LIMIT="2G").waiide_memory_limit == 2 << 30
    with pytest.raises(ConfigError, match="WAIIDE_MEMORY_LIMIT"):
        load(WAIIDE_MEMORY_LIMIT="lots")


def test_ipv6_loopback_waiide_host() -> None:
    config = load(WAIIDE_HOST="::1", WAIIDE_COMMAND="ide {host}:{port}",
                  USE_ALL_COMPONENTS="false")
    assert config.waiide_argv == ("ide", "[::1]:8080")


def test_lightweight_mode_has_no_jupyter_token() -> None:
    config = load(USE_ALL_COMPONENTS="0")
    assert config.mode is Mode.LIGHTWEIGHT
    assert config.jupyter_token is None


def test_given_tokens_are_kept_and_auth_none_means_no_token() -> None:
    config = load(GATEWAY_TOKEN="gw", JUPYTER_TOKEN="jt")
    assert (config.gateway_token, config.gateway_token_generated) == ("gw", False)
    assert (config.jupyter_token, config.jupyter_token_generated) == ("jt", False)
    assert load(GATEWAY_AUTH="none").gateway_token is None
    # an empty JUPYTER_TOKEN would disable Jupyter's auth: it counts as not given
    assert load(JUPYTER_TOKEN="").jupyter_token_generated


def test_hub_mode_takes_host_and_port_from_the_service_url() -> None:
    config = SupervisorConfig.from_env(HUB, euid=0)
    assert config.under_hub and config.allow_root
    assert (config.host, config.port) == ("127.0.0.1", 38619)
    assert config.service_prefix == "/user/alice/ide/"
    assert config.jupyter_token is None
    explicit = SupervisorConfig.from_env({**HUB, "PORT": "8090", "HOST": "0.0.0.0"})
    assert (explicit.host, explicit.port) == ("0.0.0.0", 8090)
    assert "the hub expects the server on port 38619" in explicit.notes[0]


def test_local_url_maps_wildcards_to_loopback() -> None:
    assert load().local_url(8091, "/api") == "http://127.0.0.1:8091/api"
    assert load(HOST="::").local_url(1) == "http://[::1]:1/"
    assert load(HOST="10.1.2.3").local_url(1) == "http://10.1.2.3:1/"


def test_prefix_gets_a_trailing_slash() -> None:
    assert load(JUPYTERHUB_SERVICE_PREFIX="/user/bob").service_prefix == "/user/bob/"


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("PORT", "eighty", "Not a valid TCP port"),
    ("PORT", "70000", "Not a valid TCP port"),
    ("API_SERVER_PORT", "0", "Not a valid TCP port"),
    ("API_SERVER_PORT", "8090", "Must differ from PORT"),
    ("WAIIDE_PORT", "8091", "Must differ from PORT and API_SERVER_PORT"),
    ("HOST", "not a host!", "Not a valid IP address or host name"),
    ("DEBUG", "yes", "Use true, false, 1 or 0"),
    ("USE_ALL_COMPONENTS", "maybe", "Use true, false, 1 or 0"),
    ("WAIIDE_HOST", "0.0.0.0", "must listen on loopback"),
    ("WAIIDE_HOST", "example.com", "must listen on loopback"),
    ("WAIIDE_SOCKET", "relative.sock", "Use an absolute path"),
    ("WAIIDE_SOCKET", "/" + "s" * 120, "limited to 107 bytes"),
    ("WAIIDE_COMMAND", "ide 'unclosed", "Not a valid shell-like command"),
    ("WAIIDE_MEMORY_LIMIT", "-1", "Not a valid size in bytes"),
    ("WAIIDE_READY_PATH", "healthz", "Must start with '/'"),
    ("WAIIDE_READY_TIMEOUT", "-1", "Not a valid number of seconds"),
    ("WAIIDE_READY_TIMEOUT", "inf", "Not a valid number of seconds"),
    ("SUPERVISOR_READY_TIMEOUT", "soon", "Not a valid number of seconds"),
    ("SUPERVISOR_STOP_TIMEOUT", "0", "Not a valid number of seconds"),
    ("SUPERVISOR_BACKOFF_INITIAL", "nan", "Not a valid number of seconds"),
    ("SUPERVISOR_BACKOFF_MAX", "0.5", "Must be >= SUPERVISOR_BACKOFF_INITIAL"),
    ("SUPERVISOR_STABLE_UPTIME", "x", "Not a valid number of seconds"),
    ("SUPERVISOR_FLAP_RESTARTS", "1", "Not a valid whole number >= 2"),
    ("SUPERVISOR_FLAP_WINDOW", "-5", "Not a valid number of seconds"),
    ("SUPERVISOR_PROBE_INTERVAL", "0", "Not a valid number of seconds"),
    ("SUPERVISOR_PROBE_TIMEOUT", "x", "Not a valid number of seconds"),
    ("SUPERVISOR_HANG_PROBES", "0", "Not a valid whole number >= 1"),
    ("SUPERVISOR_GATEWAY_COMMAND", "'", "Not a valid shell-like command"),
    ("SUPERVISOR_MONITOR_COMMAND", "'", "Not a valid shell-like command"),
    ("WAIIDE_HUB_STATUS_PATH", "status.bin", "Use an absolute path"),
    ("PROMETHEUS_MULTIPROC_DIR", "metrics", "Use an absolute path"),
    ("JUPYTERHUB_SERVICE_PREFIX", "user/alice", "Must be a URL path starting with '/'"),
])
def test_bad_values_name_the_variable_and_the_value(key: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(**{key: value})
    message = str(info.value)
    assert message.startswith(f"Config '{key}' has value '")
    assert reason in message
    assert info.value.key == key


def test_bad_service_url_under_a_hub() -> None:
    with pytest.raises(ConfigError, match="Config 'JUPYTERHUB_SERVICE_URL' has value"):
        SupervisorConfig.from_env({**HUB, "JUPYTERHUB_SERVICE_URL": "http://h:port/"})


def test_blank_values_mean_the_default() -> None:
    config = load(PORT="  ", DEBUG="", WAIIDE_COMMAND=" ")
    assert config.port == 8090 and not config.debug and config.waiide_default_command


def test_config_is_picklable() -> None:
    import pickle

    config = load()
    assert pickle.loads(pickle.dumps(config)) == config
