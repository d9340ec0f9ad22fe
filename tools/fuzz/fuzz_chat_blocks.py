# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the chat history's block reader with rows a damaged or hand-edited file could hold.

The first byte gives the message count (0 to 255, so both sides of every length check are
reached), the next two the span from first to last id (big-endian), the third byte which
column types (TEXT or BLOB) the bodies and plain texts have; the rest is cut in three at the
next two bytes' offsets into meta, bodies and plain texts.  Only `BlockDecodeError` may come
out; messages that come out must fit the row (their count, growing ids within it), and a
block built from them must read back the same.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from services.chat.blocks import BlockBuilder, BlockDecodeError, unpack

__all__ = ["one_input"]

_FIRST = 1000


def one_input(data: bytes) -> None:
    """Read ``data`` as a block row (see the module docstring)."""
    if len(data) < 6:
        return
    count, span, kinds = data[0], int.from_bytes(data[1:3], "big"), data[3]
    rest = data[6:]
    a = min(data[4] * 8, len(rest))
    b = min(a + data[5], len(rest))
    meta, raw_bodies, raw_texts = rest[:a], rest[a:b], rest[b:]
    bodies: str | bytes = (raw_bodies.decode("utf-8", "replace") if kinds & 1
                           else raw_bodies)
    texts: str | bytes = raw_texts.decode("utf-8", "replace") if kinds & 2 else raw_texts
    try:
        out = unpack(_FIRST, _FIRST + span, count, meta, bodies, texts)
    except BlockDecodeError:
        return
    assert len(out) == count
    assert out[0][0] == _FIRST and out[-1][0] == _FIRST + span
    assert all(x[0] < y[0] for x, y in zip(out, out[1:], strict=False))
    builder = BlockBuilder(_FIRST)
    for m in out:
        builder.add(*m)
    again = builder.pack()
    assert unpack(again.first, again.last, again.count, again.meta, again.bodies,
                  again.texts) == out


if __name__ == "__main__":
    fuzz(one_input)
