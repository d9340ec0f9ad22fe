"""Service control: our ServiceInfo list, negotiation, and the per-peer item gate."""

from __future__ import annotations

import json

import pytest
from twisted.internet.task import Clock

from pqi.interfaces import DisconnectReason
from pqi.items.heartbeat import HeartbeatItem
from pqi.items.ids import SERVICE_MAIL_RECEIPT
from pqi.items.serviceinfo import ServiceInfo, ServiceInfoListItem, full_service_id
from pqi.items.status import StatusItem
from pqi.wire.item import UnknownItem, decode
from services.base import Service
from services.bwctrl import BandwidthService
from services.heartbeat import HeartbeatService
from services.registry import NODE_SERVICES
from services.rtt import RttService
from services.service_control import ServiceControl, ServiceControlError, compatible
from services.status import StatusService
from tests.service_fakes import RecordingLinks, peer

#: The node's services by id.
SPECS = {spec.service_id: spec for spec in NODE_SERVICES}


class Recorder(Service):
    """A service that records its hooks, to observe what control does to it (it announces
    itself as the node's service of ``service_id``)."""

    def __init__(self, sender, reactor, service_id: int) -> None:
        self.spec = SPECS[service_id]  # type: ignore[misc]
        super().__init__(sender, reactor)
        self.events: list[tuple[str, object]] = []

    def peer_connected(self, p) -> None:
        super().peer_connected(p)
        self.events.append(("connected", p.ssl_id))

    def peer_disconnected(self, p, reason) -> None:
        super().peer_disconnected(p, reason)
        self.events.append(("disconnected", reason))

    def receive(self, p, item) -> None:
        self.events.append(("item", item))


def make_control() -> tuple[ServiceControl, RecordingLinks, Clock]:
    links = RecordingLinks()
    control = ServiceControl(links)
    clock = Clock()
    return control, links, clock


def full_node(control: ServiceControl, clock: Clock) -> None:
    control.add_service(HeartbeatService(control, clock, lambda s: None, lambda s, r: None))
    control.add_service(StatusService(control, clock))
    control.add_service(RttService(control, clock))
    control.add_service(BandwidthService(control, clock))
    for sid in (0x0011, 0x0012):
        control.add_service(Recorder(control, clock, sid))


def captured_list(captures) -> ServiceInfoListItem:
    with open(captures / "alice.items.jsonl") as f:
        first = json.loads(f.readline())
    item = decode(bytes.fromhex(first["hex"]))
    assert isinstance(item, ServiceInfoListItem)
    return item


def test_our_list_carries_retroshares_entries(captures) -> None:
    """Each service we announce appears in RetroShare's captured list with the same name,
    version and minimum version."""
    control, _, clock = make_control()
    full_node(control, clock)
    theirs = captured_list(captures).services
    ours = control.our_list()
    assert set(ours) == {full_service_id(s) for s in (0x11, 0x12, 0x16, 0x20, 0x21, 0x102,
                                                      0x1011)}
    for key, entry in ours.items():
        assert theirs[key] == entry


def test_every_registered_service_announced_as_retroshare_does(captures) -> None:
    """Each service of the registry declares exactly the entry (name, version, minimum
    version) RetroShare's captured list has for its id; the one service of ours
    (mail receipts) has an id RetroShare's list does not hold, so a RetroShare node never
    enables it."""
    theirs = captured_list(captures).services
    for spec in NODE_SERVICES:
        key = full_service_id(spec.service_id)
        if spec.service_id == SERVICE_MAIL_RECEIPT:
            assert key not in theirs
            continue
        assert ServiceInfo(spec.name, key, *spec.version, *spec.min_version) == theirs[key]


def test_link_up_sends_list_first() -> None:
    """The first item on a new link is our ServiceInfo list, and nothing is enabled yet."""
    control, links, clock = make_control()
    full_node(control, clock)
    p = peer(1)
    links.up.add(p.ssl_id)
    control.link_up(p)
    sent = links.take()
    assert len(sent) == 1 and isinstance(sent[0][1], ServiceInfoListItem)
    assert sent[0][1].services == control.our_list()
    assert control.enabled(p.ssl_id) == frozenset()


def test_negotiation_with_retroshare_enables_common_services(captures) -> None:
    """Against RetroShare's real list every one of our services is enabled; the services hear
    peer_connected once, and the first items (status, heartbeat, bwctrl) go out."""
    control, links, clock = make_control()
    full_node(control, clock)
    p = peer(1)
    links.up.add(p.ssl_id)
    control.link_up(p)
    links.take()
    control.deliver(p, captured_list(captures))
    assert control.enabled(p.ssl_id) == {0x11, 0x12, 0x16, 0x21, 0x102, 0x1011}
    kinds = {type(i).__name__ for _, i in links.take()}
    assert {"StatusItem", "HeartbeatItem", "BwCtrlAllowedItem"} <= kinds


def test_peer_lacking_a_service() -> None:
    """A peer that does not list chat gets chat disabled: its chat items are dropped and
    counted, our chat service cannot send to it, and the other services work."""
    control, links, clock = make_control()
    full_node(control, clock)
    chat = next(s for s in control.services() if s.service_id == 0x12)
    p = peer(2)
    links.up.add(p.ssl_id)
    control.link_up(p)
    links.take()
    theirs = {k: v for k, v in control.our_list().items() if k != full_service_id(0x12)}
    control.deliver(p, ServiceInfoListItem(services=theirs))
    assert 0x12 not in control.enabled(p.ssl_id)
    assert control.enabled(p.ssl_id) == {0x11, 0x16, 0x21, 0x102, 0x1011}
    control.deliver(p, UnknownItem(0x12, 0x01, b""))
    control.deliver(p, UnknownItem(0x12, 0x01, b""))
    assert control.dropped_in[(p.ssl_id, 0x12)] == 2
    assert chat.events == []
    assert control.send(p.ssl_id, UnknownItem(0x12, 0x01, b"")) is False
    assert control.dropped_out[(p.ssl_id, 0x12)] == 1
    control.deliver(p, StatusItem(send_time=1, status=1))
    status = next(s for s in control.services() if s.service_id == 0x102)
    assert status.status_of(p.ssl_id) == 1


def test_items_before_negotiation_are_dropped() -> None:
    """Before the peer's list arrives no service is enabled, so its items are dropped."""
    control, links, clock = make_control()
    full_node(control, clock)
    p = peer(3)
    links.up.add(p.ssl_id)
    control.link_up(p)
    control.deliver(p, HeartbeatItem())
    assert control.dropped_in[(p.ssl_id, 0x16)] == 1


def test_incompatible_versions_and_names() -> None:
    """Different name, or a version under the other's minimum, disables the service."""
    ours = ServiceInfo("chat", full_service_id(0x12), 1, 0, 1, 0)
    assert compatible(ours, ours)
    assert not compatible(ours, ServiceInfo("Chat", full_service_id(0x12), 1, 0, 1, 0))
    assert not compatible(ours, ServiceInfo("chat", full_service_id(0x12), 0, 9, 0, 1))
    assert not compatible(ours, ServiceInfo("chat", full_service_id(0x12), 2, 0, 2, 0))
    assert compatible(ours, ServiceInfo("chat", full_service_id(0x12), 1, 5, 0, 1))


def test_link_down_tells_enabled_services_once() -> None:
    """Link loss calls peer_disconnected on exactly the enabled services, with the reason."""
    control, links, clock = make_control()
    rec = Recorder(control, clock, 0x11)
    other = Recorder(control, clock, 0x12)
    control.add_service(rec)
    control.add_service(other)
    p = peer(4)
    links.up.add(p.ssl_id)
    control.link_up(p)
    theirs = {k: v for k, v in control.our_list().items() if k != full_service_id(0x12)}
    control.deliver(p, ServiceInfoListItem(services=theirs))
    control.link_down(p, DisconnectReason.CLOSED)
    control.link_down(p, DisconnectReason.CLOSED)
    assert rec.events == [("connected", p.ssl_id), ("disconnected", DisconnectReason.CLOSED)]
    assert other.events == []
    assert control.connected_peers() == []


def test_duplicate_service_refused() -> None:
    """Two services with one id cannot both be announced."""
    control, _, clock = make_control()
    control.add_service(Recorder(control, clock, 0x11))
    with pytest.raises(ServiceControlError):
        control.add_service(Recorder(control, clock, 0x11))
