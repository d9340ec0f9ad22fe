# -*- test-case-name: tests.test_lossyrelay -*-
"""The lab's lossy UDP relay delivers each datagram at its own due time."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport

from tools.netlab.lossyrelay import Impairment, LossyRelay

A = ("127.0.0.1", 7001)
B = ("127.0.0.1", 7002)


def test_datagram_behind_a_reordered_one_is_not_held_back() -> None:
    """A datagram held back for reordering (10 ms) must not delay the next one (1 ms): the
    relay's timer follows the earliest due time, not the first one it scheduled."""
    clock = Clock()
    relay = LossyRelay(clock, A, B, Impairment(reorder=1.0, delay=0.001, reorder_delay=0.01))
    transport = FakeDatagramTransport()
    relay.makeConnection(transport)
    relay.datagramReceived(b"held", A)  # reorder=1: due at 11 ms
    relay.core.impairment = Impairment(delay=0.001)
    relay.datagramReceived(b"quick", A)  # due at 1 ms
    clock.advance(0.001)
    assert transport.written == [(b"quick", B)]
    clock.advance(0.01)
    assert transport.written == [(b"quick", B), (b"held", B)]
    relay.stopProtocol()
    assert clock.getDelayedCalls() == []
