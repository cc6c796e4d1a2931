"""1 GiB each way through the gateway, with the gateway's memory sampled all along.

Correctness limits, not speed: the bytes must arrive intact and the gateway's resident memory must
stay within a few MiB of what it was before, whatever the body size (the benchmark measures speed).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Self

import pytest

from tests.conftest import Server
from tests.resources.fake_waiide import expected_sha256

pytestmark = pytest.mark.slow  # 1 GiB each way through the gateway

GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024
# Two workers, each with its pools and buffers: 16 MiB over idle is "a few MiB" per worker with
# room for allocator noise; an unbounded buffer would show hundreds.
RSS_GROWTH_LIMIT = 16 * MIB


class PeakRss:
    """Samples the gateway tree's RSS every 20 ms in a thread until stopped."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._stop = threading.Event()
        self.baseline = server.rss()
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._server.rss())

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def warm_up(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for _ in range(4):
        conn.request("GET", f"/huge?size={4 * MIB}")
        conn.getresponse().read()
        conn.request("POST", "/upload", body=b"x" * (4 * MIB))
        conn.getresponse().read()
    conn.close()


def test_1gib_download_streams_with_bounded_memory(gateway: Server) -> None:
    warm_up(gateway)
    digest = hashlib.sha256()
    received = 0
    with PeakRss(gateway) as rss:
        conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
        conn.request("GET", f"/huge?size={GIB}&cl=1")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Length") == str(GIB)
        while chunk := resp.read(MIB):
            digest.update(chunk)
            received += len(chunk)
        conn.close()
    assert received == GIB
    assert digest.hexdigest() == expected_sha256(GIB)
    assert rss.growth < RSS_GROWTH_LIMIT, f"gateway grew by {rss.growth / MIB:.1f} MiB"


def test_1gib_upload_streams_with_bounded_memory(gateway: Server) -> None:
    warm_up(gateway)
    block = bytes(range(256)) * 4096  # 1 MiB
    expected = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for _ in range(GIB // MIB):
            expected.update(block)
            yield block

    with PeakRss(gateway) as rss:
        conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
        conn.request("POST", "/upload", body=body(), headers={"Content-Length": str(GIB)})
        resp = conn.getresponse()
        got = json.loads(resp.read())
        conn.close()
    assert resp.status == 200
    assert got == {"bytes": GIB, "sha256": expected.hexdigest()}
    assert rss.growth < RSS_GROWTH_LIMIT, f"gateway grew by {rss.growth / MIB:.1f} MiB"
