# -*- test-case-name: tests.test_framing -*-
"""The sans-IO framing core: probe, slices, reassembly limits, QoS order, grouping."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire.errors import EncodeError, FramingError, QueueFullError
from pqi.wire.framing import (
    FAST_GROUP_SIZE,
    FAST_SLICE_SIZE,
    GROUP_SIZE,
    PACKET_ID_MODULUS,
    PROBE,
    PROBE_INTERVAL,
    Deframer,
    Enframer,
    ItemReceived,
    ProbeReceived,
    slice_header,
)
from pqi.wire.item import UnknownItem, decode, encode
from pqi.wire.limits import (
    HEADER_SIZE,
    MAX_PARTIAL_PACKETS,
    MAX_SERIAL_SIZE,
    MAX_SLICE_SIZE,
    SLICE_SIZE,
)
from tests.strategies_streamer import chunked, encoded_items, queued_items


def item_of(size: int, service: int = 0x7E57, subtype: int = 0x01, fill: int = 0xAB) -> bytes:
    """An encoded item of exactly ``size`` bytes."""
    return encode(UnknownItem(service, subtype, bytes([fill]) * (size - 8)))


def items(events: list[object]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, ItemReceived)]


def feed_all(chunks: list[bytes], deframer: Deframer | None = None) -> list[object]:
    deframer = deframer or Deframer()
    events: list[object] = []
    for chunk in chunks:
        events.extend(deframer.feed(chunk))
    return events


def sliced(packet_id: int, payload: bytes, cuts: list[int]) -> bytes:
    """``payload`` as slices cut at ``cuts`` (first START, last END, middles between)."""
    bounds = [0, *cuts, len(payload)]
    out = []
    for n, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        flags = 1 if n == 0 else 2 if n == len(bounds) - 2 else 0
        out.append(slice_header(flags, packet_id, b - a) + payload[a:b])
    return b"".join(out)


# --- byte-exact ---------------------------------------------------------------------------------

def test_probe_bytes() -> None:
    """The probe is exactly RetroShare's 8 bytes, and a fresh Enframer's first write is it."""
    assert PROBE == bytes.fromhex("02aabbcc00000008")
    assert Enframer().next_write(0.0) == bytes.fromhex("02 aa bb cc 00 00 00 08")


def test_sliced_5000_byte_item_headers_exact() -> None:
    """A 5000-byte item leaves as 1400 + 1400 + 1400 + 800 with the exact slice headers."""
    enframer = Enframer(first_packet_id=0x0A0B0C)
    enframer.enable_slicing()
    data = item_of(5000)
    assert enframer.push(data, 3) == 0x0A0B0C
    writes = list(enframer.writes(0.0))
    assert writes[0][:8] == PROBE
    stream = b"".join(writes)[8:]
    headers = [stream[i:i + 8] for i in (0, 1408, 2816, 4224)]
    assert headers[0] == bytes.fromhex("10 01 00 0a 0b 0c 05 78")
    assert headers[1] == bytes.fromhex("10 00 00 0a 0b 0c 05 78")
    assert headers[2] == bytes.fromhex("10 00 00 0a 0b 0c 05 78")
    assert headers[3] == bytes.fromhex("10 02 00 0a 0b 0c 03 20")
    assert len(stream) == 4224 + 8 + 800
    payload = b"".join(stream[i + 8:i + 8 + n] for i, n in
                       ((0, 1400), (1408, 1400), (2816, 1400), (4224, 800)))
    assert payload == data


def test_writes_group_like_retroshare() -> None:
    """Small items gather into writes of at least 1400 bytes; the probe starts the first."""
    enframer = Enframer()
    for _ in range(400):
        enframer.push(item_of(8), 5)
    writes = list(enframer.writes(0.0))
    assert writes[0][:8] == PROBE
    assert [len(w) for w in writes] == [1400, 1400, 408]
    assert all(len(w) >= GROUP_SIZE for w in writes[:-1])


def test_item_of_exactly_slice_size_goes_whole() -> None:
    """Items up to 1400 bytes go whole even with slicing on; 1401 bytes is cut in two."""
    enframer = Enframer()
    enframer.enable_slicing()
    enframer.next_write(0.0)
    enframer.push(item_of(SLICE_SIZE), 3)
    assert enframer.next_write(0.0) == item_of(SLICE_SIZE)
    enframer.push(item_of(SLICE_SIZE + 1), 3)
    first, last = enframer.writes(0.0)
    assert first[:2] == b"\x10\x01" and first[6:8] == b"\x05\x78" and len(first) == 1408
    assert last[:2] == b"\x10\x02" and last[6:8] == b"\x00\x01" and len(last) == 9


def test_whole_size_sends_larger_items_whole() -> None:
    """With ``whole_size`` above the slice size, items up to it leave whole with slicing on
    (the item itself is the write, no copy) and only larger ones are cut, at ``slice_size``."""
    enframer = Enframer(slice_size=SLICE_SIZE, whole_size=5000, group_size=1)
    enframer.enable_slicing()
    enframer.next_write(0.0)
    whole = item_of(5000)
    enframer.push(whole, 3)
    assert enframer.next_write(0.0) == whole
    enframer.push(item_of(5001), 3)
    writes = list(enframer.writes(0.0))
    assert [w[:2] for w in writes] == [b"\x10\x01", b"\x10\x00", b"\x10\x00", b"\x10\x02"]
    assert enframer.slices_written == 4 and enframer.items_written == 2
    assert Enframer(slice_size=SLICE_SIZE, whole_size=10).whole_size == SLICE_SIZE


def test_no_slicing_before_the_probe() -> None:
    """Without the peer's probe a 5000-byte item is one whole write."""
    enframer = Enframer()
    enframer.next_write(0.0)
    enframer.push(item_of(5000), 3)
    assert enframer.next_write(0.0) == item_of(5000)


def test_probe_every_60_seconds() -> None:
    """The probe is due on the first write and again 60 s (not earlier) after the last one."""
    enframer = Enframer()
    assert enframer.probe_deadline() is None
    assert enframer.next_write(100.0) == PROBE
    assert enframer.probe_deadline() == 100.0 + PROBE_INTERVAL
    assert enframer.next_write(159.999) is None
    enframer.push(item_of(20), 9)
    assert enframer.next_write(159.999) == item_of(20)
    enframer.push(item_of(20), 9)
    assert enframer.next_write(160.0) == PROBE + item_of(20)
    assert enframer.probes_written == 2


def test_higher_priority_passes_between_slices() -> None:
    """A priority-9 item queued while a priority-1 item is half sliced goes out between its
    slices, and the low item's slices then continue in order."""
    enframer = Enframer()
    enframer.enable_slicing()
    enframer.next_write(0.0)
    big = item_of(4000, fill=0x11)
    enframer.push(big, 1)
    first = enframer.next_write(0.0)
    assert first is not None and first[:2] == b"\x10\x01"
    urgent = item_of(30, subtype=0x02)
    enframer.push(urgent, 9)
    rest = b"".join(enframer.writes(0.0))
    assert rest.startswith(urgent)
    deframer = Deframer()
    assert items(list(deframer.feed(first + rest))) == [urgent, big]


def test_fifo_within_a_level_and_order_across_levels() -> None:
    """Queued before any write: priority 9 first, then 5, then 0; FIFO inside each level."""
    enframer = Enframer()
    queued = [(item_of(10 + n, subtype=n), prio) for n, prio in enumerate([0, 5, 9, 5, 0, 9])]
    for data, prio in queued:
        enframer.push(data, prio)
    out = items(feed_all(list(enframer.writes(0.0))))
    assert out == [queued[i][0] for i in (2, 5, 1, 3, 0, 4)]


def test_packet_ids_wrap_at_2_pow_24() -> None:
    """Every queued item takes a packet id; the counter wraps from 2**24 - 1 to 0."""
    enframer = Enframer(first_packet_id=PACKET_ID_MODULUS - 1)
    assert enframer.push(item_of(8), 0) == PACKET_ID_MODULUS - 1
    assert enframer.push(item_of(8), 0) == 0
    assert enframer.push(item_of(8), 0) == 1


# --- the outgoing queue bound -------------------------------------------------------------------

def test_queue_bound_limit_minus_one_limit_plus_one() -> None:
    """A queue capped at 100 bytes takes 99 and 100 bytes, refuses 101 with a clear message,
    and takes items again once drained."""
    enframer = Enframer(max_queue_bytes=100)
    enframer.push(item_of(99), 0)
    assert enframer.queued_bytes == 99
    enframer.clear()
    enframer.push(item_of(92), 0)
    enframer.push(item_of(8), 0)
    assert enframer.queued_bytes == 100 and len(enframer) == 2
    with pytest.raises(QueueFullError, match=r"100 bytes waiting, a 8-byte item .* limit of "
                                             r"100 bytes"):
        enframer.push(item_of(8), 0)
    assert len(enframer) == 2
    list(enframer.writes(0.0))
    assert enframer.queued_bytes == 0
    enframer.push(item_of(100), 0)


def test_push_refuses_local_mistakes() -> None:
    """Bad priorities and malformed or oversized items are local bugs: named errors."""
    enframer = Enframer()
    with pytest.raises(ValueError, match="priority 10"):
        enframer.push(item_of(8), 10)
    with pytest.raises(ValueError, match="priority -1"):
        enframer.push(item_of(8), -1)
    with pytest.raises(EncodeError, match="not 7"):
        enframer.push(b"\x02" * 7, 3)
    with pytest.raises(EncodeError, match="header says 9"):
        enframer.push(bytes.fromhex("02001601000000090000"), 3)
    with pytest.raises(EncodeError, match=f"not {MAX_SERIAL_SIZE + 1}"):
        enframer.push(bytes(MAX_SERIAL_SIZE + 1), 3)


# --- deframer: whole items and header sizes ----------------------------------------------------

def test_header_size_7_is_a_framing_error_8_is_an_item() -> None:
    """Size 8 (header only) is an item; size 7 closes the stream."""
    assert items(feed_all([bytes.fromhex("0200160100000008")])) == [
        bytes.fromhex("0200160100000008")]
    with pytest.raises(FramingError, match="less than its own header") as e:
        feed_all([bytes.fromhex("0200160100000007")])
    assert e.value.offset == 4 and e.value.field == "header.size"


def test_header_size_at_and_over_max_serial_size() -> None:
    """262142 and 262143 bytes are items; 262144 is refused from the header alone, before
    any of its body is buffered."""
    for size in (MAX_SERIAL_SIZE - 1, MAX_SERIAL_SIZE):
        data = item_of(size)
        assert items(feed_all([data[:100], data[100:]])) == [data]
    deframer = Deframer()
    with pytest.raises(FramingError, match="over MAX_SERIAL_SIZE"):
        list(deframer.feed(struct.pack(">BHBI", 2, 0x7E57, 1, MAX_SERIAL_SIZE + 1)))
    assert deframer.buffered == 8


def test_probe_only_on_exact_match() -> None:
    """Only the exact 8 bytes are a probe; size 9 with the same id is an ordinary item."""
    deframer = Deframer()
    assert list(deframer.feed(PROBE)) == [ProbeReceived()]
    assert deframer.peer_accepts_slicing and deframer.probes_received == 1
    other = bytes.fromhex("02aabbcc0000000900")
    assert items(feed_all([other])) == [other]


def test_slice_id_with_unknown_flags_is_a_whole_item() -> None:
    """Byte 0 = 0x10 with flags 3 is not a slice (RetroShare reads it as a whole item)."""
    odd = bytes.fromhex("1003000000000009ff")
    assert items(feed_all([odd])) == [odd]


def test_split_header_and_body_anywhere() -> None:
    """Feeding one byte at a time yields the same events as feeding everything at once."""
    stream = PROBE + item_of(30) + sliced(7, item_of(3000), [1400, 2800]) + item_of(8)
    whole = feed_all([stream])
    assert feed_all([stream[i:i + 1] for i in range(len(stream))]) == whole
    assert [type(e).__name__ for e in whole] == ["ProbeReceived", "ItemReceived",
                                                  "ItemReceived", "ItemReceived"]
    assert whole[2] == ItemReceived(item_of(3000), 7)


def test_next_frame_gives_what_next_event_gives_without_events() -> None:
    """`next_frame` yields each item's bytes (whole or reassembled from slices) and the probe,
    in stream order, the same as `next_event`'s events carry, one byte at a time or all at
    once; an item sharing the probe's second byte is still an item."""
    near_probe = bytes.fromhex("02aabbcc0000000900")
    stream = (PROBE + item_of(30) + sliced(7, item_of(3000), [1400, 2800]) + near_probe
              + item_of(8))
    events = feed_all([stream])
    expected = [e.data if isinstance(e, ItemReceived) else e for e in events]
    assert expected[3] == near_probe
    for chunks in ([stream], [stream[i:i + 1] for i in range(len(stream))]):
        deframer = Deframer()
        frames: list[object] = []
        for chunk in chunks:
            deframer.receive_data(chunk)
            while (frame := deframer.next_frame()) is not None:
                frames.append(frame)
        assert frames == expected
        assert [type(f) for f in frames] == [ProbeReceived, bytes, bytes, bytes, bytes]


def test_next_frame_keeps_raising_the_first_framing_error() -> None:
    """After a framing error `next_frame` raises it again, as `next_event` does."""
    deframer = Deframer()
    deframer.receive_data(struct.pack(">BHBI", 2, 0x7E57, 1, 7))
    with pytest.raises(FramingError) as first:
        deframer.next_frame()
    with pytest.raises(FramingError) as again:
        deframer.next_frame()
    assert again.value is first.value
    with pytest.raises(FramingError):
        deframer.next_event()


def test_buffer_is_compacted() -> None:
    """Consumed bytes are dropped: after many items the buffer holds only the unfinished tail."""
    deframer = Deframer()
    for _ in range(1000):
        list(deframer.feed(item_of(100) + item_of(50)[:20]))
        list(deframer.feed(item_of(50)[20:]))
    assert deframer.buffered == 0 and len(deframer._buf) < 200
    assert deframer.items_received == 2000


# --- deframer: slices ---------------------------------------------------------------------------

def test_interleaved_slices_reassemble_per_packet_id() -> None:
    """Two packets' slices interleaved (and a whole item between) come out whole and in the
    order their last slices arrived."""
    a, b = item_of(3000, fill=1), item_of(2000, fill=2)
    stream = (slice_header(1, 5, 1400) + a[:1400] + slice_header(1, 6, 1000) + b[:1000]
              + item_of(9) + slice_header(0, 5, 1400) + a[1400:2800]
              + slice_header(2, 6, 1000) + b[1000:] + slice_header(2, 5, 200) + a[2800:])
    deframer = Deframer()
    assert items(list(deframer.feed(stream))) == [item_of(9), b, a]
    assert deframer.partial_packets == 0 and deframer.slices_received == 5


@pytest.mark.parametrize("flags,kind", [(0, "middle"), (2, "end")])
def test_continuation_without_start(flags: int, kind: int) -> None:
    """A middle or end slice of a packet that never started is a framing error."""
    with pytest.raises(FramingError, match=f"{kind} slice for packet id 9, which never started"):
        feed_all([slice_header(flags, 9, 4) + b"abcd"])


def test_duplicate_start() -> None:
    """A second start for a packet id in flight is a framing error."""
    data = item_of(3000)
    with pytest.raises(FramingError, match="second start slice for packet id 3"):
        feed_all([slice_header(1, 3, 1400) + data[:1400] + slice_header(1, 3, 1400)])


def test_max_partial_packets_limit() -> None:
    """MAX_PARTIAL_PACKETS - 1 and MAX_PARTIAL_PACKETS packets may be in flight, one more
    closes the stream."""
    data = item_of(3000)
    deframer = Deframer()
    for packet_id in range(MAX_PARTIAL_PACKETS - 1):
        list(deframer.feed(slice_header(1, packet_id, 100) + data[:100]))
    assert deframer.partial_packets == MAX_PARTIAL_PACKETS - 1
    list(deframer.feed(slice_header(1, 1000, 100) + data[:100]))
    assert deframer.partial_packets == MAX_PARTIAL_PACKETS
    with pytest.raises(FramingError, match="MAX_PARTIAL_PACKETS exceeded"):
        list(deframer.feed(slice_header(1, 2000, 100)))
    with pytest.raises(FramingError, match="MAX_PARTIAL_PACKETS exceeded"):
        list(deframer.feed(b""))


def test_reassembly_cap_limit_and_over() -> None:
    """Slices adding up to MAX_SERIAL_SIZE - 1 and MAX_SERIAL_SIZE reassemble; one byte more
    is refused when the slice header arrives (before its payload)."""
    for size in (MAX_SERIAL_SIZE - 1, MAX_SERIAL_SIZE):
        data = item_of(size)
        cuts = list(range(0xFFFF, size, 0xFFFF))
        assert items(feed_all([sliced(1, data, cuts)])) == [data]
    data = item_of(MAX_SERIAL_SIZE)
    stream = sliced(1, data, list(range(0xFFFF, MAX_SERIAL_SIZE, 0xFFFF)))
    last = stream.rfind(b"\x10\x02\x00\x00\x00\x01")
    over = stream[:last] + slice_header(2, 1, len(stream) - last - 8 + 1)
    deframer = Deframer()
    with pytest.raises(FramingError, match="would reassemble to 262144 bytes"):
        list(deframer.feed(over))
    assert deframer.buffered == 8


@pytest.mark.parametrize("declared", [0, 7, MAX_SERIAL_SIZE + 1])
def test_inner_header_size_out_of_range(declared: int) -> None:
    """A start slice whose item header claims an impossible size is refused at once."""
    data = bytearray(item_of(3000))
    data[4:8] = declared.to_bytes(4, "big")
    deframer = Deframer()
    with pytest.raises(FramingError, match=f"says {declared} bytes"):
        list(deframer.feed(slice_header(1, 4, 1400) + data[:1400]))


@pytest.mark.parametrize("declared,actual", [(3000, 2999), (3000, 3001), (100, 3000)])
def test_inner_header_must_match_reassembled_length(declared: int, actual: int) -> None:
    """A reassembled packet whose own header size differs from its length is refused."""
    data = bytearray(item_of(actual))
    data[4:8] = declared.to_bytes(4, "big")
    with pytest.raises(FramingError, match="item header"):
        feed_all([sliced(2, bytes(data), [1400, 2800])])


def test_reassembled_shorter_than_a_header() -> None:
    """Start and end slices carrying 5 bytes in all do not make an item."""
    with pytest.raises(FramingError, match="reassembled to 5 bytes"):
        feed_all([slice_header(1, 1, 3) + b"\x02\x00\x00" + slice_header(2, 1, 2) + b"\x01\x00"])


def test_events_before_an_error_are_delivered_and_the_error_sticks() -> None:
    """Items ahead of the bad header come out first; the stream then stays broken."""
    deframer = Deframer()
    events = deframer.feed(item_of(20) + bytes.fromhex("0200160100000003"))
    assert next(events) == ItemReceived(item_of(20))
    with pytest.raises(FramingError):
        next(events)
    with pytest.raises(FramingError):
        list(deframer.feed(item_of(20)))


def assert_grouped(write: bytes, group_size: int = GROUP_SIZE) -> None:
    """RetroShare's grouping rule: whole frames, a probe only first, and fewer than
    ``group_size`` bytes before the last frame."""
    starts = []
    pos = 0
    while pos < len(write):
        starts.append(pos)
        header = write[pos:pos + 8]
        if header == PROBE:
            assert pos == 0
            pos += 8
        elif header[0] == 0x10 and header[1] in (0, 1, 2):
            pos += 8 + struct.unpack_from(">H", header, 6)[0]
        else:
            pos += struct.unpack_from(">I", header, 4)[0]
    assert pos == len(write) and starts[-1] < group_size


@pytest.mark.slow
@given(st.binary(max_size=4096), st.integers(1, 64))
def test_garbage_raises_only_framing_error(data: bytes, step: int) -> None:
    """Arbitrary bytes, cut into pieces, give events or a FramingError, nothing else, and
    the pieces give the same outcome as the whole."""

    def outcome(chunks: list[bytes]) -> tuple[list[object], str | None]:
        deframer = Deframer()
        events: list[object] = []
        try:
            for chunk in chunks:
                events.extend(deframer.feed(chunk))
        except FramingError as e:
            return events, str(e)
        return events, None

    whole = outcome([data])
    assert outcome([data[i:i + step] for i in range(0, len(data), step)]) == whole


# --- round trips --------------------------------------------------------------------------------

SLICE_SIZES = st.one_of(st.just(SLICE_SIZE), st.just(MAX_SLICE_SIZE), st.just(HEADER_SIZE),
                        st.integers(HEADER_SIZE, MAX_SLICE_SIZE))
GROUP_SIZES = st.one_of(st.just(GROUP_SIZE), st.just(FAST_GROUP_SIZE), st.integers(1, 300_000))


@pytest.mark.slow
@given(queued=queued_items(), slicing=st.booleans(), slice_size=SLICE_SIZES,
       group_size=GROUP_SIZES, data=st.data())
def test_round_trip_in_order_per_priority(queued: list[tuple[bytes, int]], slicing: bool,
                                          slice_size: int, group_size: int,
                                          data: st.DataObject) -> None:
    """Any items at any priorities, sliced or not, with any slice and group size, written and
    cut at arbitrary points, arrive byte-identical, each priority level in the order queued,
    and decode to themselves; every write obeys the grouping rule for its group size."""
    enframer = Enframer(slice_size=slice_size, group_size=group_size)
    if slicing:
        enframer.enable_slicing()
    stream = bytearray()
    for item, prio in queued:
        enframer.push(item, prio)
        if data.draw(st.booleans()):
            write = enframer.next_write(0.0)
            stream += write or b""
    writes = list(enframer.writes(0.0))
    for write in writes:
        assert_grouped(write, group_size)
        stream += write
    chunks = data.draw(chunked(bytes(stream)))
    deframer = Deframer()
    received = items(feed_all(chunks, deframer))
    assert sorted(received) == sorted(item for item, _ in queued)
    for prio in range(10):
        sent_at = [item for item, p in queued if p == prio]
        assert [item for item in received if item in sent_at] == sent_at
    assert deframer.buffered == 0 and deframer.partial_packets == 0
    assert deframer.probes_received == 1
    for item in received:
        assert encode(decode(item)) == item
    long_items = [item for item, _ in queued if len(item) > slice_size]
    assert deframer.slices_received == (
        sum(-(-len(item) // slice_size) for item in long_items) if slicing else 0)


@given(queued=queued_items(), slicing=st.booleans(), data=st.data())
def test_events_left_unparsed_between_reads(queued: list[tuple[bytes, int]], slicing: bool,
                                            data: st.DataObject) -> None:
    """Reads that arrive while earlier frames are still unparsed (a streamer's backlog), in
    any buffer type, give the same events as parsing everything at once, and leave nothing."""
    enframer = Enframer(slice_size=SLICE_SIZE, whole_size=data.draw(st.sampled_from(
        [SLICE_SIZE, 5000, MAX_SERIAL_SIZE])))
    if slicing:
        enframer.enable_slicing()
    for item, prio in queued:
        enframer.push(item, prio)
    stream = b"".join(enframer.writes(0.0))
    expected = feed_all([stream])
    deframer = Deframer()
    got: list[object] = []
    for chunk in data.draw(chunked(stream)):
        kind = data.draw(st.sampled_from([bytes, bytearray, memoryview, readonly_copy]))
        deframer.receive_data(kind(chunk))
        for _ in range(data.draw(st.integers(0, 3))):
            event = deframer.next_event()
            if event is None:
                break
            got.append(event)
    while (event := deframer.next_event()) is not None:
        got.append(event)
    assert got == expected
    assert deframer.buffered == 0 and deframer.partial_packets == 0


def readonly_copy(chunk: bytes) -> memoryview:
    """A read-only view of a buffer of its own (as the TLS layer hands over)."""
    return memoryview(bytearray(chunk)).toreadonly()


def test_writable_buffers_are_copied_read_only_views_kept() -> None:
    """A bytearray or a writable view may change after the call, so the deframer copies it;
    a read-only view is taken as handed over and not copied."""
    stream = item_of(300) + item_of(200)
    for make in (bytearray, lambda b: memoryview(bytearray(b))):
        buf = make(stream[:350])
        deframer = Deframer()
        deframer.receive_data(buf)
        buf[:] = bytes(len(buf))  # the caller reuses its buffer
        deframer.receive_data(stream[350:])
        assert items(list(deframer._events())) == [item_of(300), item_of(200)]
    view = readonly_copy(stream[:350])
    deframer = Deframer()
    deframer.receive_data(view)
    assert deframer._buf is view  # kept as it is
    deframer.receive_data(stream[350:])
    assert items(list(deframer._events())) == [item_of(300), item_of(200)]


@pytest.mark.slow
@given(item=encoded_items(max_body=20_000), data=st.data())
def test_large_item_slices(item: bytes, data: st.DataObject) -> None:
    """Every slice but the last carries 1400 bytes; flags are START, MIDDLE..., END."""
    enframer = Enframer()
    enframer.enable_slicing()
    enframer.next_write(0.0)
    packet_id = enframer.push(item, data.draw(st.integers(0, 9)))
    stream = b"".join(enframer.writes(0.0))
    if len(item) <= SLICE_SIZE:
        assert stream == item
        return
    headers = []
    pos = 0
    while pos < len(stream):
        protocol, flags, pid, length = struct.unpack_from(">BBIH", stream, pos)
        headers.append((protocol, flags, pid, length))
        pos += 8 + length
    n = len(headers)
    assert n == -(-len(item) // SLICE_SIZE)
    assert [h[1] for h in headers] == [1] + [0] * (n - 2) + [2]
    assert {h[0] for h in headers} == {0x10} and {h[2] for h in headers} == {packet_id}
    assert [h[3] for h in headers[:-1]] == [SLICE_SIZE] * (n - 1)
    assert items(feed_all(data.draw(chunked(stream)))) == [item]


@pytest.mark.parametrize("slice_size", [0, HEADER_SIZE - 1, MAX_SLICE_SIZE + 1])
def test_enframer_refuses_slice_sizes_the_header_cannot_carry(slice_size: int) -> None:
    """A slice shorter than an item header, or longer than the 16-bit slice length can say,
    is refused when the enframer is made; so is a group size below 1."""
    with pytest.raises(ValueError, match="slice size"):
        Enframer(slice_size=slice_size)
    with pytest.raises(ValueError, match="group size"):
        Enframer(group_size=0)


def test_largest_item_in_largest_slices_reassembles() -> None:
    """An item of MAX_SERIAL_SIZE bytes cut into MAX_SLICE_SIZE slices (what a node sends)
    leaves as 5 slices, 4 of 65,535 payload bytes, grouped by FAST_GROUP_SIZE into writes
    of whole frames, and the deframer gives back the same item."""
    item = item_of(MAX_SERIAL_SIZE)
    enframer = Enframer(slice_size=FAST_SLICE_SIZE, group_size=FAST_GROUP_SIZE)
    enframer.enable_slicing()
    enframer.push(item, 3)
    writes = list(enframer.writes(0.0))
    for write in writes:
        assert_grouped(write, FAST_GROUP_SIZE)
    assert enframer.slices_written == 5 and enframer.items_written == 1
    deframer = Deframer()
    assert items(list(deframer.feed(b"".join(writes)))) == [item]
    assert deframer.slices_received == 5


@pytest.mark.parametrize("item", [PROBE, bytes.fromhex("1001000000000009ff"),
                                  bytes.fromhex("1002000000000008")])
def test_push_refuses_items_the_peer_would_misread(item: bytes) -> None:
    """Bytes equal to the probe or starting like a slice header cannot be sent whole."""
    with pytest.raises(EncodeError, match="misread"):
        Enframer().push(item, 3)
