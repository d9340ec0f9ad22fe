# -*- test-case-name: tests.test_bench_chat -*-
"""One chat node in its own process, driven over a pipe by `tools.bench.chat`.

The chat bench runs the receiving node apart from the friends that send to it, so that its
figures are the receiver's own (how it shares its turns between links), not the cost of a
sender working on the same reactor.  Each node runs `agent` in a forked process with its own
epoll reactor; the parent sends commands ``(name, *args)`` and reads one reply per command, in
order.  Messages carry their send time (``time.monotonic()``, one clock for every process on
the machine): the body is ``"<kind> <index> <send time> ..."``.
"""

from __future__ import annotations

import cProfile
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.epollreactor import EPollReactor
from twisted.python.failure import Failure

__all__ = ["agent", "POLL_INTERVAL", "MAX_WAIT_TURNS"]

#: How often (seconds) an agent looks for the parent's next command.
POLL_INTERVAL = 0.005
#: Longest wait for two nodes to enable chat with each other, in 20 ms steps.
MAX_WAIT_TURNS = 1500


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Agent:
    """The commands one node process answers (``do_<name>``)."""

    def __init__(self, reactor: Any, node: Any, conn: Connection) -> None:
        self.reactor = reactor
        self.node = node
        self.conn = conn
        self.latencies: dict[str, list[float]] = {}
        self.arrivals: dict[str, int] = {}
        self.last_arrival = 0.0
        #: Arrival times and bodies not yet turned into latencies: the event handler only
        #: appends and counts, so the receiver's figures carry as little of the bench's own
        #: work as can be; the bodies are parsed once the phases are over (`do_results`),
        #: not while the parent polls for arrivals (parsing the 20,000 bodies of an offered
        #: phase in one turn stalled the receiver for 25 ms while the phase's last messages
        #: were still arriving).
        self.unread: list[tuple[float, str]] = []
        self.profile: cProfile.Profile | None = None
        self.pacer: task.LoopingCall | None = None
        self.busy = False
        self.pending: list[tuple[Any, ...]] = []

    # -- the pipe ------------------------------------------------------------------------------

    def poll(self) -> None:
        while self.conn.poll():
            self.pending.append(self.conn.recv())
        while self.pending and not self.busy:
            name, *args = self.pending.pop(0)
            if name == "stop_pacing":  # answered by the pacing command it ends
                if self.pacer is not None and self.pacer.running:
                    self.pacer.stop()
                continue
            self.busy = name != "pace"  # pacing runs while other commands are answered
            d = defer.maybeDeferred(getattr(self, f"do_{name}"), *args)
            d.addBoth(self._reply, name)

    def _reply(self, result: Any, name: str) -> None:
        if name != "pace":
            self.busy = False
        if isinstance(result, Failure):
            result = RuntimeError(result.getTraceback())
        self.conn.send(result)

    # -- commands ------------------------------------------------------------------------------

    def do_info(self) -> tuple[str, str]:
        node = self.node
        return node.account.certificate_text(local_addr=node.listening), node.ssl_id.to_hex()

    async def do_befriend(self, certificate: str, peer_hex: str) -> bool:
        from pqi.items.ids import SERVICE_CHAT
        from pqi.wire.fields import SslId

        peer = SslId.from_hex(peer_hex)
        self.node.add_friend(certificate)
        for _ in range(MAX_WAIT_TURNS):
            if SERVICE_CHAT in self.node.control.enabled(peer):
                return True
            await task.deferLater(self.reactor, 0.02, lambda: None)
        raise RuntimeError(f"{peer_hex} did not connect")

    def do_pace(self, peer_hex: str, kind: str, interval: float, per_tick: int,
                total: int | None, rate: float | None = None,
                ) -> defer.Deferred[tuple[int, float]]:
        """Send ``per_tick`` messages every ``interval`` s (0: every turn) until ``total``
        are sent or ``stop_pacing`` comes; answers (messages sent, seconds).  With ``rate``
        (messages/s) each tick sends instead the messages due by then, message ``i`` due
        ``i / rate`` s after the start (a late tick catches up; ``per_tick`` is ignored)."""
        from pqi.wire.fields import SslId

        peer = SslId.from_hex(peer_hex)
        send = self.node.chat.send_private
        sent = [0]
        started = time.monotonic()

        def tick() -> None:
            now = time.monotonic()
            if rate is not None:
                due = int((now - started) * rate) + 1
                count = due - sent[0] if total is None else min(due, total) - sent[0]
            else:
                count = per_tick if total is None else min(per_tick, total - sent[0])
            for _ in range(count):
                send(peer, f"{kind} {sent[0]} {time.monotonic():.6f} the quick brown fox")
                sent[0] += 1
            if total is not None and sent[0] >= total:
                loop.stop()

        loop = self.pacer = task.LoopingCall(tick)
        loop.clock = self.reactor
        d = loop.start(interval)
        d.addCallback(lambda _: (sent[0], time.monotonic() - started))
        return d

    def do_listen(self) -> bool:
        from services.chat.service import MessageReceived

        unread = self.unread
        arrivals = self.arrivals

        def on_message(event: Any) -> None:
            now = time.monotonic()
            body = event.message.body
            unread.append((now, body))
            kind = body[:body.find(" ")]
            arrivals[kind] = arrivals.get(kind, 0) + 1
            self.last_arrival = now

        self.node.subscribe(MessageReceived, on_message)
        return True

    def _tally(self) -> None:
        """Turn the messages that arrived since the last call into latencies."""
        unread, self.unread[:] = list(self.unread), []
        for now, body in unread:
            kind, _index, stamp, _ = body.split(" ", 3)
            self.latencies.setdefault(kind, []).append(now - float(stamp))

    def do_arrivals(self) -> tuple[dict[str, int], float]:
        """Messages counted per kind, and the last arrival time (no parsing: cheap to poll)."""
        return dict(self.arrivals), self.last_arrival

    def do_profile(self, path: str | None) -> bool:
        """Start profiling this process (``path`` None), or stop and write the stats there."""
        if path is None:
            self.profile = cProfile.Profile()
            self.profile.enable()
        elif self.profile is not None:
            self.profile.disable()
            self.profile.dump_stats(path)
            self.profile = None
        return True

    def do_affinity(self) -> set[int]:
        """The CPUs this process runs on."""
        return os.sched_getaffinity(0)

    def do_cpu(self) -> float:
        """CPU seconds this process has used (user and system): per-message costs that the
        other processes on a loaded machine do not change."""
        return time.process_time()

    def do_results(self) -> dict[str, Any]:
        self._tally()
        return {"latencies": self.latencies, "rss": _rss()}

    async def do_quit(self) -> bool:
        await self.node.stopService()
        self.reactor.callLater(0.05, self.reactor.stop)
        return True


def agent(name: str, workdir: Path, conn: Connection, cpus: set[int] | None = None) -> None:
    """The forked process of one node: answer the parent's commands until ``quit`` (on
    ``cpus`` only, when given)."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from services.node.heap import freeze_startup_heap
    from services.node.node import FRIENDS_FILE, Node

    reactor = EPollReactor()
    account = Account.create(workdir / name, name, f"{name}-loc", "bench-password", bits=2048)
    friends = FriendList(workdir / name / FRIENDS_FILE, now=reactor.seconds)
    node = Node(reactor, account, friends, port=0, owns_friends=True)
    me = _Agent(reactor, node, conn)

    async def start() -> None:
        await node.startService()
        freeze_startup_heap()  # as `rsnode run` does once its node is up
        poller = task.LoopingCall(me.poll)
        poller.clock = reactor
        poller.start(POLL_INTERVAL)

    def failed(f: Any) -> None:
        conn.send(RuntimeError(f.getTraceback()))
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(start()).addErrback(failed))
    reactor.run(installSignalHandlers=False)
