"""Deterministic benchmark content and its checksums.

All generated bodies are built from one pseudo-random 1 MiB block (fixed seed). Chunk `i` of a
body is that block with its first 8 bytes replaced by `i` (big-endian), so a body that arrives
reordered, truncated or with a repeated chunk fails its checksum. The WebSocket stream sends the
same chunks as messages (bench/ws_upstream.js stamps them the same way from the block file).

Bodies and the stream are checked with CRC-32: zlib runs it at several GB/s here (SHA-256 at
under 2), so checking every byte costs the load generator little.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
KIB = 1 << 10
BLOCK_SIZE = MIB
STAMP_SIZE = 8
SEED = 20261125


def block() -> bytes:
    """The 1 MiB pseudo-random block every body is made of."""
    return random.Random(SEED).randbytes(BLOCK_SIZE)


def chunks(size: int, base: bytes | None = None) -> Iterator[bytes]:
    """The chunks of a body of `size` bytes: stamped copies of the block, the last one cut."""
    base = block() if base is None else base
    tail = base[STAMP_SIZE:]
    offset = 0
    index = 0
    while offset < size:
        if size < STAMP_SIZE:
            chunk = base[:size]
        else:
            chunk = (index.to_bytes(STAMP_SIZE, "big") + tail)[: size - offset]
        yield chunk
        offset += len(chunk)
        index += 1


@dataclass(frozen=True, slots=True)
class BodyFile:
    """A generated file served by the upstream."""

    name: str
    size: int
    crc32: int


def write_body(path: Path, size: int, base: bytes) -> BodyFile:
    """Write a body of `size` bytes to `path` and return its CRC-32."""
    crc = 0
    with open(path, "wb") as out:
        for chunk in chunks(size, base):
            out.write(chunk)
            crc = zlib.crc32(chunk, crc)
    return BodyFile(path.name, size, crc)


def body_bytes(size: int, base: bytes) -> bytes:
    """A body of `size` bytes in memory (the upload payload)."""
    return b"".join(chunks(size, base))


def crc32_of(size: int, base: bytes) -> int:
    """CRC-32 of the body of `size` bytes (also the WebSocket stream of size/1 MiB messages)."""
    crc = 0
    for chunk in chunks(size, base):
        crc = zlib.crc32(chunk, crc)
    return crc
