"""GXS tunnel cores over a simulated turtle network (test helper).

Node i runs a `TurtleRouter` (from `tests.turtle_sim`) and a `GxsTunnelCore` at its own
simulated address; the core's turtle actions are fed to the router and the router's tunnel
events to the core, as the node's skin does.  Node i owns the identity made of key pair i of
`tests.gxs_fixtures.key_pairs`; ``known`` says which identities' keys each node has.  With
``chats``, each node also runs a `DistantChat` on its core, fed the core's events as the
node's skin does; its events join the node's event list.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pqi.core import Address
from pqi.items.nxs import NxsRsaKey
from pqi.wire.fields import GxsId
from services.gxs.security import KeyPair
from services.gxstunnel.core import GxsTunnelCore, MonitorTunnels, StopMonitoring, TurtleSend
from services.gxstunnel.distant_chat import DistantChat
from services.gxstunnel.endpoint import TurtleEndpoint
from tests.gxs_fixtures import key_pairs
from tests.turtle_sim import TurtleSim, addr, build
from tools.simnet import SimNode


def tunnel_addr(i: int) -> Address:
    """Where node i's tunnel core sits on the simulated network."""
    return (addr(i)[0], 7100)


@dataclasses.dataclass
class TunnelSim:
    """The turtle network plus one tunnel core per node and what each core emitted."""

    turtle: TurtleSim
    cores: list[GxsTunnelCore]
    keys: list[KeyPair]
    events: list[list[Any]]
    nodes: list[SimNode]
    chats: list[DistantChat]

    def ident(self, i: int) -> GxsId:
        return self.keys[i].key_id

    def feed(self, i: int, method: str, *args: Any) -> Any:
        return self.turtle.net.feed(tunnel_addr(i), getattr(self.cores[i], method), *args)

    def of(self, i: int, kind: type) -> list[Any]:
        return [e for e in self.events[i] if isinstance(e, kind)]


def build_tunnels(n: int, edges: list[tuple[int, int]], *, seed: int = 0,
                  known: dict[int, set[int]] | None = None, chats: bool = False) -> TunnelSim:
    """``n`` nodes friends along ``edges``; node i knows the public keys of ``known[i]``
    (default: everyone's)."""
    turtle = build(n, edges, seed=seed)
    net = turtle.net
    keys = list(key_pairs()[:n])
    cores: list[GxsTunnelCore] = []
    events: list[list[Any]] = [[] for _ in range(n)]
    nodes: list[SimNode] = []
    distant: list[DistantChat] = []
    for i in range(n):
        mine = keys[i]
        allowed = {keys[j].key_id: keys[j].public for j in
                   (known[i] if known is not None else range(n))}

        def own_key(gid: GxsId, mine: KeyPair = mine) -> NxsRsaKey | None:
            return mine.private if gid == mine.key_id else None

        core = GxsTunnelCore(own_key, allowed.get, own_ids=lambda mine=mine: (mine.key_id,))
        cores.append(core)
        if chats:
            distant.append(DistantChat(core))
        endpoint = TurtleEndpoint(core, lambda m, *a, i=i: net.feed(tunnel_addr(i), m, *a))
        turtle.routers[i].register_service(endpoint)

        def on_output(node: SimNode, out: Any, i: int = i,
                      endpoint: TurtleEndpoint = endpoint) -> None:
            router = turtle.routers[i]
            if isinstance(out, TurtleSend):
                net.feed(addr(i), router.send_data, out.virtual_peer, out.item)
            elif isinstance(out, MonitorTunnels):
                net.feed(addr(i), router.monitor_tunnels, out.file_hash, endpoint)
            elif isinstance(out, StopMonitoring):
                net.feed(addr(i), router.stop_monitoring, out.file_hash)
            elif chats:
                net.feed(tunnel_addr(i), distant[i].handle, out)
                events[i].append(out)
                events[i].extend(distant[i].drain())
            else:
                events[i].append(out)

        nodes.append(net.add(tunnel_addr(i), core, receive=lambda *a: None,
                             on_output=on_output))
    return TunnelSim(turtle, cores, keys, events, nodes, distant)
