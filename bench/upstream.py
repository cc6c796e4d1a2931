"""The upstream every row reaches: nginx serving generated files and an upload sink, with /ws/
passed to a Node `ws` server (echo and stream).

One port serves everything because the gateway, like the IDE it fronts, has a single upstream
(WAIIDE_PORT). So WebSocket traffic crosses the upstream nginx on its way to Node in every row,
direct included; that hop is part of the limit the direct row measures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import nginx_conf, payload
from bench.procs import LOOPBACK, Service, free_port
from bench.tools import BENCH_DIR, Tools

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 15.0
FILE_SIZES = {"f1k": payload.KIB, "f64k": 64 * payload.KIB, "f256m": 256 * payload.MIB}


@dataclass(frozen=True, slots=True)
class Upstream:
    """A running upstream: its port, the files it serves (with checksums), the payload block."""

    port: int
    unix_socket: Path  # the same server on a unix socket, as the IDE listens by default
    files: dict[str, payload.BodyFile]
    block: bytes = field(repr=False)
    services: tuple[Service, ...] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def _write_files(root: Path, block: bytes, sizes: dict[str, int]) -> dict[str, payload.BodyFile]:
    root.mkdir(parents=True, exist_ok=True)
    files = {name: payload.write_body(root / name, size, block) for name, size in sizes.items()}
    # The upload sink answers from the static handler's 405 for an existing file (nginx_conf).
    (root / nginx_conf.UPLOAD_PATH.lstrip("/")).write_bytes(b"")
    # nginx workers run as an unprivileged user when the master is root: let them read.
    for path in (root, *root.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return files


@contextmanager
def running_upstream(tools: Tools, workdir: Path, *, large_bytes: int) -> Iterator[Upstream]:
    """Generate the files, start the Node WebSocket server and nginx, and stop both on exit.

    Args:
        large_bytes: size of the large download file (256 MiB normally).
    """
    block = payload.block()
    sizes = {**FILE_SIZES, "f256m": large_bytes}
    files = _write_files(workdir / "files", block, sizes)
    block_path = workdir / "block.bin"
    block_path.write_bytes(block)
    with ExitStack() as stack:
        ws_port, port = free_port(), free_port()
        node = Service("ws-upstream", [tools.node, str(BENCH_DIR / "ws_upstream.js"),
                                       "--port", str(ws_port), "--block", str(block_path)],
                       workdir / "ws-upstream.log", env=tools.env(NODE_PATH=str(tools.npm_modules)))
        stack.callback(node.stop)
        node.start()
        node.ready([f"http://{LOOPBACK}:{ws_port}/"], READY_TIMEOUT_S)
        layout = nginx_conf.NginxLayout(workdir / "nginx-upstream")
        unix_socket = layout.dir / "upstream.sock"
        nginx_conf.write_upstream(layout, port=port, ws_port=ws_port, files=workdir / "files",
                                  unix_socket=unix_socket)
        nginx = Service("nginx-upstream", layout.argv(tools.nginx), layout.dir / "stdout.log",
                        env=tools.env())
        stack.callback(nginx.stop)
        nginx.start()
        nginx.ready([f"http://{LOOPBACK}:{port}/f1k"], READY_TIMEOUT_S)
        logger.info("upstream on %d (ws server on %d)", port, ws_port)
        # nginx's workers may run as another user when the master is root: let the gateway in.
        unix_socket.chmod(0o666)
        yield Upstream(port, unix_socket, files, block, (node, nginx))
