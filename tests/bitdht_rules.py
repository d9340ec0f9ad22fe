"""A DHT node that follows BitDHT's rules for becoming active and looking friends up.

Our own code, written from the rules docs/dht.md lists ("What a BitDHT node needs before it
looks friends up", read in BitDHT's ``bdmanager.cc``, ``bdnode.cc``, ``bdpeer.cc``,
``bdquery.cc``, ``bdfilter.cc``), as a sans-IO core (`pqi.core` contract) that
`tools.simnet.SimNet` drives beside real `dht.node.DHTNode` cores.  It keeps what decides
whether a RetroShare node becomes active and finds a friend, and no more:

* every message adds its sender to the node space with flags: a ping RECV_PING, a reply
  without ``nodes``/``token`` (a pong) RECV_PONG, a reply with ``nodes`` RECV_NODES, a query
  nothing; ``v`` starting ``BD`` adds DHT_ENGINE, ``RS`` at 4..5 DHT_APPL;
* nodes named in ``nodes`` replies are pinged (potential peers) if *worthy*: a running
  lookup knows fewer than 10 peers, or the node is nearer its target than the 10th
  (``bdQuery::worthyPotentialPeer``); entries without RECV_PONG
  are pinged once and dropped 15 s after they were found; at most 10 entries per bucket;
* modes: STARTUP 10 s, then FINDSELF (a lookup of our own id, each query disguised as a
  random id sharing the first differing byte, ``bdStdRandomMidId``): over 50 entries go to REFRESH
  at once; after 180 s, 10 or more go to REFRESH, fewer FAIL (the space is cleared and the
  node starts again from its bootstrap addresses); REFRESH starts the friend lookups, fails
  below 10 entries, and becomes ACTIVE, which returns to REFRESH every 10 s;
* a friend lookup succeeds when a message from the friend's exact id arrives while it runs.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import random
from typing import Any, Final

from dht import krpc
from dht.krpc import FindNode, NodeInfo, Ping, Response
from dht.routing import id_to_int
from pqi.core import Datagram

__all__ = ["BitDhtRulesNode", "Mode", "BecameActive", "FriendLookupSucceeded", "RECV_PING",
           "RECV_PONG", "RECV_NODES", "DHT_ENGINE", "DHT_APPL"]

# Flags and figures as BitDHT names them (bdiface.h, bdmanager.*, bdpeer.h, bdstddht.h).
RECV_PING: Final = 0x001
RECV_PONG: Final = 0x002
RECV_NODES: Final = 0x004
DHT_ENGINE: Final = 0x100
DHT_APPL: Final = 0x400
MAX_STARTUP_TIME: Final = 10
TRANSITION_OP_SPACE_SIZE: Final = 50
MAX_FINDSELF_TIME: Final = 180
MIN_OP_SPACE_SIZE: Final = 10
MAX_REFRESH_TIME: Final = 10
MAX_RESPONSE_PERIOD: Final = 15
BUCKET_SIZE: Final = 10
#: Messages per one-second iteration (BitDHT's rate in its normal mode is of this order).
MSGS_PER_ITERATION: Final = 10
#: Potential peers kept waiting for a ping (bounded like BitDHT's multiplier of 5).
MAX_POTENTIAL: Final = 5 * MSGS_PER_ITERATION
VERSION: Final = b"BD02RS51"


class Mode(enum.Enum):
    STARTUP = "startup"
    FINDSELF = "findself"
    REFRESH = "refresh"
    ACTIVE = "active"


@dataclasses.dataclass(frozen=True)
class BecameActive:
    """The node left FINDSELF for REFRESH: it starts its friend lookups."""

    at: float
    space_size: int


@dataclasses.dataclass(frozen=True)
class FriendLookupSucceeded:
    """A message from the friend's exact id arrived while its lookup ran."""

    target: bytes
    addr: tuple[str, int]
    at: float


@dataclasses.dataclass
class _Entry:
    addr: tuple[str, int]
    flags: int
    found: float
    last_send: float = 0.0


def version_flags(version: bytes | None) -> int:
    flags = 0
    if version is not None and version[:2] == VERSION[:2]:
        flags |= DHT_ENGINE
    if version is not None and len(version) >= 6 and version[4:6] == VERSION[4:6]:
        flags |= DHT_APPL
    return flags


class BitDhtRulesNode:
    """One BitDHT-rules node at ``own_id``; ``friends`` are the DHT ids it looks up once
    active; ``bootstrap`` the addresses it starts from (pinged at start and after a FAIL)."""

    def __init__(self, own_id: bytes, bootstrap: list[tuple[str, int]],
                 friends: list[bytes], *, now: float, seed: int = 0) -> None:
        self.own_id = own_id
        self.bootstrap = list(bootstrap)
        self.friends = list(friends)
        self.rng = random.Random(seed)
        self.space: dict[bytes, _Entry] = {}
        self.potential: collections.deque[tuple[str, int]] = collections.deque()
        self.mode = Mode.STARTUP
        self.mode_ts = now
        self.failures = 0
        self.found: dict[bytes, tuple[str, int]] = {}
        self._lookups: dict[bytes, set[bytes]] = {}  # target -> ids already asked
        self._tid = 0
        self._out: list[Any] = []
        self._next = now
        self._start(now)

    # --- the core contract -------------------------------------------------------------------

    def next_deadline(self) -> float:
        return self._next

    def drain(self, now: float) -> list[Any]:
        out, self._out = self._out, []
        return out

    def handle_timer(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + 1.0
        self._iteration(now)

    def datagram_received(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        try:
            msg = krpc.decode(data)
        except krpc.KRPCDecodeError:
            return
        if isinstance(msg, Ping):
            self._add_peer(msg.sender_id, addr, RECV_PING | version_flags(msg.version), now)
            self._send(Response(msg.transaction_id, self.own_id, version=VERSION), addr)
        elif isinstance(msg, FindNode):
            self._add_peer(msg.sender_id, addr, 0, now)
            self._send(Response(msg.transaction_id, self.own_id,
                                nodes=self._closest(msg.target, 8), version=VERSION), addr)
        elif isinstance(msg, Response):
            if msg.token is not None:
                return  # get_peers answers play no part in becoming active
            if msg.nodes is not None:
                for node in msg.nodes:
                    if (node.node_id not in self.space and node.node_id != self.own_id
                            and self._worthy(node.node_id)
                            and len(self.potential) < MAX_POTENTIAL):
                        self.potential.append((node.host, node.port))
                self._add_peer(msg.sender_id, addr, RECV_NODES, now)
            else:
                self._add_peer(msg.sender_id, addr, RECV_PONG | version_flags(msg.version),
                               now)

    # --- rules ---------------------------------------------------------------------------------

    def _start(self, now: float) -> None:
        self.space.clear()
        self.potential.clear()
        self._lookups.clear()
        self.mode = Mode.STARTUP
        self.mode_ts = now
        self.potential.extend(self.bootstrap)

    def _bucket(self, node_id: bytes) -> int:
        return (id_to_int(node_id) ^ id_to_int(self.own_id)).bit_length()

    def _add_peer(self, node_id: bytes, addr: tuple[str, int], flags: int, now: float) -> None:
        if node_id == self.own_id:
            return
        for target in self._lookups:
            if node_id == target and target not in self.found:
                self.found[target] = addr
                self._out.append(FriendLookupSucceeded(target, addr, now))
        entry = self.space.get(node_id)
        if entry is not None:
            entry.flags |= flags
            entry.addr = addr
            return
        bucket = self._bucket(node_id)
        if sum(1 for i in self.space if self._bucket(i) == bucket) >= BUCKET_SIZE:
            return
        self.space[node_id] = _Entry(addr, flags, now)

    def _worthy(self, node_id: bytes) -> bool:
        """``bdQuery::worthyPotentialPeer``: a running lookup has fewer than 10 peers, or
        ``node_id`` is nearer its target than the 10th."""
        for target in self._lookups:
            t = id_to_int(target)
            nearer = sum(1 for i in self.space if id_to_int(i) ^ t < id_to_int(node_id) ^ t)
            if nearer < BUCKET_SIZE:
                return True
        return False

    def _closest(self, target: bytes, count: int) -> tuple[NodeInfo, ...]:
        ranked = sorted(self.space.items(),
                        key=lambda kv: id_to_int(kv[0]) ^ id_to_int(target))[:count]
        return tuple(NodeInfo(i, e.addr[0], e.addr[1]) for i, e in ranked)

    def _iteration(self, now: float) -> None:
        age = now - self.mode_ts
        size = len(self.space)
        if self.mode is Mode.STARTUP and age > MAX_STARTUP_TIME:
            self.mode, self.mode_ts = Mode.FINDSELF, now
            self._lookups[self.own_id] = set()
        elif self.mode is Mode.FINDSELF:
            if size > TRANSITION_OP_SPACE_SIZE or (age > MAX_FINDSELF_TIME
                                                   and size >= MIN_OP_SPACE_SIZE):
                self.mode, self.mode_ts = Mode.REFRESH, now
            elif age > MAX_FINDSELF_TIME:
                self.failures += 1
                self._start(now)
                return
        elif self.mode is Mode.ACTIVE and age >= MAX_REFRESH_TIME:
            self.mode, self.mode_ts = Mode.REFRESH, now
        if self.mode is Mode.REFRESH:
            if size < MIN_OP_SPACE_SIZE:
                self.failures += 1
                self._start(now)
                return
            if not any(t in self._lookups for t in self.friends):
                self._out.append(BecameActive(now, size))
            for target in self.friends:
                self._lookups.setdefault(target, set())
            self.mode, self.mode_ts = Mode.ACTIVE, now
        sent = 0
        while self.potential and sent < MSGS_PER_ITERATION:
            self._ping(self.potential.popleft())
            sent += 1
        for target, asked in self._lookups.items():
            for node in self._closest(target, BUCKET_SIZE):
                if node.node_id not in asked and sent < MSGS_PER_ITERATION:
                    asked.add(node.node_id)
                    sent_target = (self._mid_id(target, node.node_id)
                                   if target == self.own_id else target)
                    self._send(FindNode(self._new_tid(), self.own_id, sent_target),
                               (node.host, node.port))
                    sent += 1
                    break
        for node_id, entry in list(self.space.items()):
            if entry.flags & RECV_PONG:
                continue
            if now - entry.found > MAX_RESPONSE_PERIOD:
                del self.space[node_id]
            elif entry.last_send == 0.0:
                entry.last_send = now
                self._ping(entry.addr)

    def _mid_id(self, target: bytes, other: bytes) -> bytes:
        """BitDHT's disguise for the lookup of its own id: the target's bytes up to the first
        one that differs from ``other``'s, random after it."""
        keep = next((i for i in range(len(target)) if target[i] != other[i]), len(target) - 1)
        return target[:keep + 1] + self.rng.randbytes(len(target) - keep - 1)

    def _ping(self, addr: tuple[str, int]) -> None:
        self._send(Ping(self._new_tid(), self.own_id, version=VERSION), addr)

    def _new_tid(self) -> bytes:
        self._tid = (self._tid + 1) & 0xFF
        return b"%02x" % self._tid

    def _send(self, msg: Any, addr: tuple[str, int]) -> None:
        self._out.append(Datagram(krpc.encode(msg), addr))
