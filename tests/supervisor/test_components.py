"""The children each mode runs: argv, environment, readiness, and the jupyter-server-proxy file."""

from __future__ import annotations

import json
from pathlib import Path

from common.defaults import INTERNAL_HEADER
from supervisor.components import build_specs
from supervisor.config import SupervisorConfig
from supervisor.rundir import RunPaths
from supervisor.spec import ChildSpec

USER_ENV = {"HOME": "/home/alice", "PATH": "/usr/bin", "PORT": "8090",
            "CODE_SERVER_HOST": "0.0.0.0", "JUPYTER_TOKEN": "jt", "GATEWAY_TOKEN": "gw",
            "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics", "EDITOR": "vim"}


def paths(tmp_path: Path) -> RunPaths:
    return RunPaths(root=tmp_path, metrics_dir=tmp_path / "prometheus",
                    components_file=tmp_path / "components.json",
                    jupyter_config_dir=tmp_path / "jupyter", activity_dir=tmp_path / "activity")


def specs(tmp_path: Path, env: dict[str, str], euid: int = 1000,
          args: tuple[str, ...] = ()) -> dict[str, ChildSpec]:
    config = SupervisorConfig.from_env(env, euid=euid, python="/py")
    return {spec.name: spec for spec in build_specs(config, paths(tmp_path), args)}


def test_full_mode_standalone(tmp_path: Path) -> None:
    children = specs(tmp_path, USER_ENV)
    # Jupyter's proxy goes through the gateway, so the gateway starts before it.
    assert list(children) == ["waiide", "gateway", "singleuser", "monitor"]
    jupyter = children["singleuser"]
    # Jupyter serves the IDE's folder (WAIIDE_WORKSPACE, the home by default)
    assert jupyter.argv == ("/py", "-m", "jupyter_server", "--ip=0.0.0.0", "--port=8090",
                            "--no-browser", "--ServerApp.port_retries=0",
                            "--ServerApp.root_dir=/home/alice")
    assert jupyter.env["JUPYTER_TOKEN"] == "jt"
    assert jupyter.env["JUPYTER_CONFIG_PATH"] == str(tmp_path / "jupyter")
    assert jupyter.ready is not None and jupyter.ready.url == "http://127.0.0.1:8090/api"
    for hidden in ("GATEWAY_TOKEN", "PROMETHEUS_MULTIPROC_DIR", "MONITOR_COMPONENTS_FILE",
                   "GATEWAY_INTERNAL_SECRET"):
        assert hidden not in jupyter.env
    assert jupyter.env["EDITOR"] == "vim" and jupyter.env["DEBUG"] == "false"


def test_jupyter_server_proxy_goes_through_the_gateway_with_the_secret(tmp_path: Path) -> None:
    children = specs(tmp_path, {**USER_ENV, "WAIIDE_PORT": "8123", "API_SERVER_PORT": "8191"})
    written = json.loads((tmp_path / "jupyter" / "jupyter_server_config.json").read_text())
    server = written["ServerProxy"]["servers"]["WAIIDE"]
    assert server["command"] == []  # proxy only: JSP must not launch a second IDE
    # Through the gateway, which strips the credentials JSP would hand WAIIDE.
    assert server["port"] == 8191 and "unix_socket" not in server
    secret = server["request_headers_override"][INTERNAL_HEADER]
    assert len(secret) >= 32
    assert children["gateway"].env["GATEWAY_INTERNAL_SECRET"] == secret
    assert server["absolute_url"] is False
    assert server["launcher_entry"]["path_info"] == "WAIIDE/"


def test_waiide_does_not_see_ports_or_internal_secrets(tmp_path: Path) -> None:
    waiide = specs(tmp_path, {**USER_ENV, "DEBUG": "1", "WAIIDE_PORT": "8080"})["waiide"]
    # code-server lets $PORT and $CODE_SERVER_HOST override --bind-addr
    for hidden in ("PORT", "CODE_SERVER_HOST", "JUPYTER_TOKEN", "GATEWAY_TOKEN",
                   "PROMETHEUS_MULTIPROC_DIR"):
        assert hidden not in waiide.env
    assert waiide.env["DEBUG"] == "true" and waiide.env["EDITOR"] == "vim"
    assert waiide.ready is not None and waiide.ready.url == "http://127.0.0.1:8080/healthz"
    assert waiide.ready_timeout_s == 120.0
    assert "make setup-run" in waiide.hint


def test_gateway_and_monitor_get_the_wiring(tmp_path: Path) -> None:
    children = specs(tmp_path, {**USER_ENV, "API_SERVER_PORT": "9191",
                                "WAIIDE_SOCKET": "/run/ide.sock", "SUPERVISOR_HANG_PROBES": "4"})
    gateway, monitor = children["gateway"], children["monitor"]
    assert gateway.argv == ("/py", "-m", "gateway") and monitor.argv == ("/py", "-m", "monitor")
    for env in (gateway.env, monitor.env):
        assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "prometheus")
        assert env["MONITOR_COMPONENTS_FILE"] == str(tmp_path / "components.json")
        assert env["GATEWAY_TOKEN"] == "gw"
        assert (env["HOST"], env["PORT"], env["API_SERVER_PORT"]) == ("0.0.0.0", "8090", "9191")
        assert env["WAIIDE_SOCKET"] == "/run/ide.sock" and env["WAIIDE_PORT"] == "8080"
        assert env["USE_ALL_COMPONENTS"] == "true" and env["PYTHONUNBUFFERED"] == "1"
    assert gateway.ready is not None
    assert gateway.ready.url == "http://127.0.0.1:9191/api/healthz"
    assert gateway.liveness is not None and gateway.liveness.failures == 4
    # The monitor is ready when the gateway serves its first record; never probed afterwards.
    assert monitor.ready is not None and monitor.liveness is None
    assert monitor.ready.url == "http://127.0.0.1:9191/api/status"
    assert monitor.ready.known_status and not monitor.ready.owned
    for child in (gateway, monitor):  # our own: checked before start, exit 2 not restarted
        assert child.check_argv == (*child.argv, "--check-config") and child.config_exit
    waiide = children["waiide"]
    assert waiide.liveness is not None and waiide.liveness.failures == 4  # a hung IDE restarts
    assert not waiide.config_exit and not waiide.check_argv
    assert waiide.ready is not None and waiide.ready.unix_socket == "/run/ide.sock"
    assert waiide.stale_sockets == ("/run/ide.sock",)


def test_lightweight_mode(tmp_path: Path) -> None:
    children = specs(tmp_path, {**USER_ENV, "USE_ALL_COMPONENTS": "false", "PORT": "9000"})
    assert list(children) == ["waiide", "gateway", "monitor"]
    assert children["gateway"].env["PORT"] == "9000"
    assert children["gateway"].env["USE_ALL_COMPONENTS"] == "false"
    assert not (tmp_path / "jupyter").exists()


def test_under_a_hub_as_root_with_spawner_args(tmp_path: Path) -> None:
    hub = {**USER_ENV, "JUPYTERHUB_API_TOKEN": "t", "JUPYTERHUB_SERVICE_PREFIX": "/user/al",
           "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/al/",
           "JUPYTERHUB_ACTIVITY_URL": "http://hub:8081/hub/api/users/al/activity"}
    hub.pop("PORT")
    children = specs(tmp_path, hub, euid=0, args=("--allow-root", "--SingleUserApp.x=1"))
    jupyter = children["singleuser"]
    assert jupyter.argv == ("/py", "-m", "jupyterhub.singleuser", "--ip=0.0.0.0", "--port=8888",
                            "--no-browser", "--ServerApp.port_retries=0",
                            "--ServerApp.root_dir=/home/alice", "--allow-root",
                            "--SingleUserApp.x=1")
    assert jupyter.ready is not None
    assert jupyter.ready.url == "http://127.0.0.1:8888/user/al/api"
    assert "JUPYTER_TOKEN" in jupyter.env  # the user's own variable, untouched under a hub
    assert jupyter.env["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:8888/user/al/"
    # Only the gateway posts activity: jupyterhub-singleuser would re-post its own every interval.
    assert "JUPYTERHUB_ACTIVITY_URL" not in jupyter.env
    assert children["gateway"].env["JUPYTERHUB_ACTIVITY_URL"].endswith("/users/al/activity")
    assert children["gateway"].env["PORT"] == "8888"
    assert children["monitor"].env["JUPYTERHUB_SERVICE_PREFIX"] == "/user/al/"


def test_user_jupyter_config_path_is_kept_after_ours(tmp_path: Path) -> None:
    jupyter = specs(tmp_path, {**USER_ENV, "JUPYTER_CONFIG_PATH": "/etc/extra"})["singleuser"]
    assert jupyter.env["JUPYTER_CONFIG_PATH"] == f"{tmp_path / 'jupyter'}:/etc/extra"


def test_ide_heap_capped_from_the_memory_limit_and_the_monitor_told(tmp_path: Path) -> None:
    children = specs(tmp_path, {**USER_ENV, "WAIIDE_MEMORY_LIMIT": "2G"})
    assert children["waiide"].env["NODE_OPTIONS"] == "--max-old-space-size=1024"
    assert children["monitor"].env["WAIIDE_MEMORY_LIMIT"] == str(2 << 30)
    # a cap the user chose is kept
    own = specs(tmp_path, {**USER_ENV, "WAIIDE_MEMORY_LIMIT": "2G",
                           "NODE_OPTIONS": "--max-old-space-size=3000"})
    assert own["waiide"].env["NODE_OPTIONS"] == "--max-old-space-size=3000"


def test_ide_on_the_private_socket_by_default(tmp_path: Path) -> None:
    children = specs(tmp_path, USER_ENV)
    waiide = children["waiide"]
    assert waiide.ready is not None and waiide.ready.unix_socket is not None
    sock = waiide.ready.unix_socket
    assert waiide.argv[1:5] == ("--socket", sock, "--socket-mode", "600")
    assert waiide.stale_sockets == (sock,)
    assert children["gateway"].env["WAIIDE_SOCKET"] == sock
    assert children["monitor"].env["WAIIDE_SOCKET"] == sock
