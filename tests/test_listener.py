"""The node's TCP listener: at most MAX_ACCEPTS_PER_TURN connections accepted per reactor
turn and MAX_ACCEPTS_PER_SECOND on average, the rest left in the kernel's backlog for later
turns (real sockets on 127.0.0.1, the port's read handler called by hand, one call per turn;
the accept budget timed on a `task.Clock`)."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import task
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor

from pqi.link.listener import (
    ACCEPT_BURST,
    LISTEN_BACKLOG,
    MAX_ACCEPTS_PER_TURN,
    BoundedPort,
    listen_tcp,
)


class _Counting(Factory):
    def __init__(self) -> None:
        self.built = 0

    def buildProtocol(self, addr: object) -> Protocol:  # noqa: N802
        self.built += 1
        return Protocol()


def _close_all(reactor: EPollReactor, clients: list[socket.socket]) -> None:
    """The reactor never runs: close the clients, the listening and accepted sockets."""
    for client in clients:
        client.close()
    for reader in list(reactor.getReaders()):
        reactor.removeReader(reader)
        sock = getattr(reader, "socket", None)
        if sock is not None:
            sock.close()


@pytest.mark.integration
def test_each_turn_accepts_at_most_the_bound_and_the_backlog_drains_in_order() -> None:
    """Three bounds' worth of connections wait in the backlog (fewer than ACCEPT_BURST): each
    read handler call (one reactor turn) accepts exactly MAX_ACCEPTS_PER_TURN of them, however
    often Twisted would have raised its own per-turn number, and the last turn takes the
    rest."""
    assert 3 * MAX_ACCEPTS_PER_TURN <= ACCEPT_BURST
    reactor = EPollReactor()
    factory = _Counting()
    port = listen_tcp(reactor, 0, factory, "127.0.0.1")
    clients = []
    try:
        assert isinstance(port, BoundedPort)
        address = ("127.0.0.1", port.getHost().port)
        total = 3 * MAX_ACCEPTS_PER_TURN - 1
        for _ in range(total):
            client = socket.create_connection(address, timeout=5)  # completed by the kernel
            clients.append(client)
        seen = []
        for _ in range(4):
            before = factory.built
            port.doRead()
            seen.append(factory.built - before)
        assert seen == [MAX_ACCEPTS_PER_TURN, MAX_ACCEPTS_PER_TURN, MAX_ACCEPTS_PER_TURN - 1, 0]
    finally:
        _close_all(reactor, clients)


@pytest.mark.integration
def test_accepts_per_second_follow_the_bucket() -> None:
    """With 10 accepts a second and a burst of 5: the first turn takes the burst; with the
    bucket empty the port stops reading until one accept's worth of time has passed, then
    takes one; after half a second five more."""
    reactor, clock = EPollReactor(), task.Clock()
    factory = _Counting()
    port = BoundedPort(0, factory, interface="127.0.0.1", reactor=reactor, max_accepts=8,
                       per_second=10, burst=5, clock=clock)
    port.startListening()
    address = ("127.0.0.1", port.getHost().port)
    clients = [socket.create_connection(address, timeout=5) for _ in range(12)]
    try:
        port.doRead()
        assert factory.built == 5
        port.doRead()
        assert factory.built == 5 and port not in reactor.getReaders()
        clock.advance(0.099)
        assert port not in reactor.getReaders()
        clock.advance(0.001)
        assert port in reactor.getReaders()
        port.doRead()
        assert factory.built == 6
        clock.advance(0.5)
        port.doRead()
        assert factory.built == 11
    finally:
        _close_all(reactor, clients)


def test_a_memory_reactor_gets_its_own_listen_with_the_backlog() -> None:
    """Without real sockets (a memory reactor) the reactor's own listenTCP is used, with the
    listen backlog the node asks for."""
    reactor = MemoryReactor()
    listen_tcp(reactor, 7812, Factory.forProtocol(Protocol), "127.0.0.1")
    ((port, _factory, backlog, interface),) = reactor.tcpServers
    assert (port, backlog, interface) == (7812, LISTEN_BACKLOG, "127.0.0.1")
