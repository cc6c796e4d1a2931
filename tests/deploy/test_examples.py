"""The deployment examples load as JupyterHub loads them and use options that exist.

Each `examples/jupyterhub_config*.py` is read by traitlets' own `PyFileConfigLoader` (what
`jupyterhub -f` uses: it provides `get_config`, `load_subconfig`, `__file__`), then every
configured option is checked against the class it configures, and the spawner is instantiated
from the config so traitlets validates every value. The seed's spec used invented options
(`services`, `image_whitelist`, `uses_jupyterhub_singleuser`, `health_check`); these tests pin the
real names. The z2jh fragment is parsed with PyYAML and checked for the values z2jh reads.

Scenarios:
 1. DockerSpawner (full): image, allowed_images, port 8090 published on 127.0.0.1, environment,
    cmd = the image's entrypoint, remove, the default server with one home volume, landing in
    /WAIIDE/, IDE-sized timeouts. (tests/e2e/test_dockerspawner.py runs it against podman.)
 2. The lightweight variant loads the full one and changes only USE_ALL_COMPONENTS (and a timeout).
 3. The local-process config: loopback ports and paths from the env, the entrypoint as the
    spawned command, a fresh API_SERVER_PORT/WAIIDE_PORT per server, pass-through of WAIIDE_*.
 4. z2jh values: image, cmd, defaultUrl, extraEnv, profiles, timeouts, and the hub's port for
    the server equal to the image's PORT.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from jupyterhub.app import JupyterHub  # type: ignore[import-untyped]
from jupyterhub.auth import Authenticator, DummyAuthenticator  # type: ignore[import-untyped]
from jupyterhub.proxy import ConfigurableHTTPProxy  # type: ignore[import-untyped]
from jupyterhub.spawner import SimpleLocalProcessSpawner, Spawner  # type: ignore[import-untyped]
from traitlets.config import Config, Configurable
from traitlets.config.loader import PyFileConfigLoader

from tests.deploy.dockerfile import image_entrypoint
from tests.procs import ROOT

EXAMPLES = ROOT / "examples"
ENTRYPOINT = ROOT / "scripts" / "entrypoint-jupyterhub.sh"
# Spawner options the seed invented or that are deprecated (JupyterHub.services is real).
INVENTED = {"services", "image_whitelist", "uses_jupyterhub_singleuser", "health_check",
            "remove_containers"}
# What the examples may configure, by config section (checked against the real classes).
SECTIONS: dict[str, type[Configurable]] = {
    "JupyterHub": JupyterHub,
    "Spawner": Spawner,
    "SimpleLocalProcessSpawner": SimpleLocalProcessSpawner,
    "ConfigurableHTTPProxy": ConfigurableHTTPProxy,
    "Authenticator": Authenticator,
    "DummyAuthenticator": DummyAuthenticator,
}
# KubeSpawner traits the z2jh profiles override (kubespawner is not installed here).
KUBESPAWNER_OVERRIDES = {"image", "default_url", "environment", "port", "cmd", "mem_limit",
                         "cpu_limit", "extra_container_config"}


def load(name: str) -> Config:
    """Read an example the way `jupyterhub -f` does."""
    return PyFileConfigLoader(name, str(EXAMPLES)).load_config()


def assert_known_options(config: Config, sections: dict[str, type[Configurable]]) -> None:
    for section, options in config.items():
        assert section in sections, f"unexpected section {section}"
        known = set(sections[section].class_trait_names(config=True))
        unknown = set(options) - known
        assert not unknown, f"{section} has no options {sorted(unknown)}"
        if section.endswith("Spawner"):
            assert not set(options) & INVENTED, section


@pytest.fixture
def docker_spawner_class() -> type[Configurable]:
    """The real DockerSpawner (test extra `dockerspawner`)."""
    try:
        import dockerspawner as module
    except ImportError as exc:
        pytest.fail(f"dockerspawner is missing ({exc}): it comes with the test extras; "
                    "run scripts/setup.sh test")
    spawner: type[Configurable] = module.DockerSpawner
    return spawner


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The hub's environment as a test fixture would set it (the config reads os.environ)."""
    env = {
        "JH_RUN_DIR": str(tmp_path), "JH_PORT": "18123", "JH_HUB_PORT": "18124",
        "JH_PROXY_API_PORT": "18125", "JH_CHP": "/opt/chp/configurable-http-proxy",
        "JH_TEST_TOKEN": "e2e-token", "JH_USE_ALL_COMPONENTS": "false",
        "WAIIDE_COMMAND": "python3 -m http.server --bind 127.0.0.1 {port}",
        "WAIIDE_PORT": "9999", "GATEWAY_WORKERS": "1", "WAIIDE_HUB_HOME": str(tmp_path / "hh"),
    }
    for key in [k for k in os.environ if k.startswith(("JH_", "WAIIDE_", "GATEWAY_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_docker_spawner_config(docker_spawner_class: type[Configurable]) -> None:
    """1. The DockerSpawner example uses real option names with values that fit the image."""
    config = load("jupyterhub_config.py")
    assert_known_options(config, {**SECTIONS, "DockerSpawner": docker_spawner_class})
    spawner: Any = docker_spawner_class(config=config, user=SimpleNamespace(name="alice"))
    assert spawner.image in spawner.allowed_images.values()
    assert spawner.port == 8090 == int(spawner.environment["PORT"])
    assert spawner.environment["USE_ALL_COMPONENTS"] == "true"
    assert spawner.environment["API_SERVER_PORT"] == "8091"
    assert spawner.cmd == image_entrypoint()  # the path the Dockerfile puts the script at
    # The hub on the Docker host: the port published on the host's loopback only.
    assert spawner.network_name == "bridge" and not spawner.use_internal_ip
    assert spawner.host_ip == "127.0.0.1"
    assert spawner.remove is True
    # One server per user, the default one, with one home volume (the README's story).
    assert config.JupyterHub.allow_named_servers is False
    assert "default_server_name" not in config.JupyterHub
    assert spawner.volumes == {"waiide-home-{username}": "/home/jovyan"}
    assert spawner.default_url == "/WAIIDE/"
    assert spawner.start_timeout >= 120 and spawner.http_timeout >= 120
    assert config.JupyterHub.hub_bind_url == config.JupyterHub.hub_connect_url
    assert config.JupyterHub.spawner_class == "docker"


def test_lightweight_config_differs_only_in_mode(docker_spawner_class: type[Configurable]) -> None:
    """2. The lightweight example is the full one with USE_ALL_COMPONENTS=false."""
    full, light = load("jupyterhub_config.py"), load("jupyterhub_config_lightweight.py")
    assert_known_options(light, {**SECTIONS, "DockerSpawner": docker_spawner_class})
    assert light.DockerSpawner.environment == {**full.DockerSpawner.environment,
                                               "USE_ALL_COMPONENTS": "false"}
    for key in ("image", "allowed_images", "port", "cmd", "host_ip", "volumes", "remove"):
        assert light.DockerSpawner[key] == full.DockerSpawner[key], key
    assert light.JupyterHub == full.JupyterHub
    assert light.Spawner.default_url == "/WAIIDE/"


def test_local_config(local_env: dict[str, str]) -> None:
    """3. The local-process config is parametrised by the env and spawns the entrypoint."""
    config = load("jupyterhub_config_local.py")
    assert_known_options(config, SECTIONS)
    hub, run_dir = config.JupyterHub, Path(local_env["JH_RUN_DIR"])
    assert hub.bind_url == "http://127.0.0.1:18123"
    assert hub.hub_bind_url == "http://127.0.0.1:18124"
    assert config.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:18125"
    assert config.ConfigurableHTTPProxy.command == [local_env["JH_CHP"]]
    for path in (hub.db_url.removeprefix("sqlite:///"), hub.cookie_secret_file, hub.pid_file,
                 config.ConfigurableHTTPProxy.pid_file):
        assert Path(path).parent == run_dir
    assert "default_server_name" not in hub  # users get the default server, as in the README
    assert hub.last_activity_interval <= 30
    assert hub.services == [{"name": "e2e", "api_token": "e2e-token"}]

    spawner = SimpleLocalProcessSpawner(config=config)
    assert spawner.cmd == [str(ENTRYPOINT)]
    assert spawner.args == (["--allow-root"] if os.geteuid() == 0 else [])
    assert spawner.default_url == "/WAIIDE/"
    env = spawner.environment
    assert env["USE_ALL_COMPONENTS"] == "false" and env["HOST"] == "127.0.0.1"
    assert env["WAIIDE_COMMAND"] == local_env["WAIIDE_COMMAND"]
    assert env["GATEWAY_WORKERS"] == "1"
    assert env["WAIIDE_HUB_HOME"] == local_env["WAIIDE_HUB_HOME"]
    assert int(env["JUPYTERHUB_ACTIVITY_INTERVAL"]) <= 30
    # Per-server ports: callables the spawner calls at each spawn, never the hub's fixed value,
    # recorded where a test driver can find them.
    for server in ("waiide", "ide2"):
        orm = SimpleNamespace(name=server, server=None)  # what Spawner.name reads
        spawner = SimpleLocalProcessSpawner(config=config, user=SimpleNamespace(name="alice"),
                                            orm_spawner=orm)
        picked = {key: int(env[key](spawner)) for key in ("API_SERVER_PORT", "WAIIDE_PORT")}
        assert all(0 < port < 65536 for port in picked.values())
        record = run_dir / "servers" / "alice" / f"{server}.json"
        assert json.loads(record.read_text()) == picked
    first, second = (json.loads((run_dir / "servers" / "alice" / f"{name}.json").read_text())
                     for name in ("waiide", "ide2"))
    assert first["API_SERVER_PORT"] != second["API_SERVER_PORT"]


def test_local_config_shared_password(local_env: dict[str, str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """3. JH_PASSWORD switches to SharedPasswordAuthenticator with that password."""
    monkeypatch.setenv("JH_PASSWORD", "correct-horse")
    config = load("jupyterhub_config_local.py")
    assert config.JupyterHub.authenticator_class == "shared-password"
    assert config.SharedPasswordAuthenticator.user_password == "correct-horse"
    assert "admin_users" not in config.Authenticator  # would need an admin_password


def _z2jh() -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / "z2jh-values.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_z2jh_values() -> None:
    """4. The z2jh fragment sets what z2jh reads, consistently with the image."""
    values = _z2jh()
    single = values["singleuser"]
    assert single["image"]["name"] and isinstance(single["image"]["tag"], str)
    assert shlex.split(single["cmd"]) == image_entrypoint()
    assert single["defaultUrl"] == "/WAIIDE/"
    assert single["startTimeout"] >= 120
    env = single["extraEnv"]
    assert all(isinstance(value, str) for value in env.values()), "k8s env values are strings"
    assert env["USE_ALL_COMPONENTS"] == "true"
    # The hub looks for the server on KubeSpawner.port: it must be the image's PORT.
    assert values["hub"]["config"]["KubeSpawner"]["port"] == int(env["PORT"]) == 8090
    # The default server (the README's /user/{name}/WAIIDE/): no named-server settings.
    assert "allowNamedServers" not in values["hub"]
    assert "JupyterHub" not in values["hub"]["config"]


def test_z2jh_profiles() -> None:
    """4. Profiles override real KubeSpawner traits; one per mode, one default."""
    profiles = _z2jh()["singleuser"]["profileList"]
    assert sum(bool(p.get("default")) for p in profiles) == 1
    modes = set()
    for profile in profiles:
        assert {"display_name", "slug", "kubespawner_override"} <= set(profile)
        override = profile["kubespawner_override"]
        assert set(override) <= KUBESPAWNER_OVERRIDES, set(override) - KUBESPAWNER_OVERRIDES
        assert "image_spec" not in override  # deprecated since KubeSpawner 0.10
        modes.add(override["environment"]["USE_ALL_COMPONENTS"])
    assert modes == {"true", "false"}
