"""The sans-IO download engine fed by in-memory sources: scheduling, several sources, slow
sources, refused data, end-of-file check and chunk repair, bad-source reporting."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire.fields import Sha1Hash, SslId
from services.transfer.chunkmap import CHUNK_SIZE, ChunkState, Strategy, compress, full_map
from services.transfer.engine import (
    BadSource,
    CommitChunks,
    Completed,
    Download,
    DropReason,
    Failed,
    HashChunk,
    Phase,
    RequestChunkCrc,
    RequestChunkMap,
    RequestData,
    Tuning,
    UncommitChunks,
    VerifyFile,
    WriteData,
)
from services.transfer.ranges import Ranges
from services.transfer.server import MAX_FT_CHUNK

A, B, C = (SslId(bytes([n]) * 16) for n in (1, 2, 3))


def content(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


class Sim:
    """An engine, a byte buffer it writes into, and sources answering from their own copy.

    ``slow``: peers that take requests but never answer; ``copies``: each peer's bytes.
    Requests are answered one round later, split into 240 KiB items like a real server.
    """

    def __init__(self, data: bytes, copies: dict[SslId, bytes], *, slow=(), have=None,
                 tuning: Tuning = Tuning(), strategy=Strategy.PROGRESSIVE, done=()):
        self.data = data
        self.copies = copies
        self.slow = set(slow)
        self.have = have or {}
        self.now = 0.0
        self.eng = Download(Sha1Hash(hashlib.sha1(data).digest()), len(data), done,
                            now=0.0, tuning=tuning, strategy=strategy,
                            rng=random.Random(7))
        self.buf = bytearray(len(data))
        if done:
            for i in done:
                lo, n = self.eng.chunks.chunk_range(i)
                self.buf[lo:lo + n] = data[lo:lo + n]
        self.inbox: list = []
        self.requested: dict[SslId, int] = {p: 0 for p in copies}
        self.committed: set[int] = set(done)
        self.events: list = []

    def feed(self, actions) -> None:
        todo = list(actions)
        while todo:
            a = todo.pop(0)
            self.events.append(a)
            if isinstance(a, RequestChunkMap):
                n = self.eng.chunks.count
                words = (compress(self.have[a.peer], n) if a.peer in self.have
                         else full_map(n))
                self.inbox.append(("map", a.peer, words))
            elif isinstance(a, RequestData):
                self.requested[a.peer] += a.length
                if a.peer not in self.slow:
                    self.inbox.append(("data", a.peer, a.offset, a.length))
            elif isinstance(a, WriteData):
                self.buf[a.offset:a.offset + len(a.data)] = a.data
            elif isinstance(a, CommitChunks):
                self.committed |= set(a.chunks)
            elif isinstance(a, UncommitChunks):
                self.committed -= set(a.chunks)
            elif isinstance(a, HashChunk):
                lo, n = self.eng.chunks.chunk_range(a.chunk)
                todo += self.eng.chunk_hashed(
                    a.chunk, hashlib.sha1(self.buf[lo:lo + n]).digest(), self.now)
            elif isinstance(a, VerifyFile):
                todo += self.eng.file_hashed(hashlib.sha1(self.buf).digest(), self.now)
            elif isinstance(a, RequestChunkCrc):
                lo, n = self.eng.chunks.chunk_range(a.chunk)
                self.inbox.append(("crc", a.peer, a.chunk,
                                   hashlib.sha1(self.copies[a.peer][lo:lo + n]).digest()))

    def step(self) -> None:
        inbox, self.inbox = self.inbox, []
        for msg in inbox:
            if msg[0] == "map":
                self.feed(self.eng.chunk_map(msg[1], msg[2], self.now))
            elif msg[0] == "data":
                _, peer, offset, length = msg
                for o in range(offset, offset + length, MAX_FT_CHUNK):
                    n = min(MAX_FT_CHUNK, offset + length - o)
                    self.feed(self.eng.data(peer, o, self.copies[peer][o:o + n], self.now))
            elif msg[0] == "crc":
                self.feed(self.eng.chunk_crc(msg[1], msg[2], msg[3], self.now))
        self.now += 0.05
        self.feed(self.eng.tick(self.now))

    def run(self, rounds: int = 4000) -> None:
        for peer in self.copies:
            self.feed(self.eng.add_source(peer, self.now))
        for _ in range(rounds):
            if self.eng.phase in (Phase.COMPLETE, Phase.FAILED):
                return
            self.step()


def test_single_source_downloads_and_verifies() -> None:
    """One complete source: every byte arrives once, the whole hash is checked, and the
    engine completes with every chunk committed."""
    data = content(5 * CHUNK_SIZE + 12345)
    sim = Sim(data, {A: data})
    sim.run()
    assert sim.eng.phase is Phase.COMPLETE
    assert bytes(sim.buf) == data
    assert sim.committed == set(range(6))
    assert sum(isinstance(e, Completed) for e in sim.events) == 1
    assert sim.requested[A] == len(data)
    assert not sim.eng.dropped


def test_three_sources_share_the_work() -> None:
    """Three sources, each holding only part of the file (chunk maps), together deliver
    all of it; each is asked only for chunks it has."""
    data = content(9 * CHUNK_SIZE)
    have = {A: set(range(0, 4)), B: set(range(3, 7)), C: set(range(6, 9))}
    sim = Sim(data, {A: data, B: data, C: data}, have=have)
    sim.run()
    assert sim.eng.phase is Phase.COMPLETE and bytes(sim.buf) == data
    for peer in (A, B, C):
        assert sim.requested[peer] > 0
        for e in sim.events:
            if isinstance(e, RequestData) and e.peer == peer:
                assert e.offset // CHUNK_SIZE in have[peer]


def test_slow_source_range_reasked_near_the_end() -> None:
    """A source that takes requests but never answers: after the re-ask delay its ranges
    are asked of the good source, and the download completes."""
    data = content(3 * CHUNK_SIZE)
    sim = Sim(data, {A: data, B: data}, slow={B})
    sim.run()
    assert sim.eng.phase is Phase.COMPLETE and bytes(sim.buf) == data
    assert sim.now >= Tuning().slow_reask


@pytest.mark.slow
def test_corrupting_source_detected_chunks_repaired_and_reported() -> None:
    """A source serving flipped bytes in two chunks: the whole-file check fails, the chunk
    SHA-1s of the two good sources outvote it, the bad chunks are fetched again from a good
    source, the file verifies, and exactly the bad source is reported."""
    data = content(8 * CHUNK_SIZE)
    bad = bytearray(data)
    for i in (0, 1, 2, 3, 4, 5, 6, 7):
        bad[i * CHUNK_SIZE + 100] ^= 0xFF
    sim = Sim(data, {A: data, B: bytes(bad), C: data})
    sim.run()
    assert sim.eng.phase is Phase.COMPLETE and bytes(sim.buf) == data
    reported = [e for e in sim.events if isinstance(e, BadSource)]
    assert [e.peer for e in reported] == [B]
    assert any(isinstance(e, UncommitChunks) for e in sim.events)
    assert sim.committed == set(range(8))


def test_all_sources_wrong_fails_instead_of_looping() -> None:
    """Sources that agree on content whose hash is not the file's: the engine gives up
    with Failed after one repair round instead of fetching forever."""
    data = content(2 * CHUNK_SIZE)
    other = content(2 * CHUNK_SIZE, seed=2)
    sim = Sim(data, {A: other, B: other})
    sim.run()
    assert sim.eng.phase is Phase.FAILED
    assert any(isinstance(e, Failed) for e in sim.events)


def test_resume_fetches_only_missing_chunks() -> None:
    """An engine started with chunks already DONE asks only for the others."""
    data = content(6 * CHUNK_SIZE)
    sim = Sim(data, {A: data}, done={0, 2, 4})
    sim.run()
    assert sim.eng.phase is Phase.COMPLETE and bytes(sim.buf) == data
    assert sim.requested[A] == 3 * CHUNK_SIZE


def test_unrequested_past_eof_and_stranger_data_dropped() -> None:
    """Data for a range never asked, past the end, or from a peer that is not a source is
    dropped and counted, never turned into a write."""
    data = content(2 * CHUNK_SIZE)
    eng = Download(Sha1Hash(hashlib.sha1(data).digest()), len(data), now=0)
    eng.add_source(A, 0)
    asked = Ranges()
    for a in eng.chunk_map(A, full_map(2), 0):
        if isinstance(a, RequestData):
            asked.add(a.offset, a.offset + a.length)
    (start, _end), *_ = asked.gaps(0, len(data))
    assert eng.data(A, len(data) - 10, b"x" * 20, 0) == []
    assert eng.data(C, 0, b"x" * 10, 0) == []
    assert eng.data(A, start, b"y", 0) == []
    assert eng.dropped[DropReason.PAST_EOF] == 20
    assert eng.dropped[DropReason.UNREQUESTED] == 11
    assert eng.written_bytes == 0


def test_pause_and_resume_keep_done_chunks() -> None:
    """Pausing forgets what was in flight but not what is DONE; resuming asks maps again
    and completes."""
    data = content(4 * CHUNK_SIZE)
    sim = Sim(data, {A: data})
    for peer in sim.copies:
        sim.feed(sim.eng.add_source(peer, 0))
    for _ in range(3):
        sim.step()
    done_before = set(sim.eng.chunks.done_indexes())
    sim.eng.pause()
    assert sim.eng.phase is Phase.PAUSED and sim.eng.tick(100) == []
    assert set(sim.eng.chunks.done_indexes()) == done_before
    assert not sim.eng.chunks.indexes(ChunkState.ACTIVE)
    sim.inbox.clear()
    sim.feed(sim.eng.resume(sim.now))
    for _ in range(2000):
        if sim.eng.phase is Phase.COMPLETE:
            break
        sim.step()
    assert sim.eng.phase is Phase.COMPLETE and bytes(sim.buf) == data


@pytest.mark.slow
def test_request_size_follows_rate() -> None:
    """Once a source's rate is measured, its requests grow with it (bounded by a chunk)."""
    data = content(40 * CHUNK_SIZE)
    sim = Sim(data, {A: data}, strategy=Strategy.STREAMING)
    sim.run(rounds=60)
    sizes = [e.length for e in sim.events if isinstance(e, RequestData)]
    assert sizes[0] == Tuning().initial_request
    assert max(sizes) == CHUNK_SIZE


@pytest.mark.slow
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 300)), max_size=30),
       st.integers(0, 2000), st.integers(0, 2300))
def test_ranges_match_a_set_of_bytes(adds, lo, hi) -> None:
    """Ranges behaves like the set of the bytes added: gaps, coverage and total agree."""
    r, ref = Ranges(), set()
    for s, n in adds:
        r.add(s, s + n)
        ref |= set(range(s, s + n))
    assert r.total == len(ref)
    gaps = r.gaps(lo, hi)
    assert set().union(*(set(range(s, e)) for s, e in gaps)) == set(range(lo, hi)) - ref
    if hi > lo:
        assert r.covers(lo, hi) == (set(range(lo, hi)) <= ref)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(Strategy))
def test_every_strategy_completes(strategy) -> None:
    """Streaming, random and progressive all fetch every chunk exactly once."""
    data = content(7 * CHUNK_SIZE + 1)
    sim = Sim(data, {A: data, B: data}, strategy=strategy)
    sim.run()
    assert sim.eng.phase is Phase.COMPLETE and bytes(sim.buf) == data
    assert sum(sim.requested.values()) == len(data)


def _until_checking(sim: Sim) -> None:
    for peer in sim.copies:
        sim.feed(sim.eng.add_source(peer, sim.now))
    for _ in range(4000):
        if sim.eng.phase is Phase.CHECKING:
            return
        sim.step()
    raise AssertionError("the whole-file check never failed")


def _checking(eng: Download) -> list[int]:
    return [i for i in range(eng.chunks.count) if eng.chunks.state(i) == ChunkState.CHECKING]


def test_chunks_waiting_only_for_a_blamed_source_are_decided_at_once() -> None:
    """The good sources answer every chunk's SHA-1 before the bad one does (as on a real
    network, where the bad source's answers come last): its first answer gets it blamed, and
    every chunk that was waiting only for it is decided then, not at the SHA-1 timeout (the
    bad source's later answers are ignored, so nothing else would ever decide them)."""
    data = content(6 * CHUNK_SIZE)
    bad = bytearray(data)
    for i in range(6):
        bad[i * CHUNK_SIZE + 7] ^= 0x01
    sim = Sim(data, {A: data, B: bytes(bad), C: data})
    _until_checking(sim)
    crcs = [m for m in sim.inbox if m[0] == "crc"]
    sim.inbox = [m for m in sim.inbox if m[0] != "crc"]
    crcs.sort(key=lambda m: m[1] == B)
    assert crcs[-1][1] == B and crcs[0][1] != B
    for _, peer, chunk, sha1 in crcs[:-6]:
        sim.feed(sim.eng.chunk_crc(peer, chunk, sha1, sim.now))
    assert len(_checking(sim.eng)) == 6
    _, peer, chunk, sha1 = crcs[-6]
    sim.feed(sim.eng.chunk_crc(peer, chunk, sha1, sim.now))
    assert [e.peer for e in sim.events if isinstance(e, BadSource)] == [B]
    assert _checking(sim.eng) == [] and sim.eng.phase is not Phase.CHECKING
    sim.run()
    assert sim.eng.phase is Phase.COMPLETE and bytes(sim.buf) == data
    assert sim.now < Tuning().crc_timeout


def test_chunks_waiting_for_a_source_that_leaves_are_decided_at_once() -> None:
    """A good source disconnects during the chunk check before answering: the chunks that
    waited only for it are decided from the other answers as it leaves."""
    data = content(4 * CHUNK_SIZE)
    bad = bytearray(data)
    for i in range(4):
        bad[i * CHUNK_SIZE + 3] ^= 0x01
    d = SslId(bytes([4]) * 16)
    sim = Sim(data, {A: data, B: bytes(bad), C: data, d: data})
    _until_checking(sim)
    for _, peer, chunk, sha1 in [m for m in sim.inbox if m[0] == "crc" and m[1] != d]:
        sim.feed(sim.eng.chunk_crc(peer, chunk, sha1, sim.now))
    sim.inbox = [m for m in sim.inbox if m[0] != "crc"]
    assert len(_checking(sim.eng)) == 4
    sim.feed(sim.eng.remove_source(d, sim.now))
    assert _checking(sim.eng) == [] and sim.eng.phase is not Phase.CHECKING
    assert [e.peer for e in sim.events if isinstance(e, BadSource)] == [B]
