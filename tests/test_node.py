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

#: disc, chat, msg, turtle, heartbeat, ft, file_database, bandwidth_ctrl, banlist, status,
#: gxsid, gxsreputation, rtt, and between two rsproto nodes our mail receipts
COMMON = {0x0011, 0x0012, 0x0013, 0x0014, 0x0016, 0x0017, 0x0019, 0x0021, 0x0101, 0x0102,
          0x0018, 0x0028, 0x0211, 0x0215, 0x0216, 0x0217, 0x0219, 0x0230, 0x1011, 0x7E01}

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


def test_subscribe_refuses_a_callback_that_cannot_take_the_event(tmp_path) -> None:
    """Issue 12 item 14: a handler that cannot be called with the event alone (here one
    written for three arguments) is refused when subscribing, naming the event type, instead
    of raising inside the node at every event; one-argument and ``*args`` callbacks pass."""
    from twisted.internet.task import Clock

    from services.discovery import PendingFriend
    node = make_node(Clock(), tmp_path, "alice")
    try:
        with pytest.raises(TypeError, match="PendingFriend callback receives one argument"):
            node.subscribe(PendingFriend, lambda pgp_id, name, via: None)
        node.subscribe(PendingFriend, lambda event: None)
        node.subscribe(PendingFriend, lambda *args: None)
        node.subscribe(PendingFriend, print)
    finally:
        node.friends_list.close()
        node.chat.store.close()
        node.mail.store.close()


def test_friends_never_online_with_status_offline(tmp_path) -> None:
    """Issue 12 item 14: from the moment a friend connects (before its status item can have
    arrived) `friends()` shows it online with status ONLINE, never OFFLINE; after it stops,
    offline with status OFFLINE."""
    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        seen = []
        a.subscribe(FriendConnected,
                    lambda event: seen.extend((f.online, f.status) for f in a.friends()))
        await a.startService()
        await b.startService()
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: bool(seen))
            await b.stopService()
            await wait_for(reactor, lambda: not a.friends()[0].online)
            (after,) = a.friends()
            return seen, (after.online, after.status)
        finally:
            await a.stopService()
            if b.running:
                await b.stopService()

    seen, after = on_fresh_reactor(body, 60)
    assert seen == [(True, PeerStatus.ONLINE)]
    assert after == (False, PeerStatus.OFFLINE)


def test_readding_a_friend_dials_at_once_despite_backoff(tmp_path) -> None:
    """Issue 12 item 3: a friend that refused our dials waits out a backoff; adding it again
    (e.g. ``rsnode friend add`` on the running node) dials it now, and it connects as soon as
    it listens."""
    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        await b.startService()
        b_cert = cert_of(b)
        port = b.listening.port
        await b.stopService()
        await a.startService()
        try:
            a.add_friend(b_cert)
            await wait_for(reactor, lambda: a.net.manager.status(b.ssl_id).failures >= 1)
            backoff_until = a.net.manager.status(b.ssl_id).next_attempt
            b2 = make_node(reactor, tmp_path, "bob", port=port)
            b2.add_friend(cert_of(a))
            await b2.startService()
            try:
                a.add_friend(b_cert)
                dial_at = a.net.manager.status(b.ssl_id).next_attempt
                now = reactor.seconds()
                await wait_for(reactor, lambda: bool(a.control.enabled(b.ssl_id)))
                return backoff_until, dial_at, now
            finally:
                await b2.stopService()
        finally:
            await a.stopService()

    backoff_until, dial_at, now = on_fresh_reactor(body, 60)
    assert backoff_until is not None and backoff_until > now + 1  # a real backoff was due
    assert dial_at is None or dial_at <= now  # re-adding dials now, not at the backoff


def test_unknown_or_ambiguous_friend_names_say_so(tmp_path) -> None:
    """Issue 12 item 12: naming nobody says "no friend called ..." with the friends' names;
    no "no friend with id ... names 0 friend locations"."""
    from twisted.internet.task import Clock

    from pqi.identity.friends import FriendNameError
    node = make_node(Clock(), tmp_path, "alice")
    bob = make_node(Clock(), tmp_path, "bob")
    try:
        node.add_friend(cert_of(bob))
        with pytest.raises(FriendNameError) as nobody:
            node.friend_location("mallory")
        assert str(nobody.value) == "no friend called 'mallory' (friends: bob)"
        assert node.friend_location("bob") == bob.ssl_id
    finally:
        for n in (node, bob):
            n.friends_list.close()
            n.chat.store.close()
            n.mail.store.close()


def test_link_room_watchers_are_bounded_and_hear_a_link_with_room(tmp_path) -> None:
    """The transfer service watches link room; a friend's link, once up, tells the node's
    watchers (with the friend's id) when it has room again; past `MAX_ROOM_WATCHERS`
    callbacks the node refuses another."""
    from services.node.node import MAX_ROOM_WATCHERS
    from services.spec import RegistryError

    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        heard: list = []
        a.link_room_watch(heard.append)
        await a.startService()
        await b.startService()
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: a.link_of(b.ssl_id) is not None)
            link = a.link_of(b.ssl_id)
            link.on_room()
            held = 2  # the transfer service's watcher and ours
            refused = None
            try:
                while held <= MAX_ROOM_WATCHERS:
                    a.link_room_watch(lambda peer: None)
                    held += 1
            except RegistryError as e:
                refused = str(e)
            return heard, b.ssl_id, held, refused
        finally:
            await a.stopService()
            await b.stopService()

    heard, bob, held, refused = on_fresh_reactor(body, 60)
    assert heard == [bob]
    assert held == MAX_ROOM_WATCHERS and refused is not None
