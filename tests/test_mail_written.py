"""A mail counts as delivered only after its own bytes were written (finding 1 of the audit:
the outbox matched written bytes against a mail's last slice, so two mails ending alike were
taken one for the other, marked delivered unsent, and lost)."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.testing import MemoryReactorClock, StringTransport

from pqi.items.msg import MsgFlags, MsgItem
from pqi.wire.framing import GROUP_SIZE, SLICE_SIZE, Deframer, ItemReceived
from pqi.wire.item import decode
from pqi.wire.streamer import PQIStreamer, SendState
from services.mail.service import SETTLE_DELAY, MailDelivered, MailService
from services.mail.store import MailStore
from tests.service_fakes import peer

#: Steps the test drives at most (each one write of at most a slice).
MAX_STEPS = 200


class OneWriteAtATime(StringTransport):
    """A transport whose buffer is full after every write: the streamer writes one chunk,
    then waits for `resumeProducing`."""

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.producer is not None:
            self.producer.pauseProducing()


class OneLink:
    """The node's sender over one real streamer on `OneWriteAtATime`, slicing on, with
    RetroShare's own slice and write sizes (1,400 bytes) so a 5,000-byte mail leaves in several
    writes."""

    def __init__(self, clock: MemoryReactorClock) -> None:
        self.streamer = PQIStreamer(clock, slice_size=SLICE_SIZE, whole_size=SLICE_SIZE,
                                    group_size=GROUP_SIZE)
        self.transport = OneWriteAtATime()
        self.streamer.makeConnection(self.transport)
        self.streamer.enframer.enable_slicing()

    def send(self, ssl_id: object, item: object) -> object:
        return self.streamer.send(item)  # type: ignore[arg-type]

    def connected_peers(self) -> list:
        return []


def _written_subjects(data: bytes) -> list[str]:
    """Subjects of the mails that arrived whole in ``data`` (reassembled as the peer would)."""
    events = Deframer().feed(data)
    return [decode(e.data).subject for e in events
            if isinstance(e, ItemReceived) and isinstance(decode(e.data), MsgItem)]


def test_mails_ending_alike_are_delivered_only_when_written(tmp_path: Path) -> None:
    """Forty 5,000-byte mails, different subjects, one identical ending: the link writes one
    chunk at a time and every step waits past the settle delay; at every step each mail
    reported delivered has arrived whole at the peer, and in the end all forty are."""
    clock = MemoryReactorClock()
    clock.advance(1_700_000_000)
    link = OneLink(clock)
    events: list = []
    svc = MailService(link, clock, MailStore(tmp_path / "mail.sqlite"),
                      lambda ssl_id: link.streamer, events.append)
    bob = peer(2)
    svc.peer_connected(bob)
    ending = "the same long ending " * 220
    ids = {svc.send_mail([bob.ssl_id], f"mail {n}", f"<p>{n}</p>{ending}"): f"mail {n}"
           for n in range(40)}
    for _ in range(MAX_STEPS):
        clock.advance(SETTLE_DELAY + 0.1)
        arrived = set(_written_subjects(link.transport.value()))
        delivered = {ids[e.mail_id] for e in events if isinstance(e, MailDelivered)}
        assert delivered <= arrived, sorted(delivered - arrived)
        if len(delivered) == len(ids):
            break
        link.streamer.resumeProducing()
    assert len(delivered) == 40 and svc.outbox() == []
    svc.stop()
    svc.store.close()


def test_sent_handle_reports_the_last_byte(tmp_path: Path) -> None:
    """The streamer's handle is QUEUED until the item's last slice is written, then WRITTEN
    (its Deferred fires once); an item still queued when the link drops is DROPPED and its
    Deferred fails."""
    clock = MemoryReactorClock()
    link = OneLink(clock)
    body = "x" * 5000
    first = link.streamer.send(MsgItem(MsgFlags(0), 1, 1, "a", body))
    second = link.streamer.send(MsgItem(MsgFlags(0), 1, 1, "b", body))
    fired: list[object] = []
    first.when_written().addCallback(fired.append)
    failed: list[object] = []
    second.when_written().addErrback(failed.append)
    steps = 0
    while first.state == SendState.QUEUED and steps < MAX_STEPS:
        assert fired == []
        link.streamer.resumeProducing()
        steps += 1
    assert first.state == SendState.WRITTEN and fired == [first]
    assert _written_subjects(link.transport.value()) == ["a"]
    assert second.state == SendState.QUEUED
    link.streamer.connectionLost()
    assert second.state == SendState.DROPPED and len(failed) == 1
    assert first.when_written().result is first  # type: ignore[attr-defined]
