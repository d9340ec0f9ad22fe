"""Commits of DONE chunks are coalesced: the first at once, later ones at most every
`COMMIT_INTERVAL` seconds, and none is ever lost (pause, verify and stop commit what waits)."""

from __future__ import annotations

import hashlib
import random

from twisted.internet.task import Clock

from pqi.fields import PgpId, Sha1Hash, SslId
from pqi.interfaces import PeerIdentity
from pqi.items.ft import FtChunkMapItem, FtDataItem
from pqi.tlvvalues import FileData, FileItem
from services.transfer.chunkmap import CHUNK_SIZE, Strategy, full_map
from services.transfer.partials import PartialFile
from services.transfer.server import MAX_FT_CHUNK
from services.transfer.service import COMMIT_INTERVAL, FileTransferService
from tests.service_fakes import RecordingSender

PEER = PeerIdentity(SslId(b"\x02" * 16), PgpId(b"\x02" * 8))


def start(tmp_path, size: int):
    data = random.Random(4).randbytes(size)
    h = Sha1Hash(hashlib.sha1(data).digest())
    clock = Clock()
    hooks: list[str] = []
    svc = FileTransferService(RecordingSender(), clock, partials_dir=tmp_path / "p",
                              incoming_dir=tmp_path / "in", hash_in_thread=False,
                              hook=hooks.append, strategy=Strategy.STREAMING)
    svc.start()
    svc.peer_connected(PEER)
    svc.download(h, size, "f.bin", [PEER.ssl_id])
    return svc, clock, hooks, data, h


def serve(svc, data: bytes, h: Sha1Hash, below: int) -> None:
    """Answer the requests sent so far (and those they lead to) for bytes below ``below``."""
    later: list = []
    for _ in range(500):
        reqs, svc.sender.sent[:] = list(svc.sender.sent), []
        served = False
        for _p, item in reqs:
            name = type(item).__name__
            if name == "FtChunkMapRequestItem":
                svc.receive(PEER, FtChunkMapItem(is_client=True, hash=h,
                                                 chunk_map=full_map(8)))
                served = True
            elif name == "FtDataRequestItem" and item.offset < below:
                end = min(item.offset + item.chunk_size, below)
                for o in range(item.offset, end, MAX_FT_CHUNK):
                    n = min(MAX_FT_CHUNK, end - o)
                    svc.receive(PEER, FtDataItem(data=FileData(FileItem(len(data), h), o,
                                                               data[o:o + n])))
                served = True
            else:
                later.append((_p, item))
        if not served:
            svc.sender.sent[:0] = later
            return


def on_disk(tmp_path, h: Sha1Hash) -> frozenset[int]:
    p = PartialFile.load(tmp_path / "p", h)
    try:
        return p.chunks.done_indexes()
    finally:
        p.close()


def test_first_chunk_commits_at_once_later_ones_together(tmp_path) -> None:
    """Chunk 0 is committed as it completes; chunks 1-3, completing within the interval,
    are DONE for the engine at once but reach the state file together, in one commit, when
    the interval has passed."""
    svc, clock, hooks, data, h = start(tmp_path, 6 * CHUNK_SIZE)
    serve(svc, data, h, CHUNK_SIZE)
    assert on_disk(tmp_path, h) == {0}
    commits = hooks.count("commit")
    serve(svc, data, h, 4 * CHUNK_SIZE)
    assert svc.downloads[h].engine.chunks.done_indexes() == {0, 1, 2, 3}
    assert on_disk(tmp_path, h) == {0}
    clock.advance(COMMIT_INTERVAL)
    assert on_disk(tmp_path, h) == {0, 1, 2, 3}
    assert hooks.count("commit") == commits + 1
    svc.stop()


def test_pause_and_stop_commit_what_waits(tmp_path) -> None:
    """DONE chunks waiting for the interval are committed by a pause, and by stopping the
    service; a download completed before the interval ends is verified and moved as ever."""
    svc, clock, hooks, data, h = start(tmp_path, 6 * CHUNK_SIZE)
    serve(svc, data, h, 3 * CHUNK_SIZE)
    assert on_disk(tmp_path, h) == {0}
    svc.pause(h)
    assert on_disk(tmp_path, h) == {0, 1, 2}
    svc.resume(h)
    serve(svc, data, h, 5 * CHUNK_SIZE)
    svc.stop()
    assert on_disk(tmp_path, h) == {0, 1, 2, 3, 4}

    svc2, clock2, _, _, _ = start(tmp_path / "again", 6 * CHUNK_SIZE)
    done: list = []
    svc2._on_event = lambda kind, *a: done.append(kind)  # noqa: SLF001
    serve(svc2, data, h, len(data))
    assert "transfer_complete" in done
    assert (tmp_path / "again" / "in" / "f.bin").read_bytes() == data
    svc2.stop()
