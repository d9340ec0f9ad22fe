# -*- test-case-name: tests.test_punch_paths -*-
"""The link manager's ordered paths: TCP addresses, then hole punching, then relay; upgrades;
attempt records with the path and the reason."""

from __future__ import annotations

import ipaddress
import random

from pqi.interfaces import DisconnectReason
from pqi.link.linkmgr import (
    AddressSource,
    Close,
    Dial,
    DialUdp,
    LinkLimits,
    LinkManager,
    LinkUp,
    Outcome,
    Path,
    path_of,
)
from pqi.wire.address import NetAddress
from pqi.wire.fields import SslId

SMALL = SslId(b"\x01" * 16)
LARGE = SslId(b"\xf0" * 16)


def addr(text: str, port: int = 7812) -> NetAddress:
    return NetAddress(ipaddress.ip_address(text), port)


def manager(own: SslId = LARGE) -> LinkManager:
    mgr = LinkManager(own, rng=random.Random(1), limits=LinkLimits())
    mgr.set_udp_paths([Path.TOU_PUNCHED, Path.RELAY])
    return mgr


def next_action(mgr: LinkManager, now: float) -> tuple[float, object]:
    """Step from deadline to deadline until a dial of either kind comes out (bounded)."""
    for _ in range(50):
        actions = [a for a in mgr.drain(0.0) if isinstance(a, (Dial, DialUdp))]
        if actions:
            return now, actions[0]
        deadline = mgr.next_deadline()
        assert deadline is not None
        now = max(now, deadline)
        mgr.handle_timer(now)
    raise AssertionError("no dial within 50 deadlines")


def test_path_of_sources() -> None:
    """Addresses map to TCP paths by their source; UDP paths rank after every TCP path."""
    assert path_of(AddressSource.LOCAL) is Path.LAN_TCP
    assert path_of(AddressSource.EXTERNAL) is Path.WAN_TCP
    assert path_of(AddressSource.UPNP) is Path.UPNP_TCP
    assert [p.rank for p in Path] == sorted(p.rank for p in Path)
    assert Path.RELAY.is_udp and Path.TOU_PUNCHED.is_udp and not Path.UPNP_TCP.is_udp


def test_round_order_and_reasons() -> None:
    """LAN TCP, WAN TCP, UPnP TCP, hole punch, relay: each failure recorded with its path and
    reason (refused, timeout, NAT type, no proxy)."""
    mgr = manager()
    mgr.add_friend(SMALL, 0.0, [(addr("11.11.0.12"), AddressSource.EXTERNAL),
                                (addr("172.18.0.2"), AddressSource.LOCAL),
                                (addr("11.11.0.13", 1), AddressSource.UPNP)])
    mgr.start(0.0)
    now, d1 = next_action(mgr, 0.0)
    assert isinstance(d1, Dial) and d1.address == addr("172.18.0.2")
    mgr.dial_failed(d1.link, Outcome.REFUSED, "refused", now)
    now, d2 = next_action(mgr, now)
    assert isinstance(d2, Dial) and d2.address == addr("11.11.0.12")
    now, d3 = next_action(mgr, now)  # d2 times out after 5 s
    assert isinstance(d3, Dial) and d3.address == addr("11.11.0.13", 1)
    mgr.dial_failed(d3.link, Outcome.ERROR, "unreachable", now)
    now, d4 = next_action(mgr, now)
    assert d4 == DialUdp(d4.link, SMALL, Path.TOU_PUNCHED, LinkLimits().udp_connect_timeout)
    mgr.dial_failed(d4.link, Outcome.NAT_TYPE, "our NAT is symmetric", now)
    now, d5 = next_action(mgr, now)
    assert isinstance(d5, DialUdp) and d5.path is Path.RELAY
    mgr.dial_failed(d5.link, Outcome.NO_PROXY, "no friend relays", now)
    attempts = mgr.status(SMALL).attempts
    assert [(a.path, a.outcome) for a in attempts] == [
        (Path.LAN_TCP, Outcome.REFUSED), (Path.WAN_TCP, Outcome.TCP_TIMEOUT),
        (Path.UPNP_TCP, Outcome.ERROR), (Path.TOU_PUNCHED, Outcome.NAT_TYPE),
        (Path.RELAY, Outcome.NO_PROXY)]
    assert mgr.status(SMALL).failures == 1


def test_udp_dial_times_out_as_udp() -> None:
    """A UDP path that never comes up is recorded as a UDP timeout after its own limit."""
    mgr = manager()
    mgr.add_friend(SMALL, 0.0)
    mgr.start(0.0)
    now, dial = next_action(mgr, 0.0)
    assert isinstance(dial, DialUdp)
    mgr.handle_timer(now + LinkLimits().udp_connect_timeout)
    [attempt] = mgr.status(SMALL).attempts
    assert attempt.outcome is Outcome.UDP_TIMEOUT and attempt.path is Path.TOU_PUNCHED


def test_smaller_id_leaves_udp_paths_to_the_other_side() -> None:
    """Only the larger SSL id starts UDP set-ups, so two requests never cross."""
    mgr = manager(SMALL)
    mgr.add_friend(LARGE, 0.0)
    mgr.start(0.0)
    assert mgr.next_deadline() is not None
    mgr.handle_timer(10.0)
    assert [a for a in mgr.drain(0.0) if isinstance(a, (Dial, DialUdp))] == []


def connect(mgr: LinkManager, dial: Dial | DialUdp, now: float) -> None:
    mgr.tcp_connected(dial.link, now)
    assert mgr.authenticated(dial.link, dial.ssl_id, now)
    mgr.item_received(dial.link, now)


def test_upgrade_from_relay_when_a_better_address_appears() -> None:
    """Linked by relay, a new LAN address is dialled at once; when it authenticates the relay
    link is replaced and the status shows the better path."""
    mgr = manager()
    mgr.add_friend(SMALL, 0.0)
    mgr.start(0.0)
    now, punch = next_action(mgr, 0.0)
    mgr.dial_failed(punch.link, Outcome.UDP_TIMEOUT, "no answer", now)
    now, relay = next_action(mgr, now)
    assert isinstance(relay, DialUdp) and relay.path is Path.RELAY
    connect(mgr, relay, now)
    ups = [a for a in mgr.drain(0.0) if isinstance(a, LinkUp)]
    assert [u.path for u in ups] == [Path.RELAY]
    assert mgr.status(SMALL).path is Path.RELAY
    mgr.add_address(SMALL, addr("172.18.0.2"), AddressSource.LOCAL, now + 1)
    now, dial = next_action(mgr, now + 1)
    assert isinstance(dial, Dial) and dial.address == addr("172.18.0.2")
    connect(mgr, dial, now)
    actions = mgr.drain(0.0)
    assert Close(relay.link, DisconnectReason.REPLACED, f"replaced by link {dial.link}") in actions
    assert mgr.status(SMALL).path is Path.LAN_TCP


def test_periodic_upgrade_round_tries_only_better_paths() -> None:
    """Linked by relay, after the upgrade interval only the better paths are tried; when they
    fail the relay link stays and the next upgrade waits another interval."""
    mgr = manager()
    mgr.add_friend(SMALL, 0.0)
    mgr.start(0.0)
    now, punch = next_action(mgr, 0.0)
    mgr.dial_failed(punch.link, Outcome.UDP_TIMEOUT, "no answer", now)
    now, relay = next_action(mgr, now)
    connect(mgr, relay, now)
    linked_at = now
    now, again = next_action(mgr, now)
    assert now == linked_at + LinkLimits().upgrade_interval
    assert isinstance(again, DialUdp) and again.path is Path.TOU_PUNCHED
    mgr.dial_failed(again.link, Outcome.UDP_TIMEOUT, "no answer", now)
    assert mgr.status(SMALL).path is Path.RELAY
    assert mgr.next_deadline() == now + LinkLimits().upgrade_interval
