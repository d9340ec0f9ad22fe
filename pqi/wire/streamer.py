# -*- test-case-name: tests.test_streamer -*-
"""PQIStreamer: items over any Twisted byte transport, framed as RetroShare's pqistreamer.

Thin glue around `pqi.wire.framing`: bytes from the transport go through a `Deframer` and
`pqi.decode`; items from the layer above go through an `Enframer`.  The streamer is a
streaming producer on its transport, so it writes only while the transport is not paused and
leaves the rest in its bounded queue.  The enframer's one deadline (the next slicing probe) is
kept by a `pqi.driver.CoreDriver` on an injected ``IReactorTime``, through `_ProbeClock`.

What goes wrong, and what happens:

- an item that does not decode (`DecodeError`): dropped, counted in ``decode_errors``, logged;
  the link stays up (one bad item is the sender's bug, not a broken stream);
- a `FramingError` (bad header size, slice out of order, reassembly over its cap): logged,
  counted in ``framing_errors`` and the connection is aborted: the stream cannot be
  resynchronised;
- the peer reads slower than we send: `send` raises `QueueFullError` once ``max_queue_bytes``
  are waiting, and the caller decides whether to back off or drop.

Each `send` returns a `Sent` handle: it says when the item's last byte (its last slice, for a
sliced item) was handed to the transport, or that the item was dropped with the connection.
A service that must know what left (mail) follows that, never the bytes of a write.

Each read hands up at most ``items_per_turn`` items (`MAX_ITEMS_PER_TURN`); the rest wait
for the next reactor turn, and the transport is not read meanwhile (over a transport that
cannot pause its reads, everything complete is handed up at once, as the backlog would
otherwise grow without bound).  One friend's flood then
costs a bounded slice of each turn, and another friend's items, read in the same turn, are
not queued behind the whole flood (the reactor serves the links round robin).

A bulk sender (the upload side of file transfer) keeps the queue filled without polling: it
fills it while there is room, and ``on_room()`` tells it when the queue, once above
``room_mark`` bytes, has drained to that mark (the link has room again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from twisted.internet import defer
from twisted.internet.error import ConnectionClosed
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from pqi.driver import CoreDriver
from pqi.wire.errors import DecodeError, FramingError
from pqi.wire.framing import (
    DEFAULT_MAX_QUEUE_BYTES,
    FAST_GROUP_SIZE,
    FAST_SLICE_SIZE,
    FAST_WHOLE_SIZE,
    PROBE_INTERVAL,
    Deframer,
    Enframer,
)
from pqi.wire.item import PQItem, UnknownItem, decode, encode

__all__ = ["PQIStreamer", "Item", "Sent", "SendState", "ROOM_MARK_FRACTION", "MAX_ITEMS_PER_TURN",
           "MAX_SENDS_HELD"]

#: Items (and probes) one link hands up per reactor turn; more wait for the next turn.  A
#: file-data item is up to 240 KiB, so this never slows a transfer; a chat flood's share of a
#: turn is about half a millisecond of work (16 messages at 35-50 µs each), what another
#: friend's message waits for (docs/benchmarks.md: 64 measured worse for the second friend
#: and no better for the flood).
MAX_ITEMS_PER_TURN: Final = 16

#: Sends one turn holds back for its end at most: the next one writes them all.  A turn's
#: sends after its first leave grouped in one write at the turn's end; in a long turn (a
#: burst of a thousand chat messages, a paced sender catching up after a late tick) the
#: first held message would wait for all the others, then the receiver would take one large
#: read of them.  With a bound the group leaves while the rest are still being sent, and the
#: receiver works on it meanwhile (docs/benchmarks.md, "Chat": 16 chat sends are about a
#: third of a millisecond of the sender's work).  File data is unchanged: its items are
#: large, and a full link pauses the writes anyway.
MAX_SENDS_HELD: Final = 16

#: Default ``room_mark`` as a fraction of ``max_queue_bytes``: half the queue drained leaves
#: the writer half a queue of data while the producer refills it.
ROOM_MARK_FRACTION: Final = 0.5

Item = PQItem | UnknownItem


class SendState:
    """Where a sent item is: still queued, written to the transport, or dropped unsent."""

    QUEUED = "queued"
    WRITTEN = "written"
    DROPPED = "dropped"


class Sent:
    """One item given to `PQIStreamer.send`: its ``packet_id`` and its ``state``.

    `when_written` gives a Deferred that fires (with the handle) once the item's last byte was
    handed to the transport, or fails with `ConnectionClosed` if the connection ended first
    (the item was dropped from the queue).  Deferreds are made only on request, so a caller
    that does not ask leaves no unhandled failure behind.
    """

    __slots__ = ("packet_id", "state", "_waiters")

    def __init__(self, packet_id: int) -> None:
        self.packet_id = packet_id
        self.state = SendState.QUEUED
        self._waiters: list[defer.Deferred[Sent]] = []

    def when_written(self) -> defer.Deferred[Sent]:
        if self.state == SendState.WRITTEN:
            return defer.succeed(self)
        if self.state == SendState.DROPPED:
            return defer.fail(ConnectionClosed("the link closed before the item was written"))
        d: defer.Deferred[Sent] = defer.Deferred()
        self._waiters.append(d)
        return d

    def _settle(self, state: str) -> None:
        self.state = state
        if not self._waiters:  # nearly every item: nobody asked
            return
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if state == SendState.WRITTEN:
                d.callback(self)
            else:
                d.errback(ConnectionClosed("the link closed before the item was written"))

    def __repr__(self) -> str:
        return f"Sent(packet_id={self.packet_id}, state={self.state})"


class _ProbeClock:
    """The streamer's timer as a core: due with the enframer's next slicing probe while the
    transport takes writes, and at once while received items wait for a turn
    (``backlog_since``) or sends wait for the turn's end (``writes_held_since``); its one
    output, `FLUSH`, has the streamer hand up what waits and write (the probe among whatever
    else is due: writes stay pulled one by one, under the transport's flow control)."""

    FLUSH = "flush"

    def __init__(self, streamer: PQIStreamer) -> None:
        self.streamer = streamer
        self._due = False

    def handle_timer(self, now: float) -> None:
        self._due = True

    def next_deadline(self) -> float | None:
        s = self.streamer
        if not s.connected or s.lost or s.framing_errors:
            return None
        due = [t for t in (None if s.paused else s.enframer.probe_deadline(),
                           s.backlog_since, s.writes_held_since) if t is not None]
        return min(due) if due else None

    def drain(self, now: float) -> list[str]:
        due, self._due = self._due, False
        return [self.FLUSH] if due else []


@implementer(IPushProducer)
class PQIStreamer(Protocol):
    """One connection's item stream.

    ``on_item(item)`` is called for every decoded item, in stream order; ``on_lost(reason)``
    once when the connection ends; ``on_write(data)``, if given, sees every write before the
    transport does (a tap for tracing and captures).  ``peer`` only labels log events.  Counters:
    ``items_in``, ``items_out``, ``bytes_in``, ``bytes_out``, ``probes_in``, ``probes_out``,
    ``decode_errors``, ``framing_errors``.  ``slice_size``, ``whole_size`` and ``group_size`` go
    to the `Enframer`: by default whole items, large slices and grouped writes, which every
    RetroShare 0.6.7 receiver takes (`FAST_WHOLE_SIZE`, `FAST_SLICE_SIZE`, `FAST_GROUP_SIZE`;
    ``slice_size=SLICE_SIZE, whole_size=SLICE_SIZE, group_size=GROUP_SIZE`` give RetroShare's
    own writes byte for byte).  ``on_room()``, if given (or set later), is called
    each time the queue falls to ``room_mark`` bytes (default `ROOM_MARK_FRACTION` of
    ``max_queue_bytes``) after it was above it: the signal a producer that stopped on a full
    queue waits for.
    """

    log = Logger()
    #: `dataReceived` may be given read-only memoryviews to keep: the deframer takes them
    #: without a copy, as it takes ``bytes`` (`pqi.identity.tlsbatch` then hands over each
    #: decrypted buffer instead of a copy of it).
    accepts_views = True

    def __init__(self, clock: IReactorTime, *,
                 on_item: Callable[[Item], object] | None = None,
                 on_lost: Callable[[Failure], object] | None = None,
                 on_write: Callable[[bytes], object] | None = None,
                 peer: str = "",
                 max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
                 probe_interval: float = PROBE_INTERVAL,
                 slice_size: int = FAST_SLICE_SIZE,
                 group_size: int = FAST_GROUP_SIZE,
                 whole_size: int = FAST_WHOLE_SIZE,
                 on_room: Callable[[], object] | None = None,
                 room_mark: int | None = None,
                 items_per_turn: int = MAX_ITEMS_PER_TURN,
                 sends_held: int = MAX_SENDS_HELD) -> None:
        self.clock = clock
        self.items_per_turn = items_per_turn
        self.sends_held = sends_held
        #: Sends held back for the turn's end since its last write (at most ``sends_held``).
        self._held = 0
        #: When received items began to wait for a later turn (None: none wait).
        self.backlog_since: float | None = None
        #: When this turn's first send was written (None: no send since the last turn): the
        #: sends after it in the same turn wait for the turn's end and leave in one write.
        self.writes_held_since: float | None = None
        #: Reads are paused on the transport while a backlog waits.
        self._reads_paused = False
        self.on_room = on_room
        self.room_mark = (int(max_queue_bytes * ROOM_MARK_FRACTION) if room_mark is None
                          else room_mark)
        #: The queue went above ``room_mark`` and has not drained to it since.
        self._above_mark = False
        self.on_item = on_item
        self.on_lost = on_lost
        self.on_write = on_write
        self.peer = peer
        self.deframer = Deframer()
        self.enframer = Enframer(max_queue_bytes=max_queue_bytes, probe_interval=probe_interval,
                                 slice_size=slice_size, group_size=group_size,
                                 whole_size=whole_size)
        self.items_in = 0
        self.decode_errors = 0
        self.framing_errors = 0
        self.connected = False
        self.lost = False
        self.paused = False
        #: Handles of the items still queued, by packet id (bounded by the queue itself).
        self._unsent: dict[int, Sent] = {}
        self._probes = CoreDriver(_ProbeClock(self), clock, lambda _flush: self._turn())

    # -- counters kept by the sans-IO core --------------------------------------------------

    @property
    def items_out(self) -> int:
        """Items completely handed to the transport."""
        return self.enframer.items_written

    @property
    def bytes_out(self) -> int:
        return self.enframer.bytes_written

    @property
    def probes_out(self) -> int:
        return self.enframer.probes_written

    @property
    def bytes_in(self) -> int:
        return self.deframer.bytes_received

    @property
    def probes_in(self) -> int:
        return self.deframer.probes_received

    @property
    def queued_bytes(self) -> int:
        return self.enframer.queued_bytes

    # -- the layer above ---------------------------------------------------------------------

    def send(self, item: Item, priority: int | None = None) -> Sent:
        """Queue ``item`` (at ``item.PRIORITY`` unless given) and write what the transport takes;
        the returned `Sent` tells when the item was written.

        Raises `QueueFullError` when the queue is full, `EncodeError` for an item the wire
        cannot carry, `ValueError` for a priority outside 0..9, and `ConnectionClosed` once
        the connection is gone.  Items sent before
        the connection is made wait for it.
        """
        if self.lost:
            raise ConnectionClosed(f"link to {self.peer or 'peer'} is closed")
        packet_id = self.enframer.push(encode(item),
                                       item.PRIORITY if priority is None else priority)
        sent = self._unsent[packet_id] = Sent(packet_id)
        if self.enframer.queued_bytes > self.room_mark:
            self._above_mark = True
        if self.writes_held_since is None:
            # The turn's first send leaves at once (a lone message waits for nothing); the
            # ones after it wait for the turn's end, then go out grouped in one write, or
            # sooner once `sends_held` of them wait.
            self.writes_held_since = self.clock.seconds()
            self._flush()
        elif self._held + 1 >= self.sends_held:
            self._flush()
        else:
            self._held += 1
        return sent

    # -- IProtocol ---------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.connected = True
        self.transport.registerProducer(self, True)
        self.log.info("link to {peer} up", peer=self.peer)
        self._flush()

    def dataReceived(self, data: bytes | memoryview) -> None:
        if self.lost or self.framing_errors:
            return
        self.deframer.receive_data(data)
        if self.backlog_since is None:  # else the waiting turn parses it, in order
            # A transport that cannot stop reading would grow the backlog without bound.
            paces = hasattr(self.transport, "pauseProducing")
            self._deliver(self.items_per_turn if paces else None)

    def _deliver(self, limit: int | None) -> None:
        """Hand up at most ``limit`` events (None: all); leave the rest for the next turn."""
        handed = 0
        next_frame = self.deframer.next_frame
        try:
            while True:
                if limit is not None and handed >= limit:
                    self._hold_back()
                    return
                frame = next_frame()
                if frame is None:
                    break
                handed += 1
                if type(frame) is bytes:
                    self._item_received(frame)
                else:
                    self._probe_received()
                if self.lost:
                    return
        except FramingError as e:
            self.framing_errors += 1
            self.log.warn("closing link to {peer}: framing error: {error}", peer=self.peer,
                          error=str(e), offset=e.offset)
            self._stop_timer()
            abort = getattr(self.transport, "abortConnection", None)
            if abort is not None:
                abort()
            else:
                self.transport.loseConnection()
            return
        self._caught_up()
        if self.deframer.peer_accepts_slicing and not self.enframer.slicing:
            self._enable_slicing()

    def _hold_back(self) -> None:
        """Items wait: stop reading the transport and hand them up on the next turn."""
        if self.backlog_since is None:
            self.backlog_since = self.clock.seconds()
        if not self._reads_paused:
            self._reads_paused = True
            self.transport.pauseProducing()
        self._probes.service()

    def _caught_up(self) -> None:
        """Nothing complete waits any more: read the transport again."""
        if self.backlog_since is None:
            return
        self.backlog_since = None
        if self._reads_paused:
            self._reads_paused = False
            self.transport.resumeProducing()
        self._probes.service()

    def _turn(self) -> None:
        """The streamer's timer: hand up the next share of waiting items, and write."""
        self.writes_held_since = None
        if self.backlog_since is not None and not self.lost:
            self._deliver(self.items_per_turn)
        self._flush()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.backlog_since is not None and not self.framing_errors:
            self._deliver(None)  # what arrived before the end is still handed up
        self.connected = False
        self.lost = True
        self._probes.stop()
        dropped = self.enframer.clear()
        unsent, self._unsent = self._unsent, {}
        for sent in unsent.values():
            sent._settle(SendState.DROPPED)
        self.log.info("link to {peer} down ({reason}); {dropped} queued items dropped",
                      peer=self.peer, reason=reason.getErrorMessage(), dropped=dropped)
        if self.on_lost is not None:
            self.on_lost(reason)

    # -- IPushProducer (the transport tells us when its buffer is full) ---------------------

    def pauseProducing(self) -> None:
        self.paused = True
        self._stop_timer()

    def resumeProducing(self) -> None:
        self.paused = False
        self._flush()

    def stopProducing(self) -> None:
        self.paused = True
        self._stop_timer()

    # -- internals ---------------------------------------------------------------------------

    def _probe_received(self) -> None:
        if not self.enframer.slicing:
            self._enable_slicing()

    def _enable_slicing(self) -> None:
        self.enframer.enable_slicing()
        self.log.debug("{peer} reassembles slices: slicing large items", peer=self.peer)

    def _item_received(self, data: bytes) -> None:
        try:
            item = decode(data)
        except DecodeError as e:
            self.decode_errors += 1
            self.log.warn("dropped an undecodable item from {peer}: {error}", peer=self.peer,
                          error=str(e), header=data[:8].hex())
            return
        self.items_in += 1
        if self.on_item is not None:
            self.on_item(item)

    def _flush(self) -> None:
        """Write while the transport takes it, then arm the probe timer."""
        if not self.connected or self.paused:
            return
        self._held = 0
        now = self.clock.seconds()
        while not self.paused:
            data = self.enframer.next_write(now)
            if data is None:
                break
            if self.on_write is not None:
                self.on_write(data)
            self.transport.write(data)
            for packet_id in self.enframer.take_completed():
                sent = self._unsent.pop(packet_id, None)
                if sent is not None:
                    sent._settle(SendState.WRITTEN)
        self._probes.service()
        if self._above_mark and self.enframer.queued_bytes <= self.room_mark:
            self._above_mark = False
            if self.on_room is not None:
                self.on_room()

    def _stop_timer(self) -> None:
        """Paused, broken or gone: the probe clock has no deadline now."""
        self._probes.service()
