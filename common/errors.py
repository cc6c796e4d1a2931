"""The error base shared by every WAIIDE Hub package.

    WaiideHubError                  (common)
     ├─ ConfigError                 a setting has a bad value; nothing was started -> CONFIG_ERROR
     ├─ supervisor.errors.SupervisorError
     ├─ gateway.errors.GatewayError
     └─ monitor.errors.MonitorError

`ConfigError` is raised by `common.env.EnvReader` and by each package's config module, with the
starlette wording: "Config 'X' has value 'v'. Not a valid int."
"""

from __future__ import annotations


class WaiideHubError(Exception):
    """Base of every error a WAIIDE Hub package raises on purpose."""


class ConfigError(WaiideHubError):
    """A configuration variable has a value the process cannot run with."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        super().__init__(f"Config '{key}' has value '{value}'. {reason}")
        self.key = key
        self.value = value
        self.reason = reason
