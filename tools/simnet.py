# -*- test-case-name: tests.test_core_contract -*-
"""A seeded simulated datagram network, for tests and benches of sans-IO cores.

Cores join at an address and are driven by the same `pqi.driver.CoreDriver` the node uses,
on a `HeapClock` (an `IReactorTime` whose calls sit in a heap: Twisted's ``task.Clock``
re-sorts a list on every ``callLater``, too slow for a network of thousands of cores).
Every `pqi.core.Datagram` a core outputs is delivered to the core at its ``addr`` after the
link's delay, or lost, duplicated or reordered as the link says, all from one seeded
`random.Random` so a run repeats exactly.  A link may also carry a limited number of bytes per
second (datagrams queue behind each other) and hold some datagrams back so later ones overtake
them, as the lab's lossy relay does.  A core with a single peer (a TOU stream) outputs datagrams
without an address: `SimNet.add` names its ``peer``.  Other outputs go to the handler given at
`SimNet.add` (by default they are kept in `SimNode.outputs`).

`run` advances the clock from one scheduled call to the next, bounded by simulated time and
by a step count, so a test can never spin forever.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections.abc import Callable
from typing import Any

from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from pqi.core import Address, Core, Datagram
from pqi.driver import CoreDriver

__all__ = ["SimNet", "SimNode", "LinkModel", "HeapClock", "StepLimitError", "MAX_STEPS"]

#: Clock steps one `SimNet.run` takes at most unless told otherwise.
MAX_STEPS = 5_000_000


class StepLimitError(RuntimeError):
    """A simulation took more clock steps than its bound: something loops."""


@implementer(IDelayedCall)
class _HeapCall:
    """One scheduled call of a `HeapClock`; ``key`` marks its live heap entry."""

    def __init__(self, clock: HeapClock, time: float, func: Callable[..., object],
                 args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        self.clock = clock
        self.time = time
        self.func = func
        self.args = args
        self.kw = kw
        self.key = 0
        self.cancelled = False
        self.called = False

    def getTime(self) -> float:  # noqa: N802 (IDelayedCall)
        return self.time

    def active(self) -> bool:
        return not (self.cancelled or self.called)

    def cancel(self) -> None:
        self._check()
        self.cancelled = True

    def delay(self, secondsLater: float) -> None:  # noqa: N803 (IDelayedCall)
        self._check()
        self.time += secondsLater
        self.clock.push(self)

    def reset(self, secondsFromNow: float) -> None:  # noqa: N803 (IDelayedCall)
        self._check()
        self.time = self.clock.seconds() + secondsFromNow
        self.clock.push(self)

    def _check(self) -> None:
        if self.cancelled:
            raise AlreadyCancelled
        if self.called:
            raise AlreadyCalled


@implementer(IReactorTime)
class HeapClock:
    """A deterministic `IReactorTime` (like ``task.Clock``) keeping its calls in a heap.

    A moved or cancelled call leaves a stale heap entry behind that is skipped when it
    surfaces; calls due at the same time run in the order they were scheduled.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, _HeapCall]] = []
        self._seq = 0

    def seconds(self) -> float:
        return self.now

    def callLater(self, delay: float, callable: Callable[..., object],  # noqa: N802, A002
                  *args: Any, **kw: Any) -> _HeapCall:
        call = _HeapCall(self, self.now + delay, callable, args, kw)
        self.push(call)
        return call

    def push(self, call: _HeapCall) -> None:
        """(Re)file ``call`` at its time; its older heap entry becomes stale."""
        self._seq += 1
        call.key = self._seq
        heapq.heappush(self._heap, (call.time, self._seq, call))

    def getDelayedCalls(self) -> list[_HeapCall]:  # noqa: N802 (IReactorTime)
        return sorted((c for _, key, c in self._heap if c.key == key and c.active()),
                      key=lambda c: (c.time, c.key))

    def next_time(self) -> float | None:
        """When the earliest live call is due (None: nothing is scheduled)."""
        heap = self._heap
        while heap:
            _, key, call = heap[0]
            if call.key == key and call.active():
                return call.time
            heapq.heappop(heap)
        return None

    def advance(self, amount: float) -> None:
        """Move time forward by ``amount``, running every call due on the way, in order."""
        end = self.now + amount
        heap = self._heap
        while heap and heap[0][0] <= end:
            _, key, call = heapq.heappop(heap)
            if call.key != key or not call.active():
                continue
            self.now = max(self.now, call.time)
            call.called = True
            call.func(*call.args, **call.kw)
        self.now = end


@dataclasses.dataclass(frozen=True)
class LinkModel:
    """How a (directed) link treats datagrams: one-way ``delay`` plus up to ``jitter``
    seconds (jitter reorders), and the chance to ``loss`` or ``duplicate`` each one.
    ``rate`` (bytes per second, None: unlimited) makes datagrams leave one after another;
    ``reorder`` is the chance that one is held back ``reorder_delay`` more."""

    delay: float = 0.005
    jitter: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    rate: float | None = None
    reorder: float = 0.0
    reorder_delay: float = 0.01


Receive = Callable[[Any, Address, float], object]
#: Judges one datagram (src, dst, data) before its link does: None drops it, a number holds it
#: back that many seconds more (tests aim faults at chosen datagrams this way).
Fault = Callable[[Address, Address, Any], float | None]


@dataclasses.dataclass
class SimNode:
    """A core on the network: its address, its driver and the outputs that were not datagrams."""

    addr: Address
    core: Core
    driver: CoreDriver
    receive: Receive
    outputs: list[Any] = dataclasses.field(default_factory=list)
    online: bool = True
    #: Where datagrams without an address go (a single-peer core).
    peer: Address | None = None


class SimNet:
    """Cores at addresses exchanging datagrams on a shared simulated clock."""

    def __init__(self, seed: int = 0, *, clock: HeapClock | None = None,
                 default: LinkModel = LinkModel()) -> None:
        self.clock = clock if clock is not None else HeapClock()
        self.random = random.Random(seed)
        self.default = default
        self.nodes: dict[Address, SimNode] = {}
        self._links: dict[tuple[Address, Address], LinkModel] = {}
        #: Datagrams handed to the network, delivered, lost (by a link or to nobody).
        self.sent = 0
        self.delivered = 0
        self.lost = 0
        self.bytes_sent = 0
        #: Called with (src, dst, data) for every datagram sent: tests watch or count here.
        self.taps: list[Callable[[Address, Address, Any], object]] = []
        #: Consulted in order for every datagram after the taps (see `Fault`).
        self.faults: list[Fault] = []
        #: When each rate-limited link is free again.
        self._free: dict[tuple[Address, Address], float] = {}

    # --- building the network ------------------------------------------------------------

    def add(self, addr: Address, core: Core, *, receive: Receive | None = None,
            on_output: Callable[[SimNode, Any], object] | None = None,
            peer: Address | None = None) -> SimNode:
        """Put ``core`` at ``addr``.  ``receive(data, src, now)`` feeds it a datagram
        (default: ``core.datagram_received(data, src, now)``); ``on_output(node, output)``
        gets its other outputs (default: appended to ``node.outputs``); datagrams without
        an address go to ``peer``."""
        if addr in self.nodes:
            raise ValueError(f"{addr} is taken")
        if receive is None:
            def receive(data: Any, src: Address, now: float) -> object:
                return core.datagram_received(data, src, now)  # type: ignore[attr-defined]

        def handle(output: Any) -> None:
            if isinstance(output, Datagram):
                dst = output.addr if output.addr is not None else node.peer
                if dst is None:
                    raise ValueError(f"{addr}: a datagram without an address on a network")
                self.send(addr, dst, output.data)
            elif on_output is not None:
                on_output(node, output)
            else:
                node.outputs.append(output)

        node = SimNode(addr, core, CoreDriver(core, self.clock, handle), receive, peer=peer)
        self.nodes[addr] = node
        return node

    def link(self, a: Address, b: Address, model: LinkModel, *, both: bool = True) -> None:
        """Give the link a→b (and b→a unless ``both`` is False) its own behaviour."""
        self._links[(a, b)] = model
        if both:
            self._links[(b, a)] = model

    def set_online(self, addr: Address, online: bool) -> None:
        """Take a node off the network (datagrams to it are lost) or bring it back."""
        self.nodes[addr].online = online

    def remove(self, addr: Address) -> None:
        """Take a node away for good; its timer stops."""
        node = self.nodes.pop(addr)
        node.driver.stop()

    # --- traffic -------------------------------------------------------------------------

    def send(self, src: Address, dst: Address, data: Any) -> None:
        """Hand ``data`` from ``src`` to the network for ``dst``."""
        self.sent += 1
        self.bytes_sent += len(data) if isinstance(data, (bytes, bytearray)) else 0
        for tap in list(self.taps):
            tap(src, dst, data)
        hold = 0.0
        for fault in list(self.faults):
            extra = fault(src, dst, data)
            if extra is None:
                self.lost += 1
                return
            hold += extra
        model = self._links.get((src, dst), self.default)
        if model.rate:
            # Serialisation: the datagram leaves when the ones before it have.
            now = self.clock.seconds()
            depart = max(now, self._free.get((src, dst), now)) + len(data) / model.rate
            self._free[(src, dst)] = depart
            hold += depart - now
        if self.random.random() < model.loss:
            self.lost += 1
            return
        copies = 2 if model.duplicate and self.random.random() < model.duplicate else 1
        for _ in range(copies):
            delay = model.delay + (self.random.random() * model.jitter if model.jitter else 0.0)
            if model.reorder and self.random.random() < model.reorder:
                delay += model.reorder_delay
            self.clock.callLater(hold + delay, self._deliver, src, dst, data)

    def _deliver(self, src: Address, dst: Address, data: Any) -> None:
        node = self.nodes.get(dst)
        if node is None or not node.online or not self.nodes.get(src, node).online:
            self.lost += 1
            return
        self.delivered += 1
        node.receive(data, src, self.clock.seconds())
        node.driver.service()

    def feed(self, addr: Address, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Give the core at ``addr`` input through its driver (``now`` is added)."""
        return self.nodes[addr].driver.feed(method, *args, **kwargs)

    # --- time ----------------------------------------------------------------------------

    def run(self, duration: float | None = None, *, until: Callable[[], bool] | None = None,
            max_steps: int = MAX_STEPS) -> float:
        """Advance the clock call by call for ``duration`` simulated seconds, or until
        ``until()`` is true, or until nothing is scheduled; returns the simulated time spent.
        Raises `StepLimitError` after ``max_steps`` steps."""
        start = self.clock.seconds()
        end = None if duration is None else start + duration
        for _ in range(max_steps):
            if until is not None and until():
                break
            due = self.clock.next_time()
            if due is None:
                break
            if end is not None and due > end:
                self.clock.advance(end - self.clock.seconds())
                break
            self.clock.advance(max(0.0, due - self.clock.seconds()))
        else:
            raise StepLimitError(f"simulation still running after {max_steps} steps")
        return self.clock.seconds() - start
