"""Link-up timing: services talk to a peer only once it can take their items.

The schedule core on its own, service control driving it on a `Clock`, the RetroShare-like
mode (``drop_until_started``), and the delay checked against what real nodes did in the
captures.
"""

from __future__ import annotations

import json

import pytest
from twisted.internet.task import Clock

from pqi.core import is_core
from pqi.interfaces import DisconnectReason
from pqi.items.serviceinfo import ServiceInfoListItem
from pqi.items.status import StatusItem
from services.linkup import (
    LINKUP_DELAY,
    LinkUpSchedule,
    StartServices,
    WaitingPeersFullError,
)
from services.service_control import ServiceControl
from tests.service_fakes import RecordingLinks, peer
from tests.test_service_control import Recorder

A, B = peer(1), peer(2)


# --- the core -------------------------------------------------------------------------------


def test_schedule_keeps_the_core_contract_and_starts_after_the_delay() -> None:
    """A negotiated peer is due ``delay`` seconds later; nothing comes out before, one
    StartServices comes out at the deadline, and nothing more after."""
    schedule = LinkUpSchedule(0.5)
    assert is_core(schedule)
    schedule.negotiated(A.ssl_id, now=10.0)
    assert schedule.next_deadline() == 10.5 and schedule.waiting(A.ssl_id)
    schedule.handle_timer(10.4)
    assert schedule.drain(10.4) == []
    schedule.handle_timer(10.5)
    assert schedule.drain(10.5) == [StartServices(A.ssl_id)]
    assert schedule.next_deadline() is None and not schedule.waiting(A.ssl_id)


def test_schedule_forget_drops_the_wait_and_a_queued_start() -> None:
    """A peer forgotten (link down, or it spoke first) never gets a StartServices, even one
    already queued but not drained."""
    schedule = LinkUpSchedule(0.5)
    schedule.negotiated(A.ssl_id, now=0.0)
    schedule.negotiated(B.ssl_id, now=0.0)
    schedule.forget(A.ssl_id)
    schedule.handle_timer(1.0)
    schedule.forget(B.ssl_id)
    assert schedule.drain(1.0) == [] and len(schedule) == 0


def test_schedule_without_delay_starts_at_once() -> None:
    """Delay 0 (no clock): the StartServices is queued by ``negotiated`` itself."""
    schedule = LinkUpSchedule(0.0)
    schedule.negotiated(A.ssl_id, now=3.0)
    assert schedule.drain(3.0) == [StartServices(A.ssl_id)]
    assert schedule.next_deadline() is None


def test_schedule_bound_holds() -> None:
    """At most ``max_peers`` peers wait at once; one more is refused with a typed error, a
    peer already waiting may negotiate again."""
    schedule = LinkUpSchedule(1.0, max_peers=2)
    schedule.negotiated(A.ssl_id, now=0.0)
    schedule.negotiated(B.ssl_id, now=0.0)
    schedule.negotiated(B.ssl_id, now=0.1)
    with pytest.raises(WaitingPeersFullError):
        schedule.negotiated(peer(3).ssl_id, now=0.0)
    assert len(schedule) == 2


# --- service control on a clock --------------------------------------------------------------


def control_with_recorder(clock: Clock, **kwargs) -> tuple[ServiceControl, RecordingLinks,
                                                           Recorder]:
    links = RecordingLinks()
    control = ServiceControl(links, clock, **kwargs)
    recorder = Recorder(control, clock, 0x0102)  # announced as the status service
    control.add_service(recorder)
    links.up.add(A.ssl_id)
    return control, links, recorder


def their_list(control: ServiceControl) -> ServiceInfoListItem:
    return ServiceInfoListItem(services=control.our_list())


def test_services_start_linkup_delay_after_the_peers_list() -> None:
    """The peer's list enables the service at once (its items would be taken) but the
    service hears of the peer only LINKUP_DELAY seconds later."""
    clock = Clock()
    control, _, recorder = control_with_recorder(clock)
    control.link_up(A)
    control.deliver(A, their_list(control))
    assert 0x0102 in control.negotiated(A.ssl_id) and not control.started(A.ssl_id)
    assert control.enabled(A.ssl_id) == frozenset()
    clock.advance(LINKUP_DELAY * 0.9)
    assert recorder.events == []
    clock.advance(LINKUP_DELAY * 0.1)
    assert recorder.events == [("connected", A.ssl_id)] and control.started(A.ssl_id)
    assert 0x0102 in control.enabled(A.ssl_id)


def test_first_item_from_the_peer_starts_the_services_before_it_is_delivered() -> None:
    """An item of the peer proves it processed our list: the services start at once, before
    the item is handed over, and the timer does not start them twice."""
    clock = Clock()
    control, _, recorder = control_with_recorder(clock)
    control.link_up(A)
    control.deliver(A, their_list(control))
    control.deliver(A, StatusItem(send_time=0, status=1))
    assert [kind for kind, _ in recorder.events] == ["connected", "item"]
    clock.advance(LINKUP_DELAY * 2)
    assert [kind for kind, _ in recorder.events] == ["connected", "item"]


def test_link_down_before_start_is_not_heard_and_cancels_the_start() -> None:
    """A service that never heard of the peer does not hear it leave, and nothing starts
    after the link is gone."""
    clock = Clock()
    control, _, recorder = control_with_recorder(clock)
    control.link_up(A)
    control.deliver(A, their_list(control))
    control.link_down(A, DisconnectReason.CLOSED)
    clock.advance(LINKUP_DELAY * 2)
    assert recorder.events == [] and clock.getDelayedCalls() == []


def test_retroshare_like_control_drops_items_until_its_services_started() -> None:
    """``drop_until_started``: items of the peer are dropped and counted until the delay
    passed (an item does not start anything early), then taken."""
    clock = Clock()
    control, _, recorder = control_with_recorder(clock, linkup_delay=0.2,
                                                 drop_until_started=True)
    control.link_up(A)
    control.deliver(A, their_list(control))
    control.deliver(A, StatusItem(send_time=0, status=1))
    assert recorder.events == [] and control.dropped_in[(A.ssl_id, 0x0102)] == 1
    clock.advance(0.2)
    control.deliver(A, StatusItem(send_time=0, status=2))
    assert [kind for kind, _ in recorder.events] == ["connected", "item"]


# --- the delay against the captures ---------------------------------------------------------


def captured_linkup_delays(paths) -> list[float]:
    """For each captured connection: seconds from the later of the two ServiceInfo lists to
    the first service item the capturing node sent."""
    delays = []
    for path in paths:
        conns: dict[tuple[str, int], dict[str, float]] = {}
        with open(path) as f:
            for line in f:
                d = json.loads(line)
                c = conns.setdefault((d["peer"], d["conn"]), {})
                key = ("si_" if d["service"] == "0x0020" else "first_") + d["dir"]
                c.setdefault(key, d["t"])
        for c in conns.values():
            if {"si_in", "si_out", "first_out"} <= set(c):
                delays.append(c["first_out"] - max(c["si_in"], c["si_out"]))
    return delays


def test_linkup_delay_exceeds_every_captured_delay(captures) -> None:
    """Real RetroShare nodes sent their first service items 0.17 to 0.38 s after the later
    ServiceInfo list, never before it; our LINKUP_DELAY waits longer than any of them."""
    paths = sorted(captures.glob("*.items.jsonl"))
    paths += sorted((captures.parent / "captures2").glob("*.items.jsonl"))
    delays = captured_linkup_delays(paths)
    assert len(delays) >= 10
    assert min(delays) > 0
    assert max(delays) < LINKUP_DELAY
