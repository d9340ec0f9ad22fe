# -*- test-case-name: tests.test_udp_node -*-
"""Real nodes on 127.0.0.1 with their UDP ports: friends that know no TCP address of each
other connect over TOU + TLS, set up through the DHT (hole punching) or relayed by a mutual
friend; ``status`` shows the path and the failed attempts' reasons."""

from __future__ import annotations

import pytest

from dht import dht_node_id
from pqi.link.linkmgr import Outcome, Path
from services.nat.udpport import UdpOptions
from tcponudp import NatType
from tests.service_fakes import make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.slow]


def udp_opts(bootstrap: tuple = ()) -> UdpOptions:
    return UdpOptions(port=0, interface="127.0.0.1", bootstrap=bootstrap)


async def three_nodes(reactor, tmp_path):
    """carol (DHT bootstrap, friend of both) and alice and bob, who know each other only by
    certificate without an address."""
    c = make_node(reactor, tmp_path, "carol", udp=udp_opts())
    await c.startService()
    boot = (("127.0.0.1", c.udp.port),)
    a = make_node(reactor, tmp_path, "alice", udp=udp_opts(boot))
    b = make_node(reactor, tmp_path, "bob", udp=udp_opts(boot))
    await a.startService()
    await b.startService()
    return a, b, c


def befriend(x, y) -> None:
    x.add_friend(y.account.certificate_text())
    y.add_friend(x.account.certificate_text())


async def dht_ready(reactor, c, *nodes) -> None:
    """Every node is in carol's DHT table (so carol can be their proxy)."""
    await wait_for(reactor, lambda: all(
        c.udp.dht.node.routing.get(dht_node_id(bytes(n.ssl_id))) is not None for n in nodes),
        timeout=20)


def test_punched_tou_link_between_friends(tmp_path) -> None:
    """alice and bob connect by the DHT connect exchange (carol as proxy) and TOU with TLS;
    both sides report the hole-punched TOU path and the link carries services."""
    async def body(reactor):
        a, b, c = await three_nodes(reactor, tmp_path)
        try:
            await dht_ready(reactor, c, a, b)
            # once linked, discovery tells each the other's TCP address and the link would be
            # upgraded to LAN TCP (as it should): keep this test about the punched path
            for n in (a, b):
                await n.net.listening.stopListening()
            befriend(a, b)
            await wait_for(reactor, lambda: a.friends()[0].online and b.friends()[0].online,
                           timeout=40)
            await wait_for(reactor, lambda: len(a.control.enabled(b.ssl_id)) > 3)
            # each side records the link's path when its own side of the link is up
            await wait_for(reactor, lambda: a.friends()[0].path is not None
                           and b.friends()[0].path is not None)
            return a.friends()[0], b.friends()[0], a.status_report()
        finally:
            for n in (a, b, c):
                await n.stopService()

    fa, fb, report = on_fresh_reactor(body, 90)
    assert fa.path == Path.TOU_PUNCHED.value and fb.path == Path.TOU_PUNCHED.value
    assert report["udp"]["port"] is not None
    assert report["friends"][0]["path"] == "hole-punched TOU"


def test_relay_through_a_mutual_friend_when_the_nat_forbids_punching(tmp_path) -> None:
    """With the TCP listeners closed (discovery would give TCP addresses) and the initiator's
    NAT known to be symmetric, hole punching is skipped (recorded with the NAT-type reason)
    and carol, a friend of both, relays the TOU + TLS link, carrying bytes she cannot read."""
    async def body(reactor):
        a, b, c = await three_nodes(reactor, tmp_path)
        try:
            await dht_ready(reactor, c, a, b)
            initiator = a if bytes(a.ssl_id) > bytes(b.ssl_id) else b
            other = b if initiator is a else a
            initiator.udp.nat = NatType.SYMMETRIC
            for n in (a, b):  # carol's discovery tells each the other's TCP address: close it
                await n.net.listening.stopListening()
            befriend(c, a)
            befriend(c, b)
            befriend(a, b)
            await wait_for(reactor, lambda: any(f.ssl_id == other.ssl_id and f.online
                                                for f in initiator.friends()), timeout=40)
            await wait_for(reactor, lambda: len(initiator.control.enabled(other.ssl_id)) > 3)

            def mine_theirs():
                return (next(f for f in initiator.friends() if f.ssl_id == other.ssl_id),
                        next(f for f in other.friends() if f.ssl_id == initiator.ssl_id))
            await wait_for(reactor, lambda: all(f.path is not None for f in mine_theirs()))
            mine, theirs = mine_theirs()
            return mine, theirs, c.udp.status(), initiator.status_report()
        finally:
            for n in (a, b, c):
                await n.stopService()

    mine, theirs, carol, report = on_fresh_reactor(body, 90)
    assert mine.path == Path.RELAY.value and theirs.path == Path.RELAY.value
    reasons = [(a.path, a.outcome) for a in mine.attempts]
    assert (Path.TOU_PUNCHED, Outcome.NAT_TYPE) in reasons
    assert carol["relays_carried"] == 1 and carol["relayed_bytes"] > 0
    shown = [f for f in report["friends"] if f["path"] == "relay"][0]
    assert any(x["outcome"] == Outcome.NAT_TYPE.value and x["path"] == "hole-punched TOU"
               for x in shown["attempts"])
