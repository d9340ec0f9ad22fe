"""Chat history blocks: what goes in comes out, and a damaged row is a typed error."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire.errors import DecodeError
from services.chat import blocks
from services.chat.blocks import (
    BLOCK_SPAN,
    MAX_PIECE_CHARS,
    META_BYTES,
    BlockBuilder,
    BlockDecodeError,
    Message,
    check,
    unpack,
)
from services.chat.store import MAX_PENDING_ROWS

#: Text as the wire decoders make it: any bytes, UTF-8 or not (surrogateescape).
wire_text = st.binary(max_size=30).map(lambda b: b.decode("utf-8", "surrogateescape"))
any_text = st.one_of(st.text(max_size=30), wire_text)


@st.composite
def messages(draw) -> list[Message]:
    """A block's worth of messages: growing ids within `BLOCK_SPAN` of the first."""
    first = draw(st.integers(1, 2**40))
    offsets = sorted(draw(st.sets(st.integers(1, BLOCK_SPAN - 1), max_size=12)))
    out = []
    for offset in [0, *offsets]:
        body = draw(wire_text)
        text = draw(st.one_of(st.just(body), wire_text))
        out.append((first + offset, draw(st.booleans()), draw(st.booleans()),
                    draw(st.integers(0, 0xFFFFFFFF)),
                    draw(st.floats(allow_nan=False, allow_infinity=False)), body, text))
    return out


def pack(msgs: list[Message]):
    builder = BlockBuilder(msgs[0][0])
    for m in msgs:
        builder.add(*m)
    return builder.pack()


@given(messages())
def test_what_goes_in_comes_out(msgs) -> None:
    """Every field of every message reads back identical, bytes that are not UTF-8 and NULs
    included, and the row's columns say what the layout says."""
    b = pack(msgs)
    assert (b.first, b.last, b.count) == (msgs[0][0], msgs[-1][0], len(msgs))
    assert len(b.meta) == META_BYTES * len(msgs)
    assert unpack(b.first, b.last, b.count, b.meta, b.bodies, b.texts) == msgs


@given(st.lists(st.tuples(any_text, any_text), min_size=1, max_size=8))
def test_any_python_string_is_kept_or_read_as_its_wire_bytes(pairs) -> None:
    """Strings no wire decoder makes (lone surrogates from a JSON client) never fail a block;
    each reads back as the string of its own bytes, cut at the same places as it went in."""
    builder = BlockBuilder(1)
    for n, (body, text) in enumerate(pairs):
        builder.add(n + 1, True, False, 0, 0.0, body, text)
    b = builder.pack()
    out = unpack(b.first, b.last, b.count, b.meta, b.bodies, b.texts)

    def wire(s: str) -> str:
        try:
            return s.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return s.encode("utf-8", "surrogatepass").decode("utf-8", "surrogateescape")

    assert [(m[5], m[6]) for m in out] == [
        (wire(body), wire(body) if text == body else wire(text)) for body, text in pairs]


def test_columns_are_text_unless_a_piece_is_not_utf8() -> None:
    """Bodies that are all UTF-8 are one TEXT value; one escaped byte makes the column the
    pieces' bytes (two escaped halves of a character in neighbours stay two pieces)."""
    builder = BlockBuilder(5)
    builder.add(5, True, False, 1, 1.0, "héllo", "héllo")
    builder.add(6, False, True, 2, 2.0, "<b>x</b>", "x")
    b = builder.pack()
    assert (b.bodies, b.texts) == ("héllo<b>x</b>", "x")
    halves = [b"\xc3".decode("utf-8", "surrogateescape"),
              b"\xa9".decode("utf-8", "surrogateescape")]
    builder = BlockBuilder(1)
    builder.add(1, True, False, 0, 0.0, halves[0], halves[0])
    builder.add(2, True, False, 0, 0.0, halves[1], halves[1])
    b = builder.pack()
    assert b.bodies == b"\xc3\xa9"
    assert [m[5] for m in unpack(b.first, b.last, b.count, b.meta, b.bodies, b.texts)] == [
        halves[0], halves[1]]


def test_values_a_block_cannot_hold_are_refused(monkeypatch) -> None:
    """Times outside the layout's fields and texts longer than MAX_PIECE_CHARS (lowered here
    to spare the test half a gigabyte) are a ValueError; values at the limits pass."""
    for send, recv in ((0, math.nan), (0, math.inf), (-1, 0.0), (2**32, 0.0)):
        with pytest.raises(ValueError):
            check(send, recv, "", "")
    check(0xFFFFFFFF, -1.5, "b", "t")
    assert MAX_PIECE_CHARS * 4 < 2**31
    monkeypatch.setattr(blocks, "MAX_PIECE_CHARS", 10)
    check(0, 0.0, "x" * 10, "y" * 10)
    for body, text in (("x" * 11, ""), ("", "y" * 11)):
        with pytest.raises(ValueError, match="11 characters"):
            check(0, 0.0, body, text)


def test_a_commit_never_spans_more_than_a_block() -> None:
    """The store commits before its waiting ids span more than one block may."""
    assert MAX_PENDING_ROWS <= BLOCK_SPAN


def _good():
    builder = BlockBuilder(10)
    builder.add(10, True, False, 1, 1.0, "ab", "a")
    builder.add(12, False, False, 2, 2.0, "cd", "cd")
    return builder.pack()


def _meta(offsets=(0, 2), sends=(1, 2), recvs=(1.0, 2.0), bodies=(2, 2), texts=(1, -1),
          flags=(1, 0)) -> bytes:
    n = len(offsets)
    return struct.pack(f"<{n}H{n}I{n}d{n}I{n}i{n}B", *offsets, *sends, *recvs, *bodies, *texts,
                       *flags)


@pytest.mark.parametrize(("row", "field"), [
    ((10, 12, 0, b"", "abcd", "a"), "count"),
    ((10, 12, BLOCK_SPAN + 1, b"", "abcd", "a"), "count"),
    ((10, 10 + BLOCK_SPAN, 2, _meta(), "abcd", "a"), "last"),
    ((10, 9, 2, _meta(), "abcd", "a"), "last"),
    ((10, 12, 2, _meta()[:-1], "abcd", "a"), "meta"),
    ((10, 12, 2, "not bytes", "abcd", "a"), "meta"),
    ((10, 12, 2, _meta(), 7, "a"), "bodies"),
    ((10, 12, 2, _meta(), "abcd", None), "texts"),
    ((10, 12, 2, _meta(offsets=(1, 2)), "abcd", "a"), "meta"),
    ((10, 12, 2, _meta(offsets=(0, 1)), "abcd", "a"), "meta"),
    ((10, 12, 2, _meta(offsets=(0, 0)), "abcd", "a"), "meta"),
    ((10, 12, 2, _meta(flags=(4, 0)), "abcd", "a"), "meta"),
    ((10, 12, 2, _meta(recvs=(math.nan, 0.0)), "abcd", "a"), "meta"),
    ((10, 12, 2, _meta(texts=(-2, -1)), "abcd", "a"), "meta"),
    ((10, 12, 2, _meta(), "abc", "a"), "bodies"),
    ((10, 12, 2, _meta(), b"abcde", "a"), "bodies"),
    ((10, 12, 2, _meta(), "abcd", "ab"), "texts"),
    ((10, 12, 2, _meta(texts=(-1, -1)), "abcd", "a"), "texts"),
])
def test_a_damaged_row_is_a_decode_error(row, field) -> None:
    """Each way a row can disagree with its layout is a BlockDecodeError (a DecodeError)
    naming the column, never messages cut at the wrong places or another exception."""
    good = _good()
    assert unpack(good.first, good.last, good.count, good.meta, good.bodies, good.texts)
    assert (good.meta, good.bodies, good.texts) == (_meta(), "abcd", "a")
    with pytest.raises(BlockDecodeError) as failure:
        unpack(*row)
    assert isinstance(failure.value, DecodeError)
    assert failure.value.field == field


@given(st.integers(-3, BLOCK_SPAN + 3), st.integers(-3, 3), st.binary(max_size=200),
       st.one_of(st.text(max_size=20), st.binary(max_size=20)),
       st.one_of(st.text(max_size=20), st.binary(max_size=20)))
def test_any_row_is_messages_or_a_decode_error(count, extra, meta, bodies, texts) -> None:
    """Whatever a file holds, reading a block gives messages that fit it or BlockDecodeError."""
    try:
        out = unpack(100, 100 + max(0, count - 1) + extra, count, meta, bodies, texts)
    except BlockDecodeError:
        return
    assert len(out) == count
    assert [m[0] for m in out] == sorted({m[0] for m in out})
