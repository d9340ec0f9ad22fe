# -*- test-case-name: tests.test_limits -*-
"""Every named limit of the wire core at limit - 1, limit and limit + 1.

Each limit must be checked before the loop or allocation it bounds, so the limit + 1 cases craft
inputs where only that check can fire (enough bytes present, so no truncation check can win).
"""

from __future__ import annotations

import struct
import tracemalloc

import construct as c
import pytest

import pqi
from pqi.wire.errors import EncodeError, InvalidValueError, LimitExceededError, TruncatedError
from pqi.wire.fields import BoundedArray, RawMemory, RsString, u8
from pqi.wire.item import parse_header
from pqi.wire.limits import (
    HEADER_SIZE,
    MAX_CONTAINER_COUNT,
    MAX_RAW_MEMORY,
    MAX_SERIAL_SIZE,
    TLV_HEADER_SIZE,
)
from pqi.wire.tlv import BinaryTLV, StringTLV


def test_values() -> None:
    """The limits keep RetroShare's numbers (facts file section 8)."""
    assert MAX_SERIAL_SIZE == 2**18 - 1 == 262143
    assert MAX_CONTAINER_COUNT == 262143
    assert MAX_RAW_MEMORY == 10 * 1024 * 1024
    assert (HEADER_SIZE, TLV_HEADER_SIZE) == (8, 6)


class TestContainerCount:
    @pytest.mark.slow
    @pytest.mark.parametrize("count", [MAX_CONTAINER_COUNT - 1, MAX_CONTAINER_COUNT])
    def test_at_and_below(self, count: int) -> None:
        """Counts up to the limit decode, one byte per element."""
        data = struct.pack(">I", count) + bytes(count)
        assert len(BoundedArray(u8).parse(data)) == count

    def test_above(self) -> None:
        """limit + 1 is refused by the count check itself, although the bytes are all there."""
        n = MAX_CONTAINER_COUNT + 1
        with pytest.raises(LimitExceededError) as e:
            BoundedArray(u8).parse(struct.pack(">I", n) + bytes(n))
        err = e.value
        assert (err.limit, err.value, err.maximum, err.offset) == (
            "MAX_CONTAINER_COUNT", n, MAX_CONTAINER_COUNT, 0)

    def test_huge_count_on_tiny_input(self) -> None:
        """A 2**32 - 1 count fails at once as a limit, not as a 4-billion-step loop."""
        with pytest.raises(LimitExceededError):
            BoundedArray(u8).parse(b"\xff\xff\xff\xff\x00")

    def test_encode_refuses_above(self) -> None:
        """We never build a container a RetroShare peer would reject."""
        with pytest.raises(EncodeError):
            BoundedArray(u8).build([0] * (MAX_CONTAINER_COUNT + 1))


class TestRawMemory:
    @pytest.mark.parametrize("n", [MAX_RAW_MEMORY - 1, MAX_RAW_MEMORY])
    def test_at_and_below(self, n: int) -> None:
        """Blocks up to 10 MiB decode whole."""
        data = struct.pack(">I", n) + b"\x5a" * n
        out = RawMemory().parse(data)
        assert len(out) == n and out[-1:] == b"\x5a"

    def test_above_fails_fast_without_allocating(self) -> None:
        """A header claiming limit + 1 bytes is refused before anything that size is allocated.

        Only the 4-byte header is present: a decoder that allocated (or read) the claimed size
        first would show a peak in the megabytes.
        """
        claim = struct.pack(">I", MAX_RAW_MEMORY + 1)
        tracemalloc.start()
        try:
            with pytest.raises(LimitExceededError) as e:
                RawMemory().parse(claim)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert e.value.limit == "MAX_RAW_MEMORY" and e.value.value == MAX_RAW_MEMORY + 1
        assert peak < 256 * 1024

    def test_claim_within_limit_but_past_end(self) -> None:
        """A claim under the limit but past the input is a truncation, also without allocating."""
        tracemalloc.start()
        try:
            with pytest.raises(TruncatedError):
                RawMemory().parse(struct.pack(">I", MAX_RAW_MEMORY) + b"abc")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 256 * 1024

    def test_rsstring_shares_the_cap(self) -> None:
        """A plain string length over the raw-memory cap is refused as a limit too."""
        with pytest.raises(LimitExceededError):
            RsString.parse(struct.pack(">I", MAX_RAW_MEMORY + 1))


def _unregistered() -> tuple[int, int]:
    """A (service, subtype) no item class claims, so its body is kept raw."""
    taken = pqi.registered()
    return next((0xFF00, sub) for sub in range(256) if (0xFF00, sub) not in taken)


class TestSerialSize:
    @pytest.mark.parametrize("size", [MAX_SERIAL_SIZE - 1, MAX_SERIAL_SIZE])
    def test_header_at_and_below(self, size: int) -> None:
        """Headers announcing up to 262143 bytes are accepted."""
        assert parse_header(struct.pack(">BHBI", 2, 0x17, 2, size)).size == size

    def test_header_above(self) -> None:
        """262144 is refused as MAX_SERIAL_SIZE at the size field (offset 4)."""
        with pytest.raises(LimitExceededError) as e:
            parse_header(struct.pack(">BHBI", 2, 0x17, 2, MAX_SERIAL_SIZE + 1))
        assert (e.value.limit, e.value.offset, e.value.field) == (
            "MAX_SERIAL_SIZE", 4, "header.size")

    def test_header_below_own_size(self) -> None:
        """A size under 8 cannot even hold the header: InvalidValueError."""
        with pytest.raises(InvalidValueError) as e:
            parse_header(struct.pack(">BHBI", 2, 0x16, 1, HEADER_SIZE - 1))
        assert e.value.offset == 4

    @pytest.mark.parametrize("body_len,ok", [
        (MAX_SERIAL_SIZE - HEADER_SIZE - 1, True),
        (MAX_SERIAL_SIZE - HEADER_SIZE, True),
        (MAX_SERIAL_SIZE - HEADER_SIZE + 1, False),
    ])
    def test_encode(self, body_len: int, ok: bool) -> None:
        """encode refuses an item whose header + body passes 262143 bytes."""
        service, subtype = _unregistered()
        item = pqi.UnknownItem(service, subtype, bytes(body_len))
        if ok:
            out = pqi.encode(item)
            assert len(out) == HEADER_SIZE + body_len
            assert pqi.decode(out) == item
        else:
            with pytest.raises(EncodeError):
                pqi.encode(item)


class TestTLVLength:
    @pytest.mark.parametrize("length", [0, 1, TLV_HEADER_SIZE - 1])
    def test_shorter_than_header(self, length: int) -> None:
        """A TLV length under 6 cannot include its own header: InvalidValueError at the length."""
        with pytest.raises(InvalidValueError) as e:
            StringTLV(0x0051).parse(struct.pack(">HI", 0x0051, length) + bytes(8))
        assert e.value.offset == 2

    def test_exactly_header(self) -> None:
        """A length of exactly 6 is an empty payload."""
        assert StringTLV(0x0051).parse(struct.pack(">HI", 0x0051, 6)) == ""

    @pytest.mark.parametrize("extra,ok", [(-1, True), (0, True), (1, False)])
    def test_against_remaining(self, extra: int, ok: bool) -> None:
        """A TLV may be as long as the buffer holds, not one byte more."""
        payload = b"x" * 10
        length = TLV_HEADER_SIZE + len(payload) + extra
        data = struct.pack(">HI", 0x0140, length) + payload
        if ok:
            assert BinaryTLV(0x0140).parse(data + b"\x00" * max(0, extra)) == (
                payload[:len(payload) + extra] if extra < 0 else payload)
        else:
            with pytest.raises(TruncatedError) as e:
                BinaryTLV(0x0140).parse(data)
            assert e.value.offset == 2

    def test_huge_length_no_allocation(self) -> None:
        """A 4 GiB TLV length on a tiny input is a truncation, with no big allocation."""
        tracemalloc.start()
        try:
            with pytest.raises(TruncatedError):
                BinaryTLV(0x0140).parse(b"\x01\x40\xff\xff\xff\xff" + bytes(10))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 256 * 1024


def test_limit_error_names_the_constant() -> None:
    """LimitExceededError.limit is the name of a constant that exists in pqi.wire.limits."""
    import pqi.wire.limits
    with pytest.raises(LimitExceededError) as e:
        BoundedArray(c.Struct("a" / u8)).parse(b"\xff\xff\xff\xff")
    assert getattr(pqi.wire.limits, e.value.limit) == e.value.maximum
