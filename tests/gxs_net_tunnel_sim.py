"""Channel services and turtle routers of a few nodes on one `Clock` (test helper).

`PublishNet` carries the friends' NXS items; the routers' items go through a second queue,
encoded and decoded again, between the same friends.  Each node's `GxsNetTunnels` is registered
with its router and attached to its publish service, as the node does.  `run` steps the
clock, runs the routers' timers and delivers until nothing moves (bounded).
"""

from __future__ import annotations

import random
from typing import Any

from pqi.wire.fields import SslId
from pqi.wire.item import decode, encode
from services.publish.service import PublishService
from services.turtle.gxs_net_tunnel import GxsNetTunnels
from services.turtle.router import SendItem, TurtleRouter, deliver
from tests.publish_net import PublishNet, peer_identity

__all__ = ["TunnelNet"]


class TunnelNet:
    """``n`` nodes running ``cls`` and turtle; `connect` makes two of them friends."""

    def __init__(self, cls: type[PublishService], n: int) -> None:
        self.pub = PublishNet(cls, n)
        self.clock = self.pub.clock
        self.n = n
        self.queue: list[tuple[int, SslId, Any]] = []
        self.routers = [TurtleRouter(self.ssl(i), rng=random.Random(i),
                                     now=self.clock.seconds()) for i in range(n)]
        self.tunnels = [self._tunnels(i) for i in range(n)]

    @staticmethod
    def ssl(i: int) -> SslId:
        return peer_identity(i).ssl_id

    def node(self, i: int) -> PublishService:
        return self.pub.nodes[i]

    def _tunnels(self, i: int) -> GxsNetTunnels:
        router = self.routers[i]

        def send(vp: SslId, item: Any) -> bool:
            ok = router.send_data(vp, item, self.clock.seconds())
            self._pump()
            return ok

        def monitor(h: Any, on: bool) -> None:
            if on:
                router.monitor_tunnels(h, tunnels, self.clock.seconds())
            else:
                router.stop_monitoring(h, self.clock.seconds())
            self._pump()

        def search(data: bytes) -> int:
            rid = router.generic_search(tunnels, data, self.clock.seconds())
            self._pump()
            return rid

        tunnels = GxsNetTunnels(send, monitor, search, bytes([i + 1]) * 20)
        router.register_service(tunnels)
        self.pub.nodes[i].attach_tunnels(tunnels)
        return tunnels

    def connect(self, a: int, b: int) -> None:
        """Friends: NXS sync and turtle routing both ways."""
        self.pub.connect(a, b)
        now = self.clock.seconds()
        self.routers[a].peer_connected(self.ssl(b), now)
        self.routers[b].peer_connected(self.ssl(a), now)
        self._pump()

    def _pump(self) -> None:
        for i, router in enumerate(self.routers):
            for out in router.drain(self.clock.seconds()):
                if isinstance(out, SendItem):
                    self.queue.append((i, out.peer, decode(encode(out.item))))
                else:
                    deliver(out)

    def deliver(self, limit: int = 100_000) -> int:
        """Move turtle and NXS items until both queues are empty; returns how many."""
        count = 0
        while (self.queue or self.pub.queue) and count < limit:
            count += self.pub.deliver(limit - count)
            while self.queue and count < limit:
                src, dst, item = self.queue.pop(0)
                count += 1
                j = next(k for k in range(self.n) if self.ssl(k) == dst)
                self.routers[j].item_received(self.ssl(src), item, self.clock.seconds())
                self._pump()
        return count

    def run(self, seconds: float, step: float = 1.0) -> None:
        """Advance ``seconds`` in steps, running router timers and delivering each step."""
        self.deliver()
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            now = self.clock.seconds()
            for router in self.routers:
                deadline = router.next_deadline()
                if deadline is not None and deadline <= now:
                    router.handle_timer(now)
            self._pump()
            self.deliver()
