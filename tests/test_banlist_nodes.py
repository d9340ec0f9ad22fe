"""Real nodes on 127.0.0.1: a banned address opens no TCP link (so no TLS) in either
direction, a denied friend is refused at TLS and cannot come back, lifting each restores it,
and the block lists survive a restart."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import globalLogPublisher

from pqi.identity.friends import DeniedError
from pqi.identity.tls import TLSRefusal
from pqi.wire.fields import Sha1Hash
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class _Probe(Protocol):
    """Connects and records when the far end closes the TCP connection."""

    def __init__(self) -> None:
        self.closed: defer.Deferred[None] = defer.Deferred()

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802
        self.closed.callback(None)


def test_banned_address_gets_no_link_and_unbanning_restores(tmp_path) -> None:
    """Alice bans 127.0.0.1: bob's TCP connections are closed before TLS (counted as banned
    refusals), alice does not dial him, no link comes up; lifting the ban lets them link."""
    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        await a.startService()
        await b.startService()
        try:
            a.banlist.block_ip("127.0.0.1", "test")
            probe = _Probe()
            await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", a.listening.port),
                                  probe)
            await probe.closed
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: a.net.banned_refusals >= 3)
            linked_while_banned = a.net.person(b.ssl_id) is not None and \
                a.net.person(b.ssl_id).connected
            a.banlist.unblock_ip("127.0.0.1")
            a.net.add_address(b.ssl_id, b.listening)
            await wait_for(reactor, lambda: a.net.person(b.ssl_id) is not None
                           and a.net.person(b.ssl_id).connected, timeout=60)
            return linked_while_banned, a.banlist.listing()
        finally:
            await a.stopService()
            await b.stopService()

    linked_while_banned, listing = on_fresh_reactor(body, 120)
    assert not linked_while_banned
    assert listing["ips"] == []


def test_denied_friend_is_refused_at_tls_and_persists(tmp_path) -> None:
    """Alice denies bob's profile: his link closes, his reconnections are refused at TLS with
    the reason, re-adding him fails until he is allowed; the denial and a banned file survive
    a restart of alice's node."""
    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        refusals: list[dict] = []

        def observe(event: dict) -> None:
            if event.get("reason_code") == TLSRefusal.DENIED.value:
                refusals.append(event)

        globalLogPublisher.addObserver(observe)
        await a.startService()
        await b.startService()
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: a.net.person(b.ssl_id) is not None
                           and a.net.person(b.ssl_id).connected)
            a.banlist.deny(b.pgp_id.to_hex(), "spam")
            a.banlist.block_file(Sha1Hash(bytes(range(20))), "bad.bin", 3)
            b.net.add_address(a.ssl_id, a.listening)
            await wait_for(reactor, lambda: any("spam" in e["detail"] for e in refusals),
                           timeout=60)
            online = a.net.person(b.ssl_id) is not None and a.net.person(b.ssl_id).connected
            try:
                a.add_friend(cert_of(b))
                readd = "accepted"
            except DeniedError:
                readd = "denied"
        finally:
            globalLogPublisher.removeObserver(observe)
            await a.stopService()
            await b.stopService()
        a2 = make_node(reactor, tmp_path, "alice")
        try:
            listing = a2.banlist.listing()
            denial = a2.friends_list.denial(b.pgp_id)
            allowed = a2.banlist.allow(b.pgp_id.to_hex())
            after = a2.friends_list.denial(b.pgp_id)
        finally:
            a2.friends_list.close()
        return online, readd, listing, denial, allowed, after

    online, readd, listing, denial, allowed, after = on_fresh_reactor(body, 150)
    assert not online and readd == "denied"
    assert denial is not None and denial.reason == "spam"
    assert [f["name"] for f in listing["files"]] == ["bad.bin"]
    assert [d["kind"] for d in listing["friends"]] == ["profile"]
    assert allowed and after is None


def test_banned_file_is_not_listed_served_found_or_downloaded(tmp_path) -> None:
    """Alice bans a file she shares: bob's next sync of her list lacks it, alice does not
    serve it, bob (trusting alice's H(H)) neither finds nor downloads it; lifting the ban
    brings it back to bob's list and search."""
    import hashlib
    import os

    from services.sharing import SharingOptions
    from services.transfer.service import TransferError

    fast = SharingOptions(settle=0, rescan_period=3600, resync_period=1.0, sweep_period=0.2)
    root = tmp_path / "disk" / "pub"
    root.mkdir(parents=True)
    (root / "bad.bin").write_bytes(b"banned content")
    (root / "good.txt").write_bytes(b"fine")
    for p in root.iterdir():
        os.utime(p, (1_700_000_000, 1_700_000_000))
    bad = Sha1Hash(hashlib.sha1(b"banned content").digest())

    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice", file_sharing=fast)
        b = make_node(reactor, tmp_path, "bob", file_sharing=fast)
        await a.startService()
        await b.startService()
        try:
            await a.sharing.share(root)
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))

            def listed() -> set[str]:
                tree = b.sharing.lists.trees.get(a.ssl_id)
                return set() if tree is None else {f.name for _, f in tree.walk()}

            await wait_for(reactor, lambda: listed() == {"bad.bin", "good.txt"}, timeout=30)
            a.banlist.block_file(bad, "bad.bin", 14)
            await wait_for(reactor, lambda: listed() == {"good.txt"}, timeout=30)
            await wait_for(reactor, lambda: b.banlist.files.is_banned(bad), timeout=30)
            served = a.transfers.server.chunk_map(b.ssl_id, bad)
            found = b.sharing.search(file_hash=bad)
            try:
                b.transfers.download(bad, 14, "bad.bin", sources=[a.ssl_id])
                downloaded = "started"
            except TransferError:
                downloaded = "refused"
            a.banlist.unblock_file(bad)
            await wait_for(reactor, lambda: listed() == {"bad.bin", "good.txt"}, timeout=30)
            await wait_for(reactor, lambda: not b.banlist.files.is_banned(bad), timeout=30)
            return served, found, downloaded, b.sharing.search(file_hash=bad)
        finally:
            await a.stopService()
            await b.stopService()

    served, found, downloaded, found_after = on_fresh_reactor(body, 150)
    assert served is None and found == [] and downloaded == "refused"
    assert [r.name for r in found_after] == ["bad.bin"]


def test_rsnode_block_commands(tmp_path, capsys) -> None:
    """``rsnode block ip|friend|file|id|list`` (and ``--undo``) act on a running node over the
    control channel; a bad range is an error, not a crash."""
    from twisted.internet.threads import deferToThreadPool

    from services.cli import rsnode as cli

    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice", control=True)
        b = make_node(reactor, tmp_path, "bob")
        await a.startService()
        await b.startService()
        pool = reactor.getThreadPool()
        base = ("--base-dir", str(tmp_path / "alice"))

        def rsnode(*argv: str) -> int:
            return cli.main(list(argv))

        async def run(*argv: str) -> int:
            return await deferToThreadPool(reactor, pool, rsnode, "block", *argv, *base)

        try:
            a.add_friend(cert_of(b))
            codes = [await run("ip", "203.0.113.0/24", "--comment", "scanner"),
                     await run("ip", "203.0.113.0/20"),
                     await run("friend", b.ssl_id.to_hex(), "--reason", "gone"),
                     await run("file", "ab" * 20, "--name", "x.bin"),
                     await run("id", "cd" * 16, "--reason", "troll")]
            listed = a.banlist.listing()
            codes.append(await run("list", "--json"))
            codes += [await run("ip", "203.0.113.0/24", "--undo"),
                      await run("friend", b.ssl_id.to_hex(), "--undo"),
                      await run("file", "ab" * 20, "--undo"),
                      await run("id", "cd" * 16, "--undo")]
            return codes, listed, a.banlist.listing()
        finally:
            await a.stopService()
            await b.stopService()

    codes, listed, after = on_fresh_reactor(body, 90)
    assert codes[0] == 0 and codes[1] != 0 and codes[2:] == [0] * 8
    assert [b["range"] for b in listed["ips"]] == ["203.0.113.0/24"]
    assert [(d["kind"], d["reason"]) for d in listed["friends"]] == [("location", "gone")]
    assert [f["name"] for f in listed["files"]] == ["x.bin"]
    assert [i["reason"] for i in listed["ids"]] == ["troll"]
    assert after["ips"] == after["friends"] == after["files"] == after["ids"] == []
    out = capsys.readouterr().out
    assert '"203.0.113.0/24"' in out and "banned 203.0.113.0/24" in out


def test_banned_address_gets_no_dht_answer_over_real_udp(tmp_path) -> None:
    """Two DHT nodes on 127.0.0.1: while ours bans 127.0.0.1 the other's ping gets no answer
    (and ours sends nothing there); lifting the ban brings the answer back."""
    import ipaddress
    import random

    from dht import DHTService
    from dht.krpc import Response
    from dht.node import DHTConfig
    from services.banlist.rules import BanRules

    rules = BanRules(b"own")
    rules.add_range(ipaddress.IPv4Address("127.0.0.1"), 0, 0.0)

    async def body(reactor):
        config = DHTConfig(query_timeout=1.0)
        ours = DHTService(reactor, 0, interface="127.0.0.1", ssl_id=b"\x01" * 16,
                          rng=random.Random(1), config=config,
                          address_filter=lambda h: rules.accepts(ipaddress.ip_address(h)))
        theirs = DHTService(reactor, 0, interface="127.0.0.1", ssl_id=b"\x02" * 16,
                            rng=random.Random(2), config=config)
        ours.startService()
        theirs.startService()
        try:
            banned = await theirs.ping(("127.0.0.1", ours.port))
            dropped = ours.protocol.banned_dropped
            rules.remove_range(ipaddress.IPv4Address("127.0.0.1"), 0, 0.0)
            answered = await theirs.ping(("127.0.0.1", ours.port))
            return banned, dropped, answered
        finally:
            await ours.stopService()
            await theirs.stopService()

    banned, dropped, answered = on_fresh_reactor(body, 60)
    assert banned is None and dropped >= 1
    assert isinstance(answered, Response)
