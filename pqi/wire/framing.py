# -*- test-case-name: tests.test_framing -*-
"""Stream framing, sans IO: whole items, slices and the slicing probe (pqistreamer's format).

RetroShare writes items back to back on its TLS stream.  A peer that has announced it can
reassemble (by sending the 8-byte *slicing probe*) gets items above 1400 bytes cut into
slices: an 8-byte slice header (``10 FF IIIIIIII LLLL``: protocol id 0x10, flags, packet id,
payload length) and up to 1400 payload bytes.  Slices of different items may interleave, so
the receiver reassembles per packet id.

`Deframer` turns received bytes (split anywhere) into events; `Enframer` turns queued items
into writes (QoS order, slicing, grouping, a probe every 60 s).  By default it makes exactly
the writes RetroShare would make (1400-byte slices, writes grouped up to 1400 bytes); a node
sends items of up to `FAST_WHOLE_SIZE` bytes whole, cuts larger ones into `FAST_SLICE_SIZE`
slices and groups writes to `FAST_GROUP_SIZE` instead, which every RetroShare 0.6.7 receiver
takes (docs/wire.md, "Slice and write sizes"): a file's data items then cross the stream in
one piece each, with no slice headers to write and nothing to reassemble.  Neither does IO
or reads a clock: the Twisted glue in `pqi.wire.streamer` feeds them bytes and ``now``.

The deframer is stricter than RetroShare where RetroShare silently copes with nonsense, because
nonsense on this layer means the stream is desynchronised or hostile: a slice continuing a
packet that never started, a second start for a packet in flight, more than
`MAX_PARTIAL_PACKETS` packets in flight, a reassembled packet above `MAX_SERIAL_SIZE` or whose
own header disagrees with its length all raise `FramingError`, and the link is closed.
"""

from __future__ import annotations

import collections
import dataclasses
import struct
from collections.abc import Iterator
from typing import Final

from pqi.wire.errors import EncodeError, FramingError, QueueFullError
from pqi.wire.limits import (
    HEADER_SIZE,
    MAX_PARTIAL_PACKETS,
    MAX_SERIAL_SIZE,
    MAX_SLICE_SIZE,
    SLICE_SIZE,
)

__all__ = [
    "PROBE",
    "PROBE_INTERVAL",
    "SLICE_PROTOCOL_ID",
    "SLICE_START",
    "SLICE_MIDDLE",
    "SLICE_END",
    "PACKET_ID_MODULUS",
    "QOS_LEVELS",
    "GROUP_SIZE",
    "FAST_SLICE_SIZE",
    "FAST_WHOLE_SIZE",
    "FAST_GROUP_SIZE",
    "DEFAULT_MAX_QUEUE_BYTES",
    "ItemReceived",
    "ProbeReceived",
    "FramingEvent",
    "Deframer",
    "Enframer",
    "slice_header",
]

#: The slicing probe (service 0xAABB, subtype 0xCC, size 8): "I can reassemble slices".
PROBE: Final = bytes.fromhex("02aabbcc00000008")
#: Seconds between two probes (``PQISTREAM_PACKET_SLICING_PROBE_DELAY``).
PROBE_INTERVAL: Final = 60.0
#: Byte 0 of a slice header.
SLICE_PROTOCOL_ID: Final = 0x10
#: Slice flags (byte 1).  START|END is never sent: an item that fits goes whole.
SLICE_MIDDLE: Final = 0x00
SLICE_START: Final = 0x01
SLICE_END: Final = 0x02
#: Packet ids count modulo 2**24 (``pqiQoS::MAX_PACKET_COUNTER_VALUE``).
PACKET_ID_MODULUS: Final = 1 << 24
#: QoS priority levels 0..9; higher leaves first.
QOS_LEVELS: Final = 10
#: A write gathers items and slices until it holds at least this many bytes (or the queue is
#: empty), as RetroShare does to spare TLS record overhead.
GROUP_SIZE: Final = SLICE_SIZE
#: Slice payload a node uses for items above its ``whole_size``: the largest the slice header
#: can say (an item of `MAX_SERIAL_SIZE` bytes in 5 slices instead of 188).
FAST_SLICE_SIZE: Final = MAX_SLICE_SIZE
#: Largest item a node sends whole to a peer that reassembles slices: every item.  RetroShare
#: 0.6.7 receivers take whole items up to `MAX_SERIAL_SIZE`, the most any item may be, so a
#: file's 240 KiB data items need no slicing (nor reassembling); a chat item queued behind one
#: waits for at most one such item more than behind a 64 KiB slice, a millisecond of a
#: loopback link, next to the megabytes a busy socket's kernel buffer already holds.
FAST_WHOLE_SIZE: Final = MAX_SERIAL_SIZE
#: Write size a node groups to: one TLS write carries about four 16 KiB records, instead of
#: one write (and one record) per 1400-byte slice.
FAST_GROUP_SIZE: Final = 64 * 1024
#: Default cap on the bytes queued for one peer (ours: RetroShare queues without bound).  Large
#: enough for a file-transfer window of full-size items, small enough that a peer that stops
#: reading cannot make us hold more.
DEFAULT_MAX_QUEUE_BYTES: Final = 8 * 1024 * 1024

_SLICE_HEADER = struct.Struct(">BBIH")
_ITEM_SIZE = struct.Struct(">I")
_SLICE_FLAGS = (SLICE_MIDDLE, SLICE_START, SLICE_END)
#: The probe's second byte: only a frame with it can be the probe (tested before the slice
#: that compares the whole header, for every item).
_PROBE_SECOND: Final = PROBE[1]


def slice_header(flags: int, packet_id: int, length: int) -> bytes:
    """The 8-byte header of one slice."""
    return _SLICE_HEADER.pack(SLICE_PROTOCOL_ID, flags, packet_id, length)


@dataclasses.dataclass(frozen=True, slots=True)
class ItemReceived:
    """A complete item arrived: ``data`` is the item, header included, not yet decoded.

    ``packet_id`` is the slice packet id it was reassembled from, or None if it came whole.
    """

    data: bytes
    packet_id: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeReceived:
    """The peer sent the slicing probe: from now on we may send it slices."""


FramingEvent = ItemReceived | ProbeReceived


class Deframer:
    """Received bytes in, `ItemReceived` / `ProbeReceived` events out.

    Frames are cut out of the received buffers by offset, so each item's bytes are copied once
    on their way up: a buffer that starts on a frame boundary is parsed where it is, a frame
    begun in one buffer is completed with just the bytes it lacks from the next (which is then
    parsed from there), and only a frame spanning more than two buffers is gathered in a
    buffer of its own.  Every size a header announces is checked before its payload is
    buffered.  After a `FramingError` the stream is unusable and every later call raises it
    again.
    """

    def __init__(self, *, max_partial_packets: int = MAX_PARTIAL_PACKETS) -> None:
        self.max_partial_packets = max_partial_packets
        #: True once the peer sent a probe or a slice (RetroShare enables slicing on either).
        self.peer_accepts_slicing = False
        self.probes_received = 0
        self.items_received = 0
        self.slices_received = 0
        self.bytes_received = 0
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._stream_offset = 0  # stream position of self._buf[0], for error offsets
        #: A received buffer to parse from ``_rest_pos`` once ``_buf`` is used up (``_buf``
        #: then holds whole frames only: the one completed with the start of ``_rest``).
        self._rest: bytes | None = None
        self._rest_pos = 0
        self._partials: dict[int, bytearray] = {}
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        rest = 0 if self._rest is None else len(self._rest) - self._rest_pos
        return len(self._buf) - self._pos + rest

    @property
    def partial_packets(self) -> int:
        """Sliced packets started and not yet ended."""
        return len(self._partials)

    def feed(self, data: bytes) -> Iterator[FramingEvent]:
        """Buffer ``data`` now and iterate over the events it completes.

        The events are parsed as the iterator is consumed, so events before a framing error
        are delivered before the `FramingError` is raised.
        """
        self.receive_data(data)
        return self._events()

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take a received buffer: kept, not copied, when it is `bytes` or a read-only
        memoryview (whose giver hands it over: nothing may change it afterwards); any other
        buffer is copied first."""
        if not isinstance(data, bytes) and not (isinstance(data, memoryview)
                                                and data.readonly):
            data = bytes(data)
        self.bytes_received += len(data)
        if self._rest is not None:  # both still unparsed (a backlog): gather them first
            self._gather(memoryview(self._rest)[self._rest_pos:])
            self._rest = None
        left = len(self._buf) - self._pos
        if not left:
            self._stream_offset += len(self._buf)
            self._buf, self._pos = data, 0
            return
        need = self._frame_size(self._buf, self._pos)
        if need is None or not left < need <= left + len(data):
            # A header cut short, a frame still incomplete, or whole frames left unparsed.
            self._gather(data)
            return
        take = need - left
        with memoryview(self._buf) as view:
            head = b"".join((view[self._pos:], memoryview(data)[:take]))
        self._stream_offset += self._pos
        self._buf, self._pos = head, 0
        self._rest, self._rest_pos = data, take

    def _gather(self, data: bytes | memoryview) -> None:
        """Append ``data`` to the unparsed tail, in a buffer of our own."""
        if isinstance(self._buf, bytearray):
            del self._buf[:self._pos]
        else:
            with memoryview(self._buf) as view:
                self._buf = bytearray(view[self._pos:])
        self._stream_offset += self._pos
        self._pos = 0
        self._buf += data

    @staticmethod
    def _frame_size(buf: bytes | bytearray, pos: int) -> int | None:
        """The size of the frame starting at ``pos`` (None: its header is not complete)."""
        if len(buf) - pos < HEADER_SIZE:
            return None
        if buf[pos] == SLICE_PROTOCOL_ID and buf[pos + 1] in _SLICE_FLAGS:
            return HEADER_SIZE + int.from_bytes(buf[pos + 6:pos + 8], "big")
        (size,) = _ITEM_SIZE.unpack_from(buf, pos + 4)
        return max(size, HEADER_SIZE)

    def next_event(self) -> FramingEvent | None:
        """The next complete event, or None until more bytes arrive."""
        frame = self._frame()
        return ItemReceived(frame) if type(frame) is bytes else frame

    def next_frame(self) -> bytes | ProbeReceived | None:
        """The next complete item's bytes (whole or reassembled), or `ProbeReceived`, or None
        until more bytes arrive: `next_event` without an event object per item (a chat
        flood's receiver takes tens of thousands of items a second)."""
        frame = self._frame()
        return frame.data if type(frame) is ItemReceived else frame

    def _frame(self) -> bytes | FramingEvent | None:
        """`_next_frame`, keeping the first framing error for every later call."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_frame()
        except FramingError as e:
            self._error = e
            raise

    def _events(self) -> Iterator[FramingEvent]:
        while (event := self.next_event()) is not None:
            yield event

    def _fail(self, reason: str, field: str, at: int) -> FramingError:
        return FramingError(reason, field=field, offset=self._stream_offset + at)

    def _next_frame(self) -> bytes | FramingEvent | None:
        """The next item unsliced as its bytes, a reassembled one as its event (with its
        packet id), the probe, or None."""
        while True:
            buf, pos = self._buf, self._pos
            if pos == len(buf) and self._rest is not None:
                self._stream_offset += len(buf) - self._rest_pos
                buf, pos = self._buf, self._pos = self._rest, self._rest_pos
                self._rest = None
            if len(buf) - pos < HEADER_SIZE:
                return None
            if buf[pos] == SLICE_PROTOCOL_ID and buf[pos + 1] in _SLICE_FLAGS:
                _, flags, packet_id, length = _SLICE_HEADER.unpack_from(buf, pos)
                self._check_slice(flags, packet_id, length, pos)
                end = pos + HEADER_SIZE + length
                if len(buf) < end:
                    return None
                self._pos = end
                self.slices_received += 1
                self.peer_accepts_slicing = True
                event = self._add_slice(flags, packet_id, buf, pos + HEADER_SIZE, end)
                if event is not None:
                    return event
                continue
            if buf[pos + 1] == _PROBE_SECOND and buf[pos:pos + HEADER_SIZE] == PROBE:
                self._pos = pos + HEADER_SIZE
                self.probes_received += 1
                self.peer_accepts_slicing = True
                return ProbeReceived()
            (size,) = _ITEM_SIZE.unpack_from(buf, pos + 4)
            if size < HEADER_SIZE:
                raise self._fail(f"item header says {size} bytes, less than its own header",
                                 "header.size", pos + 4)
            if size > MAX_SERIAL_SIZE:
                raise self._fail(f"item header says {size} bytes, over MAX_SERIAL_SIZE "
                                 f"({MAX_SERIAL_SIZE})", "header.size", pos + 4)
            end = pos + size
            if len(buf) < end:
                return None
            self._pos = end
            self.items_received += 1
            if isinstance(buf, bytes):
                return buf[pos:end]  # the buffer itself when it is one item
            with memoryview(buf) as view:
                return bytes(view[pos:end])

    def _check_slice(self, flags: int, packet_id: int, length: int, pos: int) -> None:
        """Refuse a slice from its header alone, before its payload is buffered."""
        partial = self._partials.get(packet_id)
        if flags == SLICE_START:
            if partial is not None:
                raise self._fail(f"second start slice for packet id {packet_id} in flight",
                                 "slice.flags", pos + 1)
            if len(self._partials) >= self.max_partial_packets:
                raise self._fail(f"MAX_PARTIAL_PACKETS exceeded: a start slice for packet id "
                                 f"{packet_id} while {len(self._partials)} packets are in "
                                 f"flight (limit {self.max_partial_packets})",
                                 "slice.packet_id", pos + 2)
            have = 0
        else:
            if partial is None:
                kind = "end" if flags == SLICE_END else "middle"
                raise self._fail(f"{kind} slice for packet id {packet_id}, which never started",
                                 "slice.flags", pos + 1)
            have = len(partial)
        total = have + length
        if total > MAX_SERIAL_SIZE:
            raise self._fail(f"MAX_SERIAL_SIZE exceeded: packet id {packet_id} would reassemble "
                             f"to {total} bytes > {MAX_SERIAL_SIZE}", "slice.length", pos + 6)
        if have >= HEADER_SIZE:
            (declared,) = _ITEM_SIZE.unpack_from(partial, 4)  # type: ignore[arg-type]
            if total > declared or (flags == SLICE_END and total != declared):
                raise self._fail(f"packet id {packet_id} would reassemble to {total} bytes but "
                                 f"its item header says {declared}", "slice.length", pos + 6)

    def _add_slice(self, flags: int, packet_id: int, buf: bytearray, start: int,
                   end: int) -> ItemReceived | None:
        with memoryview(buf) as view:
            if flags == SLICE_START:
                partial = self._partials[packet_id] = bytearray(view[start:end])
            else:
                partial = self._partials[packet_id]
                partial += view[start:end]
        declared = -1
        if len(partial) >= HEADER_SIZE:
            (declared,) = _ITEM_SIZE.unpack_from(partial, 4)
            if not HEADER_SIZE <= declared <= MAX_SERIAL_SIZE or len(partial) > declared:
                raise self._fail(f"packet id {packet_id}: item header inside the slices says "
                                 f"{declared} bytes, {len(partial)} already received",
                                 "slice.item_header.size", start)
        if flags != SLICE_END:
            return None
        del self._partials[packet_id]
        if len(partial) < HEADER_SIZE or len(partial) != declared:
            raise self._fail(f"packet id {packet_id} reassembled to {len(partial)} bytes, "
                             "which is not the size its item header says",
                             "slice.item_header.size", start)
        self.items_received += 1
        return ItemReceived(bytes(partial), packet_id)


class _Queued:
    """An item waiting in a QoS level, possibly partly sent as slices."""

    __slots__ = ("data", "offset", "packet_id")

    def __init__(self, data: bytes, packet_id: int) -> None:
        self.data = data
        self.offset = 0
        self.packet_id = packet_id


class Enframer:
    """Queued items in, stream writes out: RetroShare's QoS queue, slicer and grouper.

    Items wait in one FIFO per priority level (0..9); each chunk taken for a write comes from
    the highest non-empty level, so a higher-priority item can pass between the slices of a
    lower one.  Once `enable_slicing` was called (the peer's probe arrived), items above
    ``slice_size`` bytes leave as slices of ``slice_size`` payload bytes.  A write gathers
    chunks until it holds ``group_size`` bytes or the queue is empty; a due probe starts a
    write.  The defaults (`SLICE_SIZE`, `GROUP_SIZE`) reproduce RetroShare's own writes byte
    for byte; ``slice_size`` may be up to `MAX_SLICE_SIZE`.
    Every item gets a packet id from a counter modulo 2**24 when queued (whole items too, as
    RetroShare does), so sliced ids in a stream skip the ids of items that went whole.
    ``first_packet_id`` lets a per-peer owner continue its counter on a new connection.
    ``whole_size`` (default: ``slice_size``) is the largest item that leaves whole once slicing
    is on; larger ones are cut into ``slice_size`` slices.
    """

    def __init__(self, *, max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
                 probe_interval: float = PROBE_INTERVAL, first_packet_id: int = 0,
                 slice_size: int = SLICE_SIZE, group_size: int = GROUP_SIZE,
                 whole_size: int | None = None) -> None:
        if not HEADER_SIZE <= slice_size <= MAX_SLICE_SIZE:
            raise ValueError(f"slice size {slice_size} outside {HEADER_SIZE}..{MAX_SLICE_SIZE} "
                             "(a first slice holds the item header; the slice header's length "
                             "has 16 bits)")
        if group_size < 1:
            raise ValueError(f"group size {group_size} must be positive")
        self.slice_size = slice_size
        self.whole_size = slice_size if whole_size is None else max(whole_size, slice_size)
        self.group_size = group_size
        self.max_queue_bytes = max_queue_bytes
        self.probe_interval = probe_interval
        self.slicing = False
        self.items_written = 0
        self.slices_written = 0
        self.probes_written = 0
        self.bytes_written = 0
        self._levels: list[collections.deque[_Queued]] = [collections.deque()
                                                          for _ in range(QOS_LEVELS)]
        self._queued_bytes = 0
        self._queued_items = 0
        self._next_packet_id = first_packet_id % PACKET_ID_MODULUS
        self._last_probe: float | None = None
        #: Packet ids of the items whose last byte is in the writes returned since the last
        #: `take_completed` (at most the items of those writes: the caller takes them after
        #: each write).
        self._completed: list[int] = []

    @property
    def queued_bytes(self) -> int:
        """Item bytes still to be written (slice headers not counted)."""
        return self._queued_bytes

    def __len__(self) -> int:
        """Items queued, counting a partly sent one."""
        return self._queued_items

    def enable_slicing(self) -> None:
        """The peer can reassemble: cut large items from now on."""
        self.slicing = True

    def push(self, item: bytes, priority: int) -> int:
        """Queue one encoded item at QoS ``priority``; returns its packet id.

        Raises `QueueFullError` if it does not fit under ``max_queue_bytes`` (nothing is
        queued then), `EncodeError` if ``item`` is not a well-formed item of at most
        `MAX_SERIAL_SIZE` bytes (or one the peer would take for a slice or the probe) and
        `ValueError` for a priority outside 0..9.
        """
        if not 0 <= priority < QOS_LEVELS:
            raise ValueError(f"priority {priority} outside 0..{QOS_LEVELS - 1}")
        size = len(item)
        if not HEADER_SIZE <= size <= MAX_SERIAL_SIZE:
            raise EncodeError(f"an item must be {HEADER_SIZE}..{MAX_SERIAL_SIZE} bytes, "
                              f"not {size}")
        (declared,) = _ITEM_SIZE.unpack_from(item, 4)
        if declared != size:
            raise EncodeError(f"item header says {declared} bytes but the item is {size}")
        if (item[0] == SLICE_PROTOCOL_ID and item[1] in _SLICE_FLAGS) or item == PROBE:
            raise EncodeError("an item starting like a slice header or equal to the probe "
                              "would be misread by the peer")
        if self._queued_bytes + size > self.max_queue_bytes:
            raise QueueFullError(
                f"outgoing queue full: {self._queued_bytes} bytes waiting, a {size}-byte item "
                f"would pass the limit of {self.max_queue_bytes} bytes (the peer reads slower "
                "than we send)")
        packet_id = self._next_packet_id
        self._next_packet_id = (packet_id + 1) % PACKET_ID_MODULUS
        self._levels[priority].append(_Queued(bytes(item), packet_id))
        self._queued_bytes += size
        self._queued_items += 1
        return packet_id

    def probe_deadline(self) -> float | None:
        """When the next probe is due (None: due at the very next write)."""
        if self._last_probe is None:
            return None
        return self._last_probe + self.probe_interval

    def probe_due(self, now: float) -> bool:
        deadline = self.probe_deadline()
        return deadline is None or now >= deadline

    def next_write(self, now: float) -> bytes | None:
        """The next write for the transport, or None if there is nothing to send at ``now``.

        The frames of one write are gathered as views of the queued items and joined once, so
        each payload byte is copied once on its way out.
        """
        parts: list[bytes | memoryview] = []
        size = 0
        if self.probe_due(now):
            parts.append(PROBE)
            size = len(PROBE)
            self._last_probe = now
            self.probes_written += 1
        group_size = self.group_size
        while size < group_size:
            added = self._next_chunk(parts)
            if not added:
                break
            size += added
        if not parts:
            return None
        self.bytes_written += size
        return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)

    def writes(self, now: float) -> Iterator[bytes]:
        """Every write possible at ``now`` (for callers without flow control)."""
        while (data := self.next_write(now)) is not None:
            yield data

    def take_completed(self) -> list[int]:
        """Packet ids (as `push` returned them) of the items whose last byte went out in the
        writes returned since the previous call, in the order they were completed."""
        done, self._completed = self._completed, []
        return done

    def clear(self) -> int:
        """Drop everything queued; returns how many items were dropped."""
        dropped = self._queued_items
        for level in self._levels:
            level.clear()
        self._queued_bytes = self._queued_items = 0
        return dropped

    def _next_level(self) -> collections.deque[_Queued] | None:
        """The level the next frame comes from: the highest non-empty one."""
        for level in reversed(self._levels):
            if level:
                return level
        return None

    def _next_chunk(self, parts: list[bytes | memoryview]) -> int:
        """Append the next frame (a whole item, or a slice header and a view of its payload)
        to ``parts``; returns its size, 0 when nothing is queued."""
        level = self._next_level()
        if level is None:
            return 0
        record = level[0]
        data, offset = record.data, record.offset
        remaining = len(data) - offset
        if offset == 0 and (not self.slicing or remaining <= self.whole_size):
            level.popleft()
            self._queued_bytes -= remaining
            self._queued_items -= 1
            self.items_written += 1
            self._completed.append(record.packet_id)
            parts.append(data)
            return remaining
        length = min(self.slice_size, remaining)
        if offset == 0:
            flags = SLICE_START
        elif length == remaining:
            flags = SLICE_END
        else:
            flags = SLICE_MIDDLE
        record.offset = offset + length
        self._queued_bytes -= length
        self.slices_written += 1
        if flags == SLICE_END:
            level.popleft()
            self._queued_items -= 1
            self.items_written += 1
            self._completed.append(record.packet_id)
        parts.append(_SLICE_HEADER.pack(SLICE_PROTOCOL_ID, flags, record.packet_id, length))
        parts.append(memoryview(data)[offset:offset + length])
        return HEADER_SIZE + length
