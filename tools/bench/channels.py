# -*- test-case-name: tests.test_bench_channels -*-
"""Channel sync cost: a ``--posts`` channel converging over a line of ``--hops`` friends.

Run ``python3 -m tools.bench.channels`` (``--posts`` default 1000, ``--hops`` default 5).
Node 0 makes a channel (`services.publish.making`: admin and publish keys, signed by its
author identity) and its posts (each a RetroShare channel post item with a body of about 200
bytes and one attached file reference, signed by the channel's publish key); nodes
1..hops, each the friend of the one before and each following the channel, sync it with the
NXS core on the simulated network (`tools.simnet`, 20 ms per link, no loss), every item
encoded, decoded and checked (publish signature, id) on every hop, stores in memory.  The
last node then reads the channel as a user would (every post decoded, newest versions).

Printed, no thresholds: simulated seconds until the last node holds every post (NXS syncs
every 60 s, so this counts sync rounds), wall-clock seconds (CPU: signature checks, codecs,
sqlite) per post per hop, bytes sent per post per hop and the ratio of bytes sent to the post
data carried, and the time the last node takes to read the channel.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from typing import Any

from pqi.items.gxs import encode_msg_meta
from pqi.items.gxs_content import ChannelGroup, ChannelPost, decode_content
from pqi.items.ids import SERVICE_CHANNELS
from pqi.wire.fields import Sha1Hash, SslId
from pqi.wire.tlvvalues import FileItem, FileSet
from services.gxs.nxs_core import NxsCore
from services.gxs.security import generate_key_pair
from services.gxs.store import GxsStore
from services.publish.making import make_group, make_message
from tools.simnet import LinkModel, SimNet
from tools.simnet_items import ItemNode

__all__ = ["main", "run"]

T0 = 1_800_000_000


def run(posts: int, hops: int) -> dict[str, Any]:
    author = generate_key_pair(T0, 0x40)
    channel = make_group(SERVICE_CHANNELS, "bench-channel", ChannelGroup("a bench"), T0,
                         author.private)
    made = []
    for i in range(posts):
        f = FileItem(1 << 20, Sha1Hash(hashlib.sha1(b"%d" % i).digest()), f"file-{i}.bin")
        content = ChannelPost(f"<p>post {i}</p>" + "x" * 190, FileSet((f,)))
        made.append(make_message(SERVICE_CHANNELS, channel.meta, content, T0,
                                 title=f"post {i}", publish=channel.publish.private))
    payload = sum(len(b) + len(encode_msg_meta(m)) for b, m in made)
    lookup = {author.key_id: author.public}.get

    net = SimNet(1, default=LinkModel(delay=0.02))
    net.clock.advance(T0)
    nodes = []
    for i in range(hops + 1):
        friends = {SslId(bytes([j + 1]) * 16): (f"10.0.0.{j + 1}", 7000)
                   for j in (i - 1, i + 1) if 0 <= j <= hops}
        core = NxsCore(SERVICE_CHANNELS, GxsStore(None, SERVICE_CHANNELS),
                       author_lookup=lookup, auto_subscribe=True)
        node = ItemNode(core, friends)
        net.add((f"10.0.0.{i + 1}", 7000), node)  # type: ignore[arg-type]
        nodes.append(node)
    first = nodes[0].core
    first.publish_group(channel.grp, channel.meta, T0)
    for body, m in made:
        first.store.put_message(body, encode_msg_meta(m), T0)
    first.drain(T0)
    start = time.perf_counter()
    for i, node in enumerate(nodes):
        for peer in node.addr_of:
            net.feed((f"10.0.0.{i + 1}", 7000), node.core.peer_connected, peer)
    last = nodes[-1].core.store
    gid = channel.grp_id
    spent = net.run(3600 * 6, until=lambda: last.has_group(gid) and
                    last.message_count(gid) == posts)
    wall = time.perf_counter() - start
    done = last.has_group(gid) and last.message_count(gid) == posts
    start = time.perf_counter()
    read = sum(isinstance(decode_content(SERVICE_CHANNELS, m.msg), ChannelPost)
               for m in last.messages(gid))
    read_wall = time.perf_counter() - start
    return {"posts": posts, "hops": hops, "converged": done, "sim_seconds": spent,
            "wall_seconds": wall, "bytes": net.bytes_sent, "items": net.sent,
            "payload_per_hop": payload, "read": read, "read_seconds": read_wall,
            "rejected": sum(n.core.rejected for n in nodes)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--posts", type=int, default=1000)
    p.add_argument("--hops", type=int, default=5)
    args = p.parse_args(argv)
    r = run(args.posts, args.hops)
    per = r["bytes"] / (r["posts"] * r["hops"])
    print(f"{r['posts']} channel posts over {r['hops']} hops: converged={r['converged']}, "
          f"refused={r['rejected']}")
    print(f"  simulated time to converge : {r['sim_seconds']:.1f} s "
          f"({r['sim_seconds'] / 60:.1f} sync periods)")
    print(f"  wall-clock (CPU) time      : {r['wall_seconds']:.2f} s "
          f"({r['wall_seconds'] / (r['posts'] * r['hops']) * 1000:.2f} ms per post-hop)")
    print(f"  bytes sent                 : {r['bytes']} in {r['items']} items "
          f"({per:.0f} bytes per post per hop)")
    print(f"  overhead ratio             : {r['bytes'] / (r['payload_per_hop'] * r['hops']):.3f}"
          " (bytes sent / post data+metadata carried)")
    print(f"  reading the channel        : {r['read']} posts in {r['read_seconds']:.3f} s")
    return 0 if r["converged"] else 1


if __name__ == "__main__":
    sys.exit(main())
