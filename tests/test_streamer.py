# -*- test-case-name: tests.test_streamer -*-
"""PQIStreamer on StringTransport, iosim pairs, a memory clock and real TCP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import ConnectionClosed
from twisted.internet.protocol import Factory
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim

from pqi.items.heartbeat import HeartbeatItem
from pqi.wire.errors import QueueFullError
from pqi.wire.framing import FAST_SLICE_SIZE, GROUP_SIZE, PROBE
from pqi.wire.item import UnknownItem, encode
from pqi.wire.limits import SLICE_SIZE
from pqi.wire.streamer import (
    MAX_ITEMS_PER_TURN,
    MAX_SENDS_HELD,
    ROOM_MARK_FRACTION,
    Item,
    PQIStreamer,
)
from tests.strategies_streamer import unknown_items

BIG = UnknownItem(0x7E57, 0x01, bytes(range(256)) * 19 + bytes(128))  # 5000 bytes encoded
#: The streamer options that make RetroShare's own writes (1400-byte slices and groups).
RETROSHARE_SIZES: dict[str, Any] = {"slice_size": SLICE_SIZE, "whole_size": SLICE_SIZE,
                                    "group_size": GROUP_SIZE}


class Recorder:
    """A streamer plus what it delivered upwards."""

    def __init__(self, clock: Any, **kwargs: Any) -> None:
        self.items: list[Item] = []
        self.lost: list[Failure] = []
        self.streamer = PQIStreamer(clock, on_item=self.items.append, on_lost=self.lost.append,
                                    **kwargs)


def connected(clock: Any | None = None, **kwargs: Any) -> tuple[Recorder, StringTransport]:
    recorder = Recorder(clock if clock is not None else MemoryReactorClock(), **kwargs)
    transport = StringTransport()
    recorder.streamer.makeConnection(transport)
    return recorder, transport


# --- StringTransport ---------------------------------------------------------------------------

def test_connect_sends_probe_and_registers_as_push_producer() -> None:
    """On connect the streamer writes exactly the probe and becomes the transport's streaming
    producer."""
    recorder, transport = connected()
    assert transport.value() == bytes.fromhex("02aabbcc00000008")
    assert transport.producer is recorder.streamer and transport.streaming is True
    assert recorder.streamer.probes_out == 1


def test_send_writes_the_encoded_item() -> None:
    """A turn's first send() puts the encoded item on the wire at once, whole before the
    peer's probe; the turn's later sends wait for the turn's end."""
    clock = MemoryReactorClock()
    recorder, transport = connected(clock)
    transport.clear()
    recorder.streamer.send(HeartbeatItem())
    assert transport.value() == bytes.fromhex("0200160100000008")
    recorder.streamer.send(BIG)
    assert transport.value() == bytes.fromhex("0200160100000008")
    clock.advance(0)
    assert transport.value() == bytes.fromhex("0200160100000008") + encode(BIG)
    assert recorder.streamer.items_out == 2 and recorder.streamer.bytes_out == 8 + 8 + 5000


def test_sends_of_one_turn_leave_in_one_write() -> None:
    """After a turn's first send, the turn's other sends (fewer than `MAX_SENDS_HELD`) go out
    grouped in one transport write at the turn's end (one TLS write for a burst of chat
    messages, not one each); the next turn's first send leaves at once again."""
    clock = MemoryReactorClock()
    recorder, transport = connected(clock)
    recorder.streamer.dataReceived(PROBE)
    writes: list[bytes] = []
    recorder.streamer.on_write = writes.append
    items = [UnknownItem(0x7E57, 0x01, bytes([i]) * 100) for i in range(MAX_SENDS_HELD)]
    sent = [recorder.streamer.send(item) for item in items]
    assert writes == [encode(items[0])]
    assert [s.state for s in sent[:2]] == ["written", "queued"]
    clock.advance(0)
    assert writes == [encode(items[0]), b"".join(encode(item) for item in items[1:])]
    assert all(s.state == "written" for s in sent)
    assert recorder.streamer.writes_held_since is None
    recorder.streamer.send(HeartbeatItem())
    assert writes[-1] == encode(HeartbeatItem())


def test_a_long_turn_writes_every_bound_of_held_sends() -> None:
    """In a turn of many sends, a held send waits for at most `MAX_SENDS_HELD` others, not
    for the whole turn: the first send leaves at once, every further `MAX_SENDS_HELD` leave
    together as soon as the last of them is sent, and the rest at the turn's end; every
    item once, in order.  The next turn starts counting afresh."""
    clock = MemoryReactorClock()
    recorder, transport = connected(clock)
    recorder.streamer.dataReceived(PROBE)
    writes: list[bytes] = []
    recorder.streamer.on_write = writes.append
    n = 1 + 3 * MAX_SENDS_HELD + 5
    items = [UnknownItem(0x7E57, 0x01, i.to_bytes(2, "big") * 50) for i in range(n)]
    counts = []
    for item in items:
        recorder.streamer.send(item)
        counts.append(len(writes))
    # One write after the first send, one more each time MAX_SENDS_HELD more were sent.
    assert counts == [1 + (i // MAX_SENDS_HELD) for i in range(n)]
    clock.advance(0)
    held = MAX_SENDS_HELD
    assert writes == ([encode(items[0])]
                      + [b"".join(encode(x) for x in items[1 + k * held:1 + (k + 1) * held])
                         for k in range(3)]
                      + [b"".join(encode(x) for x in items[1 + 3 * held:])])
    before = len(writes)
    for item in items[:2]:
        recorder.streamer.send(item)
    assert len(writes) == before + 1  # a new turn: its first send at once, the next held


def test_held_sends_bound_is_a_parameter() -> None:
    """``sends_held=1`` writes every send at once (no grouping at all)."""
    clock = MemoryReactorClock()
    recorder, transport = connected(clock, sends_held=1)
    recorder.streamer.dataReceived(PROBE)
    writes: list[bytes] = []
    recorder.streamer.on_write = writes.append
    items = numbered(5)
    for item in items:
        recorder.streamer.send(item)
    assert writes == [encode(item) for item in items]


def test_send_priority_and_write_tap() -> None:
    """An explicit priority overrides the item's; a priority outside 0..9 is refused; the
    write tap sees exactly what the transport gets."""
    seen: list[bytes] = []
    recorder, transport = connected(on_write=seen.append)
    recorder.streamer.pauseProducing()
    recorder.streamer.send(UnknownItem(0x7E57, 1, b"low"), 0)
    recorder.streamer.send(UnknownItem(0x7E57, 2, b"high"), 9)
    with pytest.raises(ValueError, match="priority 10"):
        recorder.streamer.send(HeartbeatItem(), 10)
    recorder.streamer.resumeProducing()
    assert transport.value() == PROBE + encode(UnknownItem(0x7E57, 2, b"high")) + encode(
        UnknownItem(0x7E57, 1, b"low"))
    assert b"".join(seen) == transport.value()


def test_default_sizes_send_items_whole() -> None:
    """By default (a node's link) every item leaves whole once the peer reassembles, even a
    200,008-byte one (RetroShare 0.6.7 takes whole items up to MAX_SERIAL_SIZE): one write, no
    slice header, nothing for the receiver to reassemble."""
    recorder, transport = connected()
    recorder.streamer.dataReceived(PROBE)
    writes: list[bytes] = []
    recorder.streamer.on_write = writes.append
    recorder.streamer.send(BIG)
    assert writes == [encode(BIG)]
    writes.clear()
    huge = UnknownItem(0x7E57, 0x02, bytes(200_000))
    recorder.streamer.send(huge)
    recorder.streamer.clock.advance(0)  # the turn's second send leaves at its end
    assert writes == [encode(huge)]
    assert recorder.streamer.enframer.slices_written == 0


def test_items_above_whole_size_go_in_large_slices() -> None:
    """With ``whole_size`` below an item's size the streamer cuts it into FAST_SLICE_SIZE
    slices whose headers say so, several frames per write: a 5000-byte item goes whole, a
    200,008-byte one in 4 slices, in one write per 64 KiB group."""
    recorder, transport = connected(whole_size=FAST_SLICE_SIZE)
    recorder.streamer.dataReceived(PROBE)
    writes: list[bytes] = []
    recorder.streamer.on_write = writes.append
    recorder.streamer.send(BIG)
    assert writes == [encode(BIG)]
    transport.clear()
    writes.clear()
    huge = UnknownItem(0x7E57, 0x02, bytes(200_000))
    recorder.streamer.send(huge)
    recorder.streamer.clock.advance(0)  # the turn's second send leaves at its end
    out = transport.value()
    assert len(out) == 200_008 + 4 * 8 and b"".join(writes) == out
    assert len(writes) == 4  # one write per 64 KiB group: 4 full-size slices' worth
    starts = [0, 8 + FAST_SLICE_SIZE, 2 * (8 + FAST_SLICE_SIZE), 3 * (8 + FAST_SLICE_SIZE)]
    assert [out[i:i + 2] for i in starts] == [b"\x10\x01", b"\x10\x00", b"\x10\x00",
                                              b"\x10\x02"]
    assert [int.from_bytes(out[i + 6:i + 8], "big") for i in starts] == [
        FAST_SLICE_SIZE, FAST_SLICE_SIZE, FAST_SLICE_SIZE, 200_008 - 3 * FAST_SLICE_SIZE]
    assert recorder.streamer.enframer.slices_written == 4


def test_items_sent_before_connect_wait_for_it() -> None:
    """Items queued before connectionMade follow the probe in the first write."""
    recorder = Recorder(MemoryReactorClock())
    recorder.streamer.send(HeartbeatItem())
    transport = StringTransport()
    recorder.streamer.makeConnection(transport)
    assert transport.value() == PROBE + encode(HeartbeatItem())


def test_received_probe_enables_slicing() -> None:
    """After the peer's probe, with RetroShare's own sizes, a 5000-byte item leaves as
    1400-byte slices with RetroShare's headers."""
    recorder, transport = connected(**RETROSHARE_SIZES)
    recorder.streamer.dataReceived(PROBE)
    transport.clear()
    recorder.streamer.send(BIG)
    out = transport.value()
    assert [out[i:i + 2] for i in (0, 1408, 2816, 4224)] == [b"\x10\x01", b"\x10\x00",
                                                             b"\x10\x00", b"\x10\x02"]
    assert out[6:8] == b"\x05\x78" and out[4230:4232] == b"\x03\x20"
    assert recorder.streamer.probes_in == 1


def test_items_decoded_and_delivered_in_order() -> None:
    """Items arriving byte by byte are decoded and handed up in stream order."""
    recorder, _ = connected()
    stream = encode(HeartbeatItem()) + encode(BIG) + encode(HeartbeatItem())
    for i in range(len(stream)):
        recorder.streamer.dataReceived(stream[i:i + 1])
    assert recorder.items == [HeartbeatItem(), BIG, HeartbeatItem()]
    assert recorder.streamer.items_in == 3 and recorder.streamer.bytes_in == len(stream)


def test_undecodable_item_is_dropped_and_counted_link_stays() -> None:
    """A heartbeat with a stray body byte fails to decode: dropped, counted, the next item
    still arrives and the connection stays up."""
    recorder, transport = connected()
    recorder.streamer.dataReceived(bytes.fromhex("0200160100000009ff") + encode(HeartbeatItem()))
    assert recorder.streamer.decode_errors == 1
    assert recorder.items == [HeartbeatItem()]
    assert not transport.disconnecting


def test_framing_error_aborts_the_connection() -> None:
    """A header claiming 7 bytes aborts the link; items before it were delivered, bytes
    after it are ignored."""
    recorder, transport = connected()
    recorder.streamer.dataReceived(encode(HeartbeatItem()) + bytes.fromhex("0200160100000007"))
    assert recorder.items == [HeartbeatItem()]
    assert recorder.streamer.framing_errors == 1
    assert transport.disconnecting and transport.disconnected  # abortConnection
    recorder.streamer.dataReceived(encode(HeartbeatItem()))
    assert recorder.items == [HeartbeatItem()]


def test_pause_keeps_items_queued_resume_writes_them() -> None:
    """While the transport has paused us nothing is written; resuming writes the backlog."""
    recorder, transport = connected()
    transport.clear()
    recorder.streamer.pauseProducing()
    recorder.streamer.send(HeartbeatItem())
    recorder.streamer.send(BIG)
    assert transport.value() == b""
    assert recorder.streamer.queued_bytes == 5008
    recorder.streamer.resumeProducing()
    assert transport.value() == encode(HeartbeatItem()) + encode(BIG)
    assert recorder.streamer.queued_bytes == 0


def test_queue_full_while_paused() -> None:
    """With a 20-byte cap, two 8-byte heartbeats fit and a third raises QueueFullError."""
    recorder, transport = connected(max_queue_bytes=20)
    recorder.streamer.pauseProducing()
    recorder.streamer.send(HeartbeatItem())
    recorder.streamer.send(HeartbeatItem())
    with pytest.raises(QueueFullError, match="outgoing queue full"):
        recorder.streamer.send(HeartbeatItem())
    assert not transport.disconnecting


def test_write_that_pauses_stops_the_flush() -> None:
    """A transport that pauses us during a write gets no further write until it resumes."""

    class PausingTransport(StringTransport):
        def write(self, data: bytes) -> None:
            super().write(data)
            self.producer.pauseProducing()

    recorder = Recorder(MemoryReactorClock(), **RETROSHARE_SIZES)
    transport = PausingTransport()
    recorder.streamer.send(BIG)
    recorder.streamer.dataReceived(PROBE)
    recorder.streamer.makeConnection(transport)
    first = transport.value()
    assert first[:8] == PROBE and len(first) == 8 + 1408  # paused after one grouped write
    recorder.streamer.resumeProducing()
    assert len(transport.value()) == 8 + 2 * 1408
    recorder.streamer.resumeProducing()
    assert len(transport.value()) == 8 + 3 * 1408


def test_on_room_fires_once_per_drain_below_the_mark() -> None:
    """A queue filled above its room mark calls ``on_room`` once when a resume drains it to
    the mark, not before (paused) and not again until it was above the mark once more; a
    queue that never passed the mark never calls it."""
    rooms: list[int] = []
    recorder, transport = connected(max_queue_bytes=100, room_mark=20)
    streamer = recorder.streamer
    streamer.on_room = lambda: rooms.append(streamer.queued_bytes)
    streamer.send(HeartbeatItem())  # written at once: never above the mark
    assert rooms == []
    streamer.pauseProducing()
    for _ in range(4):  # 32 bytes queued: above the mark of 20
        streamer.send(HeartbeatItem())
    assert rooms == []
    streamer.resumeProducing()
    assert rooms == [0]
    streamer.resumeProducing()  # nothing new above the mark: no second call
    streamer.send(HeartbeatItem())
    assert rooms == [0]
    streamer.pauseProducing()
    for _ in range(3):
        streamer.send(HeartbeatItem())
    streamer.resumeProducing()
    assert rooms == [0, 0]


def test_on_room_waits_for_the_queue_to_reach_the_mark() -> None:
    """A transport that takes one write per resume: ``on_room`` comes with the resume that
    brings the queue to the mark, while items are still queued above zero."""

    class PausingTransport(StringTransport):
        def write(self, data: bytes) -> None:
            super().write(data)
            self.producer.pauseProducing()

    rooms: list[int] = []
    recorder = Recorder(MemoryReactorClock(), max_queue_bytes=10_000, room_mark=2 * 1400,
                        group_size=1400, slice_size=1400, whole_size=1400)
    streamer = recorder.streamer
    streamer.on_room = lambda: rooms.append(streamer.queued_bytes)
    streamer.send(BIG)  # 5000 bytes: cut into four slices
    streamer.dataReceived(PROBE)
    streamer.makeConnection(PausingTransport())  # probe and the first slice
    resumes = 0
    while not rooms and resumes < 10:
        streamer.resumeProducing()
        resumes += 1
    assert rooms and 0 < rooms[0] <= 2 * 1400
    assert resumes == 1 and streamer.queued_bytes == rooms[0]


def test_default_room_mark_is_the_named_fraction_of_the_queue() -> None:
    """Without ``room_mark`` the mark is `ROOM_MARK_FRACTION` of ``max_queue_bytes``."""
    recorder, _ = connected(max_queue_bytes=1000)
    assert recorder.streamer.room_mark == int(1000 * ROOM_MARK_FRACTION)


def numbered(n: int) -> list[UnknownItem]:
    return [UnknownItem(0x7E57, 0x02, i.to_bytes(4, "big")) for i in range(n)]


def test_a_read_hands_up_a_bounded_share_per_turn_and_pauses_reading() -> None:
    """200 items in one read: `MAX_ITEMS_PER_TURN` of them are handed up now, the transport
    is not read while the rest wait for a timer due at once, bytes read meanwhile queue
    behind them, and reading resumes once all are handed up, in order.  (A fake clock's
    ``advance(0)`` also runs the calls it schedules, so it completes every turn at once.)"""
    clock = MemoryReactorClock()
    recorder, transport = connected(clock)
    sent = numbered(200)
    recorder.streamer.dataReceived(b"".join(encode(i) for i in sent[:199]))
    assert len(recorder.items) == MAX_ITEMS_PER_TURN
    assert transport.producerState == "paused"
    assert [c.getTime() for c in clock.getDelayedCalls()] == [clock.seconds()]
    recorder.streamer.dataReceived(encode(sent[199]))  # arrived in the same turn: waits too
    assert len(recorder.items) == MAX_ITEMS_PER_TURN
    clock.advance(0)
    assert recorder.items == sent
    assert transport.producerState == "producing" and recorder.streamer.backlog_since is None


def test_items_waiting_for_a_turn_are_handed_up_before_the_loss() -> None:
    """The connection ends while items wait for a turn: they are all handed up, in order,
    before ``on_lost``."""
    order: list[str] = []
    clock = MemoryReactorClock()
    streamer = PQIStreamer(clock, on_item=lambda item: order.append("item"),
                           on_lost=lambda reason: order.append("lost"), items_per_turn=3)
    streamer.makeConnection(StringTransport())
    streamer.dataReceived(b"".join(encode(i) for i in numbered(10)))
    assert order == ["item"] * 3
    streamer.connectionLost(Failure(ConnectionClosed()))
    assert order == ["item"] * 10 + ["lost"]


def test_a_quiet_link_is_not_held_back_by_a_flooding_one() -> None:
    """Two links read in the same turn: the flooding one hands up its share and waits; the
    other's one item is handed up at once, not after the flood."""
    clock = MemoryReactorClock()
    events: list[str] = []
    flood = PQIStreamer(clock, on_item=lambda item: events.append("flood"))
    quiet = PQIStreamer(clock, on_item=lambda item: events.append("quiet"))
    flood.makeConnection(StringTransport())
    quiet.makeConnection(StringTransport())
    flood.dataReceived(b"".join(encode(i) for i in numbered(1000)))
    quiet.dataReceived(encode(HeartbeatItem()))
    assert events == ["flood"] * MAX_ITEMS_PER_TURN + ["quiet"]
    for _ in range(20):
        clock.advance(0)
    assert events.count("flood") == 1000


def test_probe_every_60_seconds_on_the_injected_clock() -> None:
    """Probes at 0, 60 and 120 s of the injected clock, none in between; the timer is gone
    after connectionLost."""
    clock = MemoryReactorClock()
    recorder, transport = connected(clock)
    transport.clear()
    clock.advance(59.9)
    assert transport.value() == b""
    clock.advance(0.1)
    assert transport.value() == PROBE
    clock.advance(60)
    assert transport.value() == PROBE + PROBE
    assert len(clock.getDelayedCalls()) == 1
    recorder.streamer.connectionLost(Failure(ConnectionClosed()))
    assert clock.getDelayedCalls() == []
    assert len(recorder.lost) == 1


def test_probe_waits_while_paused() -> None:
    """A probe due while paused is written on resume, and the timer is re-armed."""
    clock = MemoryReactorClock()
    recorder, transport = connected(clock)
    transport.clear()
    recorder.streamer.pauseProducing()
    assert clock.getDelayedCalls() == []
    clock.advance(90)
    assert transport.value() == b""
    recorder.streamer.resumeProducing()
    assert transport.value() == PROBE
    assert [call.getTime() for call in clock.getDelayedCalls()] == [150.0]


def test_send_after_connection_lost() -> None:
    """Sending on a closed link raises ConnectionClosed; queued items were dropped."""
    recorder, _ = connected()
    recorder.streamer.pauseProducing()
    recorder.streamer.send(HeartbeatItem())
    recorder.streamer.connectionLost(Failure(ConnectionClosed()))
    assert recorder.streamer.queued_bytes == 0
    with pytest.raises(ConnectionClosed):
        recorder.streamer.send(HeartbeatItem())


# --- iosim pairs --------------------------------------------------------------------------------

def pair(clock: MemoryReactorClock, **kwargs: Any) -> tuple[Recorder, Recorder, iosim.IOPump]:
    client = Recorder(clock, peer="client", **kwargs)
    server = Recorder(clock, peer="server", **kwargs)
    _, _, pump = iosim.connectedServerAndClient(lambda: server.streamer,
                                                lambda: client.streamer, clock=clock)
    return client, server, pump


def test_iosim_pair_exchanges_probes_and_sliced_items() -> None:
    """Two streamers exchange probes on connect, then a big item travels sliced both ways
    (a heartbeat queued behind it passes it); 60 s later each has sent a second probe."""
    clock = MemoryReactorClock()
    client, server, pump = pair(clock, **RETROSHARE_SIZES)
    assert client.streamer.enframer.slicing and server.streamer.enframer.slicing
    client.streamer.send(BIG)
    server.streamer.pauseProducing()
    server.streamer.send(BIG)
    server.streamer.send(HeartbeatItem())
    server.streamer.resumeProducing()
    pump.flush()
    assert server.items == [BIG] and client.items == [HeartbeatItem(), BIG]
    assert client.streamer.deframer.slices_received == 4
    assert server.streamer.deframer.slices_received == 4
    clock.advance(60)
    pump.flush()
    assert client.streamer.probes_in == 2 and server.streamer.probes_in == 2


def test_iosim_framing_error_closes_both_ends() -> None:
    """A garbage header from one side makes the other abort; both see connectionLost."""
    clock = MemoryReactorClock()
    client, server, pump = pair(clock)
    client.streamer.transport.write(bytes.fromhex("02001601ffffffff"))
    pump.flush()
    assert server.streamer.framing_errors == 1
    assert len(server.lost) == 1 and len(client.lost) == 1


@pytest.mark.slow
@given(queued=st.lists(st.tuples(unknown_items(), st.integers(0, 9)), max_size=10,
                       unique_by=lambda pair: encode(pair[0])),
       pause=st.booleans())
def test_iosim_round_trip_per_priority(queued: list[tuple[UnknownItem, int]],
                                       pause: bool) -> None:
    """Any items at any priorities, sent while the link is paused or not, arrive decoded and
    equal, in queue order within each priority."""
    clock = MemoryReactorClock()
    client, server, pump = pair(clock)
    if pause:
        client.streamer.pauseProducing()
    for item, prio in queued:
        client.streamer.send(item, prio)
    if pause:
        client.streamer.resumeProducing()
    pump.flush()
    assert len(server.items) == len(queued)
    for prio in range(10):
        sent = [item for item, p in queued if p == prio]
        assert [item for item in server.items if item in sent] == sent


# --- real TCP on 127.0.0.1 -----------------------------------------------------------------------

def on_fresh_reactor(body: Callable[[Any], Awaitable[object]], timeout: float = 20.0) -> object:
    """Run ``body(reactor)`` on a reactor of its own (bounded by ``timeout``) and return its
    result; the global reactor is never touched."""
    reactor = SelectReactor()
    outcome: list[object] = []

    def start() -> None:
        d = defer.ensureDeferred(body(reactor))
        d.addTimeout(timeout, reactor)
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    try:
        reactor.run(installSignalHandlers=False)
    finally:
        reactor.waker.connectionLost(None)
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


@pytest.mark.integration
def test_real_tcp_loopback_with_flow_control() -> None:
    """Two streamers over real TCP on 127.0.0.1: 3 MB of sliced items and heartbeats go
    through; the sender's transport paused it at least once and every item arrived in order."""
    payloads = [UnknownItem(0x7E57, 0x02, bytes([n]) * 200_000) for n in range(15)]

    class CountingStreamer(PQIStreamer):
        pauses = 0

        def pauseProducing(self) -> None:
            self.pauses += 1
            super().pauseProducing()

    async def body(reactor: Any) -> tuple[list[Item], int, int]:
        received: list[Item] = []
        answered: defer.Deferred[None] = defer.Deferred()
        done: defer.Deferred[None] = defer.Deferred()
        lost: list[defer.Deferred[None]] = [defer.Deferred(), defer.Deferred()]

        def server_got(item: Item) -> None:
            received.append(item)
            if len(received) == 1:
                server.send(HeartbeatItem())  # behind the server's probe
            if len(received) == len(payloads) + 2:
                done.callback(None)

        server = PQIStreamer(reactor, on_item=server_got, peer="server",
                             on_lost=lambda _: lost[0].callback(None))
        client = CountingStreamer(reactor, peer="client", whole_size=FAST_SLICE_SIZE,
                                  on_item=lambda _: answered.callback(None),
                                  on_lost=lambda _: lost[1].callback(None))
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            Factory.forProtocol(lambda: server))
        try:
            await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(
                Factory.forProtocol(lambda: client))
            client.send(HeartbeatItem())
            await answered
            assert client.enframer.slicing
            for payload in payloads:
                client.send(payload, 2)
            client.send(HeartbeatItem())
            await done
            client.transport.loseConnection()
            await defer.gatherResults(lost)
        finally:
            await port.stopListening()
        return received, client.pauses, server.deframer.slices_received

    received, pauses, slices = on_fresh_reactor(body)  # type: ignore[misc]
    # The transport paused the client inside the first payload; the later heartbeat (priority
    # 8) then passed the priority-2 backlog.
    assert received[:2] == [HeartbeatItem(), HeartbeatItem()]
    assert received[2:] == payloads
    assert pauses >= 1
    assert slices == 15 * -(-200_008 // FAST_SLICE_SIZE)

