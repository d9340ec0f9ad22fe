# -*- test-case-name: tests.test_nxs_core -*-
"""GXS sync cost: one group of ``--messages`` signed messages crossing a line of friends.

Run ``python3 -m tools.bench.gxs`` (``--messages`` default 1000, ``--hops`` default 5).
Node 0 publishes a forum-like group and its messages (each signed by an author identity,
as forums are); nodes 1..hops, each the friend of the one before, sync it with our NXS core on
the simulated network (`tools.simnet`, 20 ms per link, no loss), every item encoded, decoded
and checked (signatures, ids) on every hop, stores in memory.

Printed: simulated seconds until the last node holds every message (NXS syncs on a 60 s
period, so this counts sync rounds, not link speed), wall-clock seconds of the run (the CPU
cost: signature checks, codecs, sqlite), bytes sent in all and per message per hop, and the
ratio of bytes sent to the message payload carried (data + metadata binaries, once per hop).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pqi.items.gxs import KEY_DISTRIB_ADMIN, GrpMeta, MsgMeta, encode_msg_meta
from pqi.wire.fields import GxsId, SslId
from services.gxs.nxs_core import NxsCore
from services.gxs.policy import policy_for
from services.gxs.security import generate_key_pair, new_group, sign_message
from services.gxs.store import GxsStore
from tools.simnet import LinkModel, SimNet
from tools.simnet_items import ItemNode

__all__ = ["main", "run"]

SERVICE = 0x0215
T0 = 1_800_000_000


def run(messages: int, hops: int) -> dict[str, Any]:
    admin = generate_key_pair(T0, KEY_DISTRIB_ADMIN)
    author = generate_key_pair(T0, KEY_DISTRIB_ADMIN)
    lookup = {author.key_id: author.public}.get
    grp = b"bench-group"
    meta = new_group(grp, GrpMeta(GxsId.null(), name="bench", publish_ts=T0, group_flags=0x4,
                                  author_id=author.key_id), admin, author_key=author.private)
    posts = []
    for i in range(messages):
        body = f"message {i}: ".encode() + bytes(200)
        posts.append((body, sign_message(body, MsgMeta(meta.group_id, author_id=author.key_id,
                                                       name=f"m{i}", publish_ts=T0),
                                         meta, policy_for(SERVICE), author_key=author.private)))
    payload = sum(len(b) + len(encode_msg_meta(m)) for b, m in posts)

    net = SimNet(1, default=LinkModel(delay=0.02))
    net.clock.advance(T0)
    nodes = []
    for i in range(hops + 1):
        friends = {SslId(bytes([j + 1]) * 16): (f"10.0.0.{j + 1}", 7000)
                   for j in (i - 1, i + 1) if 0 <= j <= hops}
        core = NxsCore(SERVICE, GxsStore(None, SERVICE), author_lookup=lookup,
                       auto_subscribe=True)
        node = ItemNode(core, friends)
        net.add((f"10.0.0.{i + 1}", 7000), node)  # type: ignore[arg-type]
        nodes.append(node)
    first = nodes[0].core
    first.publish_group(grp, meta, T0)
    for body, m in posts:
        first.store.put_message(body, encode_msg_meta(m), T0)
    first.drain(T0)
    start_wall = time.perf_counter()
    for i, node in enumerate(nodes):
        for peer in node.addr_of:
            net.feed((f"10.0.0.{i + 1}", 7000), node.core.peer_connected, peer)
    last = nodes[-1].core.store
    spent = net.run(3600 * 6, until=lambda: last.has_group(meta.group_id) and
                    last.message_count(meta.group_id) == messages)
    wall = time.perf_counter() - start_wall
    done = last.has_group(meta.group_id) and last.message_count(meta.group_id) == messages
    return {"messages": messages, "hops": hops, "converged": done, "sim_seconds": spent,
            "wall_seconds": wall, "bytes": net.bytes_sent, "datagrams": net.sent,
            "payload_per_hop": payload}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--hops", type=int, default=5)
    args = p.parse_args(argv)
    r = run(args.messages, args.hops)
    per = r["bytes"] / (r["messages"] * r["hops"])
    print(f"{r['messages']} messages over {r['hops']} hops: converged={r['converged']}")
    print(f"  simulated time to converge : {r['sim_seconds']:.1f} s "
          f"({r['sim_seconds'] / 60:.1f} sync periods)")
    print(f"  wall-clock (CPU) time      : {r['wall_seconds']:.2f} s "
          f"({r['wall_seconds'] / (r['messages'] * r['hops']) * 1000:.2f} ms per message-hop)")
    print(f"  bytes sent                 : {r['bytes']} in {r['datagrams']} items "
          f"({per:.0f} bytes per message per hop)")
    print(f"  overhead ratio             : {r['bytes'] / (r['payload_per_hop'] * r['hops']):.3f}"
          " (bytes sent / message data+metadata carried)")
    return 0 if r["converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
