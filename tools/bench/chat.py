# -*- test-case-name: tests.test_bench_chat -*-
"""Chat between real nodes on 127.0.0.1: a flood's messages/s and latencies, a second friend's
messages during the flood, messages at an offered rate, and single messages on a quiet link.

Run ``python3 -m tools.bench.chat`` (``--messages`` sets the flood size, default 100000).
Three nodes over real TLS and TCP, with their real sqlite stores (every message is written to
the history on both sides): Alice floods Bob, pushing ``--batch`` messages per reactor turn
through `ChatService.send_private` (when her link queue is full the rest waits in her
persistent queue: the flood measures the whole path, back-pressure included); meanwhile Carol,
Bob's other friend, sends him a message every ``--friend-interval`` seconds (does one friend's
flood delay another friend's chat?).  Then Alice offers ``--rate`` messages/s (default 10,000)
for ``--rate-seconds``, each message sent at its due time (``i / rate`` s after the start,
checked every ``--tick``, 1 ms: ten messages a millisecond at 10,000/s; ``--tick 0.01`` gives
the earlier bench's bursts of 100 every 10 ms); then ``--pings`` single messages, 20 ms apart,
on the quiet link.

By default each node is a process of its own (`tools.bench.chat_agent`), so the figures are
the receiver's: how Bob shares his turns between his links, not Alice's sends on the same
reactor.  Latency is send call to Bob's ``message_received`` event, on the machine's monotonic
clock.  ``--profile DIR`` writes cProfiles of Alice's and Bob's processes during the flood and
the offered rate.
``--in-process`` runs the three nodes in this process on one epoll reactor instead (the
earlier bench: the second friend's figure then includes the turns Alice's sends take, and
Carol sends one message after another rather than paced).

Printed: flood messages/s (first send to last arrival), p50/p99/max latency of flood messages,
p50/p99 of the second friend's messages during the flood, p50/p99 at the offered rate (and the
rate the pacing reached), p50/p99 on the quiet link, CPU time per flood message of sender
and receiver (figures a loaded machine changes little), and the receiver's resident memory.

``--pin`` runs the sender on one half of the CPUs and the receiver and the second friend on
the other half, as if the sender were another machine: unpinned, on two cores, the sender's
flood (a core of its own) and its history writer take turns on the receiver's cores too, and
the receiver's figures then carry the sender's work.  The pinned figures are the receiver's
alone (with its own history writer and the second friend, who is light, beside it); the
printout names the CPUs each node reported.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.epollreactor import EPollReactor

__all__ = ["main", "run", "run_apart", "split_cpus", "MAX_WAIT_S", "PACING_TICK"]

#: Longest wait (seconds) for the messages of one phase to arrive, in the multi-process mode.
MAX_WAIT_S = 600.0
#: How often (seconds) the offered-rate phase sends the messages due by then.
PACING_TICK = 0.001


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def _befriend(reactor: Any, x: Any, y: Any) -> None:
    from pqi.items.ids import SERVICE_CHAT

    x.add_friend(y.account.certificate_text(local_addr=y.listening))
    y.add_friend(x.account.certificate_text(local_addr=x.listening))
    for _ in range(1500):
        if SERVICE_CHAT in x.control.enabled(y.ssl_id) and \
                SERVICE_CHAT in y.control.enabled(x.ssl_id):
            return
        await task.deferLater(reactor, 0.02, lambda: None)
    raise RuntimeError("the nodes did not connect")


async def run(reactor: Any, workdir: Path, messages: int, batch: int, pings: int,
              rate: int = 10_000, rate_seconds: float = 3.0,
              tick_seconds: float = PACING_TICK) -> dict[str, float]:
    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from services.chat.service import MessageReceived
    from services.node.node import FRIENDS_FILE, Node

    nodes = []
    for name in ("alice", "bob", "carol"):
        account = Account.create(workdir / name, name, f"{name}-loc", "bench-password",
                                 bits=2048)
        friends = FriendList(workdir / name / FRIENDS_FILE, now=reactor.seconds)
        nodes.append(Node(reactor, account, friends, port=0, owns_friends=True))
    a, b, c = nodes
    for node in nodes:
        await node.startService()
    await _befriend(reactor, a, b)
    await _befriend(reactor, c, b)

    # Each message's body is "<kind> <index> ...": its send time is sent_at[kind][index].
    sent_at: dict[str, list[float]] = {"flood": [], "offered": [], "friend": [], "ping": []}
    latencies: dict[str, list[float]] = {kind: [] for kind in sent_at}
    arrived = {"n": 0, "last": 0.0}
    waiting: dict[str, defer.Deferred[None]] = {}

    def on_message(event: Any) -> None:
        now = time.perf_counter()
        kind, index, _ = event.message.body.split(" ", 2)
        latencies[kind].append(now - sent_at[kind][int(index)])
        if kind == "flood":
            arrived["n"] += 1
            arrived["last"] = now
        d = waiting.pop(kind, None)
        if d is not None:
            d.callback(None)

    def send(node: Any, kind: str) -> None:
        index = len(sent_at[kind])
        sent_at[kind].append(time.perf_counter())
        node.chat.send_private(b.ssl_id, f"{kind} {index} the quick brown fox")

    async def one(node: Any, kind: str) -> None:
        d = waiting[kind] = defer.Deferred()
        send(node, kind)
        await d

    b.subscribe(MessageReceived, on_message)
    rss_before = _rss()

    # 1. Alice floods Bob as fast as her link takes it; Carol, a second friend of Bob's,
    #    sends him one message after another meanwhile.
    def burst() -> None:
        for _ in range(min(batch, messages - len(sent_at["flood"]))):
            send(a, "flood")
        if len(sent_at["flood"]) >= messages:
            loop.stop()

    loop = task.LoopingCall(burst)
    loop.clock = reactor
    started = time.perf_counter()
    loop.start(0.0)
    while arrived["n"] < messages:
        await one(c, "friend")
    flood_seconds = arrived["last"] - started
    rss_after = _rss()

    # 2. Alice offers ``rate`` messages per second for ``rate_seconds``, each at its due time.
    total = max(1, int(rate * rate_seconds))

    def tick() -> None:
        due = min(total, int((time.perf_counter() - offered_started) * rate) + 1)
        for _ in range(due - len(sent_at["offered"])):
            send(a, "offered")
        if len(sent_at["offered"]) >= total:
            offered.stop()

    offered = task.LoopingCall(tick)
    offered.clock = reactor
    offered_started = time.perf_counter()
    await offered.start(tick_seconds)
    offered_sent = time.perf_counter() - offered_started
    for _ in range(3000):
        if len(latencies["offered"]) >= total:
            break
        await task.deferLater(reactor, 0.01, lambda: None)

    # 3. Single messages on a quiet link.
    for _ in range(pings):
        await one(a, "ping")
    for node in nodes:
        await node.stopService()
    flood, friend = latencies["flood"], latencies["friend"]
    offered_lat, single = latencies["offered"], latencies["ping"]
    return {
        "messages": messages, "seconds": flood_seconds, "rate": messages / flood_seconds,
        "flood_p50": _pct(flood, 0.5), "flood_p99": _pct(flood, 0.99), "flood_max": max(flood),
        "friend_n": len(friend), "friend_p50": _pct(friend, 0.5),
        "friend_p99": _pct(friend, 0.99),
        "offered_rate": total / offered_sent, "tick": tick_seconds,
        "offered_n": len(offered_lat), "offered_sent": total,
        "offered_p50": _pct(offered_lat, 0.5), "offered_p99": _pct(offered_lat, 0.99),
        "p50": _pct(single, 0.5), "p99": _pct(single, 0.99),
        "rss_before": rss_before, "rss_after": rss_after,
    }



def _call(conn: Any, *command: Any) -> Any:
    conn.send(command)
    return _answer(conn)


def _answer(conn: Any) -> Any:
    result = conn.recv()
    if isinstance(result, Exception):
        raise result
    return result


def _await_arrivals(bob: Any, kind: str, count: int) -> float:
    """Poll Bob until ``count`` messages of ``kind`` arrived; returns the last arrival time."""
    deadline = time.monotonic() + MAX_WAIT_S
    while time.monotonic() < deadline:
        arrivals, last = _call(bob, "arrivals")
        if arrivals.get(kind, 0) >= count:
            return float(last)
        time.sleep(0.05)
    raise RuntimeError(f"only {arrivals.get(kind, 0)} of {count} {kind} messages arrived")


def _profile(directory: str, phase: str | None, **conns: Any) -> None:
    """Start profiling the nodes (``phase`` None), or write ``<directory>/<node>-<phase>.prof``."""
    for name, conn in conns.items():
        _call(conn, "profile", None if phase is None else
              os.path.join(directory, f"{name}-{phase}.prof"))


def split_cpus(cpus: set[int]) -> tuple[set[int], set[int]]:
    """The CPUs this process may use, in two halves: the sender's and the receiver's (with the
    second friend's).  Fewer than two CPUs cannot be split (`ValueError`)."""
    ordered = sorted(cpus)
    if len(ordered) < 2:
        raise ValueError(f"--pin needs two CPUs; this process may use {len(ordered)}")
    half = len(ordered) // 2
    return set(ordered[:half]), set(ordered[half:])


def run_apart(workdir: Path, messages: int, batch: int, pings: int, rate: int = 10_000,
              rate_seconds: float = 3.0, friend_interval: float = 0.01,
              profile: str | None = None, tick_seconds: float = PACING_TICK,
              pin: bool = False) -> dict[str, Any]:
    """The bench with each node in a forked process of its own (see the module docstring).
    With ``pin`` the sender runs on one half of the CPUs and the receiver and the second
    friend on the other (`split_cpus`), as if they were two machines."""
    from tools.bench.chat_agent import agent

    halves = split_cpus(os.sched_getaffinity(0)) if pin else None
    ctx = multiprocessing.get_context("fork")
    conns: dict[str, Any] = {}
    procs = []
    try:
        for name in ("alice", "bob", "carol"):
            mine, theirs = ctx.Pipe()
            cpus = None if halves is None else halves[0] if name == "alice" else halves[1]
            proc = ctx.Process(target=agent, args=(name, workdir, theirs, cpus), daemon=True)
            proc.start()
            conns[name] = mine
            procs.append(proc)
        a, b, c = conns["alice"], conns["bob"], conns["carol"]
        info = {name: _call(conn, "info") for name, conn in conns.items()}
        #: The CPUs each node reports it runs on, when pinned.
        pinned = (None if halves is None else
                  tuple(_call(conns[name], "affinity") for name in ("alice", "bob", "carol")))
        for x, y in (("alice", "bob"), ("carol", "bob")):
            conns[x].send(("befriend", *info[y]))
            conns[y].send(("befriend", *info[x]))
            _answer(conns[x])
            _answer(conns[y])
        bob_id = info["bob"][1]
        _call(b, "listen")
        rss_before = _call(b, "results")["rss"]
        if profile:
            _profile(profile, None, alice=a, bob=b)

        # 1. The flood, with Carol's paced messages meanwhile.
        cpu = {"a": _call(a, "cpu"), "b": _call(b, "cpu")}
        started = time.monotonic()
        a.send(("pace", bob_id, "flood", 0.0, batch, messages))
        c.send(("pace", bob_id, "friend", friend_interval, 1, None))
        last = _await_arrivals(b, "flood", messages)
        c.send(("stop_pacing",))
        _answer(c)
        _answer(a)
        cpu = {"a": _call(a, "cpu") - cpu["a"], "b": _call(b, "cpu") - cpu["b"]}
        if profile:
            _profile(profile, "flood", alice=a, bob=b)
        rss_after = _call(b, "results")["rss"]

        # 2. Alice offers ``rate`` messages per second, each at its due time.
        if profile:
            _profile(profile, None, alice=a, bob=b)
        offered_n, offered_s = _call(a, "pace", bob_id, "offered", tick_seconds, 0,
                                     max(1, int(rate * rate_seconds)), rate)
        _await_arrivals(b, "offered", offered_n)
        if profile:
            _profile(profile, "offered", alice=a, bob=b)

        # 3. Single messages on a quiet link.
        _call(a, "pace", bob_id, "ping", 0.02, 1, pings)
        _await_arrivals(b, "ping", pings)
        lat = _call(b, "results")["latencies"]
        for conn in conns.values():
            _call(conn, "quit")
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
    flood, friend = lat["flood"], lat.get("friend", [float("nan")])
    return {
        "messages": messages, "seconds": last - started, "rate": messages / (last - started),
        "flood_p50": _pct(flood, 0.5), "flood_p99": _pct(flood, 0.99), "flood_max": max(flood),
        "friend_n": len(lat.get("friend", [])), "friend_p50": _pct(friend, 0.5),
        "friend_p99": _pct(friend, 0.99),
        "offered_rate": offered_n / offered_s, "offered_n": len(lat["offered"]),
        "tick": tick_seconds,
        "offered_sent": offered_n,
        "offered_p50": _pct(lat["offered"], 0.5), "offered_p99": _pct(lat["offered"], 0.99),
        "p50": _pct(lat["ping"], 0.5), "p99": _pct(lat["ping"], 0.99),
        "rss_before": rss_before, "rss_after": rss_after,
        "sender_cpu_us": cpu["a"] / messages * 1e6,
        "receiver_cpu_us": cpu["b"] / messages * 1e6,
        "pinned": pinned,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--pings", type=int, default=500)
    ap.add_argument("--rate", type=int, default=10_000,
                    help="messages/s offered in the paced phase (default 10000)")
    ap.add_argument("--rate-seconds", type=float, default=3.0,
                    help="length of the paced phase (default 3 s)")
    ap.add_argument("--tick", type=float, default=PACING_TICK,
                    help="seconds between the offered-rate phase's sends of the messages due "
                         "(default 0.001; 0.01 gives the earlier bursts of 100 at 10,000/s)")
    ap.add_argument("--friend-interval", type=float, default=0.01,
                    help="seconds between the second friend's messages (default 0.01)")
    ap.add_argument("--profile", metavar="DIR",
                    help="write cProfiles of the sender's and the receiver's processes during "
                         "the flood and the offered rate to DIR")
    ap.add_argument("--pin", action="store_true",
                    help="run the sender on one half of the CPUs and the receiver and the second "
                         "friend on the other, as two machines would (the sender's flood then "
                         "takes no CPU from the receiver)")
    ap.add_argument("--in-process", action="store_true",
                    help="all three nodes in this process on one reactor (the earlier bench)")
    args = ap.parse_args(argv)
    if args.pin and args.in_process:
        ap.error("--pin runs the nodes apart; it cannot be combined with --in-process")
    if args.pin:
        try:
            split_cpus(os.sched_getaffinity(0))
        except ValueError as e:
            ap.error(str(e))
    if args.profile:
        try:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            ap.error(f"--profile {args.profile}: {e.strerror}")
    if not args.in_process:
        with tempfile.TemporaryDirectory(prefix="rsproto-bench-chat-") as tmp:
            r = run_apart(Path(tmp), args.messages, args.batch, args.pings, args.rate,
                          args.rate_seconds, args.friend_interval, args.profile, args.tick,
                          args.pin)
        _print(r, args.pings)
        return 0
    reactor = EPollReactor()
    result: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="rsproto-bench-chat-") as tmp:
        def start() -> None:
            d = defer.ensureDeferred(run(reactor, Path(tmp), args.messages, args.batch,
                                         args.pings, args.rate, args.rate_seconds,
                                         args.tick))
            d.addBoth(result.append)
            d.addBoth(lambda _: reactor.stop())
        reactor.callWhenRunning(start)
        reactor.run(installSignalHandlers=False)
    (r,) = result
    if not isinstance(r, dict):
        r.raiseException()
    _print(r, args.pings)
    return 0


def _print(r: dict[str, Any], pings: int) -> None:
    if r.get("pinned"):
        sender, receiver, friend = (",".join(map(str, sorted(cpus))) for cpus in r["pinned"])
        print(f"pinned: sender on CPU {sender}, receiver on CPU {receiver}, second friend on "
              f"CPU {friend}")
    print(f"flood: {r['messages']} private messages in {r['seconds']:.2f} s = "
          f"{r['rate']:.0f} messages/s")
    print(f"flood latency (send call -> receiver event): p50 {r['flood_p50'] * 1000:.1f} ms, "
          f"p99 {r['flood_p99'] * 1000:.1f} ms, max {r['flood_max'] * 1000:.1f} ms")
    print(f"second friend during the flood ({r['friend_n']} messages): "
          f"p50 {r['friend_p50'] * 1000:.2f} ms, p99 {r['friend_p99'] * 1000:.2f} ms")
    print(f"offered {r['offered_rate']:.0f} messages/s, sent every {r['tick'] * 1000:g} ms "
          f"({r['offered_n']} of "
          f"{r['offered_sent']} arrived): p50 {r['offered_p50'] * 1000:.2f} ms, "
          f"p99 {r['offered_p99'] * 1000:.2f} ms")
    print(f"single messages on a quiet link ({pings}): p50 {r['p50'] * 1000:.2f} ms, "
          f"p99 {r['p99'] * 1000:.2f} ms")
    if "receiver_cpu_us" in r:
        print(f"CPU per flood message: sender {r['sender_cpu_us']:.0f} us, receiver "
              f"{r['receiver_cpu_us']:.0f} us (the receiver's includes the second friend's)")
    print(f"resident memory: {r['rss_before'] / 2**20:.1f} MiB before the flood, "
          f"{r['rss_after'] / 2**20:.1f} MiB after")


if __name__ == "__main__":
    sys.exit(main())
