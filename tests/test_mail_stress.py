"""Mail under load with a receiver that keeps dying (issue 14, finding 1): thousands of mails
whose bodies end alike, a link that writes a little at a time, the receiver killed again and
again with bytes in flight; no mail is reported delivered before it arrived, and in the end
every mail is in the receiver's inbox exactly once and the sender's outbox is empty."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport

from pqi.interfaces import DisconnectReason
from pqi.wire.errors import QueueFullError
from pqi.wire.streamer import PQIStreamer
from services.mail.service import SETTLE_DELAY, MailDelivered, MailReceived, MailService
from services.mail.store import MailStore
from tests.mail_pair import ALICE, BOB, BUFFER, MailPair, Wire

#: Mails sent, kills of the receiver, and the bounds of the simulation.
MAILS = 2000
KILLS = 6
MAX_STEPS = 200_000
#: Simulated time per step (s).
STEP = 0.05

class Sender:
    """The node's sender for alice's mail service: the current link's Sent handle."""

    def __init__(self) -> None:
        self.link: PQIStreamer | None = None

    def send(self, ssl_id: object, item: object) -> object:
        if self.link is None:
            return False
        try:
            return self.link.send(item)  # type: ignore[arg-type]
        except QueueFullError:
            return False

    def connected_peers(self) -> list:
        return []


class Discard:
    """Bob's mail service sends nothing; its sender is never used."""

    def send(self, ssl_id: object, item: object) -> bool:
        return False

    def connected_peers(self) -> list:
        return []


@pytest.mark.slow
def test_thousands_of_alike_mails_survive_a_dying_receiver(tmp_path: Path) -> None:
    """2,000 mails with one 2 KB ending, bob killed six times with bytes on the wire: every
    MailDelivered names a mail bob has; at the end bob has each mail once, alice's outbox is
    empty."""
    rng = random.Random(14)
    clock = MemoryReactorClock()
    clock.advance(1_700_000_000)
    sender = Sender()
    delivered: list[int] = []
    alice = MailService(sender, clock, MailStore(tmp_path / "alice.sqlite"),
                        lambda ssl_id: sender.link,
                        lambda e: delivered.append(e.mail_id)
                        if isinstance(e, MailDelivered) else None)
    received: list[str] = []

    def start_bob() -> MailService:
        return MailService(Discard(), clock, MailStore(tmp_path / "bob.sqlite"),
                           lambda ssl_id: None,
                           lambda e: received.append(e.mail.subject)
                           if isinstance(e, MailReceived) else None)

    def connect() -> tuple[PQIStreamer, PQIStreamer, Wire]:
        out, inbound = PQIStreamer(clock), PQIStreamer(clock, on_item=lambda item:
                                                       bob.receive(ALICE, item))
        wire = Wire()
        out.makeConnection(wire)
        inbound.makeConnection(StringTransport())
        out.enframer.enable_slicing()
        sender.link = out
        alice.peer_connected(BOB)
        bob.peer_connected(ALICE)
        return out, inbound, wire

    bob = start_bob()
    out, inbound, wire = connect()
    ending = "<p>the same long ending, again and again</p>" * 46
    subjects = {}
    for n in range(MAILS):
        subject = f"mail {n}"
        subjects[alice.send_mail([BOB.ssl_id], subject, f"<p>{n}</p>{ending}")] = subject
    kills_at = sorted(rng.sample(range(50, 3000), KILLS))
    kills = 0
    for step in range(MAX_STEPS):
        inbound.dataReceived(wire.carry(rng.randrange(1, 3 * BUFFER)))
        clock.advance(STEP)
        assert {subjects[i] for i in delivered} <= set(received)
        if kills < KILLS and step == kills_at[kills]:
            kills += 1
            wire.carry(rng.randrange(0, BUFFER))  # bytes lost with the dead process
            alice.peer_disconnected(BOB, DisconnectReason.CLOSED)
            sender.link = None
            out.connectionLost()
            bob.stop()
            bob.store.close()
            clock.advance(rng.uniform(0.1, 3 * SETTLE_DELAY))
            bob = start_bob()
            out, inbound, wire = connect()
        if kills == KILLS and not alice.outbox() and not wire.value():
            break
    assert kills == KILLS
    assert alice.outbox() == []
    assert sorted(set(delivered)) == sorted(subjects)
    inbox = [m.subject for m in bob.inbox()]
    assert len(inbox) == MAILS and set(inbox) == set(subjects.values())
    assert sorted(received) == sorted(inbox)  # each reported once, across restarts
    alice.stop()
    bob.stop()
    alice.store.close()
    bob.store.close()


#: Bob's process reads its socket buffer only every this many steps (2 s): bytes sit there
#: longer than `SETTLE_DELAY`, as with a receiver busy or stalled before it dies.
LAG_STEPS = 40


def _run_lagging_receiver(pair: MailPair, subjects: dict[int, str], kills: int,
                          rng: random.Random, window: range = range(100, 3000)) -> int:
    """Carry bytes both ways, bob reading every `LAG_STEPS`, killing bob ``kills`` times at
    steps drawn from ``window`` (his unread buffer lost); every step, each mail alice counts
    delivered must be in bob's inbox, unless the settle rule is in use.  Returns the kills."""
    kills_at = sorted(rng.sample(window, kills))
    made = 0
    for step in range(MAX_STEPS):
        pair.carry(rng.randrange(1, 3 * BUFFER), 1 << 16)
        if step % LAG_STEPS == 0:
            pair.process_bob(len(pair.bob_buffer))
        pair.clock.advance(STEP)
        if pair.receipts:
            assert {subjects[i] for i in pair.delivered} <= set(pair.received)
        if made < kills and step == kills_at[made]:
            made += 1
            pair.kill_bob(lambda: pair.clock.advance(rng.uniform(0.1, 3 * SETTLE_DELAY)))
        if made == kills and not pair.alice.outbox() and not pair.to_bob.value():
            break
    return made


@pytest.mark.slow
def test_receipts_give_exactly_once_with_a_lagging_receiver_killed_again_and_again(
        tmp_path: Path) -> None:
    """rsproto to rsproto, with receipts: 2,000 mails with one 2 KB ending, bob reading his
    socket buffer every 2 s and killed six times with unread bytes in it; no mail is reported
    delivered before bob committed it, and in the end bob has each mail exactly once and
    alice's outbox is empty."""
    rng = random.Random(1414)
    clock = MemoryReactorClock()
    clock.advance(1_700_000_000)
    pair = MailPair(tmp_path, clock, receipts=True)
    ending = "<p>the same long ending, again and again</p>" * 46
    subjects = {pair.alice.send_mail([BOB.ssl_id], f"mail {n}", f"<p>{n}</p>{ending}"):
                f"mail {n}" for n in range(MAILS)}
    assert _run_lagging_receiver(pair, subjects, KILLS, rng) == KILLS
    assert pair.alice.outbox() == []
    assert sorted(set(pair.delivered)) == sorted(subjects)
    inbox = [m.subject for m in pair.bob.inbox()]
    assert len(inbox) == MAILS and set(inbox) == set(subjects.values())
    assert sorted(pair.received) == sorted(inbox)
    pair.close()


@pytest.mark.slow
def test_without_receipts_a_lagging_receiver_loses_mail(tmp_path: Path) -> None:
    """The control: the same lagging, dying receiver with the settle rule alone (what a
    RetroShare peer allows) loses mails that sat in bob's buffer past the settle delay:
    alice's outbox is empty, yet bob's inbox misses some.  Receipts are what close this."""
    rng = random.Random(1414)
    clock = MemoryReactorClock()
    clock.advance(1_700_000_000)
    pair = MailPair(tmp_path, clock, receipts=False)
    ending = "<p>the same long ending, again and again</p>" * 46
    subjects = {pair.alice.send_mail([BOB.ssl_id], f"mail {n}", f"<p>{n}</p>{ending}"):
                f"mail {n}" for n in range(MAILS // 4)}
    assert _run_lagging_receiver(pair, subjects, 3, rng, range(50, 200)) == 3
    inbox = {m.subject for m in pair.bob.inbox()}
    assert pair.alice.outbox() == [] and len(inbox) < len(subjects)
    pair.close()
