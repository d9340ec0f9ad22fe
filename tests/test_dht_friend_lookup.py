# -*- test-case-name: tests.test_dht_friend_lookup -*-
"""Friend lookup through the DHT: a friend found in the DHT becomes a TCP address to dial.

Two real nodes on 127.0.0.1 whose certificates carry no address and who share only a DHT
bootstrap node (a stranger to both: no discovery, no relay) find each other in the DHT and
link over TCP; plus the link manager's query and the port guess the lookup relies on."""

from __future__ import annotations

import functools
import ipaddress
import socket

import pytest

from pqi.interfaces import DisconnectReason, LinkState
from pqi.link.linkmgr import AddressSource, Dial, Direction, LinkManager, Outcome, Path, path_of
from pqi.wire.address import NetAddress
from pqi.wire.fields import SslId
from services.nat.udpport import UdpOptions, dht_tcp_candidates
from tests.service_fakes import make_node, on_fresh_reactor, wait_for

pytestmark = pytest.mark.timeout(120)

LOOPBACK = ipaddress.ip_address("127.0.0.1")


def free_port(udp_offset: int) -> int:
    """A free TCP port on 127.0.0.1 whose number plus ``udp_offset`` is a free UDP port
    (bounded tries; both are released again, so a rare clash with another process makes the
    node fail to start rather than the test pass wrongly)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port + udp_offset))
            except OSError:
                continue
            return port
    raise AssertionError("no free TCP/UDP port pair on 127.0.0.1")


def test_tcp_candidates_follow_both_port_conventions() -> None:
    """The friend's DHT port is tried as its TCP port (RetroShare: one number for both) and
    then minus one (rsproto's default UDP port is TCP + 1); no candidate leaves 1..65535."""
    assert dht_tcp_candidates(("192.0.2.7", 7813)) == [
        NetAddress(ipaddress.ip_address("192.0.2.7"), 7813),
        NetAddress(ipaddress.ip_address("192.0.2.7"), 7812)]
    assert dht_tcp_candidates(("::1", 1)) == [NetAddress(ipaddress.ip_address("::1"), 1)]


def test_dht_addresses_are_dialled_last_over_tcp() -> None:
    """A DHT-guessed address is dialled after every better-founded one, as WAN TCP."""
    friend = SslId(b"\x02" * 16)
    mgr = LinkManager(SslId(b"\x01" * 16))
    dht, local = NetAddress(LOOPBACK, 5000), NetAddress(LOOPBACK, 6000)
    mgr.add_friend(friend, 0.0, [(dht, AddressSource.DHT), (local, AddressSource.LOCAL)])
    assert [r.address for r in mgr.addresses(friend)] == [local, dht]
    assert path_of(AddressSource.DHT) is Path.WAN_TCP


def test_needs_address_until_a_dial_reaches_the_friend() -> None:
    """A friend needs an address while it has no link and no dial of ours reached it within
    the window; an active link or a recent successful dial ends the need, and the need comes
    back once that success is older than the window."""
    friend = SslId(b"\x02" * 16)
    mgr = LinkManager(SslId(b"\x01" * 16))
    mgr.add_friend(friend, 0.0)
    mgr.start(0.0)
    assert mgr.needs_address(friend, 0.0, 60.0)
    mgr.add_address(friend, NetAddress(LOOPBACK, 5000), AddressSource.DHT, 0.0)
    mgr.handle_timer(1.0)
    (dial,) = [a for a in mgr.drain(0.0) if isinstance(a, Dial)]
    assert mgr.needs_address(friend, 1.0, 60.0)  # dialling is not reaching it
    mgr.tcp_connected(dial.link, 1.1)
    assert mgr.authenticated(dial.link, friend, 1.2)
    mgr.item_received(dial.link, 1.3)
    assert not mgr.needs_address(friend, 1.3, 60.0)
    mgr.closed(dial.link, DisconnectReason.CLOSED, "gone", 2.0)
    assert not mgr.needs_address(friend, 2.0, 60.0)
    assert mgr.needs_address(friend, 62.0, 60.0)
    with pytest.raises(KeyError):
        mgr.needs_address(SslId(b"\x03" * 16), 0.0, 60.0)


@pytest.mark.slow
@pytest.mark.integration
def test_friends_sharing_only_a_dht_bootstrap_link_over_tcp(tmp_path) -> None:
    """alice (TCP P, UDP P+1: rsproto's default) and bob (TCP Q, UDP Q: RetroShare's habit)
    befriend each other by certificates without an address.  carol, a stranger to both, is
    only their DHT bootstrap.  Their UDP paths are switched off, so the only way to link is a
    TCP address found in the DHT: they link over WAN TCP to the peer's listening port, the
    address is recorded as DHT-sourced, and no search is left running."""
    async def body(reactor):
        c = make_node(reactor, tmp_path, "carol",
                      udp=UdpOptions(port=0, interface="127.0.0.1"))
        await c.startService()
        boot = (("127.0.0.1", c.udp.port),)
        pa = free_port(1)
        pb = free_port(0)
        a = make_node(reactor, tmp_path, "alice", port=pa, udp=UdpOptions(
            port=pa + 1, interface="127.0.0.1", bootstrap=boot, lookup_period=1.0))
        b = make_node(reactor, tmp_path, "bob", port=pb, udp=UdpOptions(
            port=pb, interface="127.0.0.1", bootstrap=boot, lookup_period=1.0))
        nodes = [c]
        try:
            for n in (a, b):
                await n.startService()
                nodes.append(n)
                n.net.manager.set_udp_paths([])
            assert a.listening.port == pa and b.listening.port == pb
            # The sources when the link comes up: discovery later re-files the same address.
            at_link_up: list[dict] = [{}, {}]

            def record_sources(node, seen: dict, event) -> None:
                if event.state is LinkState.CONNECTED:
                    status = node.net.manager.status(event.peer.ssl_id)
                    seen.update({r.address: r.source for r in status.addresses})

            for n, seen in zip((a, b), at_link_up, strict=True):
                n.net.add_link_observer(functools.partial(record_sources, n, seen))
            a.add_friend(b.account.certificate_text())
            b.add_friend(a.account.certificate_text())
            assert not a.friends()[0].addresses and not b.friends()[0].addresses
            await wait_for(reactor, lambda: a.friends()[0].online and b.friends()[0].online,
                           timeout=60)
            await wait_for(reactor, lambda: len(a.control.enabled(b.ssl_id)) > 3)
            statuses = [(n.net.manager.status(m.ssl_id), m.listening.port, seen)
                        for n, m, seen in ((a, b, at_link_up[0]), (b, a, at_link_up[1]))]
            lookups = (dict(a.udp._lookups), dict(b.udp._lookups))
            carol_friends = c.friends()
        finally:
            for n in reversed(nodes):
                await n.stopService()
        return statuses, lookups, carol_friends, (a.udp._lookups, b.udp._lookups)

    statuses, lookups, carol_friends, after_stop = on_fresh_reactor(body, 100)
    assert carol_friends == []
    assert lookups == ({}, {}) and after_stop == ({}, {})
    dialled = []
    for status, peer_port, sources in statuses:
        assert status.connected
        # WAN TCP: we dialled the DHT-found address; LAN TCP: the peer dialled us (loopback)
        assert status.path in (Path.LAN_TCP, Path.WAN_TCP)
        if status.path is Path.WAN_TCP:
            connected = [x for x in status.attempts if x.outcome is Outcome.CONNECTED]
            last = connected[-1]
            assert last.direction is Direction.OUTGOING and last.path is Path.WAN_TCP
            assert last.address == NetAddress(LOOPBACK, peer_port)
            assert sources[last.address] is AddressSource.DHT
            dialled.append(status)
    assert dialled, "neither side holds a link it dialled to a DHT-found TCP address"
