# -*- test-case-name: tests.test_dht_node -*-
"""The Kademlia routing table of BEP 5: k-buckets over the 160-bit id space.

Buckets cover contiguous id ranges; only the bucket that holds our own id splits, so the table
knows many nodes near us and a few far away.  Contacts are *good* (answered us within
`GOOD_INTERVAL`), *questionable* (silent for longer) or *bad* (failed `BAD_FAILURES` queries in a
row).  A full bucket swaps a bad contact for a newcomer at once; with questionable contacts it
asks the node core to ping the oldest one, keeping the newcomer in a small replacement cache that
refills the bucket when a contact turns bad.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from .krpc import NODE_ID_LEN, Address, NodeInfo

__all__ = [
    "K", "GOOD_INTERVAL", "BAD_FAILURES", "REPLACEMENT_CACHE_SIZE", "ID_BITS",
    "id_to_int", "distance", "Contact", "Bucket", "RoutingTable",
]

#: Bucket size (BEP 5).
K: Final = 8
#: A contact that answered within this many seconds is good (BEP 5's 15 minutes).
GOOD_INTERVAL: Final = 15 * 60.0
#: Unanswered queries in a row after which a contact is bad.
BAD_FAILURES: Final = 2
#: Newcomers remembered per full bucket.
REPLACEMENT_CACHE_SIZE: Final = 8
ID_BITS: Final = NODE_ID_LEN * 8


def id_to_int(node_id: bytes) -> int:
    return int.from_bytes(node_id, "big")


def distance(a: bytes, b: bytes) -> int:
    """Kademlia's XOR metric."""
    return id_to_int(a) ^ id_to_int(b)


@dataclass(slots=True)
class Contact:
    """What we know about one node: where it is and how it has behaved."""

    node_id: bytes
    addr: Address
    #: Last time it answered one of our queries (None: never).
    last_reply: float | None = None
    #: Last time it sent us a query.
    last_query: float | None = None
    failures: int = 0
    #: ``node_id`` as an integer, for the XOR metric.
    key: int = field(init=False)

    def __post_init__(self) -> None:
        self.key = id_to_int(self.node_id)

    def info(self) -> NodeInfo:
        return NodeInfo(self.node_id, self.addr[0], self.addr[1])

    def is_bad(self) -> bool:
        return self.failures >= BAD_FAILURES

    def is_good(self, now: float) -> bool:
        if self.is_bad() or self.last_reply is None:
            return False
        recent = max(self.last_reply, self.last_query or self.last_reply)
        return now - recent < GOOD_INTERVAL

    def last_seen(self) -> float:
        return max(self.last_reply or 0.0, self.last_query or 0.0)


@dataclass(slots=True)
class Bucket:
    """Contacts with ids in ``[lo, hi)``, least recently seen first."""

    lo: int
    hi: int
    contacts: list[Contact] = field(default_factory=list)
    replacements: deque[Contact] = field(
        default_factory=lambda: deque(maxlen=REPLACEMENT_CACHE_SIZE))
    last_changed: float = 0.0

    def covers(self, value: int) -> bool:
        return self.lo <= value < self.hi

    def find(self, node_id: bytes) -> Contact | None:
        for c in self.contacts:
            if c.node_id == node_id:
                return c
        return None


class RoutingTable:
    """k-buckets around ``own_id``; `update` decides, the caller pings what it is told to."""

    def __init__(self, own_id: bytes, k: int = K) -> None:
        if len(own_id) != NODE_ID_LEN:
            raise ValueError("node id must be 20 bytes")
        self.own_id = own_id
        self.k = k
        self._own = id_to_int(own_id)
        self.buckets: list[Bucket] = [Bucket(0, 1 << ID_BITS)]

    def __len__(self) -> int:
        return sum(len(b.contacts) for b in self.buckets)

    def __iter__(self) -> Iterator[Contact]:
        for b in self.buckets:
            yield from b.contacts

    def bucket_for(self, node_id: bytes) -> Bucket:
        value = id_to_int(node_id)
        lo, hi = 0, len(self.buckets)
        while lo < hi:  # buckets are sorted and contiguous: binary search
            mid = (lo + hi) // 2
            if self.buckets[mid].hi <= value:
                lo = mid + 1
            else:
                hi = mid
        return self.buckets[lo]

    def get(self, node_id: bytes) -> Contact | None:
        return self.bucket_for(node_id).find(node_id)

    def good_count(self, now: float) -> int:
        return sum(1 for c in self if c.is_good(now))

    def _split(self, bucket: Bucket) -> None:
        idx = self.buckets.index(bucket)
        mid = (bucket.lo + bucket.hi) // 2
        low = Bucket(bucket.lo, mid, last_changed=bucket.last_changed)
        high = Bucket(mid, bucket.hi, last_changed=bucket.last_changed)
        for c in bucket.contacts:
            (low if c.key < mid else high).contacts.append(c)
        for c in bucket.replacements:
            (low if c.key < mid else high).replacements.append(c)
        self.buckets[idx:idx + 1] = [low, high]

    def update(self, node_id: bytes, addr: Address, now: float, *, replied: bool,
               ) -> Contact | None:
        """Record that ``node_id`` at ``addr`` answered (``replied``) or queried us.

        Returns a questionable contact the caller should ping to decide whether the newcomer may
        replace it, or None.  A node that changed address keeps its old one: a reply from a new
        address claiming a known id is a cheap way to poison tables.
        """
        if node_id == self.own_id or len(node_id) != NODE_ID_LEN:
            return None
        bucket = self.bucket_for(node_id)
        known = bucket.find(node_id)
        if known is not None:
            if known.addr != addr:
                return None
            if replied:
                known.last_reply = now
                known.failures = 0
            else:
                known.last_query = now
            bucket.contacts.remove(known)
            bucket.contacts.append(known)
            bucket.last_changed = now
            return None
        if not replied:
            # Only nodes that answered us enter the table: a query proves nothing about
            # reachability and would let anyone fill our buckets with spoofed addresses.
            return None
        newcomer = Contact(node_id, addr, last_reply=now)
        while True:
            if len(bucket.contacts) < self.k:
                bucket.contacts.append(newcomer)
                bucket.last_changed = now
                return None
            for i, c in enumerate(bucket.contacts):
                if c.is_bad():
                    bucket.contacts[i:i + 1] = []
                    bucket.contacts.append(newcomer)
                    bucket.last_changed = now
                    return None
            if bucket.covers(self._own) and bucket.hi - bucket.lo > 1:
                self._split(bucket)
                bucket = self.bucket_for(node_id)
                continue
            break
        if all(r.node_id != node_id for r in bucket.replacements):
            bucket.replacements.append(newcomer)
        for c in bucket.contacts:
            if not c.is_good(now):
                return c
        return None

    def failed(self, node_id: bytes, addr: Address) -> None:
        """``node_id`` did not answer a query; a bad contact yields to a cached replacement."""
        bucket = self.bucket_for(node_id)
        c = bucket.find(node_id)
        if c is None or c.addr != addr:
            return
        c.failures += 1
        if c.is_bad() and bucket.replacements:
            bucket.contacts.remove(c)
            bucket.contacts.append(bucket.replacements.pop())

    def closest(self, target: bytes, count: int | None = None, *, good_only: bool = False,
                now: float = 0.0) -> list[Contact]:
        """The ``count`` (default k) known contacts nearest to ``target``, bad ones excluded."""
        t = id_to_int(target)
        pool = [c for c in self if not c.is_bad() and (not good_only or c.is_good(now))]
        pool.sort(key=lambda c: c.key ^ t)
        return pool[:count or self.k]

    def stale_buckets(self, now: float) -> list[Bucket]:
        """Buckets unchanged for `GOOD_INTERVAL`: BEP 5 refreshes them with a lookup."""
        return [b for b in self.buckets if now - b.last_changed >= GOOD_INTERVAL]

    def questionable(self, now: float) -> list[Contact]:
        return [c for c in self if not c.is_good(now) and not c.is_bad()]
