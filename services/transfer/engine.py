# -*- test-case-name: tests.test_transfer_engine -*-
"""The download engine, sans IO: one file, several sources, events in, actions out.

`Download` keeps the `pqi.core.Core` contract.  It is fed what happens (a source joined, its
chunk map came, data came, a chunk's SHA-1 came, a hash was computed, time passed: every
input takes the current time), and `drain` hands over the actions for the glue to carry out,
in order: ask a peer for data, a chunk map or a chunk's SHA-1; write bytes at an offset;
record chunks as durable; hash a chunk or the whole file; report a bad source; report
progress (`ReportProgress`, every `Tuning.progress_period` while it works); announce
completion.  It never touches a socket, a file or a clock.

How it fetches (RetroShare's ``ftTransferModule``/``ftChunkMap``, made stricter):

- a source is used once its chunk map says which chunks it has (re-asked every 60 s);
- each source works on a chunk of its own, picked by the strategy among those it has (with
  PROGRESSIVE, a lone source takes the first one, so the file fills in order), and
  keeps a window of requests in flight sized by its measured rate (requests of about a
  quarter second of its rate, 16 KiB to 1 MiB, asked only once a whole one fits; a window
  of half a second, 1 to 16 MiB);
  a source with nothing new to take shares the unrequested rest of other active chunks;
- near the end, a range a slow source has owed for 10 s is asked again from an idle source;
  whichever copy arrives first is written, the other is counted as a duplicate;
- data is written only for ranges we asked that peer for, inside the file and not yet
  received; anything else is dropped and counted by reason (`DropReason`).

How it checks: when every chunk is DONE the whole file is hashed.  On a mismatch every chunk
goes CHECKING and each source is asked the SHA-1 of each chunk it has; a chunk is kept when
its local SHA-1 equals the answer most sources give (ties go to sources with fewer strikes),
otherwise it is fetched again only from sources that gave that answer and checked against
it on arrival.  A source whose answer disagrees with the consensus, or that alone sent a
chunk found bad, is reported (`BadSource`) and no longer used.  If the sources agree on chunks that
still do not make the file's hash, the download fails (`Failed`) rather than loop.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import random
from collections.abc import Callable, Iterable
from typing import Concatenate, Final, ParamSpec

from pqi.wire.fields import Sha1Hash, SslId

from .chunkmap import CHUNK_SIZE, ChunkMap, ChunkState, Strategy, decompress
from .ranges import Ranges

__all__ = [
    "Download",
    "Phase",
    "DropReason",
    "Tuning",
    "Action",
    "RequestData",
    "RequestChunkMap",
    "RequestChunkCrc",
    "WriteData",
    "CommitChunks",
    "UncommitChunks",
    "HashChunk",
    "VerifyFile",
    "BadSource",
    "Completed",
    "Failed",
    "ReportProgress",
    "Progress",
    "PRIORITY_FACTORS",
]


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The engine's time constants and sizes (RetroShare's where it has one)."""

    min_request: int = 16 * 1024
    max_request: int = CHUNK_SIZE
    request_time: float = 0.25
    min_window: int = CHUNK_SIZE
    max_window: int = 16 * CHUNK_SIZE
    window_time: float = 0.5
    initial_request: int = 256 * 1024
    rate_period: float = 1.0
    map_refresh: float = 60.0
    slow_reask: float = 10.0
    request_timeout: float = 30.0
    crc_timeout: float = 20.0
    #: Between two `ReportProgress` while downloading (the node's ``transfer_progress``).
    progress_period: float = 1.0


#: Window multipliers of the priorities (0 low, 1 normal, 2 high).
PRIORITY_FACTORS: Final = {0: 0.5, 1: 1.0, 2: 2.0}


class Phase(enum.Enum):
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    CHECKING = "checking"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAILED = "failed"


class DropReason(enum.Enum):
    """Why received data was not written."""

    UNREQUESTED = "range never requested from that peer"
    PAST_EOF = "past the end of the file"
    DUPLICATE = "already received"
    NOT_DOWNLOADING = "hash not being downloaded"


# --- actions ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class RequestData:
    peer: SslId
    offset: int
    length: int


@dataclasses.dataclass(frozen=True, slots=True)
class RequestChunkMap:
    peer: SslId


@dataclasses.dataclass(frozen=True, slots=True)
class RequestChunkCrc:
    peer: SslId
    chunk: int


@dataclasses.dataclass(frozen=True, slots=True)
class WriteData:
    offset: int
    data: bytes | memoryview


@dataclasses.dataclass(frozen=True, slots=True)
class CommitChunks:
    """These chunks are complete: make the written data durable, then record them DONE."""

    chunks: tuple[int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class UncommitChunks:
    """These chunks were found bad: no longer DONE on disk."""

    chunks: tuple[int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class HashChunk:
    """Compute the SHA-1 of chunk ``chunk`` and give it to `Download.chunk_hashed`."""

    chunk: int


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyFile:
    """Hash the whole file and give the result to `Download.file_hashed`."""


@dataclasses.dataclass(frozen=True, slots=True)
class BadSource:
    peer: SslId
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Completed:
    """The file is complete and its SHA-1 is right."""


@dataclasses.dataclass(frozen=True, slots=True)
class Failed:
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class ReportProgress:
    """Time to tell the user how far the download got (`Download.progress`)."""


Action = (RequestData | RequestChunkMap | RequestChunkCrc | WriteData | CommitChunks
          | UncommitChunks | HashChunk | VerifyFile | BadSource | Completed | Failed
          | ReportProgress)

_P = ParamSpec("_P")


def _queued(method: Callable[Concatenate[Download, _P], list[Action]]
            ) -> Callable[Concatenate[Download, _P], None]:
    """An input of `Download`: what it produces waits in the queue `Download.drain` empties."""
    @functools.wraps(method)
    def queue(self: Download, *args: _P.args, **kwargs: _P.kwargs) -> None:
        self._out.extend(method(self, *args, **kwargs))
    return queue


@dataclasses.dataclass(frozen=True)
class Progress:
    done_bytes: int
    size: int
    rate: float
    eta: float | None
    phase: Phase
    sources: int


# --- state ------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Request:
    peer: SslId
    start: int
    end: int
    sent_at: float
    progress_at: float
    reasked: bool = False


@dataclasses.dataclass
class _Source:
    peer: SslId
    available: frozenset[int] | None = None
    map_asked_at: float | None = None
    rate: float = 0.0
    bytes_window: int = 0
    rate_at: float = 0.0
    received: int = 0
    requests: list[_Request] = dataclasses.field(default_factory=list)
    current: int | None = None
    strikes: int = 0
    bad: bool = False

    @property
    def outstanding(self) -> int:
        return sum(r.end - r.start for r in self.requests)


@dataclasses.dataclass
class _Active:
    index: int
    received: Ranges = dataclasses.field(default_factory=Ranges)


class Download:
    """One file being downloaded: ``file_hash``, ``size``, chunks already ``done``."""

    def __init__(self, file_hash: Sha1Hash, size: int, done: Iterable[int] = (), *,
                 now: float = 0.0, strategy: Strategy = Strategy.PROGRESSIVE,
                 priority: int = 1, rng: random.Random | None = None,
                 tuning: Tuning = Tuning()) -> None:
        self.file_hash = file_hash
        self.size = size
        self.chunks = ChunkMap(size, done)
        self.strategy = strategy
        self.priority = priority
        self.rng = rng if rng is not None else random.Random()
        self.tuning = tuning
        self.phase = Phase.DOWNLOADING
        self.sources: dict[SslId, _Source] = {}
        self._active: dict[int, _Active] = {}
        #: chunk -> peers whose bytes went into it (this session).
        self._contributors: dict[int, set[SslId]] = collections.defaultdict(set)
        #: Repair: chunk -> the SHA-1 the sources agree on, and who may refetch it.
        self._expected: dict[int, bytes] = {}
        self._allowed: dict[int, frozenset[SslId]] = {}
        self._claims: dict[int, dict[SslId, bytes]] = {}
        self._local: dict[int, bytes] = {}
        self._hash_asked: set[int] = set()
        self._crc_deadline: float | None = None
        #: A source became unusable while chunks waited for its SHA-1 answers.
        self._resettle = False
        self._repaired_since_verify = 0
        self._verify_failures = 0
        self._now = now
        self._progress_at = now
        self._out: list[Action] = []
        #: Counters: bytes dropped by reason, bytes received, bytes written.
        self.dropped: collections.Counter[DropReason] = collections.Counter()
        self.received_bytes = 0
        self.written_bytes = 0
        self.reported: dict[SslId, str] = {}

    # --- queries -----------------------------------------------------------------------------

    def progress(self) -> Progress:
        done = self.chunks.done_bytes + sum(a.received.total for a in self._active.values())
        rate = sum(s.rate for s in self.sources.values() if not s.bad)
        remaining = self.size - done
        eta = None
        if self.phase is Phase.COMPLETE:
            eta = 0.0
        elif rate > 0:
            eta = remaining / rate
        usable = sum(1 for s in self.sources.values() if not s.bad)
        return Progress(done, self.size, rate, eta, self.phase, usable)

    def drain(self, now: float) -> list[Action]:
        """The actions produced since the last call, in the order they must be carried out."""
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When `handle_timer` has work next (None: nothing timed)."""
        if self.phase in (Phase.PAUSED, Phase.COMPLETE, Phase.FAILED):
            return None
        times = []
        if self.phase is Phase.DOWNLOADING:
            times.append(self._progress_at + self.tuning.progress_period)
        for s in self.sources.values():
            if s.bad:
                continue
            times.append(s.rate_at + self.tuning.rate_period)
            if s.map_asked_at is not None:
                times.append(s.map_asked_at + self.tuning.map_refresh)
            for r in s.requests:
                times.append(r.progress_at + self.tuning.request_timeout)
                if not r.reasked:
                    times.append(r.sent_at + self.tuning.slow_reask)
        if self._crc_deadline is not None:
            times.append(self._crc_deadline)
        return min(times) if times else None

    # --- sources -----------------------------------------------------------------------------

    @_queued
    def add_source(self, peer: SslId, now: float) -> list[Action]:
        """A peer that may have the file: ask for its chunk map."""
        self._now = now
        if peer in self.sources:
            return []
        src = _Source(peer, rate_at=now)
        self.sources[peer] = src
        if peer in self.reported:
            src.bad = True
            return []
        if self.phase in (Phase.PAUSED, Phase.COMPLETE, Phase.FAILED):
            return []
        src.map_asked_at = now
        return [RequestChunkMap(peer)]

    @_queued
    def remove_source(self, peer: SslId, now: float) -> list[Action]:
        """A peer went away: what it owed is asked of others."""
        self._now = now
        src = self.sources.pop(peer, None)
        if src is None:
            return []
        src.requests.clear()
        if self.phase is Phase.CHECKING:
            return self._settle(now)
        return self._fill_all(now)

    @_queued
    def chunk_map(self, peer: SslId, words: Iterable[int], now: float) -> list[Action]:
        """A source told us which chunks it has."""
        self._now = now
        src = self.sources.get(peer)
        if src is None:
            return []
        src.available = decompress(words, self.chunks.count)
        actions: list[Action] = []
        if self.phase is Phase.CHECKING:
            actions += self._ask_crcs(src)
        return actions + self._fill(src, now)

    # --- data --------------------------------------------------------------------------------

    @_queued
    def data(self, peer: SslId, offset: int, data: bytes | memoryview,
             now: float) -> list[Action]:
        """Bytes of the file from ``peer``: written if asked for and new, else dropped."""
        self._now = now
        n = len(data)
        end = offset + n
        if offset < 0 or end > self.size:
            self.dropped[DropReason.PAST_EOF] += n
            return []
        src = self.sources.get(peer)
        req = None
        if src is not None:
            for r in src.requests:
                if r.start <= offset and end <= r.end:
                    req = r
                    break
        if src is None or req is None:
            index = offset // CHUNK_SIZE
            late = (src is not None and self.chunks.state(index) == ChunkState.DONE
                    and (end - 1) // CHUNK_SIZE == index)
            self.dropped[DropReason.DUPLICATE if late else DropReason.UNREQUESTED] += n
            return []
        self.received_bytes += n
        src.received += n
        src.bytes_window += n
        self._consume(src, req, offset, end, now)
        index = offset // CHUNK_SIZE
        active = self._active.get(index)
        actions: list[Action] = []
        if active is None:
            self.dropped[DropReason.DUPLICATE] += n
        else:
            view = memoryview(data)
            wrote = 0
            for s, e in active.received.gaps(offset, end):
                actions.append(WriteData(s, view[s - offset:e - offset]))
                wrote += e - s
            if wrote:
                active.received.add(offset, end)
                self._contributors[index].add(peer)
                self.written_bytes += wrote
            if wrote < n:
                self.dropped[DropReason.DUPLICATE] += n - wrote
            c_off, c_len = self.chunks.chunk_range(index)
            if active.received.covers(c_off, c_off + c_len):
                actions += self._chunk_received(index)
        if self.phase is Phase.DOWNLOADING:
            actions += self._fill(src, now)
        return actions

    def _consume(self, src: _Source, req: _Request, start: int, end: int, now: float) -> None:
        src.requests.remove(req)
        if req.start < start:
            src.requests.append(_Request(req.peer, req.start, start, req.sent_at, now,
                                         req.reasked))
        if end < req.end:
            src.requests.append(_Request(req.peer, end, req.end, req.sent_at, now,
                                         req.reasked))

    def _chunk_received(self, index: int) -> list[Action]:
        del self._active[index]
        for s in self.sources.values():
            if s.current == index:
                s.current = None
            lo, hi = self.chunks.chunk_range(index)
            s.requests = [r for r in s.requests if not (lo <= r.start < lo + hi)]
        if index in self._expected:
            self.chunks.set_state(index, ChunkState.CHECKING)
            self._hash_asked.add(index)
            return [HashChunk(index)]
        return self._mark_done([index])

    def _mark_done(self, indexes: list[int]) -> list[Action]:
        for i in indexes:
            self.chunks.set_state(i, ChunkState.DONE)
        actions: list[Action] = [CommitChunks(tuple(indexes))]
        if self.chunks.complete and self.phase is Phase.DOWNLOADING:
            self.phase = Phase.VERIFYING
            actions.append(VerifyFile())
        return actions

    # --- verification and repair -------------------------------------------------------------

    @_queued
    def file_hashed(self, sha1: bytes, now: float) -> list[Action]:
        """The whole file's SHA-1, as the glue computed it after `VerifyFile`."""
        self._now = now
        if self.phase is not Phase.VERIFYING:
            return []
        if sha1 == self.file_hash:
            self.phase = Phase.COMPLETE
            for s in self.sources.values():
                s.requests.clear()
            return [Completed()]
        self._verify_failures += 1
        if self._verify_failures > 1 and self._repaired_since_verify == 0:
            self.phase = Phase.FAILED
            return [Failed("the sources agree on every chunk, yet the file's SHA-1 is wrong")]
        self._repaired_since_verify = 0
        self.phase = Phase.CHECKING
        self._claims = {}
        self._local = {}
        self._hash_asked = set()
        for i in range(self.chunks.count):
            self.chunks.set_state(i, ChunkState.CHECKING)
        self._crc_deadline = now + self.tuning.crc_timeout
        actions: list[Action] = []
        for src in self.sources.values():
            actions += self._ask_crcs(src)
        return actions

    def _ask_crcs(self, src: _Source) -> list[Action]:
        if src.bad or src.available is None:
            return []
        out: list[Action] = []
        for i in sorted(src.available):
            if self.chunks.state(i) == ChunkState.CHECKING and i not in self._expected \
                    and src.peer not in self._claims.get(i, {}):
                self._claims.setdefault(i, {})
                out.append(RequestChunkCrc(src.peer, i))
        return out

    @_queued
    def chunk_crc(self, peer: SslId, index: int, sha1: bytes, now: float) -> list[Action]:
        """A source's answer: the SHA-1 of chunk ``index`` as it has it."""
        self._now = now
        src = self.sources.get(peer)
        if src is None or src.bad or not 0 <= index < self.chunks.count:
            return []
        if self.phase is not Phase.CHECKING or index not in self._claims:
            return []
        self._claims[index][peer] = bytes(sha1)
        actions = self._decide_if_ready(index, now)
        if self._resettle:
            actions += self._settle(now)
        return actions

    @_queued
    def chunk_hashed(self, index: int, sha1: bytes, now: float) -> list[Action]:
        """The local SHA-1 of chunk ``index``, as the glue computed it after `HashChunk`."""
        self._now = now
        self._hash_asked.discard(index)
        if index in self._expected and self.chunks.state(index) == ChunkState.CHECKING \
                and index not in self._claims:
            return self._repaired(index, bytes(sha1), now)
        self._local[index] = bytes(sha1)
        actions = self._decide_if_ready(index, now)
        if self._resettle:
            actions += self._settle(now)
        return actions

    def _settle(self, now: float) -> list[Action]:
        """Decide every chunk no longer waiting for anyone.

        A chunk waits for the answer of each usable source that has it; once a source is
        blamed (or leaves), its answers are ignored, so chunks that were waiting only for it
        must be decided now rather than at the SHA-1 timeout.
        """
        actions: list[Action] = []
        while True:
            self._resettle = False
            for index in list(self._claims):
                if index in self._claims:
                    actions += self._decide_if_ready(index, now)
            if not self._resettle:
                return actions

    def _askable(self, index: int) -> list[_Source]:
        return [s for s in self.sources.values() if not s.bad and s.available is not None
                and index in s.available]

    def _decide_if_ready(self, index: int, now: float, force: bool = False) -> list[Action]:
        if self.chunks.state(index) != ChunkState.CHECKING or index not in self._claims:
            return []
        claims = self._claims[index]
        waiting = [s for s in self._askable(index) if s.peer not in claims]
        if waiting and not force:
            return []
        if index not in self._local:
            if index in self._hash_asked:
                return []
            self._hash_asked.add(index)
            return [HashChunk(index)]
        return self._decide(index, now)

    def _decide(self, index: int, now: float) -> list[Action]:
        claims = self._claims.pop(index)
        local = self._local.pop(index)
        actions: list[Action] = []
        if not claims:
            # Nobody vouches either way: keep it if the file turns out right, else refetch.
            self.chunks.set_state(index, ChunkState.DONE)
            return actions + self._after_check(now)
        votes = collections.Counter(claims.values())

        def rank(value: bytes) -> tuple[int, int, int]:
            strikes = sum(self.sources[p].strikes for p, v in claims.items()
                          if v == value and p in self.sources)
            return (votes[value], -strikes, 1 if value == local else 0)

        consensus = max(votes, key=rank)
        for peer, value in claims.items():
            if value != consensus:
                actions += self._blame(peer, f"its SHA-1 of chunk {index} disagrees with the "
                                              "other sources")
        if local == consensus:
            self.chunks.set_state(index, ChunkState.DONE)
        else:
            actions += self._blame_contributors(index)
            self._expected[index] = consensus
            self._allowed[index] = frozenset(p for p, v in claims.items() if v == consensus)
            self.chunks.set_state(index, ChunkState.OUTSTANDING)
            self._repaired_since_verify += 1
            actions.append(UncommitChunks((index,)))
        return actions + self._after_check(now)

    def _repaired(self, index: int, sha1: bytes, now: float) -> list[Action]:
        actions: list[Action] = []
        if sha1 == self._expected[index]:
            del self._expected[index]
            self._allowed.pop(index, None)
            actions += self._mark_done_repair(index)
        else:
            actions += self._blame_contributors(index)
            self.chunks.set_state(index, ChunkState.OUTSTANDING)
        return actions + self._after_check(now)

    def _mark_done_repair(self, index: int) -> list[Action]:
        self.chunks.set_state(index, ChunkState.DONE)
        return [CommitChunks((index,))]

    def _after_check(self, now: float) -> list[Action]:
        states = [self.chunks.state(i) for i in range(self.chunks.count)]
        if ChunkState.CHECKING in states and self.phase is Phase.CHECKING \
                and any(i in self._claims for i in range(self.chunks.count)):
            return []
        if self.phase is Phase.CHECKING:
            self.phase = Phase.DOWNLOADING
            self._crc_deadline = None
        if self.chunks.complete and self.phase is Phase.DOWNLOADING:
            self.phase = Phase.VERIFYING
            return [VerifyFile()]
        return self._fill_all(now)

    def _blame_contributors(self, index: int) -> list[Action]:
        """A bad chunk: its only contributor is reported; several only get a strike each
        (which of them sent the bad bytes is unknown; their SHA-1 answers tell)."""
        contributors = self._contributors.pop(index, set())
        if len(contributors) == 1:
            (peer,) = contributors
            return self._blame(peer, f"served bad data in chunk {index}")
        for peer in contributors:
            if peer in self.sources:
                self.sources[peer].strikes += 1
        return []

    def _blame(self, peer: SslId, reason: str) -> list[Action]:
        src = self.sources.get(peer)
        if src is not None:
            src.strikes += 1
            self._resettle = self._resettle or not src.bad
            src.bad = True
            src.requests.clear()
        if peer in self.reported:
            return []
        self.reported[peer] = reason
        return [BadSource(peer, reason)]

    # --- control -----------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop asking; what was in flight is forgotten (DONE chunks stay DONE)."""
        if self.phase in (Phase.COMPLETE, Phase.FAILED):
            return
        self.phase = Phase.PAUSED
        for s in self.sources.values():
            s.requests.clear()
            s.current = None
        for index in list(self._active):
            self.chunks.set_state(index, ChunkState.OUTSTANDING)
        self._active.clear()
        for index in range(self.chunks.count):
            if self.chunks.state(index) == ChunkState.CHECKING:
                self.chunks.set_state(index, ChunkState.DONE if index not in self._expected
                                      else ChunkState.OUTSTANDING)
        self._claims.clear()
        self._local.clear()
        self._hash_asked.clear()
        self._crc_deadline = None

    def verify(self, now: float) -> None:
        """Every chunk was DONE on disk already (a download resumed at start): check the
        whole file."""
        self._now = now
        self.phase = Phase.VERIFYING
        self._out.append(VerifyFile())

    def lost(self, indexes: Iterable[int]) -> None:
        """Chunks the glue could not write after all (a write failed, e.g. disk full, after
        this engine had counted them DONE): they are fetched again."""
        for index in indexes:
            if 0 <= index < self.chunks.count and self.chunks.state(index) == ChunkState.DONE:
                self.chunks.set_state(index, ChunkState.OUTSTANDING)

    @_queued
    def resume(self, now: float) -> list[Action]:
        self._now = now
        if self.phase is not Phase.PAUSED:
            return []
        if self.chunks.complete:
            self.phase = Phase.VERIFYING
            return [VerifyFile()]
        self.phase = Phase.DOWNLOADING
        actions: list[Action] = []
        for s in self.sources.values():
            if s.bad:
                continue
            s.rate_at = now
            s.map_asked_at = now
            actions.append(RequestChunkMap(s.peer))
        return actions + self._fill_all(now)

    @_queued
    def handle_timer(self, now: float) -> list[Action]:
        """Time passed: rates, timeouts, re-asks, chunk-map refreshes, progress reports."""
        self._now = now
        actions: list[Action] = []
        if self.phase in (Phase.PAUSED, Phase.COMPLETE, Phase.FAILED):
            return actions
        t = self.tuning
        for s in self.sources.values():
            if s.bad:
                continue
            elapsed = now - s.rate_at
            if elapsed >= t.rate_period:
                sample = s.bytes_window / elapsed
                s.rate = sample if s.rate == 0 else 0.5 * s.rate + 0.5 * sample
                s.bytes_window = 0
                s.rate_at = now
            if s.map_asked_at is None or now - s.map_asked_at >= t.map_refresh:
                s.map_asked_at = now
                actions.append(RequestChunkMap(s.peer))
            stale = [r for r in s.requests if now - r.progress_at >= t.request_timeout]
            for r in stale:
                s.requests.remove(r)
        if self.phase is Phase.CHECKING and self._crc_deadline is not None \
                and now >= self._crc_deadline:
            self._crc_deadline = None
            for index in list(self._claims):
                actions += self._decide_if_ready(index, now, force=True)
        if self.phase is Phase.DOWNLOADING:
            actions += self._fill_all(now)
        if now - self._progress_at >= self.tuning.progress_period:
            self._progress_at = now
            actions.append(ReportProgress())
        return actions

    # --- scheduling --------------------------------------------------------------------------

    def _fill_all(self, now: float) -> list[Action]:
        if self.phase is not Phase.DOWNLOADING:
            return []
        actions: list[Action] = []
        for src in sorted(self.sources.values(), key=lambda s: -s.rate):
            actions += self._fill(src, now)
        return actions

    def _window(self, src: _Source) -> tuple[int, int]:
        t = self.tuning
        factor = PRIORITY_FACTORS.get(self.priority, 1.0)
        if src.rate <= 0:
            return int(t.min_window * factor), t.initial_request
        window = int(min(t.max_window, max(t.min_window, src.rate * t.window_time)) * factor)
        size = int(min(t.max_request, max(t.min_request, src.rate * t.request_time)))
        return window, size

    def _has(self, src: _Source, index: int) -> bool:
        allowed = self._allowed.get(index)
        return (src.available is not None and index in src.available
                and (allowed is None or src.peer in allowed))

    def _fill(self, src: _Source, now: float) -> list[Action]:
        if self.phase is Phase.DOWNLOADING and self.chunks.complete:
            # Resumed with every chunk already DONE: only the check is left.
            self.phase = Phase.VERIFYING
            return [VerifyFile()]
        if self.phase is not Phase.DOWNLOADING or src.bad or src.available is None:
            return []
        window, size = self._window(src)
        size = min(size, window)
        outstanding = src.outstanding
        actions: list[Action] = []
        guard = 0
        # Whole requests only: topping the window up with whatever sliver each data item
        # frees would split the stream into ever smaller requests (and items).
        while window - outstanding >= (size if outstanding else 1) and guard < 1024:
            guard += 1
            got = self._next_range(src, min(size, window - outstanding), now)
            if got is None:
                break
            start, end = got
            src.requests.append(_Request(src.peer, start, end, now, now))
            outstanding += end - start
            actions.append(RequestData(src.peer, start, end - start))
        return actions

    def _unrequested(self, active: _Active) -> list[tuple[int, int]]:
        lo, length = self.chunks.chunk_range(active.index)
        taken = Ranges()
        for s, e in active.received:
            taken.add(s, e)
        for other in self.sources.values():
            for r in other.requests:
                if lo <= r.start < lo + length:
                    taken.add(r.start, r.end)
        return taken.gaps(lo, lo + length)

    def _next_range(self, src: _Source, size: int, now: float) -> tuple[int, int] | None:
        size = max(1, size)
        order = []
        if src.current is not None and src.current in self._active:
            order.append(self._active[src.current])
        order += [a for i, a in sorted(self._active.items()) if i != src.current
                  and self._has(src, i)]
        for active in order:
            gaps = self._unrequested(active)
            if gaps:
                start, end = gaps[0]
                return start, min(end, start + size)
        index = self.chunks.pick(lambda i: self._has(src, i), self._strategy_for(src),
                                 self.rng)
        if index is not None:
            self.chunks.set_state(index, ChunkState.ACTIVE)
            self._active[index] = _Active(index)
            src.current = index
            lo, length = self.chunks.chunk_range(index)
            return lo, min(lo + length, lo + size)
        return self._reask(src, size, now)

    def _strategy_for(self, src: _Source) -> Strategy:
        """PROGRESSIVE's random jump spreads several sources over the file; a lone source
        takes the first chunk instead, so the file fills in order: the running SHA-1 is then
        fed from memory as the data is written, with no read-back, and the writes are
        sequential (docs/transfer.md, "A lone source fetches in order")."""
        if self.strategy is Strategy.PROGRESSIVE and not any(
                s is not src and not s.bad and s.available is not None
                for s in self.sources.values()):
            return Strategy.STREAMING
        return self.strategy

    def _reask(self, src: _Source, size: int, now: float) -> tuple[int, int] | None:
        """End game: take over a range a slower source has owed for too long."""
        for other in self.sources.values():
            if other is src:
                continue
            for r in other.requests:
                if r.reasked or now - r.sent_at < self.tuning.slow_reask:
                    continue
                if not self._has(src, r.start // CHUNK_SIZE):
                    continue
                if any(q.start <= r.start < q.end for q in src.requests):
                    continue
                r.reasked = True
                return r.start, min(r.end, r.start + size)
        return None
