# -*- test-case-name: tests.test_chat_nodes -*-
"""Chat between two real nodes on 127.0.0.1: a flood's messages/s and latencies, and the
latency of single messages on a quiet link.

Run ``python3 -m tools.bench.chat`` (``--messages`` sets the flood size, default 100000).
Both nodes run in this process on one epoll reactor, over real TLS and TCP, with their real
sqlite stores (every message is written to the history on both sides).  The sender pushes
batches of ``--batch`` messages per reactor turn through `ChatService.send_private`, so when
its link queue is full the rest waits in its (persistent) queue: the flood measures the whole
path, back-pressure included.

Printed: flood messages/s (first send to last arrival), p50/p99/max latency of flood messages
(send call to the receiver's ``message_received`` event), then p50/p99 of ``--pings`` single
messages each sent after the previous one arrived, and the process's resident memory before
and after the flood.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.epollreactor import EPollReactor

__all__ = ["main", "run"]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def run(reactor: Any, workdir: Path, messages: int, batch: int,
              pings: int) -> dict[str, float]:
    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from pqi.items.ids import SERVICE_CHAT
    from services.chat.service import MessageReceived
    from services.node.node import FRIENDS_FILE, Node

    nodes = []
    for name in ("alice", "bob"):
        account = Account.create(workdir / name, name, f"{name}-loc", "bench-password",
                                 bits=2048)
        friends = FriendList(workdir / name / FRIENDS_FILE, now=reactor.seconds)
        nodes.append(Node(reactor, account, friends, port=0, owns_friends=True))
    a, b = nodes
    for node in nodes:
        await node.startService()
    a.add_friend(b.account.certificate_text(local_addr=b.listening))
    b.add_friend(a.account.certificate_text(local_addr=a.listening))
    for _ in range(1500):
        if SERVICE_CHAT in a.control.enabled(b.ssl_id) and \
                SERVICE_CHAT in b.control.enabled(a.ssl_id):
            break
        await task.deferLater(reactor, 0.02, lambda: None)
    else:
        raise RuntimeError("the nodes did not connect")

    sent_at: list[float] = []
    latencies: list[float] = []
    arrived = {"n": 0, "last": 0.0}

    def on_message(event: Any) -> None:
        now = time.perf_counter()
        index = int(event.message.body.split(" ", 2)[1])
        latencies.append(now - sent_at[index])
        arrived["n"] += 1
        arrived["last"] = now

    b.subscribe(MessageReceived, on_message)
    rss_before = _rss()
    done: defer.Deferred[None] = defer.Deferred()

    def burst() -> None:
        for _ in range(min(batch, messages - len(sent_at))):
            sent_at.append(time.perf_counter())
            a.chat.send_private(b.ssl_id, f"flood {len(sent_at) - 1} the quick brown fox")
        if len(sent_at) >= messages:
            loop.stop()

    loop = task.LoopingCall(burst)
    loop.clock = reactor
    started = time.perf_counter()
    loop.start(0.0)

    def check() -> None:
        if arrived["n"] >= messages and not done.called:
            done.callback(None)
    watcher = task.LoopingCall(check)
    watcher.clock = reactor
    watcher.start(0.05)
    await done
    watcher.stop()
    flood_seconds = arrived["last"] - started
    rss_after = _rss()
    flood = latencies[:]

    single: list[float] = []
    for _ in range(pings):
        latencies.clear()
        sent_at.clear()
        got = b.next_event(MessageReceived)
        sent_at.append(time.perf_counter())
        a.chat.send_private(b.ssl_id, "ping 0 quiet")
        await got
        single.append(latencies[0])
    for node in nodes:
        await node.stopService()
    return {
        "messages": messages, "seconds": flood_seconds, "rate": messages / flood_seconds,
        "flood_p50": _pct(flood, 0.5), "flood_p99": _pct(flood, 0.99), "flood_max": max(flood),
        "p50": _pct(single, 0.5), "p99": _pct(single, 0.99),
        "rss_before": rss_before, "rss_after": rss_after,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--pings", type=int, default=500)
    args = ap.parse_args(argv)
    reactor = EPollReactor()
    result: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="rsproto-bench-chat-") as tmp:
        def start() -> None:
            d = defer.ensureDeferred(run(reactor, Path(tmp), args.messages, args.batch,
                                         args.pings))
            d.addBoth(result.append)
            d.addBoth(lambda _: reactor.stop())
        reactor.callWhenRunning(start)
        reactor.run(installSignalHandlers=False)
    (r,) = result
    if not isinstance(r, dict):
        r.raiseException()
    print(f"flood: {r['messages']} private messages in {r['seconds']:.2f} s = "
          f"{r['rate']:.0f} messages/s")
    print(f"flood latency (send call -> receiver event): p50 {r['flood_p50'] * 1000:.1f} ms, "
          f"p99 {r['flood_p99'] * 1000:.1f} ms, max {r['flood_max'] * 1000:.1f} ms")
    print(f"single messages on a quiet link ({args.pings}): p50 {r['p50'] * 1000:.2f} ms, "
          f"p99 {r['p99'] * 1000:.2f} ms")
    print(f"resident memory: {r['rss_before'] / 2**20:.1f} MiB before the flood, "
          f"{r['rss_after'] / 2**20:.1f} MiB after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
