"""Real nodes on 127.0.0.1 (and 127.0.0.2, 127.0.0.3, so that one node's address can be
banned without the others'): a TOU link from a banned address goes down and stays down,
lifting the ban brings it back; a denied profile is refused at TLS from a new location too,
until it is allowed and added again."""

from __future__ import annotations

import pytest
from twisted.logger import globalLogPublisher

from pqi.identity.tls import TLSRefusal
from pqi.link.linkmgr import Path
from services.nat.udpport import UdpOptions
from tests.service_fakes import cert_of, identity, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240), pytest.mark.slow]


def _udp(host: str, bootstrap: tuple = ()) -> UdpOptions:
    return UdpOptions(port=0, interface=host, bootstrap=bootstrap)


def test_tou_link_from_a_banned_address_goes_down_until_unbanned(tmp_path) -> None:
    """alice (127.0.0.2) and bob (127.0.0.3) link over hole-punched TOU through carol's DHT
    (127.0.0.1); alice bans 127.0.0.3: the link closes, bob's datagrams are dropped and no
    link comes back; alice lifts the ban and the TOU link returns."""
    from dht import dht_node_id

    async def body(reactor):
        c = make_node(reactor, tmp_path, "carol", interface="127.0.0.1", udp=_udp("127.0.0.1"))
        await c.startService()
        boot = (("127.0.0.1", c.udp.port),)
        a = make_node(reactor, tmp_path, "alice", interface="127.0.0.2",
                      udp=_udp("127.0.0.2", boot))
        b = make_node(reactor, tmp_path, "bob", interface="127.0.0.3",
                      udp=_udp("127.0.0.3", boot))
        await a.startService()
        await b.startService()

        def linked() -> bool:
            person = a.net.person(b.ssl_id)
            return person is not None and person.connected

        try:
            await wait_for(reactor, lambda: all(
                c.udp.dht.node.routing.get(dht_node_id(bytes(n.ssl_id))) is not None
                for n in (a, b)), timeout=20)
            for n in (a, b):  # keep the link on TOU: no TCP address to upgrade to
                await n.net.listening.stopListening()
            a.add_friend(b.account.certificate_text())
            b.add_friend(a.account.certificate_text())
            await wait_for(reactor, linked, timeout=60)
            path = a.friends()[0].path
            a.banlist.block_ip("127.0.0.3", "test")
            await wait_for(reactor, lambda: not linked(), timeout=30)
            dropped = a.udp.dht.protocol.banned_dropped
            await wait_for(reactor, lambda: a.udp.dht.protocol.banned_dropped > dropped + 5,
                           timeout=60)
            relinked_while_banned = linked()
            a.banlist.unblock_ip("127.0.0.3")
            await wait_for(reactor, linked, timeout=120)
            return path, relinked_while_banned, a.friends()[0].path
        finally:
            for n in (a, b, c):
                await n.stopService()

    path, relinked_while_banned, path_after = on_fresh_reactor(body, 220)
    assert path == Path.TOU_PUNCHED.value
    assert not relinked_while_banned
    assert path_after is not None


def test_denied_profile_is_refused_from_a_new_location(tmp_path) -> None:
    """Alice denies bob's profile; bob comes back with a new location (same profile, new
    TLS key): alice refuses it at TLS with the denial's reason.  Once alice allows the
    profile and adds the new location, it links."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from pqi.identity.sslcert import make_location_certificate
    from services.node.node import FRIENDS_FILE, Node

    profile, _, _ = identity("bob")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = make_location_certificate(profile, key, signed_at=1700000120)
    new_dir = tmp_path / "bob-new"
    new_dir.mkdir(mode=0o700)

    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        b2 = Node(reactor, Account(new_dir, profile, key, cert, "bob-loc2"),
                  FriendList(new_dir / FRIENDS_FILE, now=reactor.seconds), port=0,
                  owns_friends=True, heartbeat_period=0.2, rtt_period=0.3)
        refusals: list[dict] = []

        def observe(event: dict) -> None:
            if event.get("reason_code") == TLSRefusal.DENIED.value:
                refusals.append(event)

        def linked(ssl_id) -> bool:
            person = a.net.person(ssl_id)
            return person is not None and person.connected

        globalLogPublisher.addObserver(observe)
        for n in (a, b, b2):
            await n.startService()
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: linked(b.ssl_id))
            a.banlist.deny(b.pgp_id.to_hex(), "spam")
            b2.add_friend(cert_of(a))
            await wait_for(reactor, lambda: any(
                "spam" in e["detail"] and "profile" in e["detail"] for e in refusals),
                timeout=60)
            while_denied = linked(b2.ssl_id)
            a.banlist.allow(b.pgp_id.to_hex())
            a.add_friend(cert_of(b2))
            b2.net.add_address(a.ssl_id, a.listening)
            await wait_for(reactor, lambda: linked(b2.ssl_id), timeout=60)
            return while_denied
        finally:
            globalLogPublisher.removeObserver(observe)
            for n in (a, b, b2):
                await n.stopService()

    assert on_fresh_reactor(body, 200) is False


def test_relay_drops_turtle_search_hits_and_tunnels_for_a_banned_file(tmp_path) -> None:
    """alice - bob - carol (alice and carol not friends), carol shares a file anonymously,
    bob bans it (alice and carol do not trust friends' banned files, so only bob acts):
    carol's hit dies at bob and alice's tunnel requests die at bob, so alice neither finds
    nor reaches the file; bob lifts the ban and alice finds it and downloads it through him."""
    import hashlib
    import os

    from pqi.wire.fields import Sha1Hash
    from services.sharing import SharingOptions
    from services.transfer.service import TransferCompleted
    from services.turtle.router import TurtleLimits

    fast = SharingOptions(settle=0, rescan_period=3600, resync_period=1.0, sweep_period=0.2)
    shared = tmp_path / "carol-shared"
    shared.mkdir()
    data = os.urandom(200_000)
    (shared / "needle-file.bin").write_bytes(data)
    real = Sha1Hash(hashlib.sha1(data).digest())

    async def befriend(reactor, x, y) -> None:
        x.add_friend(cert_of(y))
        y.add_friend(cert_of(x))
        await wait_for(reactor, lambda: 0x0014 in x.control.enabled(y.ssl_id)
                       and 0x0014 in y.control.enabled(x.ssl_id), 30)

    async def body(reactor):
        # alice digs again 2 s (not RetroShare's 50 s) after a request that found nothing
        digging = TurtleLimits(empty_tunnel_digging=2.0)
        alice, bob, carol = (make_node(reactor, tmp_path, n, file_sharing=fast,
                                       turtle=digging)
                             for n in ("alice", "bob", "carol"))
        for n in (alice, bob, carol):
            await n.startService()
        try:
            alice.banlist.set_trust_friends_files(False)
            carol.banlist.set_trust_friends_files(False)
            bob.banlist.block_file(real, "needle-file.bin", len(data))
            await carol.sharing.share(str(shared), anonymous=True)
            await befriend(reactor, alice, bob)
            await befriend(reactor, bob, carol)
            dropped = bob.turtle.router.stats.dropped
            rid = alice.turtle.search("NEEDLE")
            await wait_for(reactor, lambda: dropped["banned file in search result"] >= 1, 20)
            hits_while_banned = dict(alice.turtle.searches[rid].hits)
            done: list = []
            alice.subscribe(TransferCompleted, lambda e: done.append(e.info))
            alice.turtle.download_anonymous(real, len(data), "needle-file.bin")
            await wait_for(reactor, lambda: dropped["tunnel request for a banned file"] >= 1,
                           30)
            tunnels_while_banned = len(alice.turtle.router.tunnels)
            bob.banlist.unblock_file(real)
            rid = alice.turtle.search("NEEDLE")
            await wait_for(reactor, lambda: real in alice.turtle.searches[rid].hits, 20)
            await wait_for(reactor, lambda: bool(done), 120, step=0.05)
            return hits_while_banned, tunnels_while_banned, done[0]
        finally:
            for n in (alice, bob, carol):
                await n.stopService()

    hits_while_banned, tunnels_while_banned, info = on_fresh_reactor(body, 220)
    assert hits_while_banned == {} and tunnels_while_banned == 0
    with open(info.path, "rb") as f:
        assert hashlib.sha1(f.read()).digest() == bytes(real)
