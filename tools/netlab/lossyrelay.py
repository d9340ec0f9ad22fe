# -*- test-case-name: tests.test_tou_transport -*-
"""A seeded userspace UDP relay that loses, duplicates, reorders and delays datagrams.

These kernels have no ``tc netem``, so impairment comes from here: put the relay between two
UDP peers (each talks to the relay's port instead of the other) and it forwards with the
configured faults.  `LossyCore` is the sans-IO part (datagram and time in, deliveries with
due times out; a seeded `random.Random`, so a run is repeatable); `LossyRelay` is the Twisted
`DatagramProtocol` that runs it on one UDP port between two fixed addresses.

Run standalone::

    python3 -m tools.netlab.lossyrelay --listen 127.0.0.1:9000 --a 127.0.0.1:7001 \\
        --b 127.0.0.1:7002 --loss 0.05 --reorder 0.1 --delay 0.005 --seed 1
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
from dataclasses import dataclass, field

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol

__all__ = ["Impairment", "LossyCore", "LossyRelay", "main"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Impairment:
    """Fault rates (0..1) and delays (seconds)."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    #: Extra delay given to a reordered datagram, so later ones overtake it.
    reorder_delay: float = 0.01
    jitter: float = 0.0


@dataclass
class LossyCore:
    """Decides each datagram's fate; `due(now)` yields what must go out by ``now``."""

    impairment: Impairment
    seed: int = 0
    received: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    _rng: random.Random = field(init=False)
    _queue: list[tuple[float, int, bytes, Address]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def submit(self, data: bytes, dest: Address, now: float) -> None:
        imp = self.impairment
        self.received += 1
        if self._rng.random() < imp.loss:
            self.dropped += 1
            return
        copies = 1
        if self._rng.random() < imp.duplicate:
            copies = 2
            self.duplicated += 1
        for _ in range(copies):
            at = now + imp.delay + (self._rng.random() * imp.jitter if imp.jitter else 0.0)
            if self._rng.random() < imp.reorder:
                at += imp.reorder_delay
                self.reordered += 1
            heapq.heappush(self._queue, (at, next(self._order), data, dest))

    def due(self, now: float) -> list[tuple[bytes, Address]]:
        out = []
        while self._queue and self._queue[0][0] <= now:
            _, _, data, dest = heapq.heappop(self._queue)
            out.append((data, dest))
        return out

    def next_deadline(self) -> float | None:
        return self._queue[0][0] if self._queue else None


class LossyRelay(DatagramProtocol):
    """Forwards between ``a`` and ``b`` through a `LossyCore` (anything from ``a`` goes to
    ``b`` and the other way; datagrams from elsewhere are ignored)."""

    def __init__(self, reactor: IReactorTime, a: Address, b: Address,
                 impairment: Impairment, seed: int = 0) -> None:
        self.reactor = reactor
        self.a, self.b = a, b
        self.core = LossyCore(impairment, seed)
        self._timer: IDelayedCall | None = None

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        src = (addr[0], addr[1])
        if src == self.a:
            dest = self.b
        elif src == self.b:
            dest = self.a
        else:
            return
        self.core.submit(datagram, dest, self.reactor.seconds())
        self._run()

    def _run(self) -> None:
        for data, dest in self.core.due(self.reactor.seconds()):
            self.transport.write(data, dest)
        deadline = self.core.next_deadline()
        if deadline is None:
            return
        if self._timer is not None and self._timer.active():
            if self._timer.getTime() <= deadline:
                return
            # a datagram due sooner than the one the timer waits for (e.g. behind a delayed
            # one): wake up for it, or it would wait out the longer delay
            self._timer.cancel()
        self._timer = self.reactor.callLater(
            max(0.0, deadline - self.reactor.seconds()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._run()

    def stopProtocol(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


def _addr(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=_addr, required=True)
    parser.add_argument("--a", type=_addr, required=True)
    parser.add_argument("--b", type=_addr, required=True)
    for name in ("loss", "duplicate", "reorder", "delay", "jitter"):
        parser.add_argument(f"--{name}", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from twisted.internet import reactor
    imp = Impairment(args.loss, args.duplicate, args.reorder, args.delay, jitter=args.jitter)
    reactor.listenUDP(args.listen[1], LossyRelay(reactor, args.a, args.b, imp, args.seed),
                      interface=args.listen[0])
    reactor.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
