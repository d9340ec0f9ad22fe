"""A simulated friend-to-friend network of turtle routers on `tools.simnet` (test helper).

Each node is a `TurtleRouter` at a documentation address; a `SendItem` output travels as a
SimNet datagram whose payload is the item object itself, so tests see every hop.  Client
service events are delivered to the services like the node's skin does.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from zope.interface import implementer

from pqi.core import Address
from pqi.items.turtle import TurtleFileInfo
from pqi.wire.fields import Sha1Hash, SslId
from services.turtle.interfaces import ITurtleClientService
from services.turtle.router import SendItem, TurtleLimits, TurtleRouter, deliver
from tools.simnet import LinkModel, SimNet, SimNode


def ssl(i: int) -> SslId:
    """Node i's SSL id."""
    return SslId(bytes([i + 1]) * 16)


def addr(i: int) -> Address:
    """Node i's address on the simulated network (RFC 5737 documentation range)."""
    return (f"192.0.2.{i + 1}", 7000)


@implementer(ITurtleClientService)
class FakeFiles:
    """A client service that serves some hashes and records what reaches it."""

    service_id = 0x0017

    def __init__(self, served: set[Sha1Hash] | None = None) -> None:
        self.served = served or set()
        self.added: list[tuple[Sha1Hash, SslId, int]] = []
        self.removed: list[tuple[Sha1Hash, SslId]] = []
        self.data: list[tuple[Any, Sha1Hash, SslId, int]] = []

    def handle_tunnel_request(self, file_hash: Sha1Hash, peer_id: SslId) -> bool:
        return file_hash in self.served

    def receive_search_request(self, data: bytes, max_hits: int) -> bytes | None:
        return None

    def receive_search_result(self, request_id: int, data: bytes) -> None:
        pass

    def receive_turtle_data(self, item: Any, file_hash: Sha1Hash, virtual_peer: SslId,
                            direction: int) -> None:
        self.data.append((item, file_hash, virtual_peer, direction))

    def add_virtual_peer(self, file_hash: Sha1Hash, virtual_peer: SslId, direction: int) -> None:
        self.added.append((file_hash, virtual_peer, direction))

    def remove_virtual_peer(self, file_hash: Sha1Hash, virtual_peer: SslId) -> None:
        self.removed.append((file_hash, virtual_peer))


@dataclasses.dataclass
class TurtleSim:
    """The network, its routers and services, and every item sent (src, dst, item)."""

    net: SimNet
    routers: list[TurtleRouter]
    files: list[FakeFiles]
    nodes: list[SimNode]
    sent: list[tuple[int, int, Any]]
    events: list[list[Any]]

    def index(self, address: Address) -> int:
        return int(address[0].rsplit(".", 1)[1]) - 1

    def index_of(self, peer: SslId) -> int:
        return peer[0] - 1

    def feed(self, i: int, method_name: str, *args: Any, **kwargs: Any) -> Any:
        return self.net.feed(addr(i), getattr(self.routers[i], method_name), *args, **kwargs)


def build(n: int, edges: list[tuple[int, int]], *, seed: int = 0,
          shares: dict[int, list[TurtleFileInfo]] | None = None,
          served: dict[int, set[Sha1Hash]] | None = None,
          limits: TurtleLimits = TurtleLimits(),
          slow: set[tuple[int, int]] = frozenset()) -> TurtleSim:  # type: ignore[assignment]
    """``n`` routers, friends along ``edges``; node i answers searches from ``shares[i]``
    (substring match on names) and serves tunnels for ``served[i]``."""
    net = SimNet(seed, default=LinkModel(delay=0.01))
    rng = random.Random(seed)
    shares = shares or {}
    served = served or {}
    sent: list[tuple[int, int, Any]] = []
    routers: list[TurtleRouter] = []
    files: list[FakeFiles] = []
    nodes: list[SimNode] = []
    events: list[list[Any]] = [[] for _ in range(n)]
    sim = TurtleSim(net, routers, files, nodes, sent, events)

    def searcher(i: int):
        def search(item: Any, peer: SslId) -> list[TurtleFileInfo]:
            text = getattr(item, "match_string", "")
            return [f for f in shares.get(i, []) if text and text in f.name]
        return search

    by_ssl = {ssl(i): i for i in range(n)}
    for i in range(n):
        router = TurtleRouter(ssl(i), rng=random.Random(rng.getrandbits(64)),
                              file_search=searcher(i), limits=limits)
        service = FakeFiles(served.get(i))
        router.register_service(service)
        routers.append(router)
        files.append(service)

        def on_output(node: SimNode, out: Any, i: int = i) -> None:
            if isinstance(out, SendItem):
                j = by_ssl[out.peer]
                sent.append((i, j, out.item))
                net.send(addr(i), addr(j), out.item)
            elif not deliver(out):
                events[i].append(out)

        def receive(item: Any, src: Address, now: float, i: int = i) -> None:
            routers[i].item_received(ssl(sim.index(src)), item, now)

        nodes.append(net.add(addr(i), router, receive=receive, on_output=on_output))
    for a, b in edges:
        net.feed(addr(a), routers[a].peer_connected, ssl(b), fast=(a, b) not in slow)
        net.feed(addr(b), routers[b].peer_connected, ssl(a), fast=(b, a) not in slow)
    return sim


def ring_with_chords(n: int, seed: int) -> list[tuple[int, int]]:
    """A ring of ``n`` nodes plus ``n // 3`` random chords (cycles everywhere)."""
    rng = random.Random(seed)
    edges = {(i, (i + 1) % n) for i in range(n)}
    while len(edges) < n + n // 3:
        a, b = rng.sample(range(n), 2)
        if (a, b) not in edges and (b, a) not in edges:
            edges.add((a, b))
    return sorted(edges)
