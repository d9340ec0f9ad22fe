"""Shared folders, the sqlite hash cache and the shared-file index over real files, real
threads and real sqlite."""

from __future__ import annotations

import hashlib
import os

import pytest
from twisted.python.threadpool import ThreadPool

from pqi.wire.fields import Sha1Hash
from services.sharing.hashing import FileChangedError, HashCache, Hasher, sha1_of_file
from services.sharing.index import ROOT_HASH, SharedIndex, dir_hash, load_salt
from services.sharing.shares import (
    DuplicateShareError,
    NotAFolderError,
    ShareList,
    UnknownShareError,
    Visibility,
)
from tests.service_fakes import on_fresh_reactor, peer

pytestmark = pytest.mark.timeout(60)
OLD = 1_600_000_000


def sha1(data: bytes) -> Sha1Hash:
    return Sha1Hash(hashlib.sha1(data).digest())


def write(path, data: bytes, mtime: int = OLD) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


# --- share list ----------------------------------------------------------------------------------

def test_share_list_persists(tmp_path) -> None:
    """Shares with their visibility survive reloading the list from disk."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shares = ShareList(tmp_path / "shares.json")
    shares.add(tmp_path / "a")
    shares.add(tmp_path / "b", "bee", Visibility.FRIENDS, [peer(1).ssl_id])
    again = ShareList(tmp_path / "shares.json")
    assert again.folders() == shares.folders()
    assert [f.name for f in again.folders()] == ["a", "bee"]
    bee = again.get("bee")
    assert bee.visible_to(peer(1).ssl_id) and not bee.visible_to(peer(2).ssl_id)
    again.set_visibility("a", Visibility.NONE)
    assert not ShareList(tmp_path / "shares.json").get("a").visible_to(peer(1).ssl_id)
    again.remove("bee")
    assert [f.name for f in ShareList(tmp_path / "shares.json").folders()] == ["a"]


def test_share_errors(tmp_path) -> None:
    """Missing folders, files, a second share of a folder or name, and unknown names are
    named errors."""
    (tmp_path / "a").mkdir()
    (tmp_path / "f").write_bytes(b"x")
    shares = ShareList(tmp_path / "shares.json")
    with pytest.raises(NotAFolderError):
        shares.add(tmp_path / "missing")
    with pytest.raises(NotAFolderError):
        shares.add(tmp_path / "f")
    shares.add(tmp_path / "a")
    with pytest.raises(DuplicateShareError):
        shares.add(tmp_path / "a", "other")
    (tmp_path / "c").mkdir()
    with pytest.raises(DuplicateShareError):
        shares.add(tmp_path / "c", "a")
    with pytest.raises(UnknownShareError):
        shares.remove("nope")


# --- hash cache ----------------------------------------------------------------------------------

def test_hash_cache_keyed_by_size_and_mtime(tmp_path) -> None:
    """A cached hash is returned only for the same size and mtime, and survives reopening."""
    cache = HashCache(tmp_path / "c.sqlite", now=lambda: 1000.0)
    cache.put("/x", 5, 77, sha1(b"x"))
    assert cache.get("/x", 5, 77) == sha1(b"x")
    assert cache.get("/x", 6, 77) is None and cache.get("/x", 5, 78) is None
    cache.close()
    cache = HashCache(tmp_path / "c.sqlite", now=lambda: 5000.0)
    assert cache.get("/x", 5, 77) == sha1(b"x") and len(cache) == 1
    assert cache.forget_older(3000) == 1 and len(cache) == 0
    cache.close()


def test_hash_cache_keeps_a_path_not_utf8(tmp_path) -> None:
    """A file name that is not UTF-8 (escaped bytes in Python) is cached and found like any
    other (storing it used to fail), and touched entries are not forgotten."""
    name = os.fsdecode(b"/share/caf\xe9 \xff.txt")
    cache = HashCache(tmp_path / "c.sqlite", now=lambda: 1000.0)
    cache.put(name, 5, 77, sha1(b"x"))
    cache.put("/share/café.txt", 5, 77, sha1(b"y"))
    cache.close()
    cache = HashCache(tmp_path / "c.sqlite", now=lambda: 5000.0)
    assert cache.get(name, 5, 77) == sha1(b"x")
    assert cache.get("/share/café.txt", 5, 77) == sha1(b"y")
    cache.touch([name])
    assert cache.forget_older(3000) == 1 and cache.get(name, 5, 77) == sha1(b"x")
    cache.close()


@pytest.mark.integration
def test_a_file_named_not_utf8_is_shared_and_hashed_once(tmp_path) -> None:
    """A shared file whose name is not UTF-8 is indexed with its hash, and a rescan on a
    restarted index reads nothing (the hash was cached)."""
    share = tmp_path / "share"
    raw = os.path.join(os.fsencode(share), b"caf\xe9 \xff.txt")
    write(share / "plain.txt", b"plain")
    with open(raw, "wb") as f:
        f.write(b"junk name")
    os.utime(raw, (OLD, OLD))

    async def body(reactor, pool):
        cache = HashCache(tmp_path / "hc.sqlite", reactor.seconds)
        index = _index(reactor, tmp_path, pool, cache)
        index.shares.add(share)
        await index.scan()
        found = {f.name: f.hash for f in index.files()}
        restarted = _index(reactor, tmp_path, pool, cache)
        await restarted.scan()
        cache.close()
        return found, index.hasher.hashed, restarted.hasher.hashed

    found, hashed, rehashed = run_with_pool(body)
    assert found == {"plain.txt": sha1(b"plain"), os.fsdecode(b"caf\xe9 \xff.txt"):
                     sha1(b"junk name")}
    assert (hashed, rehashed) == (2, 0)


def test_sha1_of_file_notices_change(tmp_path) -> None:
    """A file whose size or time differs from what the scan saw is not given a hash."""
    path = tmp_path / "f"
    write(path, b"hello")
    st = os.stat(path)
    assert sha1_of_file(str(path), 5, st.st_mtime_ns) == sha1(b"hello")
    with pytest.raises(FileChangedError):
        sha1_of_file(str(path), 5, st.st_mtime_ns + 1)


# --- index ---------------------------------------------------------------------------------

def _index(reactor, base, pool, cache, **kwargs) -> SharedIndex:
    shares = ShareList(base / "shares.json")
    return SharedIndex(reactor, shares, Hasher(reactor, pool, cache), pool,
                       load_salt(base / "salt"), settle=0, **kwargs)


def run_with_pool(body, timeout: float = 30):
    async def wrapped(reactor):
        pool = ThreadPool(0, 2)
        pool.start()
        try:
            return await body(reactor, pool)
        finally:
            pool.stop()
    return on_fresh_reactor(wrapped, timeout)


@pytest.mark.integration
def test_index_hashes_and_never_rehashes(tmp_path) -> None:
    """Files are hashed once: a rescan, and a restart on the same sqlite cache, read nothing;
    a modified file is hashed again, alone; lookups give path and size."""
    share = tmp_path / "share"
    write(share / "a.txt", b"alpha")
    write(share / "sub" / "b.bin", b"b" * 300_000)
    write(share / "sub" / "deeper" / "c", b"")

    async def body(reactor, pool):
        cache = HashCache(tmp_path / "hc.sqlite", reactor.seconds)
        index = _index(reactor, tmp_path, pool, cache)
        index.shares.add(share)
        changed1 = await index.scan()
        first = index.hasher.hashed
        changed2 = await index.scan()
        second = index.hasher.hashed
        write(share / "a.txt", b"alpha2", mtime=OLD + 5)
        changed3 = await index.scan()
        third = index.hasher.hashed
        found = {f.name: f.hash for f in index.files()}
        looked = index.lookup(sha1(b"b" * 300_000))
        restarted = _index(reactor, tmp_path, pool, cache)
        await restarted.scan()
        cache.close()
        return (changed1, changed2, changed3, first, second, third, found, looked,
                restarted.hasher.hashed, {f.name for f in restarted.files()})

    (changed1, changed2, changed3, first, second, third, found, looked, after_restart,
     restarted_files) = run_with_pool(body)
    assert (changed1, changed2, changed3) == (True, False, True)
    assert (first, second, third) == (3, 3, 4)
    assert found == {"a.txt": sha1(b"alpha2"), "b.bin": sha1(b"b" * 300_000), "c": sha1(b"")}
    assert looked == (str(share / "sub" / "b.bin"), 300_000)
    assert after_restart == 0 and restarted_files == {"a.txt", "b.bin", "c"}


@pytest.mark.integration
def test_index_tree_hashes_and_times(tmp_path) -> None:
    """Directory hashes follow SHA1(salt || parent || name) (top level: the folder's real
    path); the root lists the shares; recursive times take the newest time below, and change
    when a file with an old time appears."""
    share = tmp_path / "share"
    write(share / "x" / "f1", b"1", mtime=OLD)
    write(share / "x" / "f2", b"2", mtime=OLD + 50)
    os.utime(share / "x", (OLD, OLD))
    os.utime(share, (OLD, OLD))

    async def body(reactor, pool):
        cache = HashCache(tmp_path / "hc.sqlite", reactor.seconds)
        index = _index(reactor, tmp_path, pool, cache)
        index.shares.add(share, "pub")
        await index.scan()
        before = {h: index.directory(h) for h in list(index._dirs)}
        write(share / "x" / "late", b"3", mtime=OLD - 1000)
        os.utime(share / "x", (OLD, OLD))
        await index.scan()
        after = {h: index.directory(h) for h in list(index._dirs)}
        cache.close()
        return index.salt, before, after

    salt, before, after = run_with_pool(body)
    top = dir_hash(salt, bytes(20), str(share.resolve()))
    x = dir_hash(salt, top, "x")
    assert set(before) == {ROOT_HASH, top, x}
    assert before[ROOT_HASH].subdirs == (top,) and before[top].subdirs == (x,)
    assert before[top].name == "pub" and before[x].name == "x"
    assert before[x].recurs_modif_ts == OLD + 50 == before[ROOT_HASH].recurs_modif_ts
    assert before[x].modif_ts == OLD
    assert after[x].recurs_modif_ts == OLD + 51
    assert after[top].recurs_modif_ts == OLD + 51 == after[ROOT_HASH].recurs_modif_ts


@pytest.mark.integration
def test_visibility_and_settling(tmp_path) -> None:
    """A folder shared with chosen friends is in their root only, and only they can look its
    files up; a file modified just now waits for a later scan."""
    pub, priv = tmp_path / "pub", tmp_path / "priv"
    write(pub / "p", b"public")
    write(priv / "s", b"secret")
    friend, other = peer(1).ssl_id, peer(2).ssl_id

    async def body(reactor, pool):
        cache = HashCache(tmp_path / "hc.sqlite", reactor.seconds)
        index = _index(reactor, tmp_path, pool, cache)
        index.settle = 3600
        index.shares.add(pub)
        index.shares.add(priv, visibility=Visibility.FRIENDS, friends=[friend])
        write(pub / "fresh", b"new", mtime=int(index.wall()))
        await index.scan()
        cache.close()
        return index

    index = run_with_pool(body)
    root_friend = index.content_for(ROOT_HASH, friend)
    root_other = index.content_for(ROOT_HASH, other)
    assert len(root_friend.subdirs) == 2 and len(root_other.subdirs) == 1
    (hidden,) = set(root_friend.subdirs) - set(root_other.subdirs)
    assert index.content_for(hidden, other) is None
    assert [f.name for f in index.content_for(hidden, friend).files] == ["s"]
    assert index.lookup_for(sha1(b"secret"), friend) is not None
    assert index.lookup_for(sha1(b"secret"), other) is None
    assert index.lookup_for(sha1(b"public"), other) is not None
    assert index.pending == 1 and index.lookup(sha1(b"new")) is None


@pytest.mark.integration
def test_a_file_left_to_settle_is_shared_once_settled_not_a_period_later(tmp_path) -> None:
    """A running index whose scan found a file too recent to hash scans again once that
    file has settled: with a one-hour rescan period, the file is shared seconds later, and
    that extra scan is the only one (it leaves nothing to wait for)."""
    from tests.service_fakes import wait_for

    share = tmp_path / "share"
    write(share / "old", b"old")

    async def body(reactor, pool):
        cache = HashCache(tmp_path / "hc.sqlite", reactor.seconds)
        index = _index(reactor, tmp_path, pool, cache, period=3600)
        index.settle = 1.5
        index.shares.add(share)
        write(share / "fresh", b"new", mtime=int(index.wall()))
        index.start()
        try:
            await wait_for(reactor, lambda: index.scans == 1 and not index.scanning, 10)
            first = (index.pending, index.lookup(sha1(b"new")))
            await wait_for(reactor, lambda: index.lookup(sha1(b"new")) is not None, 15)
            await wait_for(reactor, lambda: not index.scanning, 10)
            return first, index.scans, index.pending, index._settle_call
        finally:
            index.stop()
            cache.close()

    first, scans, pending, waiting = run_with_pool(body)
    assert first == (1, None)
    assert (scans, pending, waiting) == (2, 0, None)


def test_salt_persists(tmp_path) -> None:
    """The directory-hash salt is made once, kept private, and reused."""
    salt = load_salt(tmp_path / "salt")
    assert len(salt) == 20 and load_salt(tmp_path / "salt") == salt
    assert os.stat(tmp_path / "salt").st_mode & 0o077 == 0


@pytest.mark.integration
def test_hashing_runs_in_the_pool(tmp_path) -> None:
    """Walking and hashing happen in the given thread pool, never on the reactor thread:
    every file read for hashing is read by a pool thread."""
    import threading

    import services.sharing.hashing as hashing
    share = tmp_path / "share"
    for i in range(4):
        write(share / f"f{i}", bytes([i]) * 1000)
    readers: list[int] = []
    real = hashing.sha1_of_file

    def recording(path, size, mtime_ns):
        readers.append(threading.get_ident())
        return real(path, size, mtime_ns)

    async def body(reactor, pool):
        cache = HashCache(tmp_path / "hc.sqlite", reactor.seconds)
        index = _index(reactor, tmp_path, pool, cache)
        index.shares.add(share)
        reactor_thread = threading.get_ident()
        await index.scan()
        cache.close()
        return reactor_thread, index.hasher.hashed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hashing, "sha1_of_file", recording)
        reactor_thread, hashed = run_with_pool(body)
    assert hashed == 4 and len(readers) == 4 and reactor_thread not in readers


@pytest.mark.integration
def test_visibility_change_changes_root_time(tmp_path) -> None:
    """Hiding a folder changes nothing on disk, yet the root's recursive time must change so
    friends re-read the root and lose the folder."""
    write(tmp_path / "pub" / "f", b"f")

    async def body(reactor, pool):
        cache = HashCache(tmp_path / "hc.sqlite", reactor.seconds)
        index = _index(reactor, tmp_path, pool, cache)
        index.shares.add(tmp_path / "pub")
        await index.scan()
        before = index.directory(ROOT_HASH).recurs_modif_ts
        await index.scan()
        same = index.directory(ROOT_HASH).recurs_modif_ts
        index.shares.set_visibility("pub", Visibility.NONE)
        changed = await index.scan()
        after = index.directory(ROOT_HASH).recurs_modif_ts
        cache.close()
        return before, same, changed, after

    before, same, changed, after = run_with_pool(body)
    assert same == before and changed and after == before + 1


def test_hashing_progress_counts_files_and_bytes(tmp_path) -> None:
    """Issue 12 item 10: the index reports how many files and bytes a scan checked out of how
    many, and how many recently changed files wait to settle; mid-scan it shows partial
    progress."""
    share = tmp_path / "share"
    for i in range(4):
        write(share / f"f{i}.bin", bytes([i]) * (1000 * (i + 1)))
    seen_mid_scan = []

    async def body(reactor, pool):
        cache = HashCache(tmp_path / "hc.sqlite", reactor.seconds)
        index = _index(reactor, tmp_path, pool, cache)
        index.settle = 3600
        index.shares.add(share)
        write(share / "fresh", b"new", mtime=int(index.wall()))
        scan = index.scan()
        seen_mid_scan.append(index.progress.to_json())
        await scan
        cache.close()
        return index.progress.to_json()

    done = run_with_pool(body)
    assert done == {"files_total": 4, "files_done": 4, "bytes_total": 10_000,
                    "bytes_done": 10_000, "waiting": 1}
    assert seen_mid_scan[0]["files_total"] in (0, 4)  # before or after the walk started
    assert seen_mid_scan[0]["files_done"] < 4


def test_hashing_line() -> None:
    """``files shares``/``files share`` say how far hashing got, in words."""
    from services.cli.files import format_hashing
    base = {"files_total": 10, "files_done": 3, "bytes_total": 40 << 20,
            "bytes_done": 3 << 20, "waiting": 0, "scanning": True}
    assert format_hashing(base) == "hashing: 3 of 10 files, 3.0 MiB of 40.0 MiB"
    assert format_hashing({**base, "files_done": 10, "scanning": False, "waiting": 2}) == (
        "hashing: done, 10 files checked; 2 recently changed files wait to settle")
    assert format_hashing({**base, "files_total": 0, "files_done": 0}) == (
        "hashing: looking through the folders")
