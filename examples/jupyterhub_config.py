"""JupyterHub with DockerSpawner: every user gets WAIIDE Hub (full mode) as the named server
`waiide`, so the IDE is at /user/{name}/waiide/WAIIDE/.

The hub runs in a container on the Docker network `jupyterhub` (DockerSpawner 13+, JupyterHub 5+);
the image is built from this repo's Dockerfile and must contain the same JupyterHub major version
as the hub (jupyterhub-singleuser talks to the hub's API).

    docker network create jupyterhub
    docker build -t registry.example.org/waiide-hub:0.1.0 .
    docker run -d --name jupyterhub --network jupyterhub -p 8000:8000 \\
        -v /var/run/docker.sock:/var/run/docker.sock \\
        -v "$PWD/examples:/srv/jupyterhub" -w /srv/jupyterhub \\
        <a hub image with jupyterhub + dockerspawner> jupyterhub -f jupyterhub_config.py

Lightweight mode (no jupyterhub-singleuser; the gateway answers for the server):
`jupyterhub_config_lightweight.py`, which loads this file and changes only what differs.

The seed's spec used DockerSpawner options that do not exist (`services`, `image_whitelist`,
`uses_jupyterhub_singleuser`, `health_check`); these are the real ones (DockerSpawner 14).
The hub checks a server's health by itself: it waits for {prefix}api to answer (any status below
500) within `http_timeout`, then polls the container; `GET /api/status` on the gateway is for
people, monitoring and the image's Docker HEALTHCHECK.
"""

# ruff: noqa: F821  (`c`/`get_config` come from traitlets' config loader)
import os

c = get_config()  # type: ignore[name-defined]

WAIIDE_IMAGE = os.environ.get("WAIIDE_IMAGE", "registry.example.org/waiide-hub:0.1.0")
ENTRYPOINT = "/srv/waiide-hub/scripts/entrypoint-jupyterhub.sh"  # where the Dockerfile puts it
MAIN_PORT = 8090  # the image's PORT; the hub must look for the server on the same port

# ---- the hub ---------------------------------------------------------------------------------
# Containers reach the hub by its container name on the shared network.
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = os.environ.get("HUB_CONNECT_IP", "jupyterhub")
# Your authenticator here (OAuthenticator, LDAP, ...); the allow config is required since 5.0.
# c.JupyterHub.authenticator_class = "github"
# c.Authenticator.allowed_users = {"alice", "bob"}

# Named servers: /user/{name}/waiide/. /hub/spawn and /hub/user-redirect/... open "waiide".
c.JupyterHub.allow_named_servers = True
c.JupyterHub.default_server_name = "waiide"
c.JupyterHub.named_server_limit_per_user = 2

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
# /user/{name}/waiide/proxy/8091/ (full mode), or with a port binding of your own.
c.DockerSpawner.port = MAIN_PORT
c.DockerSpawner.environment = {
    "USE_ALL_COMPONENTS": "true",
    "PORT": str(MAIN_PORT),
    "API_SERVER_PORT": "8091",
    "HOST": "0.0.0.0",
    "DEBUG": "false",
    # How often the server tells the hub about the user's activity (idle culling), seconds.
    "JUPYTERHUB_ACTIVITY_INTERVAL": "60",
}
c.DockerSpawner.network_name = "jupyterhub"  # a non-default network implies use_internal_ip
c.DockerSpawner.remove = True  # a stopped server's container is deleted; the volume stays
# The user's files survive their container: one named volume per user and server.
c.DockerSpawner.volumes = {"waiide-{username}-{servername}": "/home/jovyan"}
c.DockerSpawner.mem_limit = "4G"
c.DockerSpawner.cpu_limit = 2.0

c.Spawner.default_url = "/WAIIDE/"  # land in the IDE, not in Jupyter
# start_timeout covers pulling the image and creating the container; http_timeout covers the
# stack coming up: code-server first (readiness at /healthz), then jupyterhub-singleuser.
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 180

# Direct access to the gateway port from the Docker host (development only; the hub does not
# route it and it skips the hub's proxy). The host port is chosen by Docker:
# c.DockerSpawner.extra_host_config = {"port_bindings": {MAIN_PORT: ("127.0.0.1",),
#                                                         8091: ("127.0.0.1",)}}
# c.DockerSpawner.extra_create_kwargs = {"ports": {f"{MAIN_PORT}/tcp": None, "8091/tcp": None}}
