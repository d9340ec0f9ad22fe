"""Real nodes on 127.0.0.1 in a line, alice - bob - carol (alice and carol not friends):
carol shares a folder anonymously, alice finds a file in it by anonymous search and downloads
it through bob; bob only ever relays H(H) and ciphertext; bob is stopped mid-transfer and
started again, and the download resumes through him to a verified file."""

from __future__ import annotations

import hashlib
import os

import pytest

from pqi.items.turtle import (
    TurtleGenericDataItem,
    TurtleGenericFastDataItem,
    TurtleOpenTunnelItem,
    TurtleTunnelOkItem,
)
from pqi.wire.fields import Sha1Hash
from pqi.wire.item import encode
from services.sharing import SharingOptions
from services.transfer.service import TransferCompleted
from services.turtle.crypto import hash_of_hash
from services.turtle.router import TurtleLimits
from tests.service_fakes import (
    befriend,
    make_node,
    on_fresh_reactor,
    tap_items,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FAST = SharingOptions(settle=0, rescan_period=3600, resync_period=1.0, sweep_period=0.2)
SIZE = 24 * 1024 * 1024 + 12345




def test_anonymous_search_and_download_through_a_relay_that_restarts(tmp_path) -> None:
    """Search reaches carol through bob and the hit comes back; the download runs over a
    tunnel alice - bob - carol; everything bob receives during the transfer names only H(H)
    and carries only ciphertext; stopping bob mid-transfer closes the tunnel, and once bob is
    back a new tunnel is dug and the download completes with the right SHA-1."""
    shared = tmp_path / "carol-shared"
    shared.mkdir()
    data = os.urandom(SIZE)
    (shared / "needle-file.bin").write_bytes(data)
    real = Sha1Hash(hashlib.sha1(data).digest())

    async def body(reactor):
        # alice digs again 2 s (not RetroShare's 50 s) after her tunnel through bob died
        alice = make_node(reactor, tmp_path, "alice", file_sharing=FAST,
                          turtle=TurtleLimits(empty_tunnel_digging=2.0))
        bob = make_node(reactor, tmp_path, "bob", file_sharing=FAST)
        carol = make_node(reactor, tmp_path, "carol", file_sharing=FAST)
        nodes = [alice, bob, carol]
        for n in nodes:
            await n.startService()
        try:
            await carol.sharing.share(str(shared), anonymous=True)
            await befriend(reactor, alice, bob, 0x0014)
            await befriend(reactor, bob, carol, 0x0014)
            assert not alice.control.enabled(carol.ssl_id)

            rid = alice.turtle.search("NEEDLE")
            await wait_for(reactor, lambda: real in alice.turtle.searches[rid].hits, 20)
            hit = alice.turtle.searches[rid].hits[real]
            assert (hit.name, hit.size) == ("needle-file.bin", SIZE)

            seen: list = []
            tap_items(bob, seen)
            done: list = []
            alice.subscribe(TransferCompleted, lambda e: done.append(e.info))
            alice.turtle.download_anonymous(real, SIZE, hit.name)
            await wait_for(reactor, lambda: alice.transfers.info(real).done > SIZE // 4,
                           120, step=0.05)
            tunnel_peers = [p for p in alice.transfers.downloads[real].engine.sources
                            if alice.turtle.files.is_tunnel(p)]
            assert tunnel_peers

            bob_port = bob.listening.port
            await bob.stopService()
            nodes.remove(bob)
            await wait_for(reactor, lambda: not alice.turtle.router.tunnels, 30)
            assert not done
            bob2 = make_node(reactor, tmp_path, "bob", port=bob_port, file_sharing=FAST)
            nodes.append(bob2)
            await bob2.startService()
            tap_items(bob2, seen)
            await wait_for(reactor, lambda: bool(done), 200, step=0.05)
            return done[0], seen, alice.turtle.status_section(), bob2.turtle.status_section()
        finally:
            for n in nodes:
                await n.stopService()

    info, seen, alice_status, bob_status = on_fresh_reactor(body, 290)
    with open(info.path, "rb") as f:
        assert hashlib.sha1(f.read()).digest() == bytes(real)
    assert bob_status["relayed_bytes"] > 0 and alice_status["tunnel_data_in"] > 0
    turtle = [i for i in seen if getattr(i, "SERVICE", None) == 0x0014]
    opens = [i for i in turtle if isinstance(i, TurtleOpenTunnelItem)]
    assert opens and all(i.file_hash == hash_of_hash(real) for i in opens)
    data_items = [i for i in turtle if isinstance(i, (TurtleGenericDataItem,
                                                      TurtleGenericFastDataItem))]
    assert len(data_items) > 10
    assert all(i.data[:4] == b"\xae\xad\x02\x01" for i in data_items)
    assert {type(i) for i in turtle} <= {TurtleOpenTunnelItem, TurtleTunnelOkItem,
                                         TurtleGenericDataItem, TurtleGenericFastDataItem}
    sample = data[SIZE // 2:SIZE // 2 + 64]
    for item in seen:
        raw = encode(item)
        assert bytes(real) not in raw and real.to_hex().encode() not in raw
        assert sample not in raw


def test_rsnode_anonymous_search_get_transfers_status_and_relay(tmp_path, capsys) -> None:
    """Through the control channel: carol shares with ``--anonymous``; alice's
    ``files search --anonymous`` prints carol's file with its link; ``files get LINK`` (no
    friend lists it) downloads through a tunnel, ``files transfers`` names the source
    "tunnel"; ``status`` shows the turtle line; ``files relay --rate`` sets bob's share."""
    shared = tmp_path / "pub"
    shared.mkdir()
    data = os.urandom(6 * 1024 * 1024)
    (shared / "tunnelled-thing.bin").write_bytes(data)
    real = Sha1Hash(hashlib.sha1(data).digest())
    from twisted.internet.threads import deferToThreadPool

    from services.cli import rsnode as cli
    early: list[str] = []

    async def body(reactor):
        names = ("alice", "bob", "carol")
        alice, bob, carol = (make_node(reactor, tmp_path, n, file_sharing=FAST, control=True)
                             for n in names)
        nodes = [alice, bob, carol]
        for n in nodes:
            await n.startService()
        pool = reactor.getThreadPool()

        async def rsnode(who: str, *argv: str) -> int:
            return await deferToThreadPool(reactor, pool, cli.main,
                                           [*argv, "--base-dir", str(tmp_path / who)])
        try:
            codes = [await rsnode("bob", "files", "relay", "--rate", "3000000")]
            codes.append(await rsnode("carol", "files", "share", str(shared), "--anonymous"))
            await befriend(reactor, alice, bob, 0x0014)
            await befriend(reactor, bob, carol, 0x0014)
            codes.append(await rsnode("alice", "files", "search", "--anonymous", "thing",
                                      "--wait", "3"))
            early.append(capsys.readouterr().out)
            link = next(line.strip() for line in early[0].splitlines()
                        if line.strip().startswith("retroshare://"))
            codes.append(await rsnode("alice", "files", "get", link))
            await wait_for(reactor, lambda: any(
                alice.turtle.files.is_tunnel(p)
                for t in alice.transfers.downloads.values() for p in t.engine.sources), 30)
            codes.append(await rsnode("alice", "files", "transfers", "--once"))
            done: list = []
            alice.subscribe(TransferCompleted, lambda e: done.append(e.info))
            if real in alice.transfers.downloads:
                await wait_for(reactor, lambda: bool(done), 60, step=0.05)
            codes.append(await rsnode("bob", "status"))
            return codes
        finally:
            for n in nodes:
                await n.stopService()

    codes = on_fresh_reactor(body, 150)
    captured = capsys.readouterr()
    out = captured.out
    assert codes == [0, 0, 0, 0, 0, 0], captured.err
    assert "relay share for others' tunnels: 3000000 bytes/s" in early[0]
    assert "anonymous search and download" in early[0]
    assert "tunnelled-thing.bin  6.0 MiB  (1 answer)" in early[0]
    assert "sources: tunnel" in out
    assert "turtle: 0 tunnels for our downloads, 0 serving" in out
    assert "relay share 3000000 B/s" in out
    path = tmp_path / "alice" / "Downloads" / "tunnelled-thing.bin"
    assert hashlib.sha1(path.read_bytes()).digest() == bytes(real)
