"""Downloads the user can resume, cancel and clear (issue 12 items 7 and 15): a download
stopped by a full disk resumes by itself once space is back; finished downloads stay listed
(bounded) until cleared; the transfers text says "starting" before a rate exists."""

from __future__ import annotations

import hashlib
import os
import subprocess

from pqi.items.ft import (
    FtChunkCrcItem,
    FtChunkCrcRequestItem,
    FtChunkMapItem,
    FtChunkMapRequestItem,
    FtDataItem,
    FtDataRequestItem,
)
from pqi.wire.fields import Sha1Hash
from pqi.wire.tlvvalues import FileData, FileItem
from services.cli.transfer import format_transfers
from services.transfer.chunkmap import CHUNK_SIZE, full_map
from services.transfer.service import DISK_RETRY_PERIOD, MAX_HISTORY
from tests.test_partials import feed, service, tmpfs


def serve(svc, peer, data: bytes, h: Sha1Hash) -> None:
    """Answer every request the service sent as a complete source would: chunk maps, data
    and, for a resumed download that re-checks its chunks, their SHA-1s."""
    for _ in range(200):
        requests, svc.sender.sent[:] = list(svc.sender.sent), []
        if not requests:
            return
        for _peer, item in requests:
            if isinstance(item, FtChunkMapRequestItem):
                svc.receive(peer, FtChunkMapItem(is_client=True, hash=h, chunk_map=full_map(8)))
            elif isinstance(item, FtChunkCrcRequestItem):
                lo = item.chunk_number * CHUNK_SIZE
                svc.receive(peer, FtChunkCrcItem(
                    hash=h, chunk_number=item.chunk_number,
                    check_sum=Sha1Hash(hashlib.sha1(data[lo:lo + CHUNK_SIZE]).digest())))
            elif isinstance(item, FtDataRequestItem):
                end = item.offset + item.chunk_size
                for o in range(item.offset, end, 240 * 1024):
                    svc.receive(peer, FtDataItem(data=FileData(
                        FileItem(len(data), h), o, data[o:min(end, o + 240 * 1024)])))


def test_disk_full_download_resumes_when_space_returns(tmp_path) -> None:
    """Partials on a 3 MiB tmpfs stop a 5 MiB download ("disk full"); while the disk stays
    full it stays stopped; once the tmpfs grows it resumes by itself within one retry period,
    completes, and is listed as finished until cleared."""
    data = os.urandom(5 * CHUNK_SIZE)
    h = Sha1Hash(hashlib.sha1(data).digest())
    with tmpfs(tmp_path / "small", "3m") as small:
        svc, clock, peer = service(tmp_path, small / "partials", tmp_path / "in")
        svc.download(h, len(data), "big.bin", [peer.ssl_id])
        feed(svc, peer, data, h)
        assert "disk full" in svc.info(h).error
        clock.advance(DISK_RETRY_PERIOD)
        assert "disk full" in svc.info(h).error  # still no room: still waiting
        subprocess.run(["mount", "-o", "remount,size=16m", str(small)], check=True)
        clock.advance(DISK_RETRY_PERIOD)
        assert svc.info(h).error == ""
        for _ in range(60):  # bounded: answer requests, let timeouts re-ask
            serve(svc, peer, data, h)
            if h not in svc.downloads:
                break
            clock.advance(1)
        assert h not in svc.downloads, svc.info(h)
        (done,) = svc.history
        assert done.file_hash == h and (tmp_path / "in" / "big.bin").read_bytes() == data
        assert svc.clear_history() == 1 and not svc.history
        svc.stop()


def test_history_is_bounded(tmp_path) -> None:
    """The finished-downloads list keeps the last MAX_HISTORY entries."""
    svc, _, _ = service(tmp_path, tmp_path / "p", tmp_path / "in")
    for i in range(MAX_HISTORY + 5):
        svc.history.append(i)  # type: ignore[arg-type]
    assert len(svc.history) == MAX_HISTORY and svc.history[0] == 5
    svc.stop()


def test_transfers_text_before_a_rate_and_after_the_end() -> None:
    """A download with no rate yet says "starting" (not "0.0 B/s eta -"); a finished one
    says "finished"."""
    row = {"done": 0, "size": 100, "rate": 0.0, "eta": None, "state": "downloading",
           "name": "f.bin", "error": ""}
    text = format_transfers([row, dict(row, state="done", done=100)])
    first, second = text.splitlines()
    assert "starting" in first and "B/s" not in first and "eta" not in first
    assert "finished" in second and "100.0%" in second
