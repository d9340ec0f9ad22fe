"""NXS cores on the simulated network (`tools.simnet_items.ItemNode` on `tools.simnet`)."""

from __future__ import annotations

import random
from typing import Any

from pqi.core import Address
from pqi.items.gxs import KEY_DISTRIB_ADMIN, GrpMeta, MsgMeta
from pqi.wire.fields import GxsId, SslId
from services.gxs.nxs_core import NxsCore
from services.gxs.security import KeyPair, generate_key_pair, new_group, sign_message
from services.gxs.store import GxsStore
from tools.simnet import SimNet
from tools.simnet_items import ItemNode

SERVICE = 0x0215  # forums: authors sign every message


#: The simnet adapter (kept under its first name for these tests).
NxsNode = ItemNode


def ssl(i: int) -> SslId:
    return SslId(bytes([i + 1]) * 16)


def addr(i: int) -> Address:
    return (f"10.0.0.{i + 1}", 7000)


def random_graph(n: int, rng: random.Random, extra: int) -> set[tuple[int, int]]:
    """A connected random friend graph: a random spanning tree plus ``extra`` random edges."""
    order = list(range(n))
    rng.shuffle(order)
    edges = {tuple(sorted((order[i], rng.choice(order[:i])))) for i in range(1, n)}
    while len(edges) < n - 1 + extra:
        a, b = rng.sample(range(n), 2)
        edges.add(tuple(sorted((a, b))))
    return edges  # type: ignore[return-value]


def build(n: int, edges: set[tuple[int, int]], authors: dict[GxsId, KeyPair],
          seed: int = 1, **core_args: Any) -> tuple[SimNet, list[NxsNode]]:
    """``n`` nodes, friends along ``edges``, each with an in-memory store."""
    net = SimNet(seed)
    friends: dict[int, dict[SslId, Address]] = {i: {} for i in range(n)}
    for a, b in edges:
        friends[a][ssl(b)] = addr(b)
        friends[b][ssl(a)] = addr(a)
    lookup = {k: v.public for k, v in authors.items()}.get
    nodes = []
    for i in range(n):
        core = NxsCore(SERVICE, GxsStore(None, SERVICE), author_lookup=lookup,
                       auto_subscribe=True, **core_args)
        node = NxsNode(core, friends[i])
        net.add(addr(i), node)  # type: ignore[arg-type]
        nodes.append(node)
    return net, nodes


def connect_all(net: SimNet, nodes: list[NxsNode]) -> None:
    for i, node in enumerate(nodes):
        for peer in node.addr_of:
            net.feed(addr(i), node.core.peer_connected, peer)


def make_group(admin: KeyPair, author: KeyPair, name: str, now: int) -> tuple[bytes, GrpMeta]:
    grp = b"forum:" + name.encode("utf-8", "surrogateescape")
    meta = new_group(grp, GrpMeta(GxsId.null(), name=name, publish_ts=now, group_flags=0x4,
                                  author_id=author.key_id), admin, author_key=author.private)
    return grp, meta


def make_message(group: GrpMeta, author: KeyPair, text: str, now: int) -> tuple[bytes, MsgMeta]:
    msg = text.encode("utf-8", "surrogateescape")
    from services.gxs.policy import policy_for
    meta = sign_message(msg, MsgMeta(group.group_id, author_id=author.key_id, name=text[:20],
                                     publish_ts=now), group, policy_for(SERVICE),
                        author_key=author.private)
    return msg, meta


def content(node: NxsNode) -> tuple[frozenset[GxsId], frozenset[bytes]]:
    store = node.core.store
    groups = frozenset(g for g, _, _ in store.groups())
    msgs = frozenset(bytes(m) for g in groups for m, _ in store.message_ids(g))
    return groups, msgs


def fresh_admins(count: int, now: int) -> list[KeyPair]:
    return [generate_key_pair(now, KEY_DISTRIB_ADMIN) for _ in range(count)]
