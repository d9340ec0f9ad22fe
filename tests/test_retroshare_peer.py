"""Two real nodes on 127.0.0.1, one of which behaves as RetroShare at link-up.

The RetroShare-like node is an rsproto node with ``drop_until_started``: like
``p3ServiceControl``, it drops the items of a friend until its own tick processed that
friend's ServiceInfo list (0.2 s here, the delay most captured connections show; see
docs/links.md).  Both friends add each other by short invite, so each is an SSL-only friend
of the other until discovery brings its key.
"""

from __future__ import annotations

import pytest

from pqi.interfaces import PeerIdentity
from services.discovery import FriendUpgraded
from services.events import FriendConnected
from services.sharing import SharingOptions
from tests.service_fakes import make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.slow]

#: File sharing without the settle time (an empty share answers at once).
SHARING = SharingOptions(settle=0, rescan_period=3600)
#: RetroShare's tick between our ServiceInfo list and its services starting (captures).
RETROSHARE_TICK = 0.2
#: How long after link-up everything must be done (the issue's acceptance bound).
LINKUP_BUDGET = 5.0


def invite_of(node) -> str:
    return node.account.short_invite(local_addr=node.listening).encode()


def done_with(node, other) -> bool:
    """``node`` has ``other``'s file list, knows ``other``'s key (a full friend), and heard
    ``other``'s friend list through discovery."""
    tree = node.sharing.lists.trees.get(other.ssl_id)
    return (tree is not None and tree.root.update_time > 0
            and not node.friends_list.profile(other.pgp_id).ssl_only
            and other.pgp_id in node.discovery.friend_sets)


async def link_up_between(reactor, tmp_path, ours_kwargs):
    """Start rsproto node ``alice`` (with ``ours_kwargs``) and RetroShare-like ``bob``, make
    them friends by short invite both ways, and wait until both are done with each other.
    Returns (seconds from alice's link-up to done, upgrades seen, items bob dropped)."""
    a = make_node(reactor, tmp_path, "alice", file_sharing=SHARING, **ours_kwargs)
    r = make_node(reactor, tmp_path, "bob", file_sharing=SHARING,
                  linkup_delay=RETROSHARE_TICK, drop_until_started=True)
    upgraded: list[tuple[str, str]] = []
    a.subscribe(FriendUpgraded, lambda e: upgraded.append(("alice", e.name)))
    r.subscribe(FriendUpgraded, lambda e: upgraded.append(("bob", e.name)))
    linked: list[float] = []
    a.subscribe(FriendConnected, lambda e: linked.append(reactor.seconds()))
    await a.startService()
    await r.startService()
    try:
        r.add_friend(invite_of(a))
        a.add_friend(invite_of(r))
        assert a.friends_list.profile(r.pgp_id).ssl_only
        await wait_for(reactor, lambda: bool(linked), timeout=20)
        await wait_for(reactor, lambda: done_with(a, r) and done_with(r, a),
                       timeout=LINKUP_BUDGET)
        took = reactor.seconds() - linked[0]
        dropped = sum(n for (peer, _), n in r.control.dropped_in.items() if peer == a.ssl_id)
        return took, sorted(upgraded), dropped
    finally:
        await a.stopService()
        await r.stopService()


def test_linkup_traffic_waits_for_a_retroshare_peer(tmp_path) -> None:
    """With our link-up timing nothing we send is dropped by the RetroShare-like friend, and
    within LINKUP_BUDGET seconds of link-up both have each other's file list, both friends
    are upgraded from SSL-only to full friends, and discovery exchanged the friend lists."""
    took, upgraded, dropped = on_fresh_reactor(
        lambda reactor: link_up_between(reactor, tmp_path, {}), 60)
    assert dropped == 0
    assert upgraded == [("alice", "bob"), ("bob", "alice")]
    print(f"link-up to done: {took:.2f} s")


def test_retries_recover_items_a_retroshare_peer_dropped(tmp_path) -> None:
    """A node that talks at once (linkup_delay 0, the old behaviour) loses its first CONTACT
    and file-list request to the RetroShare-like friend; the retries recover them within
    LINKUP_BUDGET seconds of link-up (rather than the 600 s request timeout)."""
    took, upgraded, dropped = on_fresh_reactor(
        lambda reactor: link_up_between(reactor, tmp_path, {"linkup_delay": 0.0}), 60)
    assert dropped > 0
    assert upgraded == [("alice", "bob"), ("bob", "alice")]
    print(f"link-up to done with retries: {took:.2f} s")


def test_peer_identity_is_the_links(tmp_path) -> None:
    """The upgrade check reads the certificate the link presented: on a link, discovery's
    ``peer_certificate`` gives the friend's location certificate (its SSL id)."""
    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice")
        b = make_node(reactor, tmp_path, "bob")
        await a.startService()
        await b.startService()
        try:
            b.add_friend(invite_of(a))
            a.add_friend(invite_of(b))
            await wait_for(reactor, lambda: a.control.started(b.ssl_id), timeout=20)
            cert = a.discovery._peer_certificate(b.ssl_id)
            return cert.ssl_id, PeerIdentity(b.ssl_id, b.pgp_id).ssl_id
        finally:
            await a.stopService()
            await b.stopService()

    got, expected = on_fresh_reactor(body, 60)
    assert got == expected
