"""JupyterHub with DockerSpawner: every user's server is WAIIDE Hub (full mode) in a container.

One server per user, the default one (JupyterHub's `/hub/spawn`, the home page's Start button
and `/hub/user-redirect/...` links all use it): it lives at /user/{name}/, the IDE at
/user/{name}/WAIIDE/, JupyterLab with the IDE's launcher tile at /user/{name}/lab. Where a user
lands after login is `c.Spawner.default_url` below: the IDE or Lab, your choice. The user's files
are the named volume `waiide-home-{username}`, kept when the container is removed.

The hub runs on the Docker host; containers publish their port on 127.0.0.1 only (DockerSpawner's
`host_ip`), and reach the hub's API at HUB_CONNECT_URL (the Docker bridge's address, where the
hub listens). The image is built from this repo's Dockerfile with the hub's JupyterHub version:

    docker build --build-arg JUPYTERHUB_VERSION=$(jupyterhub --version) \\
        -t registry.example.org/waiide-hub:0.1.0 .
    WAIIDE_IMAGE=registry.example.org/waiide-hub:0.1.0 jupyterhub -f jupyterhub_config.py

Podman instead of Docker (what the tests run: tests/e2e/test_dockerspawner.py): serve the Docker
API with `podman system service unix:///run/podman/podman.sock`, point DOCKER_HOST at it, and
use podman's slirp4netns network, which lets a container reach the host's loopback, so the hub
listens on 127.0.0.1 only:

    c.JupyterHub.hub_bind_url = c.JupyterHub.hub_connect_url = "http://127.0.0.1:8081"
    c.DockerSpawner.hub_connect_url = "http://10.0.2.2:8081"  # slirp4netns: the host's loopback
    c.DockerSpawner.network_name = "slirp4netns:allow_host_loopback=true"
    c.DockerSpawner.use_internal_ip = False                   # reach it by its published port

Hub in a container instead (jupyterhub-deploy-docker style): put hub and servers on one Docker
network, `c.DockerSpawner.network_name = "jupyterhub"` (a non-default network implies
`use_internal_ip`), `c.JupyterHub.hub_ip = "0.0.0.0"`, `c.JupyterHub.hub_connect_ip = "jupyterhub"`
(the hub container's name), and mount the Docker socket into the hub container.

Lightweight mode (no jupyterhub-singleuser, IDE only): `jupyterhub_config_lightweight.py`, which
loads this file and changes only what differs.

The seed's spec used DockerSpawner options that do not exist (`services`, `image_whitelist`,
`uses_jupyterhub_singleuser`, `health_check`); these are the real ones (DockerSpawner 14). The hub
checks a server's health by itself: it waits for {prefix}api to answer (any status below 500)
within `http_timeout`, then polls the container. `GET PORT/api/status` (no prefix, no token) is
for people, monitoring and the image's HEALTHCHECK: the gateway's health in both modes.
"""

# ruff: noqa: F821  (`c`/`get_config` come from traitlets' config loader)
import os

c = get_config()  # type: ignore[name-defined]

WAIIDE_IMAGE = os.environ.get("WAIIDE_IMAGE", "registry.example.org/waiide-hub:0.1.0")
ENTRYPOINT = "/srv/waiide-hub/scripts/entrypoint-jupyterhub.sh"  # where the Dockerfile puts it
MAIN_PORT = 8090  # the image's PORT; the hub must look for the server on the same port

# ---- the hub ---------------------------------------------------------------------------------
# The hub's API, where the containers call it: docker0's address on a default Docker install.
HUB_CONNECT_URL = os.environ.get("HUB_CONNECT_URL", "http://172.17.0.1:8081")
c.JupyterHub.hub_bind_url = HUB_CONNECT_URL
c.JupyterHub.hub_connect_url = HUB_CONNECT_URL
# Your authenticator here (OAuthenticator, LDAP, ...); the allow config is required since 5.0.
# c.JupyterHub.authenticator_class = "github"
# c.Authenticator.allowed_users = {"alice", "bob"}

# One server per user, the default one (named servers stay off: each would be a second
# container; if you enable them, keep the volume below without {servername} to give all of a
# user's servers the same home, or add it to give each its own).
c.JupyterHub.allow_named_servers = False

# ---- the servers -----------------------------------------------------------------------------
c.JupyterHub.spawner_class = "docker"  # dockerspawner.DockerSpawner
c.DockerSpawner.image = WAIIDE_IMAGE  # pin a tag, never :latest
# Images a user may choose from (a dict shows a choice on the spawn page when it has more than
# one entry). The default {} allows only `image`. (`image_whitelist` is the pre-12.0 name.)
c.DockerSpawner.allowed_images = {"WAIIDE Hub 0.1": WAIIDE_IMAGE}
c.DockerSpawner.pull_policy = "ifnotpresent"
# The image's ENTRYPOINT is tini; `cmd` replaces its CMD. The hub appends Spawner.args (if any).
c.DockerSpawner.cmd = [ENTRYPOINT]
# The port inside the container the hub proxies to (DockerSpawner's default is 8888). Only this
# port is routed by the hub: the gateway's 8091 is reached through jupyter-server-proxy at
# /user/{name}/proxy/8091/ (full mode).
c.DockerSpawner.port = MAIN_PORT
# Published on the Docker host's loopback only (a random host port the hub reads back).
c.DockerSpawner.host_ip = "127.0.0.1"
c.DockerSpawner.environment = {
    "USE_ALL_COMPONENTS": "true",
    "PORT": str(MAIN_PORT),
    "API_SERVER_PORT": "8091",
    "HOST": "0.0.0.0",
    "DEBUG": "false",
    # How often the server tells the hub about the user's activity (idle culling), seconds.
    "JUPYTERHUB_ACTIVITY_INTERVAL": "60",
}
c.DockerSpawner.remove = True  # a stopped server's container is deleted; the volume stays
# The user's files survive their container: one named volume per user.
c.DockerSpawner.volumes = {"waiide-home-{username}": "/home/jovyan"}
c.DockerSpawner.mem_limit = "4G"
c.DockerSpawner.cpu_limit = 2.0

# Where users land after login (and after /hub/spawn): the IDE, or "/lab" for JupyterLab with
# notebooks, a Python kernel and the WAIIDE tile in its launcher.
c.Spawner.default_url = "/WAIIDE/"
# start_timeout covers pulling the image and creating the container; http_timeout covers the
# stack coming up: code-server first (readiness at /healthz), then jupyterhub-singleuser.
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 180
