"""DockerSpawner, lightweight mode: WAIIDE Hub without jupyterhub-singleuser.

    jupyterhub -f jupyterhub_config_lightweight.py      # next to jupyterhub_config.py

USE_ALL_COMPONENTS=false runs WAIIDE, the gateway and the monitor only. The gateway then also
serves PORT as this server's JupyterHub endpoint: it answers the hub's readiness check at
{prefix}api, logs the browser in through the hub's OAuth flow ({prefix}oauth_callback), serves the
IDE at {prefix}WAIIDE/ and its API at {prefix}api/status, {prefix}api/user, {prefix}api/services.
So everything is reachable through the hub at /user/{name}/... with no second port, and
the container starts faster and smaller (no Jupyter server). What is lost: Jupyter itself
(notebooks, kernels, its REST API) and jupyter-server-proxy's /proxy/<port>/ routes.
"""

# ruff: noqa: F821  (`c`, `get_config`, `load_subconfig` come from traitlets' config loader)

c = get_config()  # type: ignore[name-defined]

# Everything from the full-mode example (same directory), then only what differs.
load_subconfig("jupyterhub_config.py")  # type: ignore[name-defined]

c.DockerSpawner.environment = {**c.DockerSpawner.environment, "USE_ALL_COMPONENTS": "false"}
# Only code-server has to come up before the gateway answers on PORT.
c.Spawner.http_timeout = 120
