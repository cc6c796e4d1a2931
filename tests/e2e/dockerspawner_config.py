"""The README's DockerSpawner example (examples/jupyterhub_config.py) as the tests run it.

Loaded as is; then only what belongs to this machine and to a test changes:
- podman's Docker API instead of Docker (DOCKER_HOST, set by the test), with the example's
  documented podman variant: the hub on 127.0.0.1, the containers on slirp4netns reaching it at
  10.0.2.2, their port published on 127.0.0.1 (the example's `host_ip`);
- the image under test (WAIIDE_IMAGE, read by the example itself);
- free loopback ports, state under JH_RUN_DIR, the npm configurable-http-proxy, a dummy
  authenticator for alice, and an "e2e" service token for the test's REST calls.

    JH_RUN_DIR JH_PORT JH_HUB_PORT JH_PROXY_API_PORT JH_CHP JH_TEST_TOKEN   (all required)
"""

# ruff: noqa: F821  (`c`, `get_config`, `load_subconfig` come from traitlets' config loader)
import os
from pathlib import Path

c = get_config()  # type: ignore[name-defined]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jupyterhub_config.py"
load_subconfig(str(EXAMPLE))  # type: ignore[name-defined]

RUN_DIR = Path(os.environ["JH_RUN_DIR"])
HUB_PORT = int(os.environ["JH_HUB_PORT"])

# The example's podman variant (its docstring), on this test's ports.
c.JupyterHub.hub_bind_url = c.JupyterHub.hub_connect_url = f"http://127.0.0.1:{HUB_PORT}"
c.DockerSpawner.hub_connect_url = f"http://10.0.2.2:{HUB_PORT}"  # the containers' way there
c.DockerSpawner.network_name = "slirp4netns:allow_host_loopback=true"
c.DockerSpawner.use_internal_ip = False

c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ['JH_PORT']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['JH_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [os.environ["JH_CHP"]]
c.ConfigurableHTTPProxy.pid_file = str(RUN_DIR / "proxy.pid")
c.JupyterHub.db_url = "sqlite:///" + str(RUN_DIR / "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = str(RUN_DIR / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(RUN_DIR / "jupyterhub.pid")

c.JupyterHub.authenticator_class = "dummy"  # any password: tests only
c.Authenticator.allowed_users = {"alice"}
c.JupyterHub.services = [{"name": "e2e", "api_token": os.environ["JH_TEST_TOKEN"]}]
c.JupyterHub.load_roles = [{
    "name": "e2e-driver", "services": ["e2e"],
    "scopes": ["admin:users", "admin:servers", "admin:server_state", "tokens", "access:servers"],
}]
