"""Bandwidth control: periodic allowance announcements and peers' allowances recorded."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock

from pqi.interfaces import DisconnectReason
from pqi.items.bwctrl import BwCtrlAllowedItem
from services.bwctrl import BWCTRL_PERIOD, BandwidthService
from tests.service_fakes import RecordingSender, peer


def test_announces_share_of_budget_periodically() -> None:
    """Each peer hears its share of the budget on enable and every period after."""
    clock = MemoryReactorClock()
    sender = RecordingSender()
    svc = BandwidthService(sender, clock, max_rate=1_000_000)
    svc.start()
    a, b = peer(1), peer(2)
    svc.peer_connected(a)
    svc.peer_connected(b)
    sender.sent.clear()
    clock.advance(BWCTRL_PERIOD)
    assert sorted(sender.sent) == sorted([(a.ssl_id, BwCtrlAllowedItem(500_000)),
                                          (b.ssl_id, BwCtrlAllowedItem(500_000))])
    svc.stop()
    assert clock.getDelayedCalls() == []


def test_records_peer_allowance() -> None:
    """What the peer allows us is kept while it is connected."""
    svc = BandwidthService(RecordingSender(), MemoryReactorClock())
    a = peer(1)
    svc.peer_connected(a)
    svc.receive(a, BwCtrlAllowedItem(7500000))
    assert svc.allowed_by_peer == {a.ssl_id: 7500000}
    svc.peer_disconnected(a, DisconnectReason.CLOSED)
    assert svc.allowed_by_peer == {}
