"""The sans-IO core contract (`pqi.core`), its one Twisted driver (`pqi.driver`) and the
simulated network (`tools.simnet`), with a small ping core built the way every core is."""

from __future__ import annotations

import dataclasses

import pytest
from twisted.internet.task import Clock

from pqi.core import Datagram, is_core
from pqi.driver import MAX_DRAIN_ROUNDS, CoreDriver
from tools.simnet import HeapClock, LinkModel, SimNet, StepLimitError


@dataclasses.dataclass(frozen=True)
class Pong:
    """Typed event: a reply came back after ``rtt`` seconds."""

    rtt: float


class PingCore:
    """Sends a ping to ``peer`` every ``period``; answers pings; reports pongs as events."""

    def __init__(self, peer: tuple[str, int] | None = None, period: float = 1.0) -> None:
        self.peer = peer
        self.period = period
        self._out: list[object] = []
        self._due: float | None = None

    def start(self, now: float) -> None:
        self._due = now

    def datagram_received(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        kind, stamp = data[:4], float(data[4:])
        if kind == b"ping":
            self._out.append(Datagram(b"pong" + data[4:], addr))
        else:
            self._out.append(Pong(now - stamp))

    def handle_timer(self, now: float) -> None:
        if self._due is not None and now >= self._due and self.peer is not None:
            self._out.append(Datagram(b"ping" + repr(now).encode(), self.peer))
            self._due = now + self.period

    def next_deadline(self) -> float | None:
        return self._due

    def drain(self, now: float) -> list[object]:
        out, self._out = self._out, []
        return out


def test_ping_core_keeps_the_contract() -> None:
    """The example core is a `Core` by the run-time check; a bare object is not."""
    assert is_core(PingCore())
    assert not is_core(object())


def test_driver_keeps_one_timer_and_drains_in_order() -> None:
    """Feeding input drains outputs in order and moves the single timer to the next deadline;
    the timer runs `handle_timer` and drains again; `stop` cancels it."""
    clock = Clock()
    seen: list[object] = []
    core = PingCore(peer=("127.0.0.1", 2))
    driver = CoreDriver(core, clock, seen.append)
    driver.feed(core.start)
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(0)
    assert seen == [Datagram(b"ping0.0", ("127.0.0.1", 2))]
    clock.advance(1.0)
    assert seen[-1] == Datagram(b"ping1.0", ("127.0.0.1", 2))
    assert len(clock.getDelayedCalls()) == 1
    driver.feed(core.datagram_received, b"pong0.5", ("127.0.0.1", 2))
    assert seen[-1] == Pong(0.5)
    driver.stop()
    assert clock.getDelayedCalls() == []
    driver.feed(core.datagram_received, b"ping3", ("127.0.0.1", 2))
    assert seen[-1] == Pong(0.5)  # a stopped driver feeds nothing


def test_handler_that_feeds_again_is_drained_before_return() -> None:
    """An output handler that feeds its core gets the new outputs in the same service call,
    and a handler that feeds forever is cut after MAX_DRAIN_ROUNDS and finished next turn."""
    clock = Clock()
    core = PingCore()
    rounds: list[object] = []

    def handle(output: object) -> None:
        rounds.append(output)
        if len(rounds) < MAX_DRAIN_ROUNDS * 2:
            driver.feed(core.datagram_received, b"ping1", ("127.0.0.1", 9))

    driver = CoreDriver(core, clock, handle)
    driver.feed(core.datagram_received, b"ping1", ("127.0.0.1", 9))
    assert len(rounds) == MAX_DRAIN_ROUNDS
    clock.advance(0)
    assert len(rounds) == MAX_DRAIN_ROUNDS * 2


def test_simnet_delivers_with_delay_and_is_deterministic() -> None:
    """Two cores on the simulated network measure the link's round trip; the same seed gives
    the same losses."""
    def run(seed: int) -> tuple[list[object], int]:
        net = SimNet(seed, default=LinkModel(delay=0.05, loss=0.3))
        a = net.add(("127.0.0.1", 1), PingCore(peer=("127.0.0.1", 2)))
        net.add(("127.0.0.1", 2), PingCore())
        net.feed(a.addr, a.core.start)
        net.run(20.0)
        return a.outputs, net.lost
    outputs, lost = run(7)
    assert outputs and all(o == Pong(pytest.approx(0.1)) for o in outputs)
    assert lost > 0
    assert run(7) == (outputs, lost)
    assert run(8)[1] != lost or run(8)[0] != outputs


def test_simnet_offline_node_and_step_bound() -> None:
    """Datagrams to an offline node are lost; a run that never ends hits its step bound."""
    net = SimNet(1)
    a = net.add(("127.0.0.1", 1), PingCore(peer=("127.0.0.1", 2), period=0.0001))
    net.add(("127.0.0.1", 2), PingCore())
    net.set_online(("127.0.0.1", 2), False)
    net.feed(a.addr, a.core.start)
    net.run(0.01)
    assert a.outputs == [] and net.delivered == 0 and net.lost > 0
    with pytest.raises(StepLimitError):
        net.run(max_steps=50)


def test_heap_clock_runs_calls_in_time_order_and_honours_cancel_and_reset() -> None:
    """The simulated network's clock runs due calls in (time, scheduling) order, skips
    cancelled ones, moves reset ones, and stops at the advanced time."""
    clock = HeapClock()
    ran: list[str] = []
    clock.callLater(2.0, ran.append, "b")
    clock.callLater(1.0, ran.append, "a")
    clock.callLater(1.0, ran.append, "a2")
    gone = clock.callLater(0.5, ran.append, "gone")
    moved = clock.callLater(0.1, ran.append, "moved")
    gone.cancel()
    moved.reset(3.0)
    assert [c.getTime() for c in clock.getDelayedCalls()] == [1.0, 1.0, 2.0, 3.0]
    assert clock.next_time() == 1.0
    clock.advance(2.5)
    assert ran == ["a", "a2", "b"] and clock.seconds() == 2.5
    assert not gone.active() and moved.active()
    clock.advance(1.0)
    assert ran[-1] == "moved" and clock.next_time() is None


def test_driver_after_hook_runs_once_per_service_after_the_outputs() -> None:
    """``after`` sees every output of a service call already handed over, once per call."""
    clock = Clock()
    core = PingCore()
    seen: list[object] = []
    driver = CoreDriver(core, clock, seen.append, after=lambda: seen.append("after"))
    core.datagram_received(b"ping1", ("127.0.0.1", 9), 0.0)
    core.datagram_received(b"ping2", ("127.0.0.1", 9), 0.0)
    driver.service()
    assert seen == [Datagram(b"pong1", ("127.0.0.1", 9)), Datagram(b"pong2", ("127.0.0.1", 9)),
                    "after"]


def test_the_converted_cores_keep_the_contract() -> None:
    """Every sans-IO core the node drives offers handle_timer, next_deadline and drain, and
    a fresh one has nothing to say."""
    import random

    from dht.node import DHTNode
    from pqi.link.linkmgr import LinkManager
    from pqi.wire.fields import Sha1Hash, SslId
    from services.nat.punch import ConnectCoordinator
    from services.transfer.engine import Download, Tuning
    from tcponudp.stunner import StunClient
    from upnp.mapper import PortMapper

    cores = [
        DHTNode(b"\x01" * 20, rng=random.Random(1)),
        LinkManager(SslId(b"\x02" * 16), rng=random.Random(1)),
        Download(Sha1Hash(b"\x03" * 20), 10),
        PortMapper([]),
        StunClient(("127.0.0.1", 1)),
        ConnectCoordinator(b"\x04" * 20, locate=lambda _: None, authorise=lambda _p, _m: False,
                           install_relay=lambda *_: None, new_tid=lambda: b"\x00\x01"),
    ]
    for core in cores:
        assert is_core(core), type(core).__name__
        assert core.drain(0.0) == []
    # Idle, each waits for input; a download reports its progress every period meanwhile.
    deadlines = [c.next_deadline() for c in cores]
    assert deadlines == [None, None, Tuning().progress_period, None, None, None]
