# -*- test-case-name: tests.test_turtle_router -*-
"""The turtle router, sans IO: RetroShare's ``p3turtle`` rules on decoded items.

Inputs (all take ``now``): friends coming and going (`peer_connected`, `peer_disconnected`),
turtle items from a friend (`item_received`), and the local API (`search`,
`monitor_tunnels`, `stop_monitoring`, `send_data`).  Outputs, through `drain` only:
`SendItem` (an item for a friend), and the events for client services (`VirtualPeerAdded`,
`VirtualPeerRemoved`, `TunnelData`, `FileSearchResult`, `GenericSearchResult`); `deliver`
hands those to the registered `ITurtleClientService` providers.

The rules are RetroShare's (``p3turtle.cc``): search and tunnel requests are handled once
per request id and forwarded to every other friend on a fast link while their depth is
below `MAX_DEPTH` (6), with the 1-in-8 bypass at the limit and the 1-in-8 "do not
increment" at depth 1, both keyed by a per-session random bias so that depth tells little
about who asked; results and ``TUNNEL_OK`` go back hop by hop by request id; tunnel
requests are forwarded with a probability that falls with depth as tunnel-request traffic
nears its limit; tunnel ids come from per-hop prints (`fileprint`); data is routed by tunnel
id and a tunnel idle for `TUNNEL_IDLE_TIME` dies.

Added to RetroShare's rules, so that one friend cannot make us flood the others: total
token buckets for search and tunnel requests with fair per-friend shares under pressure,
a cap on relayed tunnels per friend, an
optional share of bandwidth for relayed data (held back in a bounded queue per friend, the
bytes in flight, and released at the share's rate), and a bound on every table with the
eviction it documents.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from collections.abc import Callable, Iterable
from typing import Any, Final

from pqi.items.turtle import (
    TurtleChunkCrcItem,
    TurtleDirection,
    TurtleFileDataItem,
    TurtleFileInfo,
    TurtleFtSearchResultItem,
    TurtleGenericDataItem,
    TurtleGenericFastDataItem,
    TurtleGenericSearchRequestItem,
    TurtleGenericSearchResultItem,
    TurtleOpenTunnelItem,
    TurtleRegexpSearchRequestItem,
    TurtleStringSearchRequestItem,
    TurtleTunnelOkItem,
)
from pqi.wire.fields import Sha1Hash, SslId
from pqi.wire.item import encode

from . import fileprint
from .interfaces import ITurtleClientService

__all__ = [
    "TurtleRouter", "TurtleLimits", "TurtleStats", "SendItem", "VirtualPeerAdded",
    "VirtualPeerRemoved", "TunnelData", "FileSearchResult", "GenericSearchResult", "deliver",
    "MAX_DEPTH", "SEARCH_REQUEST_LIFE", "SEARCH_RESULT_TIME", "TUNNEL_REQUEST_LIFE",
    "TUNNEL_RESULT_TIME", "TUNNEL_IDLE_TIME", "EMPTY_TUNNEL_DIGGING", "REGULAR_TUNNEL_DIGGING",
    "MAX_SEARCH_REQUESTS", "MAX_TUNNEL_REQUESTS", "MAX_TUNNELS", "MAX_MONITORED_HASHES",
    "MAX_SEARCH_RESPONSE_SIZE", "MAX_HITS_FILES", "MAX_HITS_DEFAULT",
    "MAX_SEARCH_REQUEST_SIZE", "TUNNEL_TYPES", "is_stamping", "item_size",
    "MAX_RELAY_QUEUE_BYTES",
]

#: Requests deeper than this are not forwarded (``TURTLE_MAX_SEARCH_DEPTH``).
MAX_DEPTH: Final = 6
#: Seconds a search / tunnel request id stays known, to drop copies (RetroShare's 600 s).
SEARCH_REQUEST_LIFE: Final = 600.0
TUNNEL_REQUEST_LIFE: Final = 600.0
#: Seconds after a request during which its results / TUNNEL_OK are still routed (20 s).
SEARCH_RESULT_TIME: Final = 20.0
TUNNEL_RESULT_TIME: Final = 20.0
#: A tunnel no data went through for this long is closed (``MAXIMUM_TUNNEL_IDLE_TIME``).
TUNNEL_IDLE_TIME: Final = 60.0
#: Re-dig a monitored hash with no tunnel every 50 s, any monitored hash every 300 s.
EMPTY_TUNNEL_DIGGING: Final = 50.0
REGULAR_TUNNEL_DIGGING: Final = 300.0
#: Housekeeping periods: traffic statistics and digging every 2 s, cleaning every 10 s.
MANAGEMENT_PERIOD: Final = 2.0
CLEANING_PERIOD: Final = 10.0
#: New tunnel digs per management call (``MAX_TUNNEL_REQS_PER_SECOND``).
MAX_DIGS_PER_CALL: Final = 1
#: File hits sent back for one request at most, and the size at which a result item is cut.
MAX_HITS_FILES: Final = 5000
MAX_HITS_DEFAULT: Final = 100
MAX_SEARCH_RESPONSE_SIZE: Final = 10000
#: Search requests larger than this (serialised) are dropped (RetroShare's 200 bytes).
MAX_SEARCH_REQUEST_SIZE: Final = 200
#: Tunnel request forwarding (``p3turtle``): packet size estimate, forward rate and squeeze.
TUNNEL_REQUEST_PACKET_SIZE: Final = 50
DEFAULT_MAX_TR_FORWARD_RATE: Final = 20
MIN_TR_FORWARD_RATE: Final = 10
MAX_TR_FORWARD_RATE: Final = 100
DISTANCE_SQUEEZING_POWER: Final = 8
DEPTH_PEER_PROBABILITY: Final = (1.0, 0.99, 0.9, 0.7, 0.6, 0.5, 0.4)

#: Table bounds.  Full request caches evict their oldest entry (a copy of an evicted request
#: arriving later is handled again, and still dies at `MAX_DEPTH`); a full tunnel table
#: refuses new relayed tunnels (existing routes are worth more than new ones); monitored
#: hashes are the local user's and refuse beyond the bound.
MAX_SEARCH_REQUESTS: Final = 4096
MAX_TUNNEL_REQUESTS: Final = 8192
MAX_TUNNELS: Final = 4096
MAX_MONITORED_HASHES: Final = 1024
MAX_TUNNELS_PER_HASH: Final = 64
MAX_RESPONSES_PER_REQUEST: Final = 64
#: Relayed bytes held back per onward friend when a relay share is set; beyond, dropped.
MAX_RELAY_QUEUE_BYTES: Final = 4 << 20

#: Tunnel item classes (routed by tunnel id).
TUNNEL_TYPES: Final = (TurtleGenericDataItem, TurtleGenericFastDataItem, TurtleFileDataItem,
                       TurtleChunkCrcItem)


def is_stamping(item: object) -> bool:
    """Whether an item keeps its tunnel alive (``shouldStampTunnel``): data does, requests
    and maps do not, so that a tunnel nobody fetches through dies."""
    return isinstance(item, TUNNEL_TYPES)


@dataclasses.dataclass(frozen=True)
class TurtleLimits:
    """Request limits (rates per second, bursts in requests), the relay share and how often
    a wanted file with no tunnel is dug again.

    RetroShare has only global limits (``max_tr_forward_rate``), which one flooding friend
    can use up for everyone.  Here search and tunnel requests each have a total bucket; while
    it is more than half full every request passes, and below half each friend only gets
    its fair share (the total's rate and burst divided by the friends online), so a friend
    that floods is cut to its share while the others, honest relays included, still pass.
    ``relay_rate`` is the bandwidth share for tunnels we relay for others (bytes/s, 0:
    unlimited as in RetroShare).  A rate of 0 turns a limit off.  ``empty_tunnel_digging``:
    seconds before a monitored hash with no tunnel is dug again (RetroShare's 50 s; a friend
    coming online digs at once anyway); a test or a small private network may shorten it.
    """

    search_rate: float = 20.0
    search_burst: float = 100.0
    tunnel_request_rate: float = 50.0
    tunnel_request_burst: float = 200.0
    tunnels_per_peer: int = 512
    relay_rate: float = 0.0
    relay_burst: float = 256 << 10
    max_tr_forward_rate: int = DEFAULT_MAX_TR_FORWARD_RATE
    empty_tunnel_digging: float = EMPTY_TUNNEL_DIGGING


class _Bucket:
    """A token bucket: ``rate`` per second up to ``burst``."""

    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, now

    def level(self, now: float) -> float:
        """Tokens available now."""
        if self.rate > 0:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens

    def take(self, amount: float, now: float) -> bool:
        if self.rate <= 0:
            return True
        if self.level(now) < amount:
            return False
        self.tokens -= amount
        return True


# --- outputs ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SendItem:
    """Send ``item`` to the friend ``peer``."""

    peer: SslId
    item: Any


@dataclasses.dataclass(frozen=True)
class VirtualPeerAdded:
    """A tunnel for ``file_hash`` opened: ``service`` may talk to ``virtual_peer``."""

    service: Any
    file_hash: Sha1Hash
    virtual_peer: SslId
    direction: TurtleDirection


@dataclasses.dataclass(frozen=True)
class VirtualPeerRemoved:
    """The tunnel behind ``virtual_peer`` closed."""

    service: Any
    file_hash: Sha1Hash
    virtual_peer: SslId


@dataclasses.dataclass(frozen=True)
class TunnelData:
    """A tunnel item arrived at our end of a tunnel."""

    service: Any
    file_hash: Sha1Hash
    virtual_peer: SslId
    item: Any
    direction: TurtleDirection


@dataclasses.dataclass(frozen=True)
class FileSearchResult:
    """File hits for a file search we started."""

    request_id: int
    results: tuple[TurtleFileInfo, ...]


@dataclasses.dataclass(frozen=True)
class GenericSearchResult:
    """A generic search result for ``service``'s search ``request_id``."""

    service: Any
    request_id: int
    data: bytes


def deliver(event: object) -> bool:
    """Hand a client-service event to its service; False for outputs that are not one."""
    if isinstance(event, VirtualPeerAdded):
        event.service.add_virtual_peer(event.file_hash, event.virtual_peer, event.direction)
    elif isinstance(event, VirtualPeerRemoved):
        event.service.remove_virtual_peer(event.file_hash, event.virtual_peer)
    elif isinstance(event, TunnelData):
        event.service.receive_turtle_data(event.item, event.file_hash, event.virtual_peer,
                                          event.direction)
    elif isinstance(event, GenericSearchResult):
        event.service.receive_search_result(event.request_id, event.data)
    else:
        return False
    return True


# --- tables -----------------------------------------------------------------------------


@dataclasses.dataclass
class _SearchRequest:
    origin: SslId
    stamp: float
    depth: int
    result_count: int = 0
    max_hits: int = MAX_HITS_DEFAULT
    service_id: int = 0


@dataclasses.dataclass
class _TunnelRequest:
    origin: SslId
    stamp: float
    depth: int
    responses: set[int] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class _Tunnel:
    local_src: SslId
    local_dst: SslId
    file_hash: Sha1Hash | None
    stamp: float
    vpid: SslId | None = None
    transferred: int = 0
    speed: float = 0.0


@dataclasses.dataclass
class _Monitored:
    service: Any
    aggressive: bool
    last_request: int = 0
    last_dig: float = float("-inf")
    tunnels: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TurtleStats:
    """Counters (items and bytes) the node shows in its status."""

    relayed_items: int = 0
    relayed_bytes: int = 0
    data_in_bytes: int = 0
    data_out_bytes: int = 0
    search_requests_forwarded: int = 0
    tunnel_requests_forwarded: int = 0
    throttled: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter)
    dropped: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


@dataclasses.dataclass
class _Traffic:
    tr_up: float = 0.0
    tr_dn: float = 0.0

    def mix(self, buffer: _Traffic) -> None:
        factor = 0.1 / MANAGEMENT_PERIOD
        self.tr_up = self.tr_up * 0.9 + buffer.tr_up * factor
        self.tr_dn = self.tr_dn * 0.9 + buffer.tr_dn * factor


FileSearch = Callable[[Any, SslId], Iterable[TurtleFileInfo]]


class TurtleRouter:
    """One node's turtle router (see the module docstring).

    ``file_search(request_item, peer)`` answers file search requests from our shares (the
    anonymously searchable ones; None: we answer none); ``rng`` draws request ids, the
    session bias and the forwarding dice (seed it for repeatable runs).
    """

    def __init__(self, own_id: SslId, *, rng: random.Random | None = None,
                 file_search: FileSearch | None = None, limits: TurtleLimits = TurtleLimits(),
                 now: float = 0.0) -> None:
        self.own_id = own_id
        self.rng = rng if rng is not None else random.Random()
        self.bias = self.rng.getrandbits(32)
        self.file_search = file_search
        self.limits = limits
        #: Banned files (`services.banlist.files.BannedFiles.is_banned`, asked with an H(H)
        #: or a real hash): tunnel requests for them are dropped, search hits naming them cut,
        #: as RetroShare's ``isHashBanned`` checks.  None bans nothing.
        self.hash_filter: Callable[[bytes], bool] | None = None
        self.enabled = True
        self.peers: dict[SslId, bool] = {}  # friend -> fast link
        self.services: dict[int, Any] = {}
        self.search_requests: collections.OrderedDict[int, _SearchRequest] = \
            collections.OrderedDict()
        self.tunnel_requests: collections.OrderedDict[int, _TunnelRequest] = \
            collections.OrderedDict()
        self.tunnels: dict[int, _Tunnel] = {}
        self.virtual_peers: dict[SslId, int] = {}
        self.monitored: dict[Sha1Hash, _Monitored] = {}
        self._serving: dict[int, Any] = {}  # tunnel id -> client service at the serving end
        self.stats = TurtleStats()
        self._traffic = _Traffic()
        self._traffic_buffer = _Traffic()
        self._buckets: dict[tuple[str, SslId | None], _Bucket] = {}
        self._out: list[Any] = []
        #: Relayed items waiting for the relay share, per onward friend, and their bytes.
        self._relay_queues: dict[SslId, collections.deque[tuple[Any, int]]] = {}
        self._relay_queued: collections.Counter[SslId] = collections.Counter()
        self._relay_wake: float | None = None
        self._next_management = now + MANAGEMENT_PERIOD
        self._next_cleaning = now + CLEANING_PERIOD

    # --- the core contract ----------------------------------------------------------------

    def drain(self, now: float) -> list[Any]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        due = min(self._next_management, self._next_cleaning)
        return due if self._relay_wake is None else min(due, self._relay_wake)

    def handle_timer(self, now: float) -> None:
        if self._relay_wake is not None and now >= self._relay_wake:
            self._release_relayed(now)
        if now >= self._next_management:
            self._next_management = now + MANAGEMENT_PERIOD
            self._traffic.mix(self._traffic_buffer)
            self._traffic_buffer = _Traffic()
            if self.enabled:
                self._manage_tunnels(now)
        if now >= self._next_cleaning:
            self._next_cleaning = now + CLEANING_PERIOD
            self._clean(now)

    # --- friends and services -------------------------------------------------------------

    def peer_connected(self, peer: SslId, now: float, *, fast: bool = True) -> None:
        """A friend is online; ``fast`` False for relay-only or trickle links (requests are
        not forwarded there, as in RetroShare).  Hashes with no tunnel are dug for at the next
        management call (a new friend may lead to a source; RetroShare waits up to 50 s)."""
        self.peers[peer] = fast
        self._forget_shares()
        for info in self.monitored.values():
            if not info.tunnels:
                info.last_dig = float("-inf")

    def peer_disconnected(self, peer: SslId, now: float) -> None:
        """A friend went away: the tunnels through it close."""
        self.peers.pop(peer, None)
        self._forget_shares()
        self._relay_queues.pop(peer, None)
        self._relay_queued.pop(peer, None)
        for tid in [t for t, tun in self.tunnels.items()
                    if peer in (tun.local_src, tun.local_dst)]:
            self._close_tunnel(tid)

    def register_service(self, service: Any) -> None:
        """Add a client service (`ITurtleClientService`)."""
        if not ITurtleClientService.providedBy(service):
            raise TypeError(f"{service!r} does not provide ITurtleClientService")
        self.services[service.service_id] = service

    def _forget_shares(self) -> None:
        """Fair shares depend on how many friends are online: recompute them."""
        for key in [k for k in self._buckets if k[1] is not None]:
            del self._buckets[key]

    def reset_buckets(self) -> None:
        """Forget the token buckets (after the limits changed; they refill from full)."""
        self._buckets.clear()

    def set_max_tr_forward_rate(self, rate: int) -> None:
        """Tunnel requests forwarded per second before long ones are dropped (10..100)."""
        if not MIN_TR_FORWARD_RATE <= rate <= MAX_TR_FORWARD_RATE:
            raise ValueError(f"rate must be in {MIN_TR_FORWARD_RATE}..{MAX_TR_FORWARD_RATE}")
        self.limits = dataclasses.replace(self.limits, max_tr_forward_rate=rate)

    # --- local API ------------------------------------------------------------------------

    def search(self, query: str | Any, now: float) -> int:
        """Start a file search (keywords, or a `RegexpExpression`); returns its request id."""
        request_id = self.rng.getrandbits(32)
        if isinstance(query, str):
            item: Any = TurtleStringSearchRequestItem(match_string=query,
                                                      request_id=request_id, depth=0)
        else:
            item = TurtleRegexpSearchRequestItem(request_id=request_id, depth=0,
                                                 expression=query)
        self._search_request(self.own_id, item, now)
        return request_id

    def generic_search(self, service: Any, data: bytes, now: float, request_type: int = 0) -> int:
        """Start a search of a client service (opaque ``data``); returns its request id."""
        request_id = self.rng.getrandbits(32)
        item = TurtleGenericSearchRequestItem(request_id=request_id, depth=0,
                                              service_id=service.service_id,
                                              request_type=request_type, search_data=data)
        self._search_request(self.own_id, item, now)
        return request_id

    def monitor_tunnels(self, file_hash: Sha1Hash, service: Any, now: float, *,
                        aggressive: bool = True) -> None:
        """Keep tunnels dug for ``file_hash`` (``monitorTunnels``); digging starts at the next
        management call."""
        if file_hash in self.monitored:
            return
        if len(self.monitored) >= MAX_MONITORED_HASHES:
            raise OverflowError(f"already {MAX_MONITORED_HASHES} hashes monitored")
        self.monitored[file_hash] = _Monitored(service, aggressive)

    def stop_monitoring(self, file_hash: Sha1Hash, now: float) -> None:
        """Stop digging for ``file_hash`` and close its tunnels."""
        info = self.monitored.get(file_hash)
        if info is None:
            return
        for tid in list(info.tunnels):
            self._close_tunnel(tid)
        del self.monitored[file_hash]

    def dig(self, file_hash: Sha1Hash, now: float) -> int:
        """Send a tunnel request for a monitored hash now (``diggTunnel``)."""
        info = self.monitored[file_hash]
        request_id = self.rng.getrandbits(32)
        info.last_request = request_id
        info.last_dig = now
        item = TurtleOpenTunnelItem(
            file_hash=file_hash, request_id=request_id, depth=0,
            partial_tunnel_id=fileprint.first_partial_id(file_hash, self.own_id, self.bias))
        self._tunnel_request(self.own_id, item, now)
        return request_id

    def send_data(self, virtual_peer: SslId, item: Any, now: float) -> bool:
        """Send a tunnel item (its ``tunnel_id`` is filled in) to the other end of the tunnel
        behind ``virtual_peer``; False if that tunnel is gone."""
        tid = self.virtual_peers.get(virtual_peer)
        tunnel = self.tunnels.get(tid) if tid is not None else None
        if tunnel is None or tid is None:
            return False
        item = dataclasses.replace(item, tunnel_id=tid)
        size = item_size(item)
        if is_stamping(item):
            tunnel.stamp = now
        tunnel.transferred += size
        self.stats.data_out_bytes += size
        peer = tunnel.local_dst if tunnel.local_src == self.own_id else tunnel.local_src
        self._out.append(SendItem(peer, item))
        return True

    def virtual_peers_of(self, file_hash: Sha1Hash) -> list[SslId]:
        """The virtual peers of the tunnels we dug for ``file_hash``."""
        info = self.monitored.get(file_hash)
        if info is None:
            return []
        return [vp for t in info.tunnels if (vp := self.tunnels[t].vpid) is not None]

    # --- input from friends ---------------------------------------------------------------

    def item_received(self, peer: SslId, item: Any, now: float) -> None:
        """A turtle item from the friend ``peer``."""
        if not self.enabled or peer not in self.peers:
            self.stats.dropped["not routing"] += 1
            return
        if isinstance(item, (TurtleStringSearchRequestItem, TurtleRegexpSearchRequestItem,
                             TurtleGenericSearchRequestItem)):
            if item.request_id in self.search_requests:  # copies cost no tokens
                self.stats.dropped["duplicate search request"] += 1
                return
            if not self._take("search", peer, now):
                return
            self._search_request(peer, item, now)
        elif isinstance(item, (TurtleFtSearchResultItem, TurtleGenericSearchResultItem)):
            self._search_result(peer, item, now)
        elif isinstance(item, TurtleOpenTunnelItem):
            if item.request_id in self.tunnel_requests:
                self.stats.dropped["duplicate tunnel request"] += 1
                return
            if not self._take("tunnel request", peer, now):
                return
            self._tunnel_request(peer, item, now)
        elif isinstance(item, TurtleTunnelOkItem):
            self._tunnel_ok(peer, item, now)
        elif hasattr(item, "tunnel_id"):
            self._route(peer, item, now)
        else:
            self.stats.dropped["unknown item"] += 1

    # --- rate limits ----------------------------------------------------------------------

    def _bucket(self, kind: str, peer: SslId | None, now: float) -> _Bucket:
        """The total bucket of ``kind`` (``peer`` None) or a friend's fair share of it."""
        key = (kind, peer)
        b = self._buckets.get(key)
        if b is None:
            lim = self.limits
            rate, burst = {
                "search": (lim.search_rate, lim.search_burst),
                "tunnel request": (lim.tunnel_request_rate, lim.tunnel_request_burst),
                "relay": (lim.relay_rate, lim.relay_burst),
            }[kind]
            if peer is not None:
                share = max(1, len(self.peers))
                rate, burst = rate / share, max(1.0, burst / share)
            b = self._buckets[key] = _Bucket(rate, burst, now)
        return b

    def _take(self, kind: str, peer: SslId, now: float) -> bool:
        """One request of ``kind`` from ``peer``: within the total, and within the friend's
        fair share whenever the total is below half (see `TurtleLimits`)."""
        total = self._bucket(kind, None, now)
        share = self._bucket(kind, peer, now)
        if total.rate <= 0:
            return True
        within_share = share.take(1, now)
        pressed = total.level(now) < total.burst / 2
        if (pressed and not within_share) or not total.take(1, now):
            self.stats.throttled[kind] += 1
            return False
        return True

    # --- searches -------------------------------------------------------------------------

    def _search_request(self, peer: SslId, item: Any, now: float) -> None:
        if peer != self.own_id and item_size(item) > MAX_SEARCH_REQUEST_SIZE:
            self.stats.dropped["search request too large"] += 1
            return
        if item.request_id in self.search_requests:
            self.stats.dropped["duplicate search request"] += 1
            return
        count, max_hits = 0, MAX_HITS_DEFAULT
        if peer != self.own_id:
            results: list[Any]
            results, count, max_hits = self._local_search(peer, item)
            for res in results:
                self._out.append(SendItem(peer, res))
        while len(self.search_requests) >= MAX_SEARCH_REQUESTS:
            self.search_requests.popitem(last=False)
        self.search_requests[item.request_id] = _SearchRequest(
            origin=peer, stamp=now, depth=item.depth, result_count=count, max_hits=max_hits,
            service_id=getattr(item, "service_id", 0))
        if count >= max_hits:
            return
        low = (self.bias ^ item.request_id) & 0x7
        bypass = item.depth >= MAX_DEPTH and low == 2
        dshift = item.depth == 1 and low == 6
        if item.depth >= MAX_DEPTH and not bypass:
            self.stats.dropped["search too deep"] += 1
            return
        depth = item.depth if dshift else item.depth + 1
        fwd = dataclasses.replace(item, depth=min(depth, 0xFFFF))
        for friend, fast in sorted(self.peers.items()):
            if friend != peer and fast:
                self._out.append(SendItem(friend, fwd))
                self.stats.search_requests_forwarded += 1

    def _local_search(self, peer: SslId, item: Any) -> tuple[list[Any], int, int]:
        if isinstance(item, TurtleGenericSearchRequestItem):
            service = self.services.get(item.service_id)
            if service is None:
                return [], 0, MAX_HITS_DEFAULT
            data = service.receive_search_request(item.search_data, MAX_HITS_DEFAULT)
            if data is None:
                return [], 0, MAX_HITS_DEFAULT
            return [TurtleGenericSearchResultItem(request_id=item.request_id, depth=0,
                                                  result_data=data)], 0, MAX_HITS_DEFAULT
        if self.file_search is None:
            return [], 0, MAX_HITS_FILES
        items: list[Any] = []
        current: list[TurtleFileInfo] = []
        size = count = 0
        for hit in self.file_search(item, peer):
            current.append(hit)
            count += 1
            size += 8 + 20 + len(hit.name.encode())
            if size > MAX_SEARCH_RESPONSE_SIZE:
                items.append(tuple(current))
                current, size = [], 0
            if count >= MAX_HITS_FILES:
                break
        if current:
            items.append(tuple(current))
        return ([TurtleFtSearchResultItem(request_id=item.request_id, depth=0, results=r)
                 for r in items], count, MAX_HITS_FILES)

    def _search_result(self, peer: SslId, item: Any, now: float) -> None:
        req = self.search_requests.get(item.request_id)
        if req is None:
            self.stats.dropped["result for unknown search"] += 1
            return
        if now > req.stamp + SEARCH_RESULT_TIME:
            self.stats.dropped["late search result"] += 1
            return
        if peer == req.origin:
            self.stats.dropped["result from the asker"] += 1
            return
        if isinstance(item, TurtleFtSearchResultItem) and self.hash_filter is not None:
            kept = tuple(r for r in item.results if not self.hash_filter(bytes(r.hash)))
            if len(kept) < len(item.results):
                self.stats.dropped["banned file in search result"] += len(item.results) - len(kept)
                if not kept:
                    return
                item = dataclasses.replace(item, results=kept)
        n = len(item.results) if isinstance(item, TurtleFtSearchResultItem) else 1
        if req.origin == self.own_id:
            req.result_count += n
            if isinstance(item, TurtleFtSearchResultItem):
                self._out.append(FileSearchResult(item.request_id, item.results))
            else:
                service = self.services.get(req.service_id)
                if service is not None:
                    self._out.append(GenericSearchResult(service, item.request_id,
                                                         item.result_data))
            return
        if req.result_count >= req.max_hits:
            self.stats.dropped["search hits over the cap"] += 1
            return
        if req.result_count + n > req.max_hits and isinstance(item, TurtleFtSearchResultItem):
            keep = req.max_hits - req.result_count
            item = dataclasses.replace(item, results=item.results[:keep])
            n = keep
        req.result_count += n
        self._out.append(SendItem(req.origin, item))

    # --- tunnels --------------------------------------------------------------------------

    def _tunnel_request(self, peer: SslId, item: TurtleOpenTunnelItem, now: float) -> None:
        self._traffic_buffer.tr_dn += item_size(item)
        if self.hash_filter is not None and self.hash_filter(bytes(item.file_hash)):
            self.stats.dropped["tunnel request for a banned file"] += 1
            return
        if item.request_id in self.tunnel_requests:
            self.stats.dropped["duplicate tunnel request"] += 1
            return
        while len(self.tunnel_requests) >= MAX_TUNNEL_REQUESTS:
            self.tunnel_requests.popitem(last=False)
        self.tunnel_requests[item.request_id] = _TunnelRequest(peer, now, item.depth)
        if peer != self.own_id:
            service = self._serving_service(item.file_hash, peer)
            if service is not None:
                self._answer_tunnel(peer, item, service, now)
                return
        low = (self.bias ^ item.partial_tunnel_id) & 0x7
        bypass = item.depth >= MAX_DEPTH and low == 2
        dshift = item.depth == 1 and low == 6
        partial = fileprint.relay_partial_id(item.file_hash, self.own_id, self.bias,
                                             item.partial_tunnel_id)
        if item.depth >= MAX_DEPTH and not bypass:
            self.stats.dropped["tunnel request too deep"] += 1
            return
        probability = self._forward_probability(item.depth)
        depth = item.depth if dshift else item.depth + 1
        fwd = dataclasses.replace(item, partial_tunnel_id=partial, depth=min(depth, 0xFFFF))
        for friend, fast in sorted(self.peers.items()):
            if friend == peer or not fast:
                continue
            if self.rng.random() <= probability:
                self._traffic_buffer.tr_up += item_size(fwd)
                self._out.append(SendItem(friend, fwd))
                self.stats.tunnel_requests_forwarded += 1

    def _forward_probability(self, depth: int) -> float:
        rate = self.limits.max_tr_forward_rate
        distance = min(100.0, self._traffic.tr_up / (TUNNEL_REQUEST_PACKET_SIZE * rate))
        corrected = distance ** DISTANCE_SQUEEZING_POWER
        p: float = DEPTH_PEER_PROBABILITY[min(6, depth)] ** corrected
        n = len(self.peers)
        if n and p * n < 1.0:
            p = 1.0 / n
            if self._traffic.tr_dn / TUNNEL_REQUEST_PACKET_SIZE > rate:
                p *= rate * TUNNEL_REQUEST_PACKET_SIZE / self._traffic.tr_dn
        return p

    def _serving_service(self, file_hash: Sha1Hash, peer: SslId) -> Any:
        for service in self.services.values():
            if service.handle_tunnel_request(file_hash, peer):
                return service
        return None

    def _answer_tunnel(self, peer: SslId, item: TurtleOpenTunnelItem, service: Any,
                       now: float) -> None:
        tid = fileprint.serving_tunnel_id(item.file_hash, self.own_id, self.bias,
                                          item.partial_tunnel_id)
        if tid in self.tunnels or not self._room_for_tunnel(peer):
            self.stats.dropped["tunnel refused"] += 1
            return
        self._out.append(SendItem(peer, TurtleTunnelOkItem(tunnel_id=tid,
                                                           request_id=item.request_id)))
        vpid = fileprint.virtual_peer_id(tid)
        self.tunnels[tid] = _Tunnel(peer, self.own_id, item.file_hash, now, vpid)
        self.virtual_peers[vpid] = tid
        self._serving[tid] = service
        self._out.append(VirtualPeerAdded(service, item.file_hash, vpid,
                                          TurtleDirection.CLIENT))

    def _room_for_tunnel(self, peer: SslId) -> bool:
        if len(self.tunnels) >= MAX_TUNNELS:
            return False
        mine = sum(1 for t in self.tunnels.values() if t.local_src == peer)
        return mine < self.limits.tunnels_per_peer

    def _tunnel_ok(self, peer: SslId, item: TurtleTunnelOkItem, now: float) -> None:
        req = self.tunnel_requests.get(item.request_id)
        if req is None:
            self.stats.dropped["TUNNEL_OK for unknown request"] += 1
            return
        if item.tunnel_id in req.responses:
            self.stats.dropped["duplicate TUNNEL_OK"] += 1
            return
        if now > req.stamp + TUNNEL_RESULT_TIME:
            self.stats.dropped["late TUNNEL_OK"] += 1
            return
        if peer == req.origin or len(req.responses) >= MAX_RESPONSES_PER_REQUEST:
            self.stats.dropped["TUNNEL_OK refused"] += 1
            return
        if item.tunnel_id in self.tunnels or not self._room_for_tunnel(req.origin):
            self.stats.dropped["tunnel refused"] += 1
            return
        req.responses.add(item.tunnel_id)
        tunnel = _Tunnel(req.origin, peer, None, now)
        if req.origin != self.own_id:
            self.tunnels[item.tunnel_id] = tunnel
            self._out.append(SendItem(req.origin, item))
            return
        for file_hash, info in self.monitored.items():
            if info.last_request == item.request_id:
                if len(info.tunnels) >= MAX_TUNNELS_PER_HASH:
                    self.stats.dropped["tunnels per hash"] += 1
                    return
                tunnel.file_hash = file_hash
                tunnel.vpid = fileprint.virtual_peer_id(item.tunnel_id)
                self.tunnels[item.tunnel_id] = tunnel
                self.virtual_peers[tunnel.vpid] = item.tunnel_id
                info.tunnels.append(item.tunnel_id)
                self._out.append(VirtualPeerAdded(info.service, file_hash, tunnel.vpid,
                                                  TurtleDirection.SERVER))
                return
        self.stats.dropped["TUNNEL_OK for a hash no longer wanted"] += 1

    def _route(self, peer: SslId, item: Any, now: float) -> None:
        tunnel = self.tunnels.get(item.tunnel_id)
        if tunnel is None:
            self.stats.dropped["unknown tunnel"] += 1
            return
        size = item_size(item)
        if peer == tunnel.local_dst:
            direction, onward = TurtleDirection.CLIENT, tunnel.local_src
        elif peer == tunnel.local_src:
            direction, onward = TurtleDirection.SERVER, tunnel.local_dst
        else:
            self.stats.dropped["tunnel item from a stranger"] += 1
            return
        if onward != self.own_id:
            if is_stamping(item):
                tunnel.stamp = now
            tunnel.transferred += size
            self._relay(onward, item, size, now)
            return
        if is_stamping(item):
            tunnel.stamp = now
        tunnel.transferred += size
        self.stats.data_in_bytes += size
        service = self._service_of(item.tunnel_id, tunnel)
        if service is None or tunnel.file_hash is None or tunnel.vpid is None:
            self.stats.dropped["tunnel without a service"] += 1
            return
        self._out.append(TunnelData(service, tunnel.file_hash, tunnel.vpid, item, direction))

    def _relay(self, onward: SslId, item: Any, size: int, now: float) -> None:
        if self.limits.relay_rate > 0:
            queue = self._relay_queues.get(onward)
            if queue or not self._bucket("relay", None, now).take(size, now):
                if self._relay_queued[onward] + size > MAX_RELAY_QUEUE_BYTES:
                    self.stats.throttled["relay"] += 1
                    return
                self._relay_queues.setdefault(onward, collections.deque()).append((item, size))
                self._relay_queued[onward] += size
                self._schedule_release(now)
                return
        self.stats.relayed_items += 1
        self.stats.relayed_bytes += size
        self._out.append(SendItem(onward, item))

    def _release_relayed(self, now: float) -> None:
        """Send held-back relayed items as the share allows, friends in turn."""
        self._relay_wake = None
        bucket = self._bucket("relay", None, now)
        progress = True
        while progress and self._relay_queues:
            progress = False
            for peer in list(self._relay_queues):
                queue = self._relay_queues[peer]
                item, size = queue[0]
                if self.limits.relay_rate > 0 and not bucket.take(size, now):
                    continue
                queue.popleft()
                self._relay_queued[peer] -= size
                if not queue:
                    del self._relay_queues[peer]
                    del self._relay_queued[peer]
                self.stats.relayed_items += 1
                self.stats.relayed_bytes += size
                self._out.append(SendItem(peer, item))
                progress = True
        self._schedule_release(now)

    def _schedule_release(self, now: float) -> None:
        if not self._relay_queues:
            self._relay_wake = None
            return
        rate = self.limits.relay_rate
        need = min(q[0][1] for q in self._relay_queues.values())
        bucket = self._bucket("relay", None, now)
        wait = 0.0 if rate <= 0 else max(0.0, (need - bucket.tokens) / rate)
        self._relay_wake = now + max(wait, 0.001)

    def _service_of(self, tid: int, tunnel: _Tunnel) -> Any:
        if tunnel.local_src == self.own_id and tunnel.file_hash is not None:
            info = self.monitored.get(tunnel.file_hash)
            return info.service if info is not None else None
        return self._serving.get(tid)

    # --- housekeeping ---------------------------------------------------------------------

    def _manage_tunnels(self, now: float) -> None:
        due: list[tuple[float, Sha1Hash]] = []
        for file_hash, info in self.monitored.items():
            speed = sum(self.tunnels[t].speed for t in info.tunnels if t in self.tunnels)
            keeping = max(1.0, speed / (50 * 1024))
            if (not info.tunnels and now >= info.last_dig + self.limits.empty_tunnel_digging) or \
                    (info.aggressive and now >= info.last_dig + REGULAR_TUNNEL_DIGGING * keeping):
                due.append((info.last_dig, file_hash))
        due.sort()
        for _, file_hash in due[:MAX_DIGS_PER_CALL]:
            self.dig(file_hash, now)

    def _clean(self, now: float) -> None:
        for table, life in ((self.search_requests, SEARCH_REQUEST_LIFE),
                            (self.tunnel_requests, TUNNEL_REQUEST_LIFE)):
            while table:
                key, first = next(iter(table.items()))
                if now <= first.stamp + life:
                    break
                del table[key]
        for tid, tunnel in list(self.tunnels.items()):
            tunnel.speed = 0.75 * tunnel.speed + 0.25 * tunnel.transferred / CLEANING_PERIOD
            tunnel.transferred = 0
            if now > tunnel.stamp + TUNNEL_IDLE_TIME:
                self._close_tunnel(tid)

    def _close_tunnel(self, tid: int) -> None:
        tunnel = self.tunnels.pop(tid, None)
        if tunnel is None:
            return
        if tunnel.vpid is not None:
            self.virtual_peers.pop(tunnel.vpid, None)
        service = None
        if tunnel.local_src == self.own_id and tunnel.file_hash is not None:
            info = self.monitored.get(tunnel.file_hash)
            if info is not None:
                if tid in info.tunnels:
                    info.tunnels.remove(tid)
                service = info.service
        elif tunnel.local_dst == self.own_id:
            service = self._serving.pop(tid, None)
        if service is not None and tunnel.vpid is not None and tunnel.file_hash is not None:
            self._out.append(VirtualPeerRemoved(service, tunnel.file_hash, tunnel.vpid))


def item_size(item: Any) -> int:
    """The serialised size of a turtle item; the data items, relayed in bulk, by formula
    (header, tunnel id, offset, length prefix, bytes) rather than by encoding them."""
    if isinstance(item, (TurtleGenericDataItem, TurtleGenericFastDataItem)):
        return 8 + 4 + 4 + len(item.data)
    if isinstance(item, TurtleFileDataItem):
        return 8 + 4 + 8 + 4 + len(item.chunk_data)
    return len(encode(item))
