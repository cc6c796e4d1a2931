"""nginx configurations for the benchmark: the upstream (files, upload sink, WebSocket pass-through)
and the reverse-proxy rows (unbuffered, and with 64 KiB buffers).

Every instance runs in the foreground (`daemon off`) with a master process, in its own directory
(`-p <dir>`), with its pid file, logs and temp paths there, listening on 127.0.0.1 only.

The upload sink must read the whole body before it answers, and say how much it read: a plain
`return` answers first and discards the body afterwards (and `$request_length` then leaves the
discarded bytes out, as measured here), which would both hide a proxy that stops forwarding and
send the answer while the client is still uploading. `mirror_request_body on` makes nginx read the
whole body (into a temp file that is deleted at once) before the content phase; the static handler
then answers a POST to the existing file with 405, which `error_page` turns into a 200 whose body
is `$request_length` (request line + headers + body bytes read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.procs import LOOPBACK

UPLOAD_PATH = "/upload"
WS_PREFIX = "/ws/"
ProxyBuffering = Literal["off", "64k"]

_COMMON = """\
daemon off;
master_process on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log {log_level};
events {{ worker_connections 8192; multi_accept on; }}
"""

_HTTP_COMMON = """\
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 10000000;
    client_max_body_size 0;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
    default_type application/octet-stream;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
"""

_UPSTREAM = """\
{common}
http {{
{http_common}
    upstream ws_backend {{ server {host}:{ws_port}; keepalive 64; }}
    server {{
        listen {host}:{port} backlog=4096;
        listen unix:{unix_socket} backlog=4096;
        root {files};
        location / {{ }}
        location = {upload} {{
            client_body_buffer_size 1m;
            mirror /_discard;
            mirror_request_body on;
            error_page 405 =200 @uploaded;
        }}
        location = /_discard {{ internal; return 204; }}
        location @uploaded {{ default_type text/plain; return 200 "read $request_length\\n"; }}
        location {ws_prefix} {{
            proxy_pass http://ws_backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }}
    }}
}}
"""

_PROXY = """\
{common}
http {{
{http_common}
    upstream waiide {{ server {host}:{upstream_port}; keepalive 64; }}
    server {{
        listen {host}:{port} backlog=4096;
        location / {{
            proxy_pass http://waiide;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_request_buffering off;
{buffering}
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
        }}
    }}
}}
"""

# "64k" is nginx as one would tune it in front of an IDE: 64 KiB buffers in memory only
# (proxy_max_temp_file_size 0, so a fast upstream is not spooled to disk).
_BUFFERING = {
    "off": "            proxy_buffering off;",
    "64k": ("            proxy_buffering on;\n"
            "            proxy_buffer_size 64k;\n"
            "            proxy_buffers 8 64k;\n"
            "            proxy_busy_buffers_size 128k;\n"
            "            proxy_max_temp_file_size 0;"),
}


@dataclass(frozen=True, slots=True)
class NginxLayout:
    """Where one nginx instance keeps its config, pid, logs and temp files."""

    dir: Path

    @property
    def conf(self) -> Path:
        return self.dir / "nginx.conf"

    def argv(self, binary: str) -> list[str]:
        return [binary, "-p", f"{self.dir}/", "-c", str(self.conf)]


def write_upstream(layout: NginxLayout, *, port: int, ws_port: int, files: Path,
                   unix_socket: Path) -> None:
    """The upstream: one worker serving `files`, the upload sink, and /ws/ to the Node server,
    on `port` and on the unix socket `unix_socket` (the gateway-unix row's upstream)."""
    text = _UPSTREAM.format(
        # "error": every upload is spooled to a temp file by design, and nginx warns about each.
        common=_COMMON.format(workers=1, dir=layout.dir, log_level="error"),
        http_common=_HTTP_COMMON.format(dir=layout.dir),
        host=LOOPBACK, port=port, ws_port=ws_port, files=files, upload=UPLOAD_PATH,
        unix_socket=unix_socket,
        ws_prefix=WS_PREFIX)
    layout.dir.mkdir(parents=True, exist_ok=True)
    layout.conf.write_text(text)


def write_proxy(layout: NginxLayout, *, port: int, upstream_port: int, workers: int | str,
                buffering: ProxyBuffering) -> None:
    """A reverse proxy to the upstream with HTTP/1.1, upstream keepalive and WebSocket upgrade."""
    text = _PROXY.format(
        common=_COMMON.format(workers=workers, dir=layout.dir, log_level="warn"),
        http_common=_HTTP_COMMON.format(dir=layout.dir),
        host=LOOPBACK, port=port, upstream_port=upstream_port, buffering=_BUFFERING[buffering])
    layout.dir.mkdir(parents=True, exist_ok=True)
    layout.conf.write_text(text)
