# -*- test-case-name: tests.test_streamer -*-
"""``rsnode demo``: two PQIStreamers talk over a real TCP connection on 127.0.0.1.

It shows the streamer at work: the slicing probe each side sends on connect, a small item sent
whole, a 5000-byte item cut into 1400-byte slices once the peer's probe arrived, and the items
decoded on the other side.  Plain TCP for now (TLS comes with the authentication layer).  The
demo runs on a reactor of its own, so calling `main` never touches the global reactor.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.selectreactor import SelectReactor
from twisted.python.failure import Failure

from .framing import PROBE, SLICE_END, SLICE_PROTOCOL_ID, SLICE_START
from .item import UnknownItem, encode
from .items.heartbeat import HeartbeatItem
from .streamer import Item, PQIStreamer

__all__ = ["main", "run", "describe_write"]

#: Upper bound on the whole demo; it normally takes a few tens of milliseconds.
TIMEOUT = 5.0
#: A service id no RetroShare service uses, so the big item stays an `UnknownItem` whatever
#: item classes are registered.
DEMO_SERVICE = 0x7E57
_SLICE_KINDS = {SLICE_START: "first", SLICE_END: "last"}


def describe_write(data: bytes) -> list[str]:
    """One line per frame of a write (a write always holds whole frames)."""
    lines = []
    pos = 0
    while pos + 8 <= len(data):
        header = data[pos:pos + 8]
        if header == PROBE:
            lines.append(f"probe         {header.hex(' ')}")
            pos += 8
        elif header[0] == SLICE_PROTOCOL_ID and header[1] in (0, 1, 2):
            length = int.from_bytes(header[6:8], "big")
            kind = _SLICE_KINDS.get(header[1], "middle")
            packet_id = int.from_bytes(header[2:6], "big")
            lines.append(f"slice {kind:<6}  {header.hex(' ')}  packet id {packet_id}, "
                         f"{length} payload bytes")
            pos += 8 + length
        else:
            size = int.from_bytes(header[4:8], "big")
            service = int.from_bytes(header[1:3], "big")
            lines.append(f"whole item    {header.hex(' ')}  service 0x{service:04x} subtype "
                         f"0x{header[3]:02x}, {size} bytes")
            pos += size
    return lines


class _Side:
    """One end of the demo connection: a streamer plus printing taps."""

    def __init__(self, name: str, reactor: Any, out: TextIO) -> None:
        self.name = name
        self.out = out
        self.received: list[Item] = []
        self.arrivals: list[defer.Deferred[Item]] = []
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.streamer = PQIStreamer(reactor, peer=name, on_item=self._on_item,
                                    on_write=self._on_write,
                                    on_lost=lambda reason: self.lost.callback(None))

    def factory(self) -> Factory:
        return Factory.forProtocol(lambda: self.streamer)

    def send(self, item: Item) -> None:
        data = encode(item)
        self.out.write(f"{self.name} encodes {item!r}: {len(data)} bytes, header "
                       f"{data[:8].hex(' ')}\n")
        self.streamer.send(item)

    def next_item(self) -> defer.Deferred[Item]:
        d: defer.Deferred[Item] = defer.Deferred()
        self.arrivals.append(d)
        return d

    def _on_write(self, data: bytes) -> None:
        self.out.write(f"{self.name} writes {len(data)} bytes to TCP:\n")
        for line in describe_write(data):
            self.out.write(f"    {line}\n")

    def _on_item(self, item: Item) -> None:
        self.out.write(f"{self.name} decoded {item!r}\n")
        self.received.append(item)
        if self.arrivals:
            self.arrivals.pop(0).callback(item)


async def run(reactor: Any, out: TextIO) -> int:
    """Connect two streamers over TCP on 127.0.0.1, exchange items, print, disconnect.

    ``reactor`` provides ``IReactorTCP`` and ``IReactorTime``.  Returns 0 when every item
    arrived equal to what was sent.
    """
    alice = _Side("alice", reactor, out)
    bob = _Side("bob", reactor, out)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(bob.factory())
    try:
        out.write(f"bob listens on 127.0.0.1:{port.getHost().port}; alice connects "
                  "(plain TCP; each side starts with the slicing probe)\n")
        await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(
            alice.factory())
        heartbeat = HeartbeatItem()
        got = bob.next_item()
        alice.send(heartbeat)
        await got
        # Bob's probe went out on connect, before his answer: once alice has the answer she
        # knows bob reassembles slices.
        got = alice.next_item()
        bob.send(HeartbeatItem())
        await got
        big = UnknownItem(service=DEMO_SERVICE, subtype=0x01,
                          body=bytes(range(256)) * 19 + bytes(128))
        out.write("bob sent the probe, so alice slices items over 1400 bytes:\n")
        got = bob.next_item()
        alice.send(big)
        await got
        ok = bob.received == [heartbeat, big] and alice.received == [HeartbeatItem()]
        out.write(f"every item arrived equal to what was sent: {'yes' if ok else 'NO'}\n")
        for side in (alice, bob):
            s = side.streamer
            out.write(f"{side.name}: items in {s.items_in} / out {s.items_out}, bytes in "
                      f"{s.bytes_in} / out {s.bytes_out}, probes in {s.probes_in} / out "
                      f"{s.probes_out}, decode errors {s.decode_errors}\n")
        return 0 if ok else 1
    finally:
        if alice.streamer.connected:
            alice.streamer.transport.loseConnection()
            await defer.DeferredList([alice.lost, bob.lost])
        await port.stopListening()


def main() -> int:
    """Run the demo on a private reactor; 0 on success."""
    reactor = SelectReactor()
    outcome: list[object] = []

    def start() -> None:
        d = defer.Deferred.fromCoroutine(run(reactor, sys.stdout))
        d.addTimeout(TIMEOUT, reactor)
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    try:
        reactor.run(installSignalHandlers=False)
    finally:
        reactor.waker.connectionLost(None)
    result = outcome[0] if outcome else Failure(RuntimeError("the demo did not finish"))
    if isinstance(result, Failure):
        sys.stdout.write(f"demo failed: {result.getErrorMessage()}\n")
        return 1
    return int(result)  # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main())
