"""Channel, forum and board services of a few nodes on one `Clock`, linked by an item queue.

Every item crosses the queue encoded and decoded again, so a service reads exactly what a
peer would; `PublishNet.run` steps the clock and delivers until nothing moves (bounded).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.internet.task import Clock

from pqi.interfaces import DisconnectReason, PeerIdentity
from pqi.items.nxs import NxsRsaKey
from pqi.wire.fields import GxsId, PgpId, SslId
from pqi.wire.item import decode, encode
from services.gxs.security import KeyPair
from services.publish.service import PublishService
from services.publish.specs import BOARDS_SPEC, CHANNELS_SPEC, FORUMS_SPEC
from tests.gxs_fixtures import key_pairs

START = 1_700_000_100
SYNC = 60.0
SPECS = {"ChannelService": CHANNELS_SPEC, "ForumService": FORUMS_SPEC,
         "BoardService": BOARDS_SPEC}


class Keys:
    """Identities known to every node: each node owns the ones in its ``own`` list."""

    def __init__(self, pairs: dict[GxsId, KeyPair], own: list[GxsId]) -> None:
        self.pairs = pairs
        self.own = own
        self.requested: list[tuple[GxsId, SslId]] = []

    def public_key(self, gxs_id: GxsId) -> NxsRsaKey | None:
        pair = self.pairs.get(gxs_id)
        return None if pair is None else pair.public

    def private_key(self, gxs_id: GxsId) -> NxsRsaKey | None:
        return self.pairs[gxs_id].private if gxs_id in self.own else None

    def own_ids(self) -> list[GxsId]:
        return list(self.own)

    def request(self, gxs_id: GxsId, peer: SslId) -> None:
        self.requested.append((gxs_id, peer))


def peer_identity(i: int) -> PeerIdentity:
    return PeerIdentity(SslId(bytes([i + 1]) * 16), PgpId(bytes([i + 1]) * 8), f"n{i}")


class _Sender:
    def __init__(self, net: PublishNet, me: int) -> None:
        self.net = net
        self.me = me

    def send(self, ssl_id: SslId, item: object) -> bool:
        self.net.queue.append((self.me, ssl_id, decode(encode(item))))  # type: ignore[arg-type]
        return True

    def connected_peers(self) -> list[PeerIdentity]:
        return []


@dataclasses.dataclass
class PublishNet:
    """``n`` nodes each running a ``cls`` service; identity i belongs to node i."""

    cls: type[PublishService]
    n: int
    base_dirs: list[Any] | None = None

    def __post_init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.queue: list[tuple[int, SslId, object]] = []
        pairs = key_pairs(max(self.n, 3))
        self.identities = [p.key_id for p in pairs[:self.n]]
        self.pairs = {p.key_id: p for p in pairs}
        self.events: list[list[object]] = [[] for _ in range(self.n)]
        self.nodes: list[PublishService] = [self.make(i) for i in range(self.n)]
        self.links: set[tuple[int, int]] = set()

    def make(self, i: int) -> PublishService:
        return self.cls(_Sender(self, i), self.clock,
                        None if self.base_dirs is None else self.base_dirs[i],
                        Keys(self.pairs, [self.identities[i]]), SPECS[self.cls.__name__],
                        on_event=self.events[i].append, sync_period=SYNC)

    def restart(self, i: int) -> PublishService:
        """Stop node ``i``, drop its links and build it again from its files."""
        for a, b in list(self.links):
            if i in (a, b):
                self.disconnect(a, b)
        self.nodes[i].stop()
        self.nodes[i].close()
        self.nodes[i] = self.make(i)
        return self.nodes[i]

    def connect(self, a: int, b: int) -> None:
        self.links.add((a, b))
        self.nodes[a].peer_connected(peer_identity(b))
        self.nodes[b].peer_connected(peer_identity(a))

    def disconnect(self, a: int, b: int) -> None:
        self.links.discard((a, b))
        self.links.discard((b, a))
        self.nodes[a].peer_disconnected(peer_identity(b), DisconnectReason.CLOSED)
        self.nodes[b].peer_disconnected(peer_identity(a), DisconnectReason.CLOSED)

    def line(self) -> None:
        for i in range(self.n - 1):
            self.connect(i, i + 1)

    def deliver(self, limit: int = 200_000) -> int:
        count = 0
        while self.queue and count < limit:
            src, dst, item = self.queue.pop(0)
            count += 1
            target = next((j for j in range(self.n) if peer_identity(j).ssl_id == dst), None)
            if target is None or not self._linked(src, target):
                continue
            self.nodes[target].receive(peer_identity(src), item)
        return count

    def _linked(self, a: int, b: int) -> bool:
        return (a, b) in self.links or (b, a) in self.links

    def run(self, rounds: int = 3) -> None:
        """``rounds`` sync periods, delivering everything after each step."""
        self.deliver()
        for _ in range(rounds):
            for _ in range(4):
                self.clock.advance(SYNC / 4)
                self.deliver()
