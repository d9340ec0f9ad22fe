# -*- test-case-name: tests.test_turtle_nodes -*-
"""The turtle service on a node: the thin Twisted skin of the `TurtleRouter` core.

Items from friends and link changes go into the core through one `CoreDriver`; the core's
outputs come back out of it: items to send (through service control, like every service),
client-service events (`deliver`), and file search hits, kept per search for the API
(`SearchHits`, bounded).  The skin also carries the file transfer side (`FileTunnels`)
and the sender the transfer service uses, which sends to virtual peers through tunnels and
to friends as before (`TunnelAwareSender`), and distant GXS sync (`GxsNetTunnels`, attached to
the channel, forum and board services as they are built), whose keep-alives it sends every
`KEEP_ALIVE_PERIOD` and whose random bias it keeps in `GXS_BIAS_FILE`.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from pqi.driver import CoreDriver
from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items import turtle as turtle_items
from pqi.items.ids import SERVICE_TURTLE
from pqi.items.turtle import TurtleFileInfo
from pqi.link.linkmgr import Path as LinkPath
from pqi.storage import atomic_write
from pqi.wire.fields import Sha1Hash, SslId
from pqi.wire.item import PQItem
from services.base import Service
from services.spec import ServiceSpec
from services.transfer.service import TRANSFER_EVENTS, TransferBadSource

from .commands import COMMANDS
from .files import FileTunnels
from .gxs_net_tunnel import KEEP_ALIVE_PERIOD, GxsNetTunnels
from .router import FileSearchResult, SendItem, TurtleLimits, TurtleRouter, deliver
from .search import anonymous_hits
from .store import ANONYMOUS_FILE, AnonymousDownloads

__all__ = ["TurtleService", "SearchHits", "TunnelAwareSender", "MAX_SEARCHES_KEPT",
           "MAX_HITS_KEPT", "SPEC", "GXS_BIAS_FILE", "load_bias"]

#: Where the 20-byte bias of our GXS virtual peer ids is kept (constant across restarts).
GXS_BIAS_FILE: Final = "gxs_net_tunnel_bias"


def load_bias(path: Path) -> bytes:
    """The bias kept at ``path``, made (random) and written atomically on first use or
    when the file is not 20 bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    if len(data) != 20:
        data = os.urandom(20)
        atomic_write(path, data)
    return data

#: Searches whose hits we keep for the API (oldest forgotten first), and hits per search.
MAX_SEARCHES_KEPT: Final = 64
MAX_HITS_KEPT: Final = 5000


@dataclasses.dataclass
class SearchHits:
    """The hits of one anonymous search so far (one entry per hash)."""

    text: str
    started: float
    hits: dict[Sha1Hash, TurtleFileInfo] = dataclasses.field(default_factory=dict)
    sightings: collections.Counter[Sha1Hash] = dataclasses.field(
        default_factory=collections.Counter)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"name": f.name, "size": f.size, "hash": f.hash.to_hex(),
                 "sources": self.sightings[h]} for h, f in self.hits.items()]


def _build(node: Any) -> TurtleService | None:
    """Turtle routing on a node (none when its ``turtle`` option is None), carrying the
    node's file transfers through tunnels: the transfer service sends through a
    `TunnelAwareSender`, a virtual peer's link room is its first hop's, and anonymous
    downloads are kept in step with the transfers."""
    limits = node.options["turtle"]
    if limits is None:
        return None
    sharing = getattr(node, "sharing", None)
    manager = node.net.manager

    def anonymous_files() -> list[tuple[Sha1Hash, str, int]]:
        if sharing is None:
            return []
        return [(f.hash, f.path, f.size) for f in sharing.index.anonymous_files()]

    def search(item: Any, peer: SslId) -> list[TurtleFileInfo]:
        return [] if sharing is None else anonymous_hits(sharing.index.anonymous_files(), item)

    def slow(ssl_id: SslId) -> bool:
        return bool(manager.is_friend(ssl_id)
                    and manager.status(ssl_id).path is LinkPath.RELAY)

    def listed_by(file_hash: Sha1Hash) -> list[SslId]:
        if sharing is None:
            return []
        return [src.ssl_id for r in sharing.search(file_hash=file_hash) for src in r.sources]

    def version() -> object:
        if sharing is None:
            return None
        return (sharing.index.scans, tuple(f.anonymous for f in sharing.shares.folders()))

    turtle = TurtleService(node.control, node.reactor, node.ssl_id, limits=limits,
                           file_search=search, slow_link=slow)
    transfers = node.transfers
    turtle.attach_files(FileTunnels(transfers, anonymous_files, turtle.send_tunnel_item,
                                    listed_by, version),
                        transfers, AnonymousDownloads(Path(node.account.base_dir) /
                                                      ANONYMOUS_FILE))
    turtle.attach_gxs(load_bias(Path(node.account.base_dir) / GXS_BIAS_FILE))
    transfers.sender = TunnelAwareSender(node.control, lambda: turtle.files)
    transfers.add_index(turtle.files)
    node.hops.append(lambda peer: turtle.next_hop(peer) if turtle.files is not None
                     and turtle.files.is_tunnel(peer) else None)
    for event in TRANSFER_EVENTS:
        if event is not TransferBadSource:
            node.subscribe(event, lambda _: turtle.sync_downloads())
    return turtle


class TurtleService(Service):
    """Turtle routing for a node (see the module docstring).

    ``slow_link(ssl_id)``: True for links requests must not be forwarded on (relayed
    links, as RetroShare's trickle/low-speed ones).
    """

    log = Logger()

    def __init__(self, sender: IItemSender, reactor: IReactorTime, own_id: SslId, *,
                 file_search: Callable[[Any, SslId], Iterable[TurtleFileInfo]] | None = None,
                 limits: TurtleLimits = TurtleLimits(),
                 slow_link: Callable[[SslId], bool] = lambda s: False,
                 rng: random.Random | None = None) -> None:
        super().__init__(sender, reactor)
        self.router = TurtleRouter(own_id, rng=rng, file_search=file_search, limits=limits,
                                   now=reactor.seconds())
        self.driver = CoreDriver(self.router, reactor, self._output)
        self._slow_link = slow_link
        self.searches: collections.OrderedDict[int, SearchHits] = collections.OrderedDict()
        self.files: FileTunnels | None = None
        self.transfers: Any = None
        self.anonymous_downloads: AnonymousDownloads | None = None
        self.gxs: GxsNetTunnels | None = None
        self._keep_alive: LoopingCall | None = None

    def attach_gxs(self, bias: bytes) -> GxsNetTunnels:
        """Carry distant GXS sync and group searches (`GxsNetTunnels`); GXS services then
        ``attach_tunnels(turtle.gxs)``."""
        gxs = GxsNetTunnels(self.send_tunnel_item, self._monitor_gxs, self._gxs_search, bias)
        self.gxs = gxs
        self.router.register_service(gxs)
        return gxs

    def _monitor_gxs(self, file_hash: Sha1Hash, on: bool) -> None:
        if on:
            self.driver.feed(self.router.monitor_tunnels, file_hash, self.gxs)
        else:
            self.driver.feed(self.router.stop_monitoring, file_hash)

    def _gxs_search(self, data: bytes) -> int:
        return int(self.driver.feed(self.router.generic_search, self.gxs, data))

    def attach_files(self, files: FileTunnels, transfers: Any = None,
                     store: AnonymousDownloads | None = None) -> None:
        """Carry file transfers through tunnels with ``files``; ``transfers`` and ``store``
        (the transfer service, the anonymous downloads kept on disk) for `download_anonymous`
        and `sync_downloads`."""
        self.files = files
        self.transfers = transfers
        self.anonymous_downloads = store
        self.router.register_service(files)

    def download_anonymous(self, file_hash: Sha1Hash, size: int, name: str) -> Any:
        """Download through tunnels (and from friends whose lists show the file): what a
        hit of an anonymous search is fetched with."""
        if self.transfers is None or self.anonymous_downloads is None:
            raise RuntimeError("no file transfer attached to the turtle service")
        self.anonymous_downloads.add(file_hash)
        self.fetch(file_hash, size)  # before any request can leave for a friend
        info = self.transfers.download(file_hash, size, name)
        self.sync_downloads()
        return info

    def sync_downloads(self) -> None:
        """Dig tunnels for the anonymous downloads still running, stop for the others."""
        if self.transfers is None or self.anonymous_downloads is None:
            return
        downloads = self.transfers.downloads
        self.anonymous_downloads.keep_only(set(downloads))
        self.sync({h: downloads[h].partial.size for h in self.anonymous_downloads.hashes
                   if not downloads[h].engine.chunks.complete})

    # --- lifecycle and peers ------------------------------------------------------------

    def start(self) -> None:
        self.driver.service()  # arms the core's first deadline
        self.sync_downloads()  # resumed anonymous downloads dig again
        if self.gxs is not None:
            self._keep_alive = LoopingCall(self.gxs.keep_alive)
            self._keep_alive.clock = self.reactor
            self._keep_alive.start(KEEP_ALIVE_PERIOD, now=False)

    def stop(self) -> None:
        if self._keep_alive is not None and self._keep_alive.running:
            self._keep_alive.stop()
        self.driver.stop()

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self.driver.feed(self.router.peer_connected, peer.ssl_id,
                         fast=not self._slow_link(peer.ssl_id))

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self.driver.feed(self.router.peer_disconnected, peer.ssl_id)

    def receive(self, peer: PeerIdentity, item: object) -> None:
        self.driver.feed(self.router.item_received, peer.ssl_id, item)

    # --- API ------------------------------------------------------------------------------

    def search(self, text: str) -> int:
        """Start an anonymous file search; its hits collect in ``searches[request_id]``."""
        request_id: int = self.driver.feed(self.router.search, text)
        while len(self.searches) >= MAX_SEARCHES_KEPT:
            self.searches.popitem(last=False)
        self.searches[request_id] = SearchHits(text, self.reactor.seconds())
        return request_id

    def fetch(self, file_hash: Sha1Hash, size: int) -> Sha1Hash:
        """Dig tunnels to ``file_hash`` (the transfer service downloads it); returns H(H)."""
        if self.files is None:
            raise RuntimeError("no file transfer attached to the turtle service")
        hh = self.files.want(file_hash, size)
        self.driver.feed(self.router.monitor_tunnels, hh, self.files)
        return hh

    def sync(self, wanted: dict[Sha1Hash, int]) -> None:
        """Dig tunnels for exactly the files of ``wanted`` (hash -> size)."""
        if self.files is None:
            return
        for file_hash, size in wanted.items():
            if self.files.want(file_hash, size) not in self.router.monitored:
                self.fetch(file_hash, size)
        for _, (file_hash, _) in list(self.files.wanted.items()):
            if file_hash not in wanted:
                self.stop_fetching(file_hash)

    def stop_fetching(self, file_hash: Sha1Hash) -> None:
        """Stop digging for ``file_hash`` (done or cancelled); its tunnels close."""
        if self.files is not None:
            self.driver.feed(self.router.stop_monitoring, self.files.unwant(file_hash))

    def send_tunnel_item(self, virtual_peer: SslId, item: Any) -> bool:
        """Send a tunnel item to the other end of ``virtual_peer``'s tunnel."""
        return bool(self.driver.feed(self.router.send_data, virtual_peer, item))

    def next_hop(self, virtual_peer: SslId) -> SslId | None:
        """The friend a tunnel's items go to first (for its link's room)."""
        tid = self.router.virtual_peers.get(virtual_peer)
        tunnel = self.router.tunnels.get(tid) if tid is not None else None
        if tunnel is None:
            return None
        own = self.router.own_id
        return tunnel.local_dst if tunnel.local_src == own else tunnel.local_src

    def status_section(self) -> dict[str, Any]:
        """Tunnel counts and the turtle traffic we relay, for ``rsnode status``."""
        r = self.router
        own = r.own_id
        stats = r.stats
        return {
            "tunnels": {
                "relayed": sum(1 for t in r.tunnels.values() if own not in
                               (t.local_src, t.local_dst)),
                "downloading": sum(1 for t in r.tunnels.values() if t.local_src == own),
                "serving": sum(1 for t in r.tunnels.values() if t.local_dst == own),
            },
            "relayed_items": stats.relayed_items, "relayed_bytes": stats.relayed_bytes,
            "tunnel_data_in": stats.data_in_bytes, "tunnel_data_out": stats.data_out_bytes,
            "search_requests_cached": len(r.search_requests),
            "tunnel_requests_cached": len(r.tunnel_requests),
            "throttled": dict(stats.throttled), "relay_rate": r.limits.relay_rate,
        }

    # --- outputs --------------------------------------------------------------------------

    def _output(self, out: Any) -> None:
        if isinstance(out, SendItem):
            self.send(out.peer, out.item)
        elif isinstance(out, FileSearchResult):
            hits = self.searches.get(out.request_id)
            if hits is None:
                return
            for f in out.results:
                if f.hash not in hits.hits and len(hits.hits) >= MAX_HITS_KEPT:
                    continue
                hits.hits.setdefault(f.hash, f)
                hits.sightings[f.hash] += 1
        else:
            deliver(out)


@implementer(IItemSender)
class TunnelAwareSender:
    """What the transfer service sends through: virtual peers go into their tunnels (via
    ``files``), everyone else to ``sender`` (service control) as before."""

    def __init__(self, sender: IItemSender, files: Callable[[], FileTunnels | None]) -> None:
        self._sender = sender
        self._files = files

    def send(self, peer: SslId, item: object) -> bool:
        files = self._files()
        if files is not None:
            if files.is_tunnel(peer):
                return files.send(peer, item)
            if not files.may_ask(peer, item):
                return False
        return bool(self._sender.send(peer, item))

    def connected_peers(self) -> list[PeerIdentity]:
        return list(self._sender.connected_peers())


#: Turtle routing on a node: the ``turtle`` option is its `TurtleLimits` (None: off).
SPEC: Final = ServiceSpec(
    SERVICE_TURTLE, "turtle", attribute="turtle",
    items=tuple(cls for cls in vars(turtle_items).values()
                if isinstance(cls, type) and issubclass(cls, PQItem) and cls is not PQItem
                and cls.SERVICE == SERVICE_TURTLE),
    commands=COMMANDS, options={"turtle": TurtleLimits()}, build=_build)
TurtleService.spec = SPEC
TurtleService.service_id = SERVICE_TURTLE
