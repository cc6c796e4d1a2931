"""The gateway's listening sockets, bound once in the main process before any worker starts.

API_SERVER_PORT and, in lightweight mode, PORT are bound here without SO_REUSEPORT and handed to
every worker (Sanic passes the API socket itself; PORT's goes through the app factory, pickled
with each worker's start like Sanic's own). So:
- a taken port is reported at once, naming the variable, host and port (exit CONFIG_ERROR), not
  as a traceback from deep inside Sanic's serve;
- no other process can join a port with SO_REUSEPORT and take a share of the connections: the
  kernel only groups SO_REUSEPORT sockets that all set the option, and these do not.
"""

from __future__ import annotations

import errno
import socket

from common.errors import ConfigError

BACKLOG = 1024


def bind_listener(variable: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port`, inheritable by the workers.

    Raises:
        ConfigError: naming `variable` when the address is taken or cannot be used.
    """
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(variable, str(port), f"Cannot resolve HOST {host!r}: {exc}.") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    shown = f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"
    try:
        # SO_REUSEADDR only lets the bind ignore TIME_WAIT leftovers; it allows no sharing.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        why = ("is already in use" if exc.errno == errno.EADDRINUSE
               else f"cannot be listened on: {exc.strerror or exc}")
        raise ConfigError(variable, str(port), f"{shown} {why}.") from None
    sock.set_inheritable(True)
    return sock
