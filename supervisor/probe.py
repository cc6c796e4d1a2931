"""One readiness/liveness probe: an HTTP GET over TCP or a unix socket; any response counts.

Same rule as jupyter-server-proxy's `_http_ready_func` and the hub's `wait_for_http_server`: a
404 or 500 still proves the child is serving; only connection errors and timeouts do not.
Redirects are not followed (http.client never follows them).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from urllib.parse import urlsplit

from supervisor.spec import ReadyCheck

logger = logging.getLogger(__name__)

USER_AGENT = "waiide-hub-supervisor"


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX stream socket (the Host header stays `localhost`)."""

    def __init__(self, path: str, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def http_probe(check: ReadyCheck, timeout_s: float) -> bool:
    """GET `check` once; True on any HTTP status. `timeout_s` bounds connect and read each.

    With `check.known_status` only a JSON body whose "status" is not "unknown" counts.
    """
    parts = urlsplit(check.url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: http.client.HTTPConnection
    if check.unix_socket:
        conn = _UnixHTTPConnection(check.unix_socket, timeout_s)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                          timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Connection": "close"})
        response = conn.getresponse()
        status = response.status
        if check.known_status and not _known_status(response.read(65536)):
            logger.debug("probe %s: HTTP %d, no record read yet", check.describe(), status)
            return False
    except (OSError, http.client.HTTPException) as exc:
        logger.debug("probe %s: %s", check.describe(), exc or type(exc).__name__)
        return False
    finally:
        conn.close()
    logger.debug("probe %s: HTTP %d", check.describe(), status)
    return True


def _known_status(body: bytes) -> bool:
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("status") not in (None, "unknown")
