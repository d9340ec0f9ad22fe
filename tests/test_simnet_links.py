"""The simulated network's link features for stream cores (`tools.simnet`): a rate limit
that makes datagrams leave one after another, relay-style reordering, faults aimed at chosen
datagrams, and a peer for cores that send without an address."""

from __future__ import annotations

import pytest

from pqi.core import Datagram
from tools.simnet import LinkModel, SimNet

A, B = ("192.0.2.1", 1), ("192.0.2.2", 1)  # simulated, never contacted (RFC 5737)


class Burst:
    """Sends its queued payloads to its only peer (no address) and records what arrives."""

    def __init__(self) -> None:
        self.queue: list[bytes] = []
        self.arrived: list[tuple[bytes, float]] = []

    def datagram_received(self, data: bytes, now: float) -> None:
        self.arrived.append((data, now))

    def handle_timer(self, now: float) -> None:
        """Never armed."""

    def next_deadline(self) -> float | None:
        return None

    def drain(self, now: float) -> list[object]:
        out, self.queue = [Datagram(d) for d in self.queue], []
        return out


def _pair(net: SimNet) -> tuple[Burst, Burst]:
    a, b = Burst(), Burst()
    net.add(A, a, peer=B, receive=lambda data, _src, now: a.datagram_received(data, now))
    net.add(B, b, peer=A, receive=lambda data, _src, now: b.datagram_received(data, now))
    return a, b


def test_peer_takes_datagrams_without_address_and_rate_serialises() -> None:
    """A core's address-less datagrams reach its peer; at 1000 bytes/s three 100-byte
    datagrams sent at once arrive 0.1 s apart after the delay."""
    net = SimNet(0, default=LinkModel(delay=0.5, rate=1000.0))
    a, b = _pair(net)
    a.queue = [bytes([i]) * 100 for i in range(3)]
    net.nodes[A].driver.service()
    net.run(5.0)
    assert [d for d, _ in b.arrived] == [bytes([i]) * 100 for i in range(3)]
    assert [t for _, t in b.arrived] == pytest.approx([0.6, 0.7, 0.8])


def test_datagram_without_address_and_without_peer_is_refused() -> None:
    """A core with no peer that sends without an address is a bug, not a silent loss."""
    net = SimNet(0)
    core = Burst()
    net.add(A, core, receive=lambda data, _src, now: None)
    core.queue = [b"x"]
    with pytest.raises(ValueError):
        net.nodes[A].driver.service()


def test_reorder_holds_some_datagrams_back() -> None:
    """With reorder 0.5 some datagrams arrive reorder_delay late and are overtaken; with 0
    the order is kept; the same seed gives the same arrivals."""
    def run(reorder: float, seed: int = 3) -> list[tuple[bytes, float]]:
        net = SimNet(seed, default=LinkModel(delay=0.01, reorder=reorder, reorder_delay=0.2))
        a, b = _pair(net)
        a.queue = [bytes([i]) for i in range(40)]
        net.nodes[A].driver.service()
        net.run(5.0)
        return b.arrived
    kept = run(0.0)
    assert [d for d, _ in kept] == [bytes([i]) for i in range(40)]
    mixed = run(0.5)
    assert sorted(d for d, _ in mixed) == [bytes([i]) for i in range(40)]
    assert [d for d, _ in mixed] != [d for d, _ in kept]
    assert {round(t, 6) for _, t in mixed} == {0.01, 0.21}
    assert run(0.5) == mixed


def test_faults_drop_or_hold_chosen_datagrams() -> None:
    """A fault drops the datagram it returns None for (counted as lost) and holds back the
    one it returns a delay for; the others pass unchanged."""
    net = SimNet(0, default=LinkModel(delay=0.01))
    a, b = _pair(net)
    net.faults.append(lambda _s, _d, data: None if data == b"drop" else
                      (0.5 if data == b"late" else 0.0))
    a.queue = [b"late", b"drop", b"kept"]
    net.nodes[A].driver.service()
    net.run(5.0)
    assert [(d, round(t, 6)) for d, t in b.arrived] == [(b"kept", 0.01), (b"late", 0.51)]
    assert net.lost == 1
