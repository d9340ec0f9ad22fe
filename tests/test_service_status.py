"""Status service: announce on connect and change, remember friends' statuses."""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock

from pqi.interfaces import DisconnectReason
from pqi.items.status import PeerStatus, StatusItem
from services.status import StatusService, StatusValueError
from tests.service_fakes import RecordingSender, peer


def make():
    clock = MemoryReactorClock()
    clock.advance(1795612522)
    sender = RecordingSender()
    changes: list = []
    svc = StatusService(sender, clock, lambda e: changes.append((e.peer.ssl_id, e.status)))
    return svc, sender, changes


def test_announces_online_on_connect() -> None:
    """A newly enabled peer gets our status, with the send time, as RetroShare does."""
    svc, sender, _ = make()
    a = peer(1)
    svc.peer_connected(a)
    assert sender.sent == [(a.ssl_id, StatusItem(send_time=1795612522, status=3))]


def test_set_status_goes_to_all_connected() -> None:
    """Changing our status re-announces it to every connected peer."""
    svc, sender, _ = make()
    a, b = peer(1), peer(2)
    svc.peer_connected(a)
    svc.peer_connected(b)
    sender.sent.clear()
    svc.set_status(PeerStatus.AWAY)
    assert sorted(sender.sent) == sorted([(a.ssl_id, StatusItem(1795612522, 1)),
                                          (b.ssl_id, StatusItem(1795612522, 1))])


def test_offline_and_unknown_cannot_be_announced() -> None:
    """OFFLINE and values RetroShare does not define raise StatusValueError."""
    svc, _, _ = make()
    with pytest.raises(StatusValueError):
        svc.set_status(PeerStatus.OFFLINE)
    with pytest.raises(StatusValueError):
        svc.set_status(9)


def test_friend_status_tracked_and_reported() -> None:
    """Received statuses are exposed and reported once per change; link loss is OFFLINE."""
    svc, _, changes = make()
    a = peer(1)
    svc.peer_connected(a)
    svc.receive(a, StatusItem(0, 3))
    svc.receive(a, StatusItem(0, 3))
    svc.receive(a, StatusItem(0, 2))
    assert svc.status_of(a.ssl_id) == PeerStatus.BUSY
    svc.peer_disconnected(a, DisconnectReason.CLOSED)
    assert svc.status_of(a.ssl_id) == PeerStatus.OFFLINE
    assert changes == [(a.ssl_id, 3), (a.ssl_id, 2), (a.ssl_id, 0)]


def test_captured_status_items(captures) -> None:
    """The captured away/online items decode to the values the service exposes."""
    import json

    from pqi.wire.item import decode
    svc, _, _ = make()
    a = peer(1)
    svc.peer_connected(a)
    seen = []
    with open(captures / "alice.items.jsonl") as f:
        for line in f:
            d = json.loads(line)
            if d["service"] == "0x0102" and d["dir"] == "out":
                svc.receive(a, decode(bytes.fromhex(d["hex"])))
                seen.append(svc.status_of(a.ssl_id))
    assert PeerStatus.AWAY in seen and seen[-1] == PeerStatus.ONLINE
