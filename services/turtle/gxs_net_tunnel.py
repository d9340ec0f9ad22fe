# -*- test-case-name: tests.test_gxs_net_tunnel -*-
"""Distant GXS sync and group search over turtle: RetroShare's ``RsGxsNetTunnelService``.

A group that no friend shares can still be found and synced.  Searching sends a turtle
generic search (service `SERVICE_GXS_DISTANT`) whose payload is a substring item; a node
that holds matching groups answers with their summaries.  Following a group digs tunnels for
H(group id), the SHA-1 of its id, which only holders of the group can answer; through each
tunnel both ends first send their *GXS virtual peer id* for the group, SHA-1(group id |
random bias) cut to 16 bytes (constant across restarts and tunnels, so the sync core keeps
its per-peer times), then NXS items.  To the GXS service of the group that id is just
another friend (``peer_connected``, ``receive``; sends come back through `send`).

Everything inside a tunnel is encrypted with the turtle tunnel cipher (`crypto`) under
SHA-256(group id | turtle virtual peer id), so relays see neither the group nor the data.
A virtual peer only carries items of the group's service, and the sync core only offers it
that one group (`group_of`).

Bounds: `MAX_GROUPS` groups handled, `MAX_VIRTUAL_PEERS` virtual peers (and
`MAX_PEERS_PER_GROUP` per group), `MAX_SEARCHES` searches kept with `MAX_RESULTS` hits each.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from zope.interface import implementer

from pqi.interfaces import DisconnectReason, PeerIdentity
from pqi.items.gxs_net_tunnel import (
    GxsGroupSummary,
    GxsNetTunnelKeepAliveItem,
    GxsNetTunnelSearchGroupSummaryItem,
    GxsNetTunnelSearchSubstringItem,
    GxsNetTunnelVirtualPeerItem,
)
from pqi.items.ids import SERVICE_GXS_DISTANT
from pqi.items.turtle import TurtleDirection, TurtleGenericDataItem
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, PgpId, Sha1Hash, SslId
from pqi.wire.item import decode, encode

from . import crypto
from .interfaces import ITurtleClientService

__all__ = [
    "GxsNetTunnels", "GxsSearch", "IDistantGroups", "group_hash", "own_virtual_peer",
    "tunnel_key", "MAX_GROUPS", "MAX_VIRTUAL_PEERS", "MAX_PEERS_PER_GROUP", "MAX_SEARCHES",
    "MAX_RESULTS", "MAX_HITS_GROUP_SEARCH", "KEEP_ALIVE_PERIOD", "DISTANT_PEER_NAME",
]

#: Groups we dig tunnels for or answer tunnels of (the router monitors at most 1024 hashes).
MAX_GROUPS: Final = 512
#: GXS virtual peers at once, and per group.
MAX_VIRTUAL_PEERS: Final = 256
MAX_PEERS_PER_GROUP: Final = 8
#: Group searches kept (the oldest is forgotten) and hits kept per search.
MAX_SEARCHES: Final = 32
MAX_RESULTS: Final = 100
#: Hits one node returns for a substring search
#: (``RS_GXS_NET_TUNNEL_MAX_ALLOWED_HITS_GROUP_SEARCH``).
MAX_HITS_GROUP_SEARCH: Final = 100
#: Seconds between keep-alives on the tunnels this end keeps (RetroShare's 20 s).
KEEP_ALIVE_PERIOD: Final = 20.0
#: The location name a distant peer shows in the GXS services.
DISTANT_PEER_NAME: Final = "distant"


def group_hash(grp_id: GxsId) -> Sha1Hash:
    """The hash tunnels for a group are dug for: SHA-1 of the group id."""
    return Sha1Hash(hashlib.sha1(bytes(grp_id)).digest())


def own_virtual_peer(grp_id: GxsId, bias: bytes) -> SslId:
    """Our GXS virtual peer id for a group: SHA-1(group id | bias), first 16 bytes."""
    return SslId(hashlib.sha1(bytes(grp_id) + bias).digest()[:16])


def tunnel_key(grp_id: GxsId, turtle_peer: SslId) -> bytes:
    """The tunnel cipher key of one tunnel: SHA-256(group id | turtle virtual peer id)."""
    return hashlib.sha256(bytes(grp_id) + bytes(turtle_peer)).digest()


class IDistantGroups(Protocol):
    """What a GXS service offers to the tunnels: its friends' side (``peer_connected``,
    ``peer_disconnected``, ``receive``), its groups, and the hits of its searches."""

    service_id: int

    def peer_connected(self, peer: PeerIdentity) -> None: ...

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None: ...

    def receive(self, peer: PeerIdentity, item: object) -> None: ...

    def served_groups(self) -> Iterable[GxsId]: ...

    def search_groups(self, text: str, limit: int) -> list[GxsGroupSummary]: ...


@dataclasses.dataclass
class _Group:
    service: int
    active: bool
    turtle_peers: set[SslId] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class _VirtualPeer:
    grp_id: GxsId
    service: int
    key: bytes
    turtle_peer: SslId


@dataclasses.dataclass
class GxsSearch:
    """One group search: its service, text and the groups found (by id, first hit kept)."""

    service: int
    text: str
    results: dict[GxsId, GxsGroupSummary] = dataclasses.field(default_factory=dict)
    answers: int = 0


@implementer(ITurtleClientService)
class GxsNetTunnels:
    """The GXS client of the turtle router (see the module docstring).

    ``send_tunnel_item(turtle_peer, item)`` hands a turtle item to the router for that
    tunnel; ``monitor(hash, on)`` starts or stops digging tunnels for a hash;
    ``generic_search(data)`` starts a turtle generic search of this service and returns its
    request id; ``bias``: 20 random bytes kept across restarts.
    """

    service_id = SERVICE_GXS_DISTANT

    def __init__(self, send_tunnel_item: Callable[[SslId, Any], bool],
                 monitor: Callable[[Sha1Hash, bool], object],
                 generic_search: Callable[[bytes], int], bias: bytes) -> None:
        if len(bias) != 20:
            raise ValueError("the bias is 20 bytes")
        self._send_tunnel_item = send_tunnel_item
        self._monitor = monitor
        self._generic_search = generic_search
        self.bias = bias
        self.services: dict[int, IDistantGroups] = {}
        self.groups: dict[GxsId, _Group] = {}
        self.hashes: dict[Sha1Hash, GxsId] = {}
        #: Turtle virtual peer -> the GXS virtual peer the other end announced.
        self.turtle_to_gxs: dict[SslId, SslId] = {}
        self.virtual_peers: dict[SslId, _VirtualPeer] = {}
        self.searches: collections.OrderedDict[int, GxsSearch] = collections.OrderedDict()
        #: Items refused, by reason.
        self.refused: collections.Counter[str] = collections.Counter()

    # --- the GXS side ----------------------------------------------------------------------

    def register(self, service: IDistantGroups) -> None:
        """Let ``service``'s groups be searched, served and followed through tunnels."""
        self.services[service.service_id] = service

    def follow(self, service: int, grp_id: GxsId) -> Sha1Hash:
        """Dig tunnels to the holders of ``grp_id`` (``requestDistantPeers``); returns the hash
        dug for.  Raises `OverflowError` beyond `MAX_GROUPS`, `KeyError` for a service that
        is not registered."""
        if service not in self.services:
            raise KeyError(f"service 0x{service:04x} is not registered")
        h = self._handle(service, grp_id, active=True)
        self._monitor(h, True)
        return h

    def unfollow(self, grp_id: GxsId) -> None:
        """Stop digging for ``grp_id`` (``releaseDistantPeers``); tunnels others dug to us
        still serve it while we hold it."""
        group = self.groups.get(grp_id)
        if group is not None and group.active:
            group.active = False
            self._monitor(group_hash(grp_id), False)

    def is_distant(self, peer: SslId) -> bool:
        """Whether ``peer`` is a GXS virtual peer (not a friend)."""
        return peer in self.virtual_peers

    def group_of(self, peer: SslId) -> GxsId | None:
        """The one group a GXS virtual peer syncs (None for friends)."""
        vp = self.virtual_peers.get(peer)
        return None if vp is None else vp.grp_id

    def send(self, peer: SslId, item: Any) -> bool:
        """Send a GXS item to a virtual peer, encrypted in its tunnel."""
        vp = self.virtual_peers.get(peer)
        if vp is None or getattr(item, "SERVICE", None) != vp.service:
            return False
        return self._send_inner(vp.turtle_peer, vp.key, item)

    def keep_alive(self) -> int:
        """Send a keep-alive through the tunnels this end keeps up (RetroShare: where our
        own virtual peer id is the lower); returns how many were sent."""
        sent = 0
        for gxs_peer, vp in list(self.virtual_peers.items()):
            if own_virtual_peer(vp.grp_id, self.bias) < gxs_peer:
                sent += self._send_inner(vp.turtle_peer, vp.key, GxsNetTunnelKeepAliveItem())
        return sent

    # --- searches --------------------------------------------------------------------------

    def search(self, service: int, text: str) -> int:
        """Search the network for groups of ``service`` whose name holds ``text``; hits
        collect in ``searches[request_id]``."""
        data = encode(GxsNetTunnelSearchSubstringItem(service=service, substring=text))
        request_id = self._generic_search(data)
        while len(self.searches) >= MAX_SEARCHES:
            self.searches.popitem(last=False)
        self.searches[request_id] = GxsSearch(service, text)
        return request_id

    # --- ITurtleClientService --------------------------------------------------------------

    def handle_tunnel_request(self, file_hash: Sha1Hash, peer_id: SslId) -> bool:
        if file_hash in self.hashes:
            return True
        for service in self.services.values():
            for grp_id in service.served_groups():
                if group_hash(grp_id) == file_hash:
                    try:
                        self._handle(service.service_id, grp_id, active=False)
                    except OverflowError:
                        return False
                    return True
        return False

    def receive_search_request(self, data: bytes, max_hits: int) -> bytes | None:
        try:
            item = decode(data)
        except DecodeError:
            self.refused["malformed search"] += 1
            return None
        if not isinstance(item, GxsNetTunnelSearchSubstringItem):
            return None  # group-data and service searches are not answered here
        service = self.services.get(item.service)
        if service is None or not item.substring.strip():
            return None
        hits = service.search_groups(item.substring, min(max_hits or MAX_HITS_GROUP_SEARCH,
                                                         MAX_HITS_GROUP_SEARCH))
        if not hits:
            return None
        return encode(GxsNetTunnelSearchGroupSummaryItem(service=item.service, groups=tuple(hits)))

    def receive_search_result(self, request_id: int, data: bytes) -> None:
        search = self.searches.get(request_id)
        if search is None:
            return
        try:
            item = decode(data)
        except DecodeError:
            self.refused["malformed search result"] += 1
            return
        if not isinstance(item, GxsNetTunnelSearchGroupSummaryItem) or \
                item.service != search.service:
            self.refused["search result of another kind"] += 1
            return
        search.answers += 1
        for summary in item.groups:
            if len(search.results) >= MAX_RESULTS:
                break
            search.results.setdefault(summary.group_id, summary)

    def add_virtual_peer(self, file_hash: Sha1Hash, virtual_peer: SslId,
                         direction: TurtleDirection) -> None:
        grp_id = self.hashes.get(file_hash)
        if grp_id is None:
            return
        group = self.groups[grp_id]
        if len(group.turtle_peers) >= MAX_PEERS_PER_GROUP:
            self.refused["too many tunnels for a group"] += 1
            return
        group.turtle_peers.add(virtual_peer)
        self._send_inner(virtual_peer, tunnel_key(grp_id, virtual_peer),
                         GxsNetTunnelVirtualPeerItem(
                             virtual_peer_id=own_virtual_peer(grp_id, self.bias)))

    def remove_virtual_peer(self, file_hash: Sha1Hash, virtual_peer: SslId) -> None:
        gxs_peer = self.turtle_to_gxs.pop(virtual_peer, None)
        grp_id = self.hashes.get(file_hash)
        if grp_id is not None:
            self.groups[grp_id].turtle_peers.discard(virtual_peer)
        if gxs_peer is None:
            return
        vp = self.virtual_peers.get(gxs_peer)
        if vp is None or vp.turtle_peer != virtual_peer:
            return
        del self.virtual_peers[gxs_peer]
        service = self.services.get(vp.service)
        if service is not None:
            service.peer_disconnected(_identity(gxs_peer), DisconnectReason.CLOSED)

    def receive_turtle_data(self, item: Any, file_hash: Sha1Hash, virtual_peer: SslId,
                            direction: TurtleDirection) -> None:
        grp_id = self.hashes.get(file_hash)
        if grp_id is None:
            self.refused["no such group"] += 1
            return
        if not isinstance(item, TurtleGenericDataItem):
            self.refused["clear item in an encrypted tunnel"] += 1
            return
        key = tunnel_key(grp_id, virtual_peer)
        try:
            inner = decode(crypto.decrypt(key, item.data))
        except DecodeError:
            self.refused["undecryptable or malformed item"] += 1
            return
        if isinstance(inner, GxsNetTunnelVirtualPeerItem):
            self._announced(grp_id, virtual_peer, inner.virtual_peer_id, key)
            return
        if isinstance(inner, GxsNetTunnelKeepAliveItem):
            return
        gxs_peer = self.turtle_to_gxs.get(virtual_peer)
        vp = self.virtual_peers.get(gxs_peer) if gxs_peer is not None else None
        if vp is None or gxs_peer is None:
            self.refused["data before the virtual peer id"] += 1
            return
        if getattr(inner, "SERVICE", None) != vp.service:
            self.refused["item of another service"] += 1
            return
        service = self.services.get(vp.service)
        if service is not None:
            service.receive(_identity(gxs_peer), inner)

    # --- internals -------------------------------------------------------------------------

    def _handle(self, service: int, grp_id: GxsId, active: bool) -> Sha1Hash:
        h = group_hash(grp_id)
        group = self.groups.get(grp_id)
        if group is None:
            if len(self.groups) >= MAX_GROUPS:
                raise OverflowError(f"already {MAX_GROUPS} groups handled through tunnels")
            group = self.groups[grp_id] = _Group(service, active)
            self.hashes[h] = grp_id
        group.active = group.active or active
        return h

    def _announced(self, grp_id: GxsId, turtle_peer: SslId, gxs_peer: SslId,
                   key: bytes) -> None:
        group = self.groups[grp_id]
        if turtle_peer not in group.turtle_peers:
            self.refused["virtual peer id on an unknown tunnel"] += 1
            return
        known = self.virtual_peers.get(gxs_peer)
        if known is not None:
            if known.grp_id != grp_id:
                self.refused["virtual peer id of another group"] += 1
                return
            # a second tunnel to the same end: use the newer one (the other one dies idle)
            self.turtle_to_gxs.pop(known.turtle_peer, None)
            known.turtle_peer, known.key = turtle_peer, key
            self.turtle_to_gxs[turtle_peer] = gxs_peer
            return
        if len(self.virtual_peers) >= MAX_VIRTUAL_PEERS:
            self.refused["too many virtual peers"] += 1
            return
        self.turtle_to_gxs[turtle_peer] = gxs_peer
        self.virtual_peers[gxs_peer] = _VirtualPeer(grp_id, group.service, key, turtle_peer)
        service = self.services.get(group.service)
        if service is not None:
            service.peer_connected(_identity(gxs_peer))

    def _send_inner(self, turtle_peer: SslId, key: bytes, item: Any) -> bool:
        data = crypto.encrypt(key, encode(item))
        return bool(self._send_tunnel_item(turtle_peer, TurtleGenericDataItem(tunnel_id=0,
                                                                              data=data)))


def _identity(virtual_peer: SslId) -> PeerIdentity:
    return PeerIdentity(virtual_peer, PgpId.null(), DISTANT_PEER_NAME)
