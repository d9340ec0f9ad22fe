"""The partials' state writes (each a few fsyncs) run on one worker thread, in order, off
the reactor thread: results and disk errors come back through ``callFromThread``, and
stopping the service waits for every write queued."""

from __future__ import annotations

import errno
import hashlib
import random
import threading

from twisted.internet.task import Clock

from pqi.interfaces import PeerIdentity
from pqi.items.ft import FtChunkMapItem, FtDataItem, FtDataRequestItem
from pqi.wire.fields import PgpId, Sha1Hash, SslId
from pqi.wire.tlvvalues import FileData, FileItem
from services.transfer.chunkmap import CHUNK_SIZE, Strategy, full_map
from services.transfer.partials import PartialFile
from services.transfer.server import MAX_FT_CHUNK
from services.transfer.service import COMMIT_PERIOD, FileTransferService, TransferFailed
from tests.service_fakes import RecordingSender

PEER = PeerIdentity(SslId(b"\x02" * 16), PgpId(b"\x02" * 8))


class ThreadedClock(Clock):
    """A fake clock that also takes calls from threads (run later by `run_thread_calls`)."""

    def __init__(self) -> None:
        super().__init__()
        self.from_threads: list = []
        self._lock = threading.Lock()

    def callFromThread(self, f, *args, **kwargs) -> None:  # noqa: N802
        with self._lock:
            self.from_threads.append((f, args, kwargs))

    def run_thread_calls(self) -> int:
        with self._lock:
            calls, self.from_threads = self.from_threads, []
        for f, args, kwargs in calls:
            f(*args, **kwargs)
        return len(calls)


def start(tmp_path, hook=None):
    data = random.Random(9).randbytes(4 * CHUNK_SIZE)
    h = Sha1Hash(hashlib.sha1(data).digest())
    clock = ThreadedClock()
    events: list = []
    svc = FileTransferService(RecordingSender(), clock, partials_dir=tmp_path / "p",
                              incoming_dir=tmp_path / "in", hash_in_thread=False,
                              strategy=Strategy.STREAMING, hook=hook,
                              on_event=events.append)
    svc.start()
    svc.peer_connected(PEER)
    svc.download(h, len(data), "f.bin", [PEER.ssl_id])
    return svc, clock, data, h, events


def serve(svc, data: bytes, h: Sha1Hash, below: int) -> None:
    """Answer the requests sent (and those they lead to) for bytes below ``below``; requests
    for bytes from ``below`` on stay sent, for a later call."""
    for _ in range(500):
        reqs, svc.sender.sent[:] = list(svc.sender.sent), []
        served = False
        for sent in reqs:
            item = sent[1]
            name = type(item).__name__
            if name == "FtChunkMapRequestItem":
                svc.receive(PEER, FtChunkMapItem(is_client=True, hash=h,
                                                 chunk_map=full_map(4)))
                served = True
            elif name == "FtDataRequestItem" and item.offset < below:
                end = min(item.offset + item.chunk_size, below)
                for o in range(item.offset, end, MAX_FT_CHUNK):
                    n = min(MAX_FT_CHUNK, end - o)
                    svc.receive(PEER, FtDataItem(data=FileData(FileItem(len(data), h), o,
                                                               data[o:o + n])))
                if end < item.offset + item.chunk_size:
                    svc.sender.sent.append((sent[0], FtDataRequestItem(
                        offset=end, chunk_size=item.offset + item.chunk_size - end,
                        file=item.file)))
                served = True
            elif name == "FtDataRequestItem":
                svc.sender.sent.append(sent)
        if not served:
            return


def on_disk(tmp_path, h: Sha1Hash) -> frozenset[int]:
    p = PartialFile.load(tmp_path / "p", h)
    try:
        return p.chunks.done_indexes()
    finally:
        p.close()


def assert_paused_for_disk(svc, clock, h: Sha1Hash, events: list) -> None:
    """Deliver the sync thread's results; the download is then paused with the disk-full
    error, reported once."""
    for _ in range(10):
        if not clock.run_thread_calls():
            break
    info = svc.info(h)
    assert info.state == "error" and "disk full" in info.error
    assert [type(e) for e in events].count(TransferFailed) == 1


def test_commits_run_on_the_sync_thread_and_stop_waits_for_them(tmp_path) -> None:
    """Three chunks arrive: their commits run on the sync thread (not the caller's), and
    ``stop`` returns only once all of them are on disk; their results, delivered later
    through callFromThread, are harmless after the stop."""
    threads: list[str] = []

    def hook(name: str) -> None:
        if name == "commit":
            threads.append(threading.current_thread().name)

    svc, clock, data, h, events = start(tmp_path, hook=hook)
    del threads[:]  # creating the partial wrote its first state, on this thread
    serve(svc, data, h, 3 * CHUNK_SIZE)
    svc.stop()
    assert on_disk(tmp_path, h) == {0, 1, 2}
    assert threads and all(n.startswith("rsproto-ft-sync") for n in threads)
    # One result per commit job; commits that waited for a busy thread share a job.
    assert clock.run_thread_calls() >= 1
    assert not [e for e in events if isinstance(e, TransferFailed)]


def test_commits_wait_for_the_commit_period(tmp_path, monkeypatch) -> None:
    """The first finished chunk is committed at once; chunks finished within
    `COMMIT_PERIOD` of it wait and are committed together once it has passed (one
    ``fdatasync`` and one state write for all); a chunk finished after a quiet period is
    committed at once again."""
    commits: list[tuple[int, ...]] = []
    real_commit = PartialFile.commit

    def commit(self, done) -> None:
        commits.append(tuple(sorted(done)))
        real_commit(self, done)

    monkeypatch.setattr(PartialFile, "commit", commit)
    svc, clock, data, h, events = start(tmp_path)
    sync = svc._syncer  # noqa: SLF001
    serve(svc, data, h, 3 * CHUNK_SIZE)
    sync.submit(lambda: None).result()
    assert commits == [(0,)]
    clock.advance(COMMIT_PERIOD / 2)
    sync.submit(lambda: None).result()
    assert commits == [(0,)]
    clock.advance(COMMIT_PERIOD / 2)
    sync.submit(lambda: None).result()
    assert commits == [(0,), (1, 2)]
    assert on_disk(tmp_path, h) == {0, 1, 2}
    clock.advance(COMMIT_PERIOD)
    serve(svc, data, h, 4 * CHUNK_SIZE)
    sync.submit(lambda: None).result()
    assert commits == [(0,), (1, 2), (3,)]
    svc.stop()


def test_a_state_write_commits_the_waiting_chunks_first(tmp_path, monkeypatch) -> None:
    """Chunks waiting for `COMMIT_PERIOD` are committed before a state write queued after
    them (a priority change), so the state file never records a setting before the chunks
    finished earlier; a stop commits whatever still waits."""
    order: list[tuple[str, object]] = []
    real_commit, real_update = PartialFile.commit, PartialFile.update

    def commit(self, done) -> None:
        order.append(("commit", frozenset(done)))
        real_commit(self, done)

    def update(self, **changes) -> None:
        order.append(("update", tuple(changes)))
        real_update(self, **changes)

    monkeypatch.setattr(PartialFile, "commit", commit)
    monkeypatch.setattr(PartialFile, "update", update)
    svc, clock, data, h, events = start(tmp_path)
    serve(svc, data, h, 2 * CHUNK_SIZE)  # chunk 1 waits behind chunk 0's commit
    svc.set_priority(h, 0)
    serve(svc, data, h, 3 * CHUNK_SIZE)  # chunk 2 waits until the stop
    svc.stop()
    kinds = [kind for kind, _ in order]
    at = kinds.index("update")
    assert order[at] == ("update", ("priority",))
    assert set().union(*(c for _, c in order[:at])) == {0, 1}
    assert [c for _, c in order[at + 1:]] == [frozenset({2})]
    assert on_disk(tmp_path, h) == {0, 1, 2}


def test_disk_error_on_the_sync_thread_pauses_the_download(tmp_path) -> None:
    """A commit failing with ENOSPC on the sync thread comes back to the reactor thread and
    pauses the download with the disk-full error, as a failing write does."""
    def hook(name: str) -> None:
        if name == "commit" and threading.current_thread().name.startswith("rsproto-ft-sync"):
            raise OSError(errno.ENOSPC, "No space left on device")

    svc, clock, data, h, events = start(tmp_path, hook=hook)
    serve(svc, data, h, CHUNK_SIZE)
    svc._syncer.submit(lambda: None).result()  # noqa: SLF001  (the queue has run)
    assert svc.info(h).state != "error"
    assert_paused_for_disk(svc, clock, h, events)
    svc.stop()



def test_commits_waiting_for_a_busy_sync_thread_join_into_one(tmp_path, monkeypatch) -> None:
    """While the sync thread is busy, the chunks finished meanwhile join the one commit job
    still waiting (one fdatasync and state write for all of them), and every chunk is on
    disk after the stop."""
    gate = threading.Event()
    commits: list[tuple[int, ...]] = []
    real_commit = PartialFile.commit

    def commit(self, done) -> None:
        commits.append(tuple(done))
        real_commit(self, done)

    monkeypatch.setattr(PartialFile, "commit", commit)
    svc, clock, data, h, events = start(tmp_path)
    svc._syncer.submit(gate.wait, 10)  # noqa: SLF001  (the sync thread is busy)
    serve(svc, data, h, 4 * CHUNK_SIZE)
    gate.set()
    svc.stop()
    assert commits == [(0, 1, 2, 3)]
    assert on_disk(tmp_path, h) == {0, 1, 2, 3}


def test_a_commit_never_passes_a_state_write_queued_before_it(tmp_path, monkeypatch) -> None:
    """Chunks join a waiting commit job only while it is the last job queued: a commit asked
    for after another state write gets a job of its own, after that write."""
    gate = threading.Event()
    order: list[object] = []
    monkeypatch.setattr(PartialFile, "commit", lambda self, done: order.append(tuple(done)))
    svc, clock, data, h, events = start(tmp_path)
    t = svc.downloads[h]
    svc._syncer.submit(gate.wait, 10)  # noqa: SLF001
    svc._commit(t, (0,))  # noqa: SLF001
    svc._commit(t, (1,))  # noqa: SLF001
    svc._queue(order.append, "state")  # noqa: SLF001
    svc._commit(t, (2,))  # noqa: SLF001
    gate.set()
    svc.stop()
    assert order == [(0, 1), "state", (2,)]


def test_data_is_written_on_the_sync_thread_and_commits_follow_it(tmp_path, monkeypatch
                                                                  ) -> None:
    """Received data is written on the sync thread, and each commit runs after every write
    queued before it: a chunk is never recorded before all of its bytes were written."""
    written: set[tuple[int, int]] = set()
    threads: set[str] = set()
    real_write, real_commit = PartialFile.write, PartialFile.commit

    def write(self, offset, data) -> None:
        threads.add(threading.current_thread().name)
        real_write(self, offset, data)
        written.add((offset, len(data)))

    def commit(self, done) -> None:
        for chunk in done:
            lo = chunk * CHUNK_SIZE
            assert sum(n for o, n in written if lo <= o < lo + CHUNK_SIZE) == CHUNK_SIZE
        real_commit(self, done)

    monkeypatch.setattr(PartialFile, "write", write)
    monkeypatch.setattr(PartialFile, "commit", commit)
    svc, clock, data, h, events = start(tmp_path)
    serve(svc, data, h, 4 * CHUNK_SIZE)
    svc.stop()
    assert threads and all(n.startswith("rsproto-ft-sync") for n in threads)
    assert on_disk(tmp_path, h) == {0, 1, 2, 3}
    p = PartialFile.load(tmp_path / "p", h)
    try:
        assert p.read(0, len(data)) == data
    finally:
        p.close()


def test_write_behind_is_bounded(tmp_path, monkeypatch) -> None:
    """With a disk that holds the first write until the reactor has queued past
    `MAX_WRITE_BEHIND`, the data queued for the sync thread never exceeds the bound plus one
    piece: past it the reactor waits for the thread, and counts the wait."""
    from services.transfer import service as service_module

    monkeypatch.setattr(service_module, "MAX_WRITE_BEHIND", 2 * MAX_FT_CHUNK)
    seen: list[int] = []
    reactor_waits = threading.Event()
    real_write = PartialFile.write
    real_submit = service_module.SerialWorker.submit

    def write(self, offset, data) -> None:
        assert reactor_waits.wait(timeout=30)
        seen.append(svc._write_behind)  # noqa: SLF001
        real_write(self, offset, data)

    def submit(self, fn, *args, **kwargs):
        if fn is service_module._nothing:  # noqa: SLF001
            reactor_waits.set()
        return real_submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(PartialFile, "write", write)
    monkeypatch.setattr(service_module.SerialWorker, "submit", submit)
    svc, clock, data, h, events = start(tmp_path)
    serve(svc, data, h, 4 * CHUNK_SIZE)
    svc.stop()
    assert len(seen) >= 4 * CHUNK_SIZE // MAX_FT_CHUNK
    assert max(seen) <= 3 * MAX_FT_CHUNK
    assert svc.write_waits >= 1
    assert on_disk(tmp_path, h) == {0, 1, 2, 3}


def test_a_failed_write_behind_pauses_and_its_chunk_is_fetched_again(tmp_path, monkeypatch
                                                                     ) -> None:
    """A write failing with ENOSPC on the sync thread pauses the download with the disk-full
    error; no commit after it records a chunk; once resumed, the lost chunks are fetched again
    and the file completes intact."""
    real_write = PartialFile.write
    fail = {"at": CHUNK_SIZE + MAX_FT_CHUNK}

    def write(self, offset, data) -> None:
        if offset == fail["at"]:
            fail["at"] = -1
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, offset, data)

    monkeypatch.setattr(PartialFile, "write", write)
    svc, clock, data, h, events = start(tmp_path)
    serve(svc, data, h, 4 * CHUNK_SIZE)
    svc._syncer.submit(lambda: None).result()  # noqa: SLF001  (the queue has run)
    assert_paused_for_disk(svc, clock, h, events)
    assert 1 not in svc.downloads[h].engine.chunks.done_indexes()
    svc._syncer.submit(lambda: None).result()  # noqa: SLF001
    assert 1 not in on_disk(tmp_path, h)
    svc.resume(h)
    for _ in range(20):
        serve(svc, data, h, 4 * CHUNK_SIZE)
        svc._syncer.submit(lambda: None).result()  # noqa: SLF001
        clock.run_thread_calls()
        clock.advance(1)
        if h not in svc.downloads:
            break
    done = [e for e in events if type(e).__name__ == "TransferCompleted"]
    assert len(done) == 1
    with open(done[0].info.path, "rb") as f:
        assert f.read() == data
    svc.stop()
