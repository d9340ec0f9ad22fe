"""The sans-IO download engine fed by in-memory sources: scheduling, several sources, slow
sources, refused data, end-of-file check and chunk repair, bad-source reporting."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.core import Datagram
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
from tools.simnet import LinkModel, SimNet

A, B, C = (SslId(bytes([n]) * 16) for n in (1, 2, 3))


def content(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


ENGINE = ("10.0.0.1", 1)
#: One-way delay of the simulated links: a request is answered one 50 ms round trip later.
DELAY = 0.025
#: Simulated seconds a download may take before a test calls it stuck.
LIMIT = 200.0


class Source:
    """A peer on the simulated network serving its ``copy``: it answers chunk-map, data
    (in items of at most `MAX_FT_CHUNK`, like a real server) and chunk SHA-1 requests; a
    ``slow`` one takes data requests and never answers them."""

    def __init__(self, copy: bytes, words: list[int], slow: bool) -> None:
        self.copy = copy
        self.words = words
        self.slow = slow
        self._out: list[Datagram] = []

    def datagram_received(self, msg: tuple, src: tuple, now: float) -> None:
        if msg[0] == "map":
            self._out.append(Datagram(("map", self.words), src))  # type: ignore[arg-type]
        elif msg[0] == "data" and not self.slow:
            _, offset, length = msg
            for o in range(offset, offset + length, MAX_FT_CHUNK):
                n = min(MAX_FT_CHUNK, offset + length - o)
                self._out.append(Datagram(("data", o, self.copy[o:o + n]), src))  # type: ignore[arg-type]
        elif msg[0] == "crc":
            lo, n = msg[1] * CHUNK_SIZE, CHUNK_SIZE
            sha1 = hashlib.sha1(self.copy[lo:lo + n]).digest()
            self._out.append(Datagram(("crc", msg[1], sha1), src))  # type: ignore[arg-type]

    def handle_timer(self, now: float) -> None:
        """Never called: a source has no deadline."""

    def next_deadline(self) -> float | None:
        return None

    def drain(self, now: float) -> list[Datagram]:
        out, self._out = self._out, []
        return out


class Sim:
    """An engine on `tools.simnet.SimNet`, driven by its own `pqi.driver.CoreDriver`, the
    byte buffer it writes into, and `Source` peers answering from their own copy.

    ``slow``: peers that take requests but never answer; ``copies``: each peer's bytes;
    ``have``: the chunks a peer's map offers (default all).  With `hold_crcs` the chunk
    SHA-1 answers wait in `held` instead of reaching the engine (tests order them).
    """

    def __init__(self, data: bytes, copies: dict[SslId, bytes], *, slow=(), have=None,
                 tuning: Tuning = Tuning(), strategy=Strategy.PROGRESSIVE, done=()):
        self.data = data
        self.copies = copies
        self.eng = Download(Sha1Hash(hashlib.sha1(data).digest()), len(data), done,
                            now=0.0, tuning=tuning, strategy=strategy,
                            rng=random.Random(7))
        self.buf = bytearray(len(data))
        if done:
            for i in done:
                lo, n = self.eng.chunks.chunk_range(i)
                self.buf[lo:lo + n] = data[lo:lo + n]
        self.requested: dict[SslId, int] = {p: 0 for p in copies}
        self.committed: set[int] = set(done)
        self.events: list = []
        self.hold_crcs = False
        self.held: list[tuple[SslId, int, bytes]] = []
        self.net = SimNet(1, default=LinkModel(delay=DELAY))
        self.node = self.net.add(ENGINE, self.eng, receive=self._receive,
                                 on_output=lambda _node, a: self._act(a))
        self.addr: dict[SslId, tuple[str, int]] = {}
        self.peer: dict[tuple[str, int], SslId] = {}
        count = self.eng.chunks.count
        for n, (peer, copy) in enumerate(copies.items(), start=2):
            addr = (f"10.0.0.{n}", 1)
            self.addr[peer], self.peer[addr] = addr, peer
            words = compress((have or {})[peer], count) if peer in (have or {}) \
                else full_map(count)
            self.net.add(addr, Source(copy, words, peer in set(slow)))

    @property
    def now(self) -> float:
        return self.net.clock.seconds()

    def feed(self, method, *args) -> None:
        """Give the engine one input through its driver (``now`` is added)."""
        self.net.feed(ENGINE, method, *args)

    def _receive(self, msg: tuple, src: tuple[str, int], now: float) -> None:
        peer = self.peer[src]
        if msg[0] == "map":
            self.eng.chunk_map(peer, msg[1], now)
        elif msg[0] == "data":
            self.eng.data(peer, msg[1], msg[2], now)
        elif self.hold_crcs:
            self.held.append((peer, msg[1], msg[2]))
        else:
            self.eng.chunk_crc(peer, msg[1], msg[2], now)

    def _act(self, a) -> None:
        self.events.append(a)
        if isinstance(a, RequestChunkMap):
            self.net.send(ENGINE, self.addr[a.peer], ("map",))
        elif isinstance(a, RequestData):
            self.requested[a.peer] += a.length
            self.net.send(ENGINE, self.addr[a.peer], ("data", a.offset, a.length))
        elif isinstance(a, WriteData):
            self.buf[a.offset:a.offset + len(a.data)] = a.data
        elif isinstance(a, CommitChunks):
            self.committed |= set(a.chunks)
        elif isinstance(a, UncommitChunks):
            self.committed -= set(a.chunks)
        elif isinstance(a, HashChunk):
            lo, n = self.eng.chunks.chunk_range(a.chunk)
            self.feed(self.eng.chunk_hashed, a.chunk, hashlib.sha1(self.buf[lo:lo + n]).digest())
        elif isinstance(a, VerifyFile):
            self.feed(self.eng.file_hashed, hashlib.sha1(self.buf).digest())
        elif isinstance(a, RequestChunkCrc):
            self.net.send(ENGINE, self.addr[a.peer], ("crc", a.chunk))

    def add_sources(self) -> None:
        for peer in self.copies:
            self.feed(self.eng.add_source, peer)

    def run_until(self, done, limit: float = LIMIT) -> None:
        """Run the network until ``done()`` (at most ``limit`` simulated seconds)."""
        self.net.run(limit, until=done)

    def run(self, limit: float = LIMIT) -> None:
        """Add every source and run until the download completes or fails."""
        self.add_sources()
        self.run_until(lambda: self.eng.phase in (Phase.COMPLETE, Phase.FAILED), limit)


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


def _chunk_order(sim: Sim, peer: SslId | None = None) -> list[int]:
    """The chunks in the order their first data request went out (of ``peer``, or any)."""
    order: list[int] = []
    for e in sim.events:
        if isinstance(e, RequestData) and (peer is None or e.peer == peer) \
                and e.offset // CHUNK_SIZE not in order:
            order.append(e.offset // CHUNK_SIZE)
    return order


def test_lone_progressive_source_fills_the_file_in_order() -> None:
    """With one source, PROGRESSIVE takes chunks first to last (the running hash is then
    fed from memory); with two, each still jumps at random ahead of the first."""
    data = content(12 * CHUNK_SIZE)
    lone = Sim(data, {A: data})
    lone.run()
    assert lone.eng.phase is Phase.COMPLETE
    assert _chunk_order(lone) == list(range(12))
    pair = Sim(data, {A: data, B: data})
    pair.run()
    assert pair.eng.phase is Phase.COMPLETE and bytes(pair.buf) == data
    assert sorted(_chunk_order(pair)) == list(range(12))
    assert _chunk_order(pair) != list(range(12))


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
    eng.chunk_map(A, full_map(2), 0)
    asked = Ranges()
    for a in eng.drain(0):
        if isinstance(a, RequestData):
            asked.add(a.offset, a.offset + a.length)
    (start, _end), *_ = asked.gaps(0, len(data))
    eng.data(A, len(data) - 10, b"x" * 20, 0)
    eng.data(C, 0, b"x" * 10, 0)
    eng.data(A, start, b"y", 0)
    assert eng.drain(0) == []
    assert eng.dropped[DropReason.PAST_EOF] == 20
    assert eng.dropped[DropReason.UNREQUESTED] == 11
    assert eng.written_bytes == 0


def test_pause_and_resume_keep_done_chunks() -> None:
    """Pausing forgets what was in flight but not what is DONE; resuming asks maps again
    and completes."""
    data = content(4 * CHUNK_SIZE)
    sim = Sim(data, {A: data})
    sim.add_sources()
    sim.net.run(0.15)
    done_before = set(sim.eng.chunks.done_indexes())
    sim.eng.pause()
    sim.node.driver.service()
    assert sim.eng.next_deadline() is None
    sim.eng.handle_timer(100)
    assert sim.eng.phase is Phase.PAUSED and sim.eng.drain(100) == []
    assert set(sim.eng.chunks.done_indexes()) == done_before
    assert not sim.eng.chunks.indexes(ChunkState.ACTIVE)
    sim.feed(sim.eng.resume)
    sim.run_until(lambda: sim.eng.phase is Phase.COMPLETE, 100.0)
    assert sim.eng.phase is Phase.COMPLETE and bytes(sim.buf) == data


@pytest.mark.slow
def test_request_size_follows_rate() -> None:
    """Once a source's rate is measured, its requests grow with it (bounded by a chunk)."""
    data = content(40 * CHUNK_SIZE)
    sim = Sim(data, {A: data}, strategy=Strategy.STREAMING)
    sim.run(limit=3.0)
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
    """Run until the whole-file check failed and every chunk SHA-1 answer is held."""
    sim.hold_crcs = True
    sim.add_sources()
    sim.run_until(lambda: sim.eng.phase is Phase.CHECKING)
    assert sim.eng.phase is Phase.CHECKING, "the whole-file check never failed"
    sim.run_until(lambda: False, 2 * DELAY)
    sim.hold_crcs = False


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
    crcs = sorted(sim.held, key=lambda m: m[0] == B)
    assert crcs[-1][0] == B and crcs[0][0] != B
    for peer, chunk, sha1 in crcs[:-6]:
        sim.feed(sim.eng.chunk_crc, peer, chunk, sha1)
    assert len(_checking(sim.eng)) == 6
    peer, chunk, sha1 = crcs[-6]
    sim.feed(sim.eng.chunk_crc, peer, chunk, sha1)
    assert [e.peer for e in sim.events if isinstance(e, BadSource)] == [B]
    assert _checking(sim.eng) == [] and sim.eng.phase is not Phase.CHECKING
    sim.run_until(lambda: sim.eng.phase in (Phase.COMPLETE, Phase.FAILED))
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
    for peer, chunk, sha1 in [m for m in sim.held if m[0] != d]:
        sim.feed(sim.eng.chunk_crc, peer, chunk, sha1)
    assert len(_checking(sim.eng)) == 4
    sim.feed(sim.eng.remove_source, d)
    assert _checking(sim.eng) == [] and sim.eng.phase is not Phase.CHECKING
    assert [e.peer for e in sim.events if isinstance(e, BadSource)] == [B]
