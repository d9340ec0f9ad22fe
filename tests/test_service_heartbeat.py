"""Heartbeat timing, driven by a MemoryReactorClock: periodic sends and silent-link resets."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock

from pqi.interfaces import DisconnectReason
from pqi.items.heartbeat import HeartbeatItem
from services.heartbeat import HEARTBEAT_PERIOD, HEARTBEAT_TIMEOUT, HeartbeatService
from tests.service_fakes import RecordingSender, peer


def make(last_read: dict) -> tuple[HeartbeatService, RecordingSender, MemoryReactorClock, list]:
    clock = MemoryReactorClock()
    sender = RecordingSender()
    resets: list = []
    hb = HeartbeatService(sender, clock, last_read.get, lambda s, r: resets.append((s, r)))
    hb.start()
    return hb, sender, clock, resets


def test_sends_every_period() -> None:
    """One heartbeat on enable, then one per 5 s period to each enabled peer."""
    hb, sender, clock, _ = make({})
    a, b = peer(1), peer(2)
    hb.peer_connected(a)
    hb.peer_connected(b)
    assert len(sender.sent) == 2
    for _ in range(4):
        clock.advance(HEARTBEAT_PERIOD)
    beats = [s for s, i in sender.sent if isinstance(i, HeartbeatItem)]
    assert beats.count(a.ssl_id) == 5 and beats.count(b.ssl_id) == 5
    hb.stop()


def test_live_peer_is_kept() -> None:
    """A peer whose heartbeats keep coming is never reset, however long it runs."""
    hb, _, clock, resets = make({})
    a = peer(1)
    hb.peer_connected(a)
    for _ in range(100):
        clock.advance(HEARTBEAT_PERIOD)
        hb.receive(a, HeartbeatItem())
    assert resets == []
    hb.stop()


def test_silent_peer_reset_after_both_thresholds() -> None:
    """No heartbeat for 100 s and no data read for 60 s: the link is reset with TIMEOUT,
    once, on the first period after both thresholds pass."""
    last_read: dict = {}
    hb, _, clock, resets = make(last_read)
    a = peer(1)
    hb.peer_connected(a)
    last_read[a.ssl_id] = clock.seconds()
    ticks = 0
    while not resets and ticks < 100:
        clock.advance(HEARTBEAT_PERIOD)
        ticks += 1
    assert resets == [(a.ssl_id, DisconnectReason.TIMEOUT)]
    assert ticks * HEARTBEAT_PERIOD == HEARTBEAT_TIMEOUT + HEARTBEAT_PERIOD
    clock.advance(HEARTBEAT_PERIOD * 10)
    assert len(resets) == 1
    hb.stop()


def test_data_without_heartbeats_keeps_link() -> None:
    """A peer that sends other data (but no heartbeats) stays: RetroShare needs both
    thresholds passed."""
    last_read: dict = {}
    hb, _, clock, resets = make(last_read)
    a = peer(1)
    hb.peer_connected(a)
    for _ in range(60):
        clock.advance(HEARTBEAT_PERIOD)
        last_read[a.ssl_id] = clock.seconds()
    assert resets == []
    last_read[a.ssl_id] = clock.seconds() - 61
    clock.advance(HEARTBEAT_PERIOD)
    assert resets == [(a.ssl_id, DisconnectReason.TIMEOUT)]
    hb.stop()


def test_stop_ends_timer() -> None:
    """After stop no call is left on the reactor."""
    hb, _, clock, _ = make({})
    hb.stop()
    assert clock.getDelayedCalls() == []
