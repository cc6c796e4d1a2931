"""The WAIIDE Hub gateway: a multi-worker Sanic server that proxies WAIIDE and serves /api."""

__version__ = "0.1.0"
