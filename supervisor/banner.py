"""The start banner: the URLs to open, with the token where one is needed (as Jupyter prints)."""

from __future__ import annotations

from supervisor.config import Mode, SupervisorConfig
from supervisor.jupyter import JSP_SERVER_NAME


def banner_lines(config: SupervisorConfig) -> list[str]:
    """One line per URL; tokens are shown standalone only (under a hub, hub auth applies)."""
    mode = "full" if config.mode is Mode.FULL else "lightweight"
    where = "under JupyterHub" if config.under_hub else "standalone"
    lines = [f"WAIIDE Hub is ready ({mode} mode, {where}). Open:"]
    gateway_query = ""
    if config.gateway_token and not config.under_hub:
        gateway_query = f"?token={config.gateway_token}"
    lines.append(f"    WAIIDE via the gateway:  {config.local_url(config.api_port)}{gateway_query}")
    proxied = f"{config.service_prefix}{JSP_SERVER_NAME}/"
    if config.mode is Mode.FULL:
        jupyter_query = f"?token={config.jupyter_token}" if config.jupyter_token else ""
        lines.append(f"    WAIIDE via Jupyter:      {config.local_url(config.port, proxied)}"
                     f"{jupyter_query}")
        lab = f"{config.service_prefix}lab"
        lines.append(f"    JupyterLab (IDE tile):   {config.local_url(config.port, lab)}"
                     f"{jupyter_query}")
    else:
        lines.append(f"    WAIIDE via the gateway on PORT: {config.local_url(config.port, proxied)}"
                     f"{gateway_query}")
    lines.append(f"    API and metrics:         {config.local_url(config.api_port, '/api')}, "
                 f"{config.local_url(config.api_port, '/metrics')}")
    lines.append(f"    health (no token):       {config.local_url(config.api_port, '/api/status')}"
                 f", {config.local_url(config.port, '/api/status')}")
    if config.under_hub:
        lines.append(f"    through the hub:         <hub URL>{proxied}")
    if config.gateway_token_generated and not config.under_hub:
        lines.append(f"    (the generated token is kept in {config.credentials_dir} across restarts; "
                     "delete its file there to rotate it, or set GATEWAY_TOKEN)")
    return lines
