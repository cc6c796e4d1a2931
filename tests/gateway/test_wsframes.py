"""FrameScanner: frame boundaries found however the bytes are split, limits enforced."""

from __future__ import annotations

import os
import random
import struct

import pytest

from gateway.ws.frames import FrameScanner, close_frame


def frame(opcode: int, payload: bytes, *, masked: bool, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("masked", [True, False])
def test_boundaries_and_messages_under_any_split(masked: bool) -> None:
    rng = random.Random(7)
    frames = [frame(1, b"hello", masked=masked), frame(2, os.urandom(300), masked=masked),
              frame(9, b"", masked=masked), frame(2, os.urandom(70_000), masked=masked),
              frame(2, b"part", masked=masked, fin=False), frame(0, b"end", masked=masked)]
    stream = b"".join(frames)
    ends = set()
    pos = 0
    for f in frames:
        pos += len(f)
        ends.add(pos)
    seen: list[tuple[int, int, int]] = []
    scanner = FrameScanner(masked=masked, max_message_bytes=1 << 20,
                           on_message=lambda op, n, _c, first: seen.append((op, n, first)))
    pos = 0
    while pos < len(stream):
        step = rng.randint(1, 40)
        assert scanner.feed(stream[pos:pos + step]) == 0
        pos = min(pos + step, len(stream))
        assert scanner.at_boundary == (pos in ends)
    assert scanner.messages == 4
    assert seen[0] == (1, 5, ord("h"))  # first payload byte is unmasked for the callback


def test_message_over_limit_is_reported_before_it_is_accepted() -> None:
    scanner = FrameScanner(masked=True, max_message_bytes=1000)
    assert scanner.feed(frame(2, b"x" * 1000, masked=True)) == 0
    assert scanner.feed(frame(2, b"x" * 1001, masked=True)[:20]) == 1009
    assert scanner.at_boundary


def test_fragmented_message_counts_all_fragments() -> None:
    scanner = FrameScanner(masked=False, max_message_bytes=100)
    assert scanner.feed(frame(2, b"x" * 60, masked=False, fin=False)) == 0
    assert scanner.feed(frame(0, b"x" * 60, masked=False)) == 1009


def test_unmasked_client_frame_is_a_protocol_error() -> None:
    scanner = FrameScanner(masked=True, max_message_bytes=100)
    assert scanner.feed(frame(1, b"hi", masked=False)) == 1002


def test_close_frames_carry_code_and_reason() -> None:
    raw = close_frame(1001, "bye", masked=False)
    assert raw[:2] == bytes([0x88, 5]) and raw[2:4] == struct.pack("!H", 1001) and raw[4:] == b"bye"
    masked = close_frame(1009, "big", masked=True)
    key = masked[2:6]
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(masked[6:]))
    assert masked[1] & 0x80 and payload == struct.pack("!H", 1009) + b"big"
