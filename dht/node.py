# -*- test-case-name: tests.test_dht_node -*-
"""The sans-IO DHT node: datagrams and a clock in, datagrams and events out.

`DHTNode` owns a `RoutingTable`, the outstanding transactions, the iterative lookups, the
announce_peer store and the per-source rate limiter.  It never touches a socket or a reactor;
it keeps the `pqi.core.Core` contract: inputs (`datagram_received`, `ping`, `bootstrap`,
`lookup`, `announce`) take ``now``, and `drain(now)` hands over what they produced, in order:
`pqi.core.Datagram` to send and the events `LookupDone`, `FriendFound`, `QueryAnswered` and
`ConnectReceived`.  `next_deadline()` says when `handle_timer` wants to run next (None while
the node knows nobody and waits for nothing).

Abuse guards:

* Every source IP is rate limited (a leaky bucket of `DHTConfig.rate_burst` packets draining at
  `DHTConfig.rate_per_second`); overflowing it bans the IP for `DHTConfig.ban_seconds` and
  reports it with a `SourceFlooding` event (the node's ban list takes it as a DHT entry, as
  RetroShare's takes BitDHT's filtered peers).
* A source that never answered one of our queries is *unverified*: everything we send it is
  paid from a byte credit that only its own datagrams fill (at most `DHTConfig.max_credit`),
  so a spoofed source address cannot turn us into an amplifier: it gets at most the bytes it
  sent.  To a query (but a ping) we first send one verifying ping if the credit pays for it;
  the reply, if larger than the rest of the credit, is *parked* until the source answers that
  ping (then, verified, it gets the full reply with the query's transaction id, one round trip
  late) and dropped if the ping times out.  Without a verifying ping in flight the reply is
  trimmed to the credit (nodes dropped farthest first, then our ``v``; nothing if too little
  is left).  A ping is answered first and its leftover pays for our ping later.  So a BitDHT
  node, which pings a node before it asks it for nodes, gets its 10 nodes on its first
  find_node (docs/dht.md, "Byte credit").  A lookup re-asks a node whose verifying ping
  arrives after an answer that looked trimmed (an older node that trims instead of parking).
* Only nodes that answered our queries enter the routing table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import random
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from pqi.core import Datagram

from . import krpc
from .krpc import (
    NODE_ID_LEN,
    RS_VERSION,
    Address,
    AnnouncePeer,
    Connect,
    Error,
    FindNode,
    GetPeers,
    KRPCDecodeError,
    NodeInfo,
    Ping,
    Response,
    UnknownQuery,
)
from .routing import K, RoutingTable, id_to_int

__all__ = [
    "DHTConfig", "Counters", "LookupKind", "Lookup", "DHTNode", "ALPHA", "QUERY_TIMEOUT",
    "TOKEN_ROTATION", "PEER_TTL", "dht_node_id", "RS_ID_PREFIX", "LookupDone", "FriendFound",
    "QueryAnswered", "ConnectReceived", "SourceFlooding", "DHTEvent", "MAX_PARKED_SOURCES",
    "MAX_PARKED_PER_SOURCE",
]

#: Parallel queries per lookup (Kademlia's alpha).
ALPHA: Final = 3
#: Seconds before an unanswered query counts as failed.
QUERY_TIMEOUT: Final = 4.0
#: Unverified sources whose replies may wait at once for the answer to our verifying ping
#: (each for at most `QUERY_TIMEOUT`; a flood of spoofed sources beyond this gets trimmed
#: replies).
MAX_PARKED_SOURCES: Final = 256
#: Replies parked for one unverified source (a BitDHT node asks one query per second).
MAX_PARKED_PER_SOURCE: Final = 4
#: Token secret lifetime; tokens from the current and the previous secret are accepted.
TOKEN_ROTATION: Final = 300.0
#: How long an announced peer is kept (mainline's 30 minutes).
PEER_TTL: Final = 30 * 60.0
#: ``SHA1(RS_ID_PREFIX + ssl_id)`` is a location's DHT id (``p3BitDht::calculateNodeId``).
RS_ID_PREFIX: Final = b"RS_VERSION_0.5.1\x00"
_HOUSEKEEPING: Final = 5.0
_TOKEN_LEN: Final = 8
#: Entry points remembered (RetroShare's shipped bdboot.txt has about 270).
_MAX_BOOTSTRAP: Final = 1024


def dht_node_id(ssl_id: bytes) -> bytes:
    """The DHT node id BitDHT derives from a 16-byte SSL (location) id."""
    if len(ssl_id) != 16:
        raise ValueError(f"SSL id must be 16 bytes, got {len(ssl_id)}")
    return hashlib.sha1(RS_ID_PREFIX + ssl_id).digest()


@dataclass(frozen=True, slots=True)
class DHTConfig:
    """Tunables; defaults follow BEP 5 and the issue's abuse limits."""

    k: int = K
    alpha: int = ALPHA
    query_timeout: float = QUERY_TIMEOUT
    token_rotation: float = TOKEN_ROTATION
    peer_ttl: float = PEER_TTL
    max_peers_per_hash: int = 100
    max_info_hashes: int = 1000
    #: Peers returned in one get_peers ``values`` list.
    max_values: int = 50
    #: Nodes in a find_node / get_peers answer: BitDHT's own answers carry 10
    #: (``bdNumQueryNodes``), and a BitDHT node starting up needs 10 pong-answering peers in
    #: its node space by the end of its 180 s FINDSELF phase, which it learns only from the
    #: ``nodes`` near its own id (docs/dht.md); 8, mainline's k, leaves a small swarm short.
    reply_nodes: int = 10
    rate_per_second: float = 5.0
    #: Bucket size: 5/s averaged over 10 s.
    rate_burst: float = 50.0
    ban_seconds: float = 300.0
    #: Sources the rate limit does not apply to: local processes (several rsproto nodes, or a
    #: test's libtorrent, on one machine) could flood us by other means anyway.
    rate_limit_exempt: frozenset[str] = frozenset({"127.0.0.1", "::1"})
    max_tracked_sources: int = 10_000
    max_pending: int = 1024
    #: Candidates one lookup keeps (nearest first) and queries it may send.
    max_lookup_candidates: int = 128
    max_lookup_queries: int = 200
    #: While fewer than k good contacts are known, re-run the self lookup this often.
    bootstrap_interval: float = 15.0
    #: Between two verification pings of the same unverified source.
    probe_interval: float = 300.0
    version: bytes | None = RS_VERSION
    #: Addresses ever verified that we remember (LRU); also bounds the credit table.
    max_verified: int = 4096
    #: Most bytes an unverified source may have in credit (sent to us, not yet spent on it).
    max_credit: int = 2 * krpc.MAX_DATAGRAM_SIZE
    #: Unverified sources whose replies may wait for their verifying ping's answer at once.
    max_parked_sources: int = MAX_PARKED_SOURCES
    #: Replies parked for one source (more are trimmed to its credit).
    max_parked_per_source: int = MAX_PARKED_PER_SOURCE


@dataclass(slots=True)
class Counters:
    """What happened to datagrams; surfaced in logs and tests."""

    received: int = 0
    sent: int = 0
    malformed: int = 0
    oversized: int = 0
    rate_limited: int = 0
    banned: int = 0
    unexpected_responses: int = 0
    errors_received: int = 0
    timeouts: int = 0
    unknown_methods: int = 0
    bad_tokens: int = 0
    trimmed_replies: int = 0
    #: Replies held for an unverified source until it answered our verifying ping.
    parked_replies: int = 0
    #: Parked replies sent in full once their source was verified.
    released_replies: int = 0
    connect_ignored: int = 0


class LookupKind(Enum):
    FIND_NODE = "find_node"
    GET_PEERS = "get_peers"


class _State(Enum):
    NEW = 0
    PENDING = 1
    DONE = 2
    FAILED = 3


@dataclass(slots=True)
class _Candidate:
    addr: Address
    node_id: bytes | None
    depth: int
    state: _State = _State.NEW
    retried: bool = False
    #: XOR distance to the lookup target; -1 while the id is unknown (bootstrap seeds).
    key: int = -1


@dataclass(eq=False)
class Lookup:
    """An iterative lookup; a `LookupDone` event hands it back when it converged or ran dry
    (only when ``report``: the node's own maintenance lookups stay quiet)."""

    target: bytes
    kind: LookupKind
    #: Finish as soon as a node whose id *is* the target answers (friend lookup).
    exact: bool = False
    report: bool = True
    #: The self lookup of a join: when it ends, the buckets still short of k are refreshed.
    join: bool = False
    candidates: dict[Address, _Candidate] = field(default_factory=dict)
    queries: int = 0
    done: bool = False
    found: Address | None = None
    peers: set[Address] = field(default_factory=set)
    tokens: dict[bytes, tuple[bytes, Address]] = field(default_factory=dict)
    #: Candidates whose answer looked trimmed by an amplification guard: re-asked once verified.
    short: set[Address] = field(default_factory=set)
    #: When to stop waiting for the verifying pings of ``short`` candidates.
    short_deadline: float = 0.0

    @staticmethod
    def _key(c: _Candidate) -> int:
        return c.key

    def candidate(self, addr: Address, node_id: bytes | None, depth: int) -> _Candidate:
        c = _Candidate(addr, node_id, depth)
        if node_id is not None:
            c.key = id_to_int(node_id) ^ id_to_int(self.target)
        return c

    def results(self, count: int = K) -> list[NodeInfo]:
        """The nearest nodes that answered, nearest first."""
        done = [c for c in self.candidates.values()
                if c.state is _State.DONE and c.node_id is not None]
        done.sort(key=self._key)
        return [NodeInfo(c.node_id, *c.addr) for c in done[:count] if c.node_id is not None]

    @property
    def round_trips(self) -> int:
        depths = [c.depth for c in self.candidates.values() if c.state is _State.DONE]
        return max(depths, default=0)


@dataclass(frozen=True, slots=True)
class LookupDone:
    """Event: a lookup started through `DHTNode.lookup` finished."""

    lookup: Lookup


@dataclass(frozen=True, slots=True)
class FriendFound:
    """Event: an exact lookup reached the node whose id is its target, at ``addr``."""

    node_id: bytes
    addr: Address


@dataclass(frozen=True, slots=True)
class QueryAnswered:
    """Event: the answer to the query `DHTNode.ping` returned ``ticket`` for (None: timed out)."""

    ticket: int
    reply: Response | Error | None


@dataclass(frozen=True, slots=True)
class ConnectReceived:
    """Event: a BitDHT ``connect`` query for the relay layer (when `DHTNode.accept_connect`)."""

    msg: Connect
    addr: Address


@dataclass(frozen=True, slots=True)
class SourceFlooding:
    """Event: ``host`` overflowed its rate limit and is ignored for `DHTConfig.ban_seconds`
    (reported once per ban)."""

    host: str


DHTEvent = LookupDone | FriendFound | QueryAnswered | ConnectReceived | SourceFlooding


@dataclass(slots=True)
class _Pending:
    addr: Address
    node_id: bytes | None
    method: bytes
    deadline: float
    request_size: int
    lookup: Lookup | None = None
    #: A query made through the public API: its answer becomes a `QueryAnswered` event.
    ticket: int | None = None


@dataclass(slots=True)
class _Parked:
    """Replies to an unverified source, waiting for the answer to our verifying ping."""

    deadline: float
    replies: list[Response | Error] = field(default_factory=list)


@dataclass(slots=True)
class _Source:
    level: float
    updated: float
    banned_until: float = 0.0


class DHTNode:
    """One DHT node, fed datagrams and time."""

    def __init__(self, node_id: bytes, config: DHTConfig | None = None, *,
                 rng: random.Random | None = None, now: float = 0.0) -> None:
        if len(node_id) != NODE_ID_LEN:
            raise ValueError("node id must be 20 bytes")
        self.node_id = node_id
        self.config = config or DHTConfig()
        self.rng = rng or random.SystemRandom()
        self.routing = RoutingTable(node_id, self.config.k)
        self.counters = Counters()
        self.lookups: list[Lookup] = []
        self.bootstrap_addrs: list[Address] = []
        #: Whether BitDHT ``connect`` queries become `ConnectReceived` events (the relay layer
        #: is there to take them) or are counted as ignored.
        self.accept_connect = False
        self._out: list[Datagram | DHTEvent] = []
        self._pending: dict[bytes, _Pending] = {}
        self._tickets = 0
        self._tid = self.rng.randrange(0x10000)
        self._secrets = [self.rng.randbytes(16), self.rng.randbytes(16)]
        self._next_rotation = now + self.config.token_rotation
        self._next_housekeeping = now
        self._next_bootstrap = now
        self._peers: dict[bytes, dict[Address, float]] = {}
        self._sources: dict[str, _Source] = {}
        self._verified: OrderedDict[Address, None] = OrderedDict()
        self._probed: OrderedDict[Address, float] = OrderedDict()
        #: Bytes each unverified source sent us that we have not spent on it (LRU, bounded).
        self._credit: OrderedDict[Address, int] = OrderedDict()
        #: Replies held until a verifying ping is answered (bounded by the config).
        self._parked: dict[Address, _Parked] = {}

    # --- public API --------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        """Handle one datagram from ``addr``; never raises on peer input."""
        self.counters.received += 1
        self._rotate(now)
        if not self._admit(addr[0], now):
            return
        if len(data) > krpc.MAX_DATAGRAM_SIZE:
            self.counters.oversized += 1
            return
        try:
            msg = krpc.decode(data)
        except KRPCDecodeError:
            self.counters.malformed += 1
            return
        if isinstance(msg, Response | Error):
            self._on_reply(msg, addr, len(data), now)
        else:
            self._on_query(msg, addr, len(data), now)

    def drain(self, now: float) -> list[Datagram | DHTEvent]:
        """Datagrams to send and events, oldest first (`pqi.core.Core`)."""
        out, self._out = self._out, []
        self.counters.sent += sum(1 for o in out if isinstance(o, Datagram))
        return out

    def handle_timer(self, now: float) -> None:
        """Time out queries, rotate the token secret, run the periodic housekeeping."""
        for tid, p in list(self._pending.items()):
            if p.deadline <= now:
                del self._pending[tid]
                self.counters.timeouts += 1
                if p.node_id is not None:
                    self.routing.failed(p.node_id, p.addr)
                if p.lookup is not None:
                    self._candidate_failed(p.lookup, p.addr, now)
                if p.ticket is not None:
                    self._out.append(QueryAnswered(p.ticket, None))
        for lk in list(self.lookups):
            if lk.short and lk.short_deadline <= now:
                lk.short.clear()
                self._step(lk, now)
        for addr, parked in list(self._parked.items()):
            if parked.deadline <= now:  # never verified (a spoofed address?): nothing more
                del self._parked[addr]
        self._rotate(now)
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + _HOUSEKEEPING
            self._housekeeping(now)

    def _rotate(self, now: float) -> None:
        """Token secrets change every `DHTConfig.token_rotation` seconds; an idle node (no
        timer) catches up when it next hears something, both secrets new if it slept twice
        as long."""
        if now < self._next_rotation:
            return
        previous = self._secrets[0]
        if now >= self._next_rotation + self.config.token_rotation:
            previous = self.rng.randbytes(16)
        self._secrets = [self.rng.randbytes(16), previous]
        self._next_rotation = now + self.config.token_rotation

    def _idle(self) -> bool:
        """Nothing to time out, nobody known, nothing stored: no timer needed."""
        return not (self._pending or self._parked or self.lookups or self._peers
                    or self._sources
                    or self.bootstrap_addrs or len(self.routing))

    def next_deadline(self) -> float | None:
        """When `handle_timer` is next due, or None while the node is idle."""
        if self._idle():
            return None
        deadline = min(self._next_rotation, self._next_housekeeping)
        for p in self._pending.values():
            deadline = min(deadline, p.deadline)
        for lk in self.lookups:
            if lk.short:
                deadline = min(deadline, lk.short_deadline)
        for parked in self._parked.values():
            deadline = min(deadline, parked.deadline)
        return deadline

    def ping(self, addr: Address, now: float) -> int:
        """Ping ``addr``; returns the ticket of the `QueryAnswered` event that will carry the
        answer, or None after the query timeout."""
        self._tickets += 1
        ticket = self._tickets
        if not self._query(Ping, addr, None, now, ticket=ticket):
            self._out.append(QueryAnswered(ticket, None))  # too many queries in flight
        return ticket

    def bootstrap(self, addrs: Iterable[Address], now: float) -> None:
        """Remember ``addrs`` as entry points and look ourselves up through them."""
        for a in addrs:
            if a not in self.bootstrap_addrs and len(self.bootstrap_addrs) < _MAX_BOOTSTRAP:
                self.bootstrap_addrs.append(a)
        self._next_bootstrap = now + self.config.bootstrap_interval
        self._join(now)

    def _join(self, now: float) -> None:
        """Kademlia's join: look ourselves up, then (`_refresh`) every bucket short of k."""
        self._start_lookup(Lookup(self.node_id, LookupKind.FIND_NODE, report=False, join=True),
                           now)

    def _refresh(self, now: float) -> None:
        for b in self.routing.buckets:
            if len(b.contacts) < self.config.k and not b.covers(id_to_int(self.node_id)):
                b.last_changed = now
                target = self.rng.randrange(b.lo, b.hi).to_bytes(NODE_ID_LEN, "big")
                self._start_lookup(Lookup(target, LookupKind.FIND_NODE, report=False), now)

    def lookup(self, target: bytes, now: float, kind: LookupKind = LookupKind.FIND_NODE, *,
               exact: bool = False, seeds: Iterable[Address] = ()) -> Lookup:
        """Start an iterative lookup; a `LookupDone` event hands it back when it ends."""
        return self._start_lookup(Lookup(target, kind, exact), now, seeds)

    def _start_lookup(self, lk: Lookup, now: float, seeds: Iterable[Address] = ()) -> Lookup:
        target = lk.target
        for c in self.routing.closest(target, self.config.k * 2):
            lk.candidates[c.addr] = lk.candidate(c.addr, c.node_id, 1)
        entry: list[Address] = []
        if len(lk.candidates) < self.config.k and self.bootstrap_addrs:
            # Bootstrap nodes have no known id, so they are asked first: a sample of k is
            # plenty (RetroShare ships a list of ~270).
            entry = self.rng.sample(self.bootstrap_addrs,
                                    min(self.config.k, len(self.bootstrap_addrs)))
        for a in list(seeds) + entry:
            if a not in lk.candidates:
                lk.candidates[a] = lk.candidate(a, None, 1)
        self.lookups.append(lk)
        self._step(lk, now)
        return lk

    def get_stored_peers(self, info_hash: bytes, now: float) -> list[Address]:
        return [a for a, exp in self._peers.get(info_hash, {}).items() if exp > now]

    def announce(self, lk: Lookup, port: int, now: float, *, implied_port: bool = False,
                 ) -> None:
        """Announce on the nodes a finished get_peers lookup got tokens from."""
        for node_id, (token, addr) in lk.tokens.items():
            if any(n.node_id == node_id for n in lk.results()):
                self._query(AnnouncePeer, addr, node_id, now, info_hash=lk.target, port=port,
                            token=token, implied_port=implied_port)

    def make_token(self, host: str, *, previous: bool = False) -> bytes:
        secret = self._secrets[1 if previous else 0]
        return hashlib.sha1(secret + ipaddress.ip_address(host).packed).digest()[:_TOKEN_LEN]

    def is_verified(self, addr: Address) -> bool:
        return addr in self._verified

    # --- sending -----------------------------------------------------------------------------

    def _next_tid(self) -> bytes | None:
        if len(self._pending) >= self.config.max_pending:
            return None
        while True:
            self._tid = (self._tid + 1) & 0xFFFF
            tid = self._tid.to_bytes(2, "big")
            if tid not in self._pending:
                return tid

    def _query(self, cls: type, addr: Address, node_id: bytes | None, now: float,
               lookup: Lookup | None = None, *, ticket: int | None = None,
               budget: int | None = None, **fields: object) -> bool:
        """Send a query; with ``budget``, only if it takes at most that many bytes."""
        tid = self._next_tid()
        if tid is None:
            return False
        msg = cls(transaction_id=tid, sender_id=self.node_id, version=self.config.version,
                  **fields)
        data = krpc.encode(msg)
        if budget is not None and len(data) > budget:
            return False
        self._pending[tid] = _Pending(addr, node_id, cls.METHOD, now + self.config.query_timeout,
                                      len(data), lookup, ticket)
        self._out.append(Datagram(data, addr))
        return True

    def _reply(self, msg: Response | Error, addr: Address, request_size: int, *,
               may_park: bool = True) -> None:
        """Send ``msg``; to an unverified source within its credit: parked while our verifying
        ping is out (unless ``may_park`` is false: a pong, which trimmed says all), else
        trimmed."""
        data = krpc.encode(msg)
        if addr not in self._verified:
            limit = min(request_size, self._credit.get(addr, 0))
            parked = self._parked.get(addr)
            if (len(data) > limit and may_park and parked is not None
                    and len(parked.replies) < self.config.max_parked_per_source):
                parked.replies.append(msg)
                self.counters.parked_replies += 1
                return
            if len(data) > limit:
                trimmed = self._trim(msg, limit)
                self.counters.trimmed_replies += 1
                if trimmed is None:
                    return
                data = trimmed
            self._spend(addr, len(data))
        self._out.append(Datagram(data, addr))

    def _earn(self, addr: Address, size: int) -> None:
        """An unverified source sent ``size`` bytes: we may send it that much more."""
        credit = min(self._credit.pop(addr, 0) + size, self.config.max_credit)
        self._credit[addr] = credit
        if len(self._credit) > self.config.max_verified:
            self._credit.popitem(last=False)

    def _spend(self, addr: Address, size: int) -> None:
        if addr in self._credit:
            self._credit[addr] = max(0, self._credit[addr] - size)

    def _trim(self, msg: Response | Error, limit: int) -> bytes | None:
        """Shrink a reply to an unverified source until it is no larger than its request."""
        if isinstance(msg, Response):
            while True:
                data = krpc.encode(msg)
                if len(data) <= limit:
                    return data
                excess = len(data) - limit
                if msg.values:
                    msg = _replace(msg, values=msg.values[:-max(1, excess // 8)])
                elif msg.nodes6:
                    msg = _replace(msg, nodes6=msg.nodes6[:-max(1, excess // 38)])
                elif msg.nodes:
                    msg = _replace(msg, nodes=msg.nodes[:-max(1, excess // 26)])
                elif msg.nodes is not None and msg.token is None:
                    msg = _replace(msg, nodes=None)
                elif msg.version is not None:
                    msg = _replace(msg, version=None)
                else:
                    return None
        data = krpc.encode(_replace(msg, version=None))
        return data if len(data) <= limit else None

    # --- incoming ----------------------------------------------------------------------------

    def _admit(self, host: str, now: float) -> bool:
        cfg = self.config
        if host in cfg.rate_limit_exempt:
            return True
        src = self._sources.get(host)
        if src is None:
            if len(self._sources) >= cfg.max_tracked_sources:
                self._prune_sources(now)
                if len(self._sources) >= cfg.max_tracked_sources:
                    self.counters.rate_limited += 1
                    return False
            src = self._sources[host] = _Source(0.0, now)
        if src.banned_until > now:
            self.counters.banned += 1
            return False
        src.level = max(0.0, src.level - (now - src.updated) * cfg.rate_per_second) + 1.0
        src.updated = now
        if src.level > cfg.rate_burst:
            src.banned_until = now + cfg.ban_seconds
            src.level = 0.0
            self.counters.rate_limited += 1
            self._out.append(SourceFlooding(host))
            return False
        return True

    def _prune_sources(self, now: float) -> None:
        rate = self.config.rate_per_second
        for host, s in list(self._sources.items()):
            if s.banned_until <= now and s.level - (now - s.updated) * rate <= 0:
                del self._sources[host]

    def _verify(self, addr: Address) -> None:
        self._credit.pop(addr, None)
        self._verified[addr] = None
        self._verified.move_to_end(addr)
        if len(self._verified) > self.config.max_verified:
            self._verified.popitem(last=False)
        parked = self._parked.pop(addr, None)
        for msg in parked.replies if parked is not None else ():
            self.counters.released_replies += 1
            self._out.append(Datagram(krpc.encode(msg), addr))

    def _on_query(self, msg: krpc.Query, addr: Address, size: int, now: float) -> None:
        if addr not in self._verified:
            self._earn(addr, size)
            if not isinstance(msg, Ping):
                self._probe(msg, addr, now)
        tid = msg.transaction_id
        version = self.config.version
        if isinstance(msg, Ping):
            self._reply(Response(tid, self.node_id, version=version), addr, size, may_park=False)
            for lk in self.lookups:
                if addr in lk.short:
                    # The node verifies us after an answer that looked trimmed (a node that
                    # trims rather than parks): ask it again for the full answer.
                    lk.short.discard(addr)
                    cand = lk.candidates.get(addr)
                    if cand is not None and cand.state is _State.DONE and not cand.retried:
                        cand.state = _State.NEW
                        cand.retried = True
                        self._step(lk, now)
        elif isinstance(msg, FindNode):
            nodes = [c.info() for c in self.routing.closest(msg.target,
                                                              self.config.reply_nodes)]
            self._reply(_nodes_response(tid, self.node_id, nodes, version), addr, size)
        elif isinstance(msg, GetPeers):
            token = self.make_token(addr[0])
            peers = self.get_stored_peers(msg.info_hash, now)[:self.config.max_values]
            if peers:
                self._reply(Response(tid, self.node_id, values=tuple(peers), token=token,
                                     version=version), addr, size)
            else:
                nodes = [c.info() for c in self.routing.closest(msg.info_hash,
                                                                  self.config.reply_nodes)]
                resp = _nodes_response(tid, self.node_id, nodes, version)
                self._reply(_replace(resp, token=token), addr, size)
        elif isinstance(msg, AnnouncePeer):
            if msg.token not in (self.make_token(addr[0]),
                                 self.make_token(addr[0], previous=True)):
                self.counters.bad_tokens += 1
                self._reply(Error(tid, krpc.ERROR_PROTOCOL, b"bad token", version), addr, size)
                return
            port = addr[1] if msg.implied_port else msg.port
            self._store_peer(msg.info_hash, (addr[0], port), now)
            self._reply(Response(tid, self.node_id, version=version), addr, size)
        elif isinstance(msg, Connect):
            if self.accept_connect:
                self._out.append(ConnectReceived(msg, addr))
            else:
                self.counters.connect_ignored += 1
        elif isinstance(msg, UnknownQuery):
            self.counters.unknown_methods += 1
            self._reply(Error(tid, krpc.ERROR_METHOD_UNKNOWN, b"Method Unknown", version),
                        addr, size)
        self.routing.update(msg.sender_id, addr, now, replied=False)
        if isinstance(msg, Ping) and addr not in self._verified:
            self._probe(msg, addr, now)

    def _probe(self, msg: krpc.Query, addr: Address, now: float) -> None:
        """Ping an unverified source once per `DHTConfig.probe_interval`, if its credit pays."""
        if self.routing.get(msg.sender_id) is not None:
            return
        last = self._probed.get(addr)
        if last is not None and now - last < self.config.probe_interval:
            return
        if self._query(Ping, addr, msg.sender_id, now, budget=self._credit.get(addr, 0)):
            self._spend(addr, self._pending[self._tid.to_bytes(2, "big")].request_size)
            if (addr not in self._parked
                    and len(self._parked) < self.config.max_parked_sources):
                self._parked[addr] = _Parked(now + self.config.query_timeout)
            self._probed[addr] = now
            self._probed.move_to_end(addr)
            if len(self._probed) > self.config.max_verified:
                self._probed.popitem(last=False)

    def _store_peer(self, info_hash: bytes, peer: Address, now: float) -> None:
        cfg = self.config
        peers = self._peers.get(info_hash)
        if peers is None:
            if len(self._peers) >= cfg.max_info_hashes:
                return
            peers = self._peers[info_hash] = {}
        if peer not in peers and len(peers) >= cfg.max_peers_per_hash:
            oldest = min(peers, key=peers.__getitem__)
            del peers[oldest]
        peers[peer] = now + cfg.peer_ttl

    def _on_reply(self, msg: Response | Error, addr: Address, size: int, now: float) -> None:
        pending = self._pending.get(msg.transaction_id)
        if pending is None or pending.addr != addr:
            self.counters.unexpected_responses += 1
            return
        del self._pending[msg.transaction_id]
        self._verify(addr)
        self._use_reply(msg, pending, addr, size, now)
        if pending.ticket is not None:
            # Last, so the skin sees the routing table and lookups already updated.
            self._out.append(QueryAnswered(pending.ticket, msg))

    def _use_reply(self, msg: Response | Error, pending: _Pending, addr: Address, size: int,
                   now: float) -> None:
        lk = pending.lookup
        if isinstance(msg, Error):
            self.counters.errors_received += 1
            if lk is not None:
                self._candidate_failed(lk, addr, now)
            return
        ping = self.routing.update(msg.sender_id, addr, now, replied=True)
        if ping is not None:
            self._query(Ping, ping.addr, ping.node_id, now)
        if lk is None or lk.done:
            return
        cand = lk.candidates.get(addr)
        if cand is None:
            return
        if cand.node_id != msg.sender_id:
            cand.node_id = msg.sender_id
            cand.key = id_to_int(msg.sender_id) ^ id_to_int(lk.target)
        cand.state = _State.DONE
        if lk.exact and msg.sender_id == lk.target:
            lk.found = addr
            self._out.append(FriendFound(msg.sender_id, addr))
            self._finish(lk, now)
            return
        if (len(msg.nodes or ()) < self.config.k and msg.values is None
                and size <= pending.request_size):
            if not cand.retried:
                lk.short.add(addr)
                lk.short_deadline = now + self.config.query_timeout
        if msg.values:
            lk.peers.update(msg.values)
        if msg.token is not None:
            lk.tokens[msg.sender_id] = (msg.token, addr)
        for n in (msg.nodes or ()) + msg.nodes6:
            if n.port == 0 or n.node_id == self.node_id or n.addr in lk.candidates:
                continue
            lk.candidates[n.addr] = lk.candidate(n.addr, n.node_id, cand.depth + 1)
        self._prune(lk)
        self._step(lk, now)

    # --- lookups -----------------------------------------------------------------------------

    def _prune(self, lk: Lookup) -> None:
        limit = self.config.max_lookup_candidates
        if len(lk.candidates) <= limit:
            return
        keep = sorted(lk.candidates.values(),
                      key=lambda c: (c.state is _State.FAILED, lk._key(c)))
        for c in keep[limit:]:
            if c.state is not _State.PENDING:
                del lk.candidates[c.addr]

    def _candidate_failed(self, lk: Lookup, addr: Address, now: float) -> None:
        cand = lk.candidates.get(addr)
        if cand is not None and not lk.done:
            cand.state = _State.FAILED
            self._step(lk, now)

    def _step(self, lk: Lookup, now: float) -> None:
        if lk.done:
            return
        cfg = self.config
        ranked = sorted((c for c in lk.candidates.values() if c.state is not _State.FAILED),
                        key=lk._key)
        front = ranked[:cfg.k]
        inflight = sum(1 for c in lk.candidates.values() if c.state is _State.PENDING)
        for c in front:
            if inflight >= cfg.alpha or lk.queries >= cfg.max_lookup_queries:
                break
            if c.state is _State.NEW:
                if lk.kind is LookupKind.GET_PEERS:
                    ok = self._query(GetPeers, c.addr, c.node_id, now, lk, info_hash=lk.target)
                else:
                    ok = self._query(FindNode, c.addr, c.node_id, now, lk, target=lk.target)
                if not ok:
                    break
                c.state = _State.PENDING
                lk.queries += 1
                inflight += 1
        if inflight == 0 and not lk.short.intersection(c.addr for c in front):
            self._finish(lk, now)

    def _finish(self, lk: Lookup, now: float) -> None:
        lk.done = True
        if lk in self.lookups:
            self.lookups.remove(lk)
        for p in self._pending.values():
            if p.lookup is lk:
                p.lookup = None
        if lk.report:
            self._out.append(LookupDone(lk))
        if lk.join:
            self._refresh(now)

    # --- housekeeping ------------------------------------------------------------------------

    def _housekeeping(self, now: float) -> None:
        for info_hash, peers in list(self._peers.items()):
            for peer, exp in list(peers.items()):
                if exp <= now:
                    del peers[peer]
            if not peers:
                del self._peers[info_hash]
        self._prune_sources(now)
        if now >= self._next_bootstrap and (self.bootstrap_addrs or len(self.routing)):
            self._next_bootstrap = now + self.config.bootstrap_interval
            if self.routing.good_count(now) < self.config.k:
                self._join(now)
            else:
                stale = self.routing.stale_buckets(now)
                if stale:
                    b = stale[0]
                    b.last_changed = now
                    target = self.rng.randrange(b.lo, b.hi).to_bytes(NODE_ID_LEN, "big")
                    self._start_lookup(Lookup(target, LookupKind.FIND_NODE, report=False), now)
                for c in self.routing.questionable(now)[:2]:
                    self._query(Ping, c.addr, c.node_id, now)


def _nodes_response(tid: bytes, own: bytes, nodes: list[NodeInfo], version: bytes | None,
                    ) -> Response:
    return Response(tid, own, nodes=tuple(n for n in nodes if not n.is_ipv6),
                    nodes6=tuple(n for n in nodes if n.is_ipv6), version=version)


def _replace(msg: Response | Error, **changes: object) -> Response | Error:
    return dataclasses.replace(msg, **changes)  # type: ignore[type-var]

