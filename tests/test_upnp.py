# -*- test-case-name: tests.test_upnp -*-
"""upnp/: the port-mapping state machine, the miniupnpc boundary and the Twisted service.

miniupnpc is a C library talking to a router; here a recording fake stands in for its ``UPnP``
object (a seam at an external library).  The real thing, against a real miniupnpd, is in
tests/test_lab_upnp.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from pqi.core import is_core
from upnp import (
    DEFAULT_LEASE,
    PORT_ATTEMPTS,
    AddMapping,
    CallFailed,
    Discover,
    ExternalAddress,
    Gateway,
    GatewayFound,
    MapperMisuseError,
    MappingAdded,
    MappingFailed,
    MappingRemoved,
    NoGateway,
    PortMapper,
    PortRequest,
    Protocol,
    QueryExternalAddress,
    RemoveMapping,
    UpnpService,
    UpnpState,
    UpnpStatus,
)

WAN = "93.184.216.34"
LAN = "172.31.1.20"
TCP7812 = PortRequest(Protocol.TCP, 7812)
UDP7813 = PortRequest(Protocol.UDP, 7813)


class FakeIgd:
    """Records every call made on it, like ``miniupnpc.UPnP`` answering from one router."""

    def __init__(self, devices: int = 1, external: str = WAN,
                 taken: set[tuple[int, str]] | None = None,
                 fail: dict[str, str] | None = None) -> None:
        self.discoverdelay = 0
        self.lanaddr = LAN
        self.devices = devices
        self.external = external
        self.taken = taken or set()
        self.fail = fail or {}
        self.calls: list[tuple[Any, ...]] = []
        self.table: dict[tuple[int, str], tuple[str, int, int]] = {}
        self.gateway = Gateway(lambda: self)

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise Exception(self.fail[name])

    def discover(self) -> int:
        self.calls.append(("discover", self.discoverdelay))
        return self.devices

    def selectigd(self) -> str:
        self.calls.append(("selectigd",))
        self._maybe_fail("selectigd")
        return "http://192.168.1.1:5000/ctl/IPConn"

    def externalipaddress(self) -> str:
        self.calls.append(("externalipaddress",))
        self._maybe_fail("externalipaddress")
        return self.external

    def addportmapping(self, eport: int, proto: str, host: str, iport: int, desc: str,
                       remote: str, lease: int = 0) -> bool:
        self.calls.append(("add", eport, proto, host, iport, desc, remote, lease))
        self._maybe_fail("add")
        if (eport, proto) in self.taken:
            raise Exception("ConflictInMappingEntry")
        self.table[(eport, proto)] = (host, iport, lease)
        return True

    def deleteportmapping(self, eport: int, proto: str) -> bool:
        self.calls.append(("delete", eport, proto))
        self._maybe_fail("delete")
        if self.table.pop((eport, proto), None) is None:
            raise Exception("NoSuchEntryInArray")
        return True

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]


def poll(mapper: PortMapper) -> object | None:
    """The gateway call the mapper's outputs hand out (its status changes left aside)."""
    calls = [o for o in mapper.drain(0.0) if not isinstance(o, UpnpStatus)]
    assert len(calls) <= 1, calls  # one call outstanding at most
    return calls[0] if calls else None


def drive(mapper: PortMapper, igd: FakeIgd, now: float = 0.0, rounds: int = 50) -> None:
    """Run the mapper's calls against ``igd`` until it has nothing to ask (bounded)."""
    for _ in range(rounds):
        action = poll(mapper)
        if action is None:
            return
        mapper.handle(igd.gateway.perform(action), now)
    raise AssertionError("mapper still busy after the round limit")


# --- the state machine ----------------------------------------------------------------------

def test_maps_tcp_then_udp_one_call_at_a_time() -> None:
    """Discovery, then one AddMapping per port, never two calls outstanding; mapped at the end,
    with the external address and a renewal deadline halfway through the lease."""
    mapper = PortMapper([TCP7812, UDP7813], lease=600)
    mapper.start(100.0)
    assert mapper.state is UpnpState.DISCOVERING
    first = poll(mapper)
    assert first == Discover(2000)
    assert poll(mapper) is None  # one outstanding call at most
    mapper.handle(GatewayFound(WAN, LAN), 100.0)
    assert mapper.state is UpnpState.MAPPING
    add_tcp = poll(mapper)
    assert add_tcp == AddMapping(Protocol.TCP, 7812, 7812, 600, "rsproto")
    assert poll(mapper) is None
    mapper.handle(MappingAdded(), 101.0)
    assert poll(mapper) == AddMapping(Protocol.UDP, 7813, 7813, 600, "rsproto")
    mapper.handle(MappingAdded(), 101.0)
    assert poll(mapper) is None
    status = mapper.status
    assert status.state is UpnpState.MAPPED
    assert status.external_ip == ipaddress.IPv4Address(WAN)
    assert status.external_port(Protocol.TCP) == 7812
    assert status.external_port(Protocol.UDP) == 7813
    assert {m.internal_host for m in status.mappings} == {LAN}
    assert mapper.next_deadline() == 101.0 + 300


def test_no_gateway_falls_back_and_looks_again_later() -> None:
    """No answer: state "no gateway", no mapping calls, and a fresh discovery only when the
    rediscovery interval has passed."""
    igd = FakeIgd(devices=0)
    mapper = PortMapper([TCP7812], rediscover_interval=300.0)
    mapper.start(0.0)
    drive(mapper, igd)
    assert mapper.state is UpnpState.NO_GATEWAY
    assert mapper.state.value == "no gateway"
    assert "no UPnP device answered" in mapper.detail
    assert igd.named("add") == []
    assert mapper.next_deadline() == 300.0
    mapper.handle_timer(299.0)
    assert poll(mapper) is None
    mapper.handle_timer(300.0)
    assert poll(mapper) == Discover(2000)


def test_gateway_without_public_address_maps_nothing() -> None:
    """An IGD reporting a private external address (a NAT behind a NAT) or none: we do not
    map, and say why."""
    for external in ("172.16.0.7", "", "not an address"):
        igd = FakeIgd(external=external)
        mapper = PortMapper([TCP7812])
        mapper.start(0.0)
        drive(mapper, igd)
        assert mapper.state is UpnpState.FAILED
        assert "no public external address" in mapper.detail
        assert igd.named("add") == []
        assert mapper.status.external_ip is None


def test_taken_external_port_tries_the_next_ones() -> None:
    """ConflictInMappingEntry: the next external port is tried (the internal one stays)."""
    igd = FakeIgd(taken={(7812, "TCP")})
    mapper = PortMapper([TCP7812])
    mapper.start(0.0)
    drive(mapper, igd)
    assert [c[1] for c in igd.named("add")] == [7812, 7813]
    assert mapper.state is UpnpState.MAPPED
    assert mapper.status.external_port(Protocol.TCP) == 7813
    assert igd.table == {(7813, "TCP"): (LAN, 7812, DEFAULT_LEASE)}


def test_every_port_refused_is_a_failure_with_the_reason() -> None:
    """After PORT_ATTEMPTS refusals the mapping is given up, and the IGD's reason is kept."""
    igd = FakeIgd(taken={(p, "TCP") for p in range(7812, 7812 + PORT_ATTEMPTS)})
    mapper = PortMapper([TCP7812])
    mapper.start(0.0)
    drive(mapper, igd)
    assert len(igd.named("add")) == PORT_ATTEMPTS
    assert mapper.state is UpnpState.FAILED
    assert "ConflictInMappingEntry" in mapper.detail


def test_permanent_only_gateway_gets_a_permanent_mapping() -> None:
    """UPnP error 725 OnlyPermanentLeasesSupported: retried with lease 0; nothing to renew."""

    class PermanentOnly(FakeIgd):
        def addportmapping(self, eport: int, proto: str, host: str, iport: int, desc: str,
                           remote: str, lease: int = 0) -> bool:
            if lease:
                self.calls.append(("add", eport, proto, host, iport, desc, remote, lease))
                raise Exception("OnlyPermanentLeasesSupported")
            return super().addportmapping(eport, proto, host, iport, desc, remote, lease)

    igd = PermanentOnly()
    mapper = PortMapper([TCP7812])
    mapper.start(0.0)
    drive(mapper, igd)
    assert [c[-1] for c in igd.named("add")] == [DEFAULT_LEASE, 0]
    assert mapper.state is UpnpState.MAPPED
    assert mapper.status.mappings[0].expires is None
    assert mapper.next_deadline() is None


def test_renewal_re_adds_each_mapping_and_rereads_the_address() -> None:
    """At the deadline each mapping is added again (same ports) and the external address is
    read again: an ISP that changed it is noticed."""
    igd = FakeIgd()
    mapper = PortMapper([TCP7812, UDP7813], lease=100)
    mapper.start(0.0)
    drive(mapper, igd)
    assert mapper.next_deadline() == 50.0
    igd.calls.clear()
    igd.external = "198.7.7.7"  # not reserved: the ISP moved us
    mapper.handle_timer(50.0)
    assert mapper.state is UpnpState.MAPPING
    drive(mapper, igd, now=50.0)
    assert [c[0:3] for c in igd.calls] == [("add", 7812, "TCP"), ("add", 7813, "UDP"),
                                           ("externalipaddress",)]
    assert mapper.state is UpnpState.MAPPED
    assert mapper.status.external_ip == ipaddress.IPv4Address("198.7.7.7")
    assert mapper.next_deadline() == 100.0


def test_renewal_refused_drops_that_mapping_only() -> None:
    """A renewal refused for UDP keeps TCP mapped (no port hunting during a renewal)."""
    igd = FakeIgd()
    mapper = PortMapper([TCP7812, UDP7813], lease=100)
    mapper.start(0.0)
    drive(mapper, igd)
    igd.taken.add((7813, "UDP"))
    mapper.handle_timer(50.0)
    drive(mapper, igd, now=50.0)
    assert mapper.state is UpnpState.MAPPED
    assert [m.protocol for m in mapper.status.mappings] == [Protocol.TCP]
    assert len(igd.named("add")) == 4  # two at first, two renewals, no retries


def test_stop_removes_every_mapping() -> None:
    """Stopping gives back what we hold; then "stopped"."""
    igd = FakeIgd()
    mapper = PortMapper([TCP7812, UDP7813])
    mapper.start(0.0)
    drive(mapper, igd)
    mapper.stop(10.0)
    assert mapper.state is UpnpState.STOPPING
    drive(mapper, igd, now=10.0)
    assert igd.named("delete") == [("delete", 7812, "TCP"), ("delete", 7813, "UDP")]
    assert igd.table == {}
    assert mapper.finished and mapper.state.value == "stopped"
    assert mapper.next_deadline() is None


def test_stop_while_a_mapping_is_being_granted_removes_it_too() -> None:
    """The gateway grants a mapping after we decided to stop: it is removed as well."""
    mapper = PortMapper([TCP7812])
    mapper.start(0.0)
    poll(mapper)
    mapper.handle(GatewayFound(WAN, LAN), 0.0)
    assert isinstance(poll(mapper), AddMapping)
    mapper.stop(1.0)
    assert not mapper.finished
    mapper.handle(MappingAdded(), 1.0)
    assert poll(mapper) == RemoveMapping(Protocol.TCP, 7812)
    mapper.handle(CallFailed("gateway gone"), 1.0)  # removal failing still ends the stop
    assert mapper.finished


def test_stop_before_start_and_twice() -> None:
    """Stopping an idle mapper ends at once; stopping again changes nothing."""
    mapper = PortMapper([TCP7812])
    mapper.stop(0.0)
    assert mapper.finished
    mapper.stop(1.0)
    assert mapper.finished and poll(mapper) is None


def test_misuse_is_reported() -> None:
    """An outcome with no call outstanding, or a second start, is the caller's bug."""
    mapper = PortMapper([TCP7812])
    with pytest.raises(MapperMisuseError):
        mapper.handle(MappingAdded(), 0.0)
    mapper.start(0.0)
    with pytest.raises(MapperMisuseError):
        mapper.start(0.0)
    with pytest.raises(ValueError):
        PortRequest(Protocol.TCP, 0)
    with pytest.raises(ValueError):
        PortMapper([TCP7812], lease=-1)


# --- a property: whatever the gateway does, a stop leaves nothing mapped --------------------

_STEP = st.sampled_from(["ok", "fail-add", "fail-delete", "no-gateway", "timer", "stop"])


@pytest.mark.slow
@given(steps=st.lists(_STEP, max_size=30))
def test_any_gateway_behaviour_ends_with_nothing_mapped(steps: list[str]) -> None:
    """Random refusals, vanishing gateways and renewals, then a stop: one call at a time
    throughout, the stop always finishes, and the gateway holds none of our mappings (unless
    it refused the very removal)."""
    igd = FakeIgd()
    gateway = Gateway(lambda: igd)
    mapper = PortMapper([TCP7812, UDP7813], lease=60, rediscover_interval=30.0)
    now = 0.0
    mapper.start(now)
    for step in steps + ["stop"]:
        igd.fail.clear()
        igd.devices = 1
        if step == "fail-add":
            igd.fail["add"] = "ActionFailed"
        elif step == "fail-delete":
            igd.fail["delete"] = "ActionFailed"
        elif step == "no-gateway":
            igd.devices = 0
        elif step == "timer":
            now += 60.0
            mapper.handle_timer(now)
        elif step == "stop":
            mapper.stop(now)
        action = poll(mapper)
        if action is not None:
            assert poll(mapper) is None
            mapper.handle(gateway.perform(action), now)
    igd.fail.clear()
    for _ in range(10):
        action = poll(mapper)
        if action is None:
            break
        mapper.handle(gateway.perform(action), now)
    assert mapper.finished
    deletes = {(c[1], c[2]) for c in igd.named("delete")}
    refused_removals = sum(1 for key in igd.table if key in deletes)
    assert len(igd.table) == refused_removals


# --- the miniupnpc boundary -----------------------------------------------------------------

def test_gateway_makes_the_miniupnpc_calls() -> None:
    """Discovery sets the SSDP wait, selects the IGD and reads the address; mappings name our
    LAN address and the lease; errors become outcomes, never exceptions."""
    igd = FakeIgd()
    gateway = Gateway(lambda: igd)
    assert gateway.perform(AddMapping(Protocol.TCP, 1, 1, 1, "x")) == MappingFailed(
        "no gateway selected")
    assert gateway.perform(Discover(1500)) == GatewayFound(WAN, LAN)
    assert igd.calls == [("discover", 1500), ("selectigd",), ("externalipaddress",)]
    assert gateway.perform(AddMapping(Protocol.UDP, 9000, 7813, 120, "rsproto")) == \
        MappingAdded()
    assert igd.calls[-1] == ("add", 9000, "UDP", LAN, 7813, "rsproto", "", 120)
    assert gateway.perform(QueryExternalAddress()) == ExternalAddress(WAN)
    assert gateway.perform(RemoveMapping(Protocol.UDP, 9000)) == MappingRemoved()
    assert gateway.perform(RemoveMapping(Protocol.UDP, 9000)) == CallFailed(
        "NoSuchEntryInArray")
    igd.fail["add"] = "ConflictInMappingEntry"
    assert gateway.perform(AddMapping(Protocol.TCP, 1, 1, 1, "x")) == MappingFailed(
        "ConflictInMappingEntry")
    igd.fail = {"selectigd": "No valid UPnP Internet Gateway Device found"}
    assert gateway.perform(Discover(10)) == NoGateway(
        "No valid UPnP Internet Gateway Device found")
    igd.fail = {"externalipaddress": "ActionFailed"}
    assert gateway.perform(Discover(10)) == GatewayFound("", LAN)


# --- the Twisted service --------------------------------------------------------------------

class Clock(MemoryReactorClock):
    """A memory reactor whose "threads" hand results straight back (callFromThread)."""

    def callFromThread(self, f: Callable[..., object], *a: object, **kw: object) -> None:  # noqa: N802
        f(*a, **kw)


class ManualPool:
    """A thread pool whose jobs run only when the test says so (`run_all`)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[..., object], Callable[..., object], tuple]] = []

    def callInThreadWithCallback(self, on_result: Callable[..., object],  # noqa: N802
                                 f: Callable[..., object], *args: object) -> None:
        self.jobs.append((on_result, f, args))

    def run_all(self, limit: int = 50) -> int:
        ran = 0
        while self.jobs and ran < limit:
            on_result, f, args = self.jobs.pop(0)
            try:
                result = f(*args)
            except Exception:
                on_result(False, Failure())
            else:
                on_result(True, result)
            ran += 1
        return ran


def make_service(igd: FakeIgd, **kw: Any) -> tuple[UpnpService, Clock, ManualPool,
                                                    list[UpnpStatus]]:
    clock = Clock()
    pool = ManualPool()
    seen: list[UpnpStatus] = []
    service = UpnpService(clock, tcp_port=7812, udp_port=7813, pool=pool,
                          gateway=Gateway(lambda: igd), on_status=seen.append, **kw)
    return service, clock, pool, seen


def test_service_maps_reports_renews_and_unmaps() -> None:
    """The calls run in the pool, not inline; the owner hears the external address; the
    lease is renewed on the reactor's clock; stopping removes the mappings."""
    igd = FakeIgd()
    service, clock, pool, seen = make_service(igd, lease=120)
    service.startService()
    assert igd.calls == [] and len(pool.jobs) == 1  # nothing blocking on the reactor thread
    pool.run_all()
    assert service.status.state is UpnpState.MAPPED
    assert seen[0].state is UpnpState.DISCOVERING
    assert seen[-1].external_ip == ipaddress.IPv4Address(WAN)
    assert seen[-1].external_port(Protocol.TCP) == 7812
    assert len(igd.named("add")) == 2
    clock.advance(59)
    assert pool.jobs == []
    clock.advance(1)
    pool.run_all()
    assert len(igd.named("add")) == 4
    assert service.status.state is UpnpState.MAPPED
    d = service.stopService()
    assert not d.called
    pool.run_all()
    assert d.called and igd.table == {}
    assert service.status.state is UpnpState.STOPPED
    assert clock.getDelayedCalls() == []


def test_service_without_gateway_keeps_running_and_retries() -> None:
    """No gateway: the service says so, stays up, and looks again after the interval."""
    igd = FakeIgd(devices=0)
    service, clock, pool, seen = make_service(igd, rediscover_interval=120.0)
    service.startService()
    pool.run_all()
    assert service.running
    assert seen[-1].state is UpnpState.NO_GATEWAY and seen[-1].external_ip is None
    igd.devices = 1
    clock.advance(120)
    pool.run_all()
    assert service.status.state is UpnpState.MAPPED
    d = service.stopService()
    pool.run_all()
    assert d.called


def test_service_stop_is_bounded_when_the_gateway_hangs() -> None:
    """A call that never returns: stopService still fires, after stop_timeout."""
    igd = FakeIgd()
    service, clock, pool, seen = make_service(igd, stop_timeout=5.0)
    service.startService()
    pool.run_all(limit=2)  # discovery and the TCP mapping; the UDP one "hangs"
    d = service.stopService()
    clock.advance(4.9)
    assert not d.called
    clock.advance(0.1)
    assert d.called
    pool.run_all()  # the stuck call returns late: its mapping is given back anyway
    assert igd.table == {}


def test_service_set_ports_only_before_start() -> None:
    """Ports are fixed once mapping began; the status before start is idle."""
    service, clock, pool, seen = make_service(FakeIgd())
    assert service.status.state is UpnpState.IDLE
    service.set_ports(7000, None)
    service.startService()
    pool.run_all()
    assert [m.protocol for m in service.status.mappings] == [Protocol.TCP]
    with pytest.raises(RuntimeError):
        service.set_ports(1, 2)
    service.stopService()
    pool.run_all()


def test_status_callback_failure_is_contained() -> None:
    """A broken owner callback is logged; mapping goes on."""
    igd = FakeIgd()
    clock, pool = Clock(), ManualPool()

    def broken(status: UpnpStatus) -> None:
        raise ValueError("owner bug")

    service = UpnpService(clock, tcp_port=7812, pool=pool, gateway=Gateway(lambda: igd),
                          on_status=broken)
    service.startService()
    pool.run_all()
    assert service.status.state is UpnpState.MAPPED
    service.stopService()
    pool.run_all()
    assert igd.table == {}


def test_mapper_keeps_the_core_contract_and_reports_status_changes_once() -> None:
    """The mapper is a `pqi.core.Core`: a drain gives a changed status, then the call to make;
    an input that changes nothing visible adds no status."""
    mapper = PortMapper([PortRequest(Protocol.TCP, 7812)], lease=600)
    assert is_core(mapper) and mapper.next_deadline() is None
    mapper.start(0.0)
    status, call = mapper.drain(0.0)
    assert isinstance(status, UpnpStatus) and status.state is UpnpState.DISCOVERING
    assert call == Discover(2000)
    mapper.handle(GatewayFound(WAN, LAN), 0.0)
    out = mapper.drain(0.0)
    assert [type(o) for o in out] == [UpnpStatus, AddMapping]
    mapper.handle_timer(0.0)  # nothing due: no output
    assert mapper.drain(0.0) == []
