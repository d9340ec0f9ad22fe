"""Two real nodes on 127.0.0.1: one shares folders (real files, real hashing, real sqlite),
the other browses and searches them, through the API and through ``rsnode files``."""

from __future__ import annotations

import hashlib
import os

import pytest
from twisted.internet.threads import deferToThreadPool

from pqi.wire.fields import Sha1Hash, SslId
from services.cli import rsnode as cli
from services.sharing import SharingOptions, Visibility
from services.sharing.filelists import FileListsService
from services.transfer.service import TransferCompleted
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = SharingOptions(settle=0, rescan_period=3600, resync_period=1.0, sweep_period=0.2)


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _files(root) -> dict[str, bytes]:
    data = {
        "pub/hello.txt": b"hello from alice\n",
        "pub/media/needle-1MiB.bin": os.urandom(1 << 20),
        "pub/media/deep/er/tiny": b"x",
        "secret/plan.txt": b"only for carol",
    }
    for rel, content in data.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (1_700_000_000, 1_700_000_000))
    return data


@pytest.mark.slow
def test_browse_and_search_a_friends_share(tmp_path) -> None:
    """Alice shares one folder with every friend and one with another friend only; bob
    syncs alice's list over a real link, sees the public tree with the right names, sizes
    and SHA-1s (never the private folder), finds files by words, size and hash with alice as
    the source, and a file alice adds later reaches bob's list on a re-sync; bob's copy of the
    list is saved when he stops."""
    data = _files(tmp_path / "disk")

    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice", file_sharing=FAST)
        b = make_node(reactor, tmp_path, "bob", file_sharing=FAST)
        await a.startService()
        await b.startService()
        try:
            await a.sharing.share(tmp_path / "disk" / "pub")
            await a.sharing.share(tmp_path / "disk" / "secret", visibility=Visibility.FRIENDS,
                                  friends=[SslId(bytes(16))])
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))

            def listed() -> set[str]:
                tree = b.sharing.lists.trees.get(a.ssl_id)
                return set() if tree is None else {f"{p}/{f.name}" for p, f in tree.walk()}

            await wait_for(reactor, lambda: len(listed()) == 3, timeout=30)
            first = listed()
            browse = b.sharing.browse(a.ssl_id)
            media = b.sharing.browse(a.ssl_id, "pub/media", depth=0)
            by_words = b.sharing.search(["NEEDLE", "bin"])
            by_size = b.sharing.search(min_size=2, max_size=100)
            by_hash = b.sharing.search(file_hash=Sha1Hash.from_hex(sha1(b"x")))
            (tmp_path / "disk" / "pub" / "late.txt").write_bytes(b"late")
            os.utime(tmp_path / "disk" / "pub" / "late.txt", (1_600_000_000,) * 2)
            await a.sharing.index.scan()
            await wait_for(reactor, lambda: "pub/late.txt" in listed(), timeout=30)
            return (first, browse, media, by_words, by_size, by_hash,
                    a.sharing.hasher.hashed, a.sharing.lists.served)
        finally:
            await a.stopService()
            await b.stopService()

    first, browse, media, by_words, by_size, by_hash, hashed, served = on_fresh_reactor(body, 90)
    from services.sharing.remote_store import FRIEND_LISTS_FILE, RemoteTreeStore
    saved = RemoteTreeStore(tmp_path / "bob" / FRIEND_LISTS_FILE).load()
    alice_id = next(iter(saved))
    assert {f"{p}/{f.name}" for p, f in saved[alice_id].walk()} == first | {"pub/late.txt"}
    assert first == {"pub/hello.txt", "pub/media/needle-1MiB.bin", "pub/media/deep/er/tiny"}
    (pub,) = browse["dirs"]
    assert pub["name"] == "pub" and [f["name"] for f in pub["files"]] == ["hello.txt"]
    assert pub["files"][0]["size"] == len(data["pub/hello.txt"])
    assert pub["files"][0]["hash"] == sha1(data["pub/hello.txt"])
    assert media["name"] == "media" and media["files"][0]["hash"] == sha1(
        data["pub/media/needle-1MiB.bin"])
    assert media["dirs"][0]["name"] == "deep"
    (needle,) = by_words
    assert needle.size == 1 << 20 and needle.hash.to_hex() == sha1(
        data["pub/media/needle-1MiB.bin"])
    assert needle.sources[0].path == "pub/media/needle-1MiB.bin"
    assert [r.name for r in by_size] == ["hello.txt"]
    assert [r.name for r in by_hash] == ["tiny"]
    assert hashed == 5 and served >= 5


@pytest.mark.slow
def test_rsnode_files_commands(tmp_path, capsys) -> None:
    """``rsnode files share``, ``shares``, ``browse``, ``search`` and ``visibility`` work
    against running nodes through the control channel; a folder made invisible disappears
    from the friend's list at its next sync."""
    _files(tmp_path / "disk")

    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice", file_sharing=FAST, control=True)
        b = make_node(reactor, tmp_path, "bob", file_sharing=FAST, control=True)
        await a.startService()
        await b.startService()
        pool = reactor.getThreadPool()

        def rsnode(*argv: str) -> int:
            return cli.main(list(argv))

        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: FileListsService.service_id in
                           b.control.enabled(a.ssl_id), timeout=30)
            codes = [await deferToThreadPool(reactor, pool, rsnode, "files", "share",
                                             str(tmp_path / "disk" / "pub"), "--name",
                                             "stuff", "--base-dir", str(tmp_path / "alice"))]
            codes.append(await deferToThreadPool(reactor, pool, rsnode, "files", "shares",
                                                 "--base-dir", str(tmp_path / "alice")))
            await wait_for(reactor, lambda: any(
                f.name == "tiny" for _, f in b.sharing.lists.trees[a.ssl_id].walk()),
                timeout=30)
            for argv in (("browse", "alice"), ("search", "hello"),
                         ("search", "--hash", sha1(b"x"), "--json")):
                codes.append(await deferToThreadPool(
                    reactor, pool, rsnode, "files", *argv, "--base-dir", str(tmp_path / "bob")))
            codes.append(await deferToThreadPool(reactor, pool, rsnode, "files", "browse",
                                                 "nobody", "--base-dir", str(tmp_path / "bob")))
            codes.append(await deferToThreadPool(reactor, pool, rsnode, "files", "visibility",
                                                 "stuff", "none", "--base-dir",
                                                 str(tmp_path / "alice")))
            b.sharing.lists.refresh(a.ssl_id)
            await wait_for(reactor, lambda: not list(b.sharing.lists.trees[a.ssl_id].walk()),
                           timeout=30)
            return codes
        finally:
            await a.stopService()
            await b.stopService()

    codes = on_fresh_reactor(body, 90)
    out, err = capsys.readouterr()
    assert codes == [0, 0, 0, 0, 0, 2, 0]
    assert "stuff is now visible to: none" in out
    assert "sharing" in out and "as 'stuff'" in out and "3 files indexed" in out
    assert "stuff/" in out and "  media/" in out and "needle-1MiB.bin  1.0 MiB" in out
    assert f"hello.txt  17 B  {sha1(b'hello from alice' + bytes([10]))}" in out
    assert '"name": "tiny"' in out and "stuff/media/deep/er/tiny" in out
    assert "nobody" in err


def test_found_file_downloads_from_the_share(tmp_path) -> None:
    """What search finds can be fetched: bob searches alice's list, downloads the result from
    the source it names, and gets the very bytes of alice's shared file (the transfer server
    serves from the shared-file index)."""
    data = _files(tmp_path / "disk")

    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice", file_sharing=FAST)
        b = make_node(reactor, tmp_path, "bob", file_sharing=FAST)
        done = []
        b.subscribe(TransferCompleted, lambda e: done.append(e.info))
        await a.startService()
        await b.startService()
        try:
            await a.sharing.share(tmp_path / "disk" / "pub")
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: b.sharing.search(["needle"]), timeout=30)
            (hit,) = b.sharing.search(["needle"])
            b.transfers.download(hit.hash, hit.size, hit.name,
                                 [s.ssl_id for s in hit.sources])
            await wait_for(reactor, lambda: done, timeout=60)
            return hit
        finally:
            await a.stopService()
            await b.stopService()

    hit = on_fresh_reactor(body, 100)
    got = (tmp_path / "bob" / "Downloads" / hit.name).read_bytes()
    assert got == data["pub/media/needle-1MiB.bin"]
