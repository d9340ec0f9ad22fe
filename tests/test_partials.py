"""Partial files: durable chunk maps, resume, verified-only completion with clash renaming,
and a full disk or read-only incoming folder pausing a download without losing anything."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess

import pytest
from twisted.internet.task import Clock

from pqi.interfaces import PeerIdentity
from pqi.items.ft import FtChunkMapItem, FtDataItem
from pqi.wire.fields import PgpId, Sha1Hash, SslId
from pqi.wire.tlvvalues import FileData, FileItem
from services.transfer import partials as partials_module
from services.transfer.chunkmap import CHUNK_SIZE, full_map
from services.transfer.partials import PartialFile, PartialStateError
from services.transfer.service import FileTransferService, TransferCompleted
from tests.service_fakes import RecordingSender

H = Sha1Hash(b"\x11" * 20)


def test_commit_survives_reload_and_state_is_atomic(tmp_path) -> None:
    """Committed chunks and settings come back after a reload; no temp file is left and a
    corrupt state file is refused, not overwritten."""
    p = PartialFile.create(tmp_path, H, 3 * CHUNK_SIZE, "x.bin", sources=[SslId(b"\x01" * 16)])
    p.write(CHUNK_SIZE, b"a" * CHUNK_SIZE)
    p.commit([1])
    p.update(priority=2, paused=True)
    p.close()
    q = PartialFile.load(tmp_path, H)
    assert q.chunks.done_indexes() == {1} and q.settings["priority"] == 2
    assert q.settings["paused"] and q.read(CHUNK_SIZE, 3) == b"aaa"
    assert sorted(os.listdir(tmp_path)) == [H.to_hex(), H.to_hex() + ".state"]
    (tmp_path / (H.to_hex() + ".state")).write_text("{not json")
    with pytest.raises(PartialStateError):
        PartialFile.load(tmp_path, H)
    found, failed = PartialFile.scan(tmp_path)
    assert found == [] and len(failed) == 1


def test_first_write_reserves_the_whole_file(tmp_path) -> None:
    """The first write reserves every block of the file (its full size, its blocks allocated)
    and leaves the data written intact; unwritten parts read as zeros."""
    size = 3 * CHUNK_SIZE + 7
    p = PartialFile.create(tmp_path, H, size, "x.bin")
    p.write(CHUNK_SIZE, b"b" * 100)
    st = os.stat(p.data_path)
    assert st.st_size == size and st.st_blocks * 512 >= size
    assert p.read(CHUNK_SIZE, 101) == b"b" * 100 + b"\0"
    p.write(0, b"a" * 10)
    assert p.read(0, 10) == b"a" * 10 and os.stat(p.data_path).st_size == size
    p.close()


def test_commits_and_uncommits_keep_the_saved_map_exact(tmp_path) -> None:
    """The state file's chunk map is kept up chunk by chunk: after any commits and uncommits
    (across the 32-chunk words of the map) a reload sees exactly the chunks still DONE, and the
    running hash resumes from the first chunk made not DONE."""
    count = 70
    p = PartialFile.create(tmp_path, H, count * CHUNK_SIZE - 5, "x.bin")
    p.commit(range(0, count, 3))
    p.commit([1, 2, 31, 32, 33, 63, 64, 69])
    p.uncommit([3, 33, 64])
    expected = (set(range(0, count, 3)) | {1, 2, 31, 32, 63, 69}) - {3, 33, 64}
    p.close()
    q = PartialFile.load(tmp_path, H)
    assert q.chunks.done_indexes() == expected
    q.commit([3])
    assert q._done_run == 4  # 0..3 DONE now, 4 is not
    q.uncommit([1])
    q.hash_prefix()
    assert q._done_run == 1


def test_final_name_only_after_verification_and_clash_renamed(tmp_path) -> None:
    """finish() refuses an unverified partial; once verified, a clashing name gets
    ``name (1).ext`` and the partial disappears."""
    data = b"hello" * 1000
    h = Sha1Hash(hashlib.sha1(data).digest())
    p = PartialFile.create(tmp_path / "p", h, len(data), "../secret/hello.txt")
    p.write(0, data)
    p.commit([0])
    with pytest.raises(PartialStateError):
        p.finish(tmp_path / "in")
    assert not (tmp_path / "in" / "hello.txt").exists()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "hello.txt").write_text("mine")
    p.mark_verified()
    final = p.finish(tmp_path / "in")
    assert final == tmp_path / "in" / "hello (1).txt" and final.read_bytes() == data
    assert (tmp_path / "in" / "hello.txt").read_text() == "mine"
    assert os.listdir(tmp_path / "p") == []
    assert not (tmp_path / "secret").exists()


@contextlib.contextmanager
def tmpfs(path, size: str, read_only: bool = False):
    """A small tmpfs at ``path`` (CI runs as root), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def service(tmp_path, partials, incoming):
    clock = Clock()
    svc = FileTransferService(RecordingSender(), clock, partials_dir=partials,
                              incoming_dir=incoming, hash_in_thread=False)
    svc.start()
    peer = PeerIdentity(SslId(b"\x02" * 16), PgpId(b"\x02" * 8))
    svc.peer_connected(peer)
    return svc, clock, peer


def feed(svc, peer, data: bytes, h: Sha1Hash) -> None:
    """Answer every data request the service sent, as a complete source would."""
    sender = svc.sender
    for _ in range(200):
        reqs, sender.sent[:] = list(sender.sent), []
        if not reqs:
            return
        for _p, item in reqs:
            name = type(item).__name__
            if name == "FtChunkMapRequestItem":
                svc.receive(peer, FtChunkMapItem(is_client=True, hash=h,
                                                 chunk_map=full_map(8)))
            elif name == "FtDataRequestItem":
                for o in range(item.offset, item.offset + item.chunk_size, 240 * 1024):
                    n = min(240 * 1024, item.offset + item.chunk_size - o)
                    svc.receive(peer, FtDataItem(data=FileData(FileItem(len(data), h), o,
                                                               data[o:o + n])))


def test_full_disk_pauses_with_error_and_keeps_done_chunks(tmp_path) -> None:
    """Partials on a 3 MiB tmpfs, a 5 MiB download: the write that hits ENOSPC pauses the
    download with a "disk full" error; the state on disk (which the full disk may keep from
    being updated) still parses and every chunk it calls DONE is intact."""
    data = os.urandom(5 * CHUNK_SIZE)
    h = Sha1Hash(hashlib.sha1(data).digest())
    with tmpfs(tmp_path / "small", "3m") as small:
        svc, clock, peer = service(tmp_path, small / "partials", tmp_path / "in")
        svc.download(h, len(data), "big.bin", [peer.ssl_id])
        feed(svc, peer, data, h)
        info = svc.info(h)
        assert info.state == "error" and "disk full" in info.error
        assert svc.transfers()[0].state == "error"
        assert not [n for n in os.listdir(small / "partials") if n.endswith(".tmp")]
        reloaded = PartialFile.load(small / "partials", h)
        assert reloaded.chunks.done_count >= 1
        for i in reloaded.chunks.done_indexes():
            lo = i * CHUNK_SIZE
            assert reloaded.chunk_sha1(i) == hashlib.sha1(data[lo:lo + CHUNK_SIZE]).digest()
        reloaded.close()
        svc.stop()


def test_blocks_not_reserved_without_the_space(tmp_path) -> None:
    """On a 3 MiB tmpfs a 5 MiB reservation is refused (False) and leaves the file as it was;
    a write then still lands, so the download goes on until the disk is really full."""
    with tmpfs(tmp_path / "small", "3m") as small:
        p = PartialFile.create(small, H, 5 * CHUNK_SIZE, "x.bin")
        fd = p._open()  # noqa: SLF001
        assert not partials_module._reserve_blocks(fd, 5 * CHUNK_SIZE)  # noqa: SLF001
        assert os.fstat(fd).st_size == 0
        p.write(0, b"c" * 1000)
        assert p.read(0, 1000) == b"c" * 1000
        assert os.fstat(fd).st_size == 1000
        p.close()


def test_read_only_incoming_keeps_verified_partial_until_resumed(tmp_path) -> None:
    """A verified file whose incoming folder is read-only stays in partials, paused with a
    clear error; after the folder becomes writable, resume moves it."""
    data = os.urandom(CHUNK_SIZE + 5)
    h = Sha1Hash(hashlib.sha1(data).digest())
    with tmpfs(tmp_path / "ro", "4m", read_only=True) as ro:
        svc, clock, peer = service(tmp_path, tmp_path / "partials", ro)
        svc.download(h, len(data), "f.bin", [peer.ssl_id])
        feed(svc, peer, data, h)
        info = svc.info(h)
        assert "refuses the file" in info.error and os.listdir(ro) == []
        assert PartialFile.load(tmp_path / "partials", h).verified
        subprocess.run(["mount", "-o", "remount,rw", str(ro)], check=True)
        done = []
        svc._on_event = lambda event: done.append(type(event))  # noqa: SLF001
        svc.resume(h)
        assert TransferCompleted in done, svc.info(h).error
        assert (ro / "f.bin").read_bytes() == data
        svc.stop()
