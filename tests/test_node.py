"""Real nodes on 127.0.0.1: friends connect, negotiate, keep the link, reconnect; strangers
never get in."""

from __future__ import annotations

import pytest

from pqi.interfaces import DisconnectReason
from pqi.items.status import PeerStatus
from pqi.link.linkmgr import Outcome
from services.events import (
    FriendConnected,
    FriendDisconnected,
    ServicesNegotiated,
    UnknownEventError,
)
from services.node.node import NET_FILE, listening_address
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

#: disc, chat, msg, heartbeat, ft, file_database, bandwidth_ctrl, status, rtt
COMMON = {0x0011, 0x0012, 0x0013, 0x0016, 0x0017, 0x0019, 0x0021, 0x0101, 0x0102, 0x1011}

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.mark.slow
def test_friends_connect_negotiate_and_keep_link(tmp_path) -> None:
    """Two mutual friends connect, enable exactly the common services, see each other
    online, and keep exchanging heartbeats and RTT pings over the same link."""
    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        negotiated = {}
        a.subscribe(ServicesNegotiated, lambda e: negotiated.setdefault("a", e.services))
        b.subscribe(ServicesNegotiated, lambda e: negotiated.setdefault("b", e.services))
        await a.startService()
        await b.startService()
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: len(negotiated) == 2)
            link = a.net.person(b.ssl_id).link_id
            await wait_for(reactor, lambda: a.rtt.stats(b.ssl_id) is not None
                           and a.rtt.stats(b.ssl_id).count >= 3
                           and b.heartbeat.sent >= 5 and a.heartbeat.sent >= 5)
            (fa,) = a.friends()
            return (negotiated, fa, a.net.person(b.ssl_id).link_id == link,
                    a.status.status_of(b.ssl_id), a.heartbeat.resets,
                    listening_address(a.account.base_dir) == a.listening)
        finally:
            await a.stopService()
            await b.stopService()

    negotiated, fa, same_link, status, resets, recorded = on_fresh_reactor(body, 60)
    assert negotiated == {"a": COMMON, "b": COMMON}
    assert fa.online and fa.name == "bob" and fa.rtt is not None and fa.services == COMMON
    assert same_link and resets == 0
    assert status == PeerStatus.ONLINE
    assert recorded


@pytest.mark.slow
def test_killed_peer_noticed_and_reconnected(tmp_path) -> None:
    """When bob goes away alice sees the link drop; when bob comes back on the same port the
    two are connected again."""
    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        events = []
        a.subscribe(FriendConnected, lambda e: events.append("up"))
        a.subscribe(FriendDisconnected, lambda e: events.append(("down", e.reason)))
        await a.startService()
        await b.startService()
        port = b.listening.port
        a.add_friend(cert_of(b))
        b.add_friend(cert_of(a))
        await wait_for(reactor, lambda: events == ["up"])
        await b.stopService()
        await wait_for(reactor, lambda: len(events) == 2)
        b2 = make_node(reactor, tmp_path, "bob", port=port)
        await b2.startService()
        try:
            await wait_for(reactor, lambda: len(events) == 3)
            await wait_for(reactor, lambda: COMMON <= a.control.enabled(b2.ssl_id))
            return events, a.friends()[0].online
        finally:
            await a.stopService()
            await b2.stopService()

    events, online = on_fresh_reactor(body, 60)
    assert events[0] == "up" and events[2] == "up"
    assert events[1][0] == "down" and events[1][1] in (DisconnectReason.CLOSED,
                                                        DisconnectReason.ERROR)
    assert online


def test_non_friend_never_connected(tmp_path) -> None:
    """Carol knows alice's certificate but alice never accepted carol: carol's dials are
    refused in TLS, no link comes up on either side, and carol's attempts say why."""
    async def body(reactor):
        a, c = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "carol")
        ups = []
        a.subscribe(FriendConnected, ups.append)
        c.subscribe(FriendConnected, ups.append)
        await a.startService()
        await c.startService()
        try:
            c.add_friend(cert_of(a))
            await wait_for(reactor, lambda: any(
                f.attempts for f in c.friends()))
            (fc,) = c.friends()
            return ups, fc, a.net.connected_peers()
        finally:
            await a.stopService()
            await c.stopService()

    ups, fc, a_peers = on_fresh_reactor(body, 60)
    assert ups == [] and a_peers == [] and not fc.online
    assert fc.attempts[0].outcome in (Outcome.TLS_REFUSED, Outcome.PEER_CLOSED)


@pytest.mark.slow
def test_peer_lacking_a_service(tmp_path) -> None:
    """Bob runs without RTT: both sides enable exactly the other common services, no RTT
    is measured, and alice's pings are never sent to bob."""
    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        b.control.remove_service(0x1011)
        negotiated = {}
        a.subscribe(ServicesNegotiated, lambda e: negotiated.setdefault("a", e.services))
        b.subscribe(ServicesNegotiated, lambda e: negotiated.setdefault("b", e.services))
        await a.startService()
        await b.startService()
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: len(negotiated) == 2 and a.heartbeat.sent >= 4)
            return negotiated, a.rtt.stats(b.ssl_id), a.control.dropped_out
        finally:
            await a.stopService()
            await b.stopService()

    negotiated, rtt, dropped_out = on_fresh_reactor(body, 60)
    assert negotiated == {"a": COMMON - {0x1011}, "b": COMMON - {0x1011}}
    assert rtt is None
    assert all(service != 0x1011 for _, service in dropped_out)


def test_unknown_event_refused(tmp_path) -> None:
    """subscribe() refuses a type no service emits, naming the events it knows."""
    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice")
        try:
            a.subscribe(str, print)
        except UnknownEventError as e:
            return str(e)
        finally:
            a.friends_list.close()

    assert "FriendConnected" in on_fresh_reactor(body)


def test_net_file_written(tmp_path) -> None:
    """After start the account directory records the listening address, mode 0600."""
    import os
    import stat

    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice")
        await a.startService()
        await a.stopService()
        return a.listening

    listening = on_fresh_reactor(body)
    path = tmp_path / "alice" / NET_FILE
    assert listening_address(tmp_path / "alice") == listening
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
