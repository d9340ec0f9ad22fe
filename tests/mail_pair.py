"""Two mail services, alice's and bob's, over real streamers on in-memory wires.

Alice sends; bob receives and, when both speak mail receipts, answers with receipts over his
own streamer.  Bytes move only when a test carries them, so it decides what is in flight,
what sits in bob's socket buffer, and what dies with bob (`MailPair.kill_bob`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock, StringTransport

from pqi.interfaces import DisconnectReason
from pqi.items.ids import SERVICE_MAIL_RECEIPT
from pqi.items.msg import MsgItem
from pqi.items.receipt import MailReceiptItem
from pqi.wire.errors import QueueFullError
from pqi.wire.framing import GROUP_SIZE, SLICE_SIZE
from pqi.wire.streamer import PQIStreamer
from services.mail.receipt import MailReceipts
from services.mail.service import MailDelivered, MailReceived, MailService
from services.mail.store import MailStore
from tests.service_fakes import peer

__all__ = ["MailPair", "Wire", "ALICE", "BOB", "BUFFER"]

ALICE, BOB = peer(1), peer(2)
#: A wire's buffer: its streamer is paused while this many bytes wait to be carried.
BUFFER = 4096
#: Reactor turns one read may take to hand up its items (a bound for the test's loop).
MAX_TURNS = 10_000


class Wire(StringTransport):
    """One direction of a TCP connection: pauses its producer when ``BUFFER`` bytes wait."""

    def write(self, data: bytes) -> None:
        super().write(data)
        if len(self.value()) >= BUFFER and self.producer is not None:
            self.producer.pauseProducing()

    def carry(self, n: int) -> bytes:
        """Take up to ``n`` waiting bytes off the wire and let the producer go on."""
        data = self.value()
        taken, rest = data[:n], data[n:]
        self.clear()
        self.io.write(rest)
        if len(rest) < BUFFER and self.producer is not None:
            self.producer.resumeProducing()
        return taken


class _Sender:
    """A node's sender as service control is: the current link's Sent handle, and whether
    the peer negotiated mail receipts."""

    def __init__(self, receipts: bool) -> None:
        self.link: PQIStreamer | None = None
        self.receipts = receipts
        #: Service ids of the items sent, in order.
        self.services: list[int] = []

    def send(self, ssl_id: object, item: object) -> object:
        if self.link is None:
            return False
        self.services.append(item.SERVICE)  # type: ignore[attr-defined]
        try:
            return self.link.send(item)  # type: ignore[arg-type]
        except QueueFullError:
            return False

    def is_enabled(self, ssl_id: object, service_id: int) -> bool:
        return service_id == SERVICE_MAIL_RECEIPT and self.receipts

    def connected_peers(self) -> list:
        return []


class MailPair:
    """Alice's and bob's mail (and, with ``receipts``, receipt) services in ``tmp``; bob's
    inbound bytes go through a socket buffer the test processes (`process_bob`)."""

    def __init__(self, tmp: Path, clock: MemoryReactorClock, *, receipts: bool) -> None:
        self.tmp = tmp
        self.clock = clock
        self.receipts = receipts
        self.alice_sender = _Sender(receipts)
        self.delivered: list[int] = []
        self.received: list[str] = []
        self.alice = MailService(self.alice_sender, clock, MailStore(tmp / "alice.sqlite"),
                                 lambda ssl_id: self.alice_sender.link, self._alice_event)
        if receipts:
            MailReceipts(self.alice_sender, clock, self.alice)
        self.bob_sender = _Sender(receipts)
        self.bob = self._start_bob()
        self.connect()

    def _alice_event(self, event: object) -> None:
        if isinstance(event, MailDelivered):
            self.delivered.append(event.mail_id)

    def _start_bob(self) -> MailService:
        bob = MailService(self.bob_sender, self.clock, MailStore(self.tmp / "bob.sqlite"),
                          lambda ssl_id: self.bob_sender.link,
                          lambda e: self.received.append(e.mail.subject)
                          if isinstance(e, MailReceived) else None)
        if self.receipts:
            MailReceipts(self.bob_sender, self.clock, bob)
        return bob

    def _to_bob(self, item: object) -> None:
        if isinstance(item, MsgItem):
            self.bob.receive(ALICE, item)

    def _to_alice(self, item: object) -> None:
        if isinstance(item, MailReceiptItem) and self.alice.receipts is not None:
            self.alice.receipts.receive(BOB, item)

    def connect(self) -> None:
        """A new connection: streamers both ways (RetroShare's slice sizes), services told."""
        self.alice_out = PQIStreamer(self.clock, slice_size=SLICE_SIZE, whole_size=SLICE_SIZE,
                                     group_size=GROUP_SIZE)
        self.bob_in = PQIStreamer(self.clock, on_item=self._to_bob)
        self.bob_out = PQIStreamer(self.clock)
        self.alice_in = PQIStreamer(self.clock, on_item=self._to_alice)
        self.to_bob, self.to_alice = Wire(), Wire()
        self.alice_out.makeConnection(self.to_bob)
        self.bob_out.makeConnection(self.to_alice)
        self.bob_in.makeConnection(StringTransport())
        self.alice_in.makeConnection(StringTransport())
        self.alice_out.enframer.enable_slicing()
        self.alice_sender.link, self.bob_sender.link = self.alice_out, self.bob_out
        self.bob_buffer = b""
        self.alice.peer_connected(BOB)
        self.bob.peer_connected(ALICE)

    def carry(self, to_bob: int, to_alice: int) -> None:
        """Move bytes: up to ``to_bob`` from alice's wire into bob's socket buffer, up to
        ``to_alice`` of bob's receipts to alice (processed at once)."""
        self.bob_buffer += self.to_bob.carry(to_bob)
        self.alice_in.dataReceived(self.to_alice.carry(to_alice))
        self._turns(self.alice_in)

    def process_bob(self, n: int) -> None:
        """Bob's process reads ``n`` bytes of its socket buffer (and commits what they hold)."""
        data, self.bob_buffer = self.bob_buffer[:n], self.bob_buffer[n:]
        self.bob_in.dataReceived(data)
        self._turns(self.bob_in)

    def _turns(self, streamer: PQIStreamer) -> None:
        """Let the reactor turn until the streamer handed up every complete item it read (it
        hands up `MAX_ITEMS_PER_TURN` a turn)."""
        for _ in range(MAX_TURNS):
            if streamer.backlog_since is None:
                return
            self.clock.advance(0)
        raise AssertionError(f"items still waiting after {MAX_TURNS} turns")

    def kill_bob(self, after: Callable[[], None] = lambda: None) -> None:
        """Bob's process dies: its socket buffer and everything on both wires is lost; alice's
        link goes down; ``after`` runs before bob restarts and the link comes back."""
        self.alice.peer_disconnected(BOB, DisconnectReason.CLOSED)
        self.alice_sender.link = self.bob_sender.link = None
        for streamer in (self.alice_out, self.bob_in, self.bob_out, self.alice_in):
            streamer.connectionLost()
        self.bob.stop()
        self.bob.store.close()
        after()
        self.bob = self._start_bob()
        self.connect()

    def close(self) -> None:
        for service in (self.alice, self.bob):
            service.stop()
            service.store.close()
