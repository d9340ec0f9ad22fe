# -*- test-case-name: tests.test_listener -*-
"""The node's TCP listener, accepting a bounded number of connections per reactor turn.

Twisted's listening port accepts up to 100 connections each time the socket is readable, and
raises that number by 20 whenever it took them all: a crowd of sockets that connect, are
evicted and connect again (an attack on the half-open slots) then gets a whole reactor turn of
accepts, each one building a TLS stack and evicting another half-open connection.  Profiled
in `tools/bench/links.py` (1,000 attacking sockets) that was about 64 accepts per turn, a
quarter of a second under the profiler, during which no friend's item was read.
`BoundedPort` takes at most `MAX_ACCEPTS_PER_TURN` per turn, and at most
`MAX_ACCEPTS_PER_SECOND` on average (a token bucket holding up to `ACCEPT_BURST`; when it is
empty the port stops reading until the next token); the rest wait in the kernel's backlog
(`LISTEN_BACKLOG`, or are refused by the kernel when it is full, and the client's TCP tries
again).  The share of the node's time an attack on the listener can take is then bounded
whatever its rate; a node's friends reconnecting after a restart still get in within a second
or two.
"""

from __future__ import annotations

from typing import Any, Final

from twisted.internet import tcp
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTime
from twisted.internet.posixbase import PosixReactorBase
from twisted.internet.protocol import Factory

__all__ = ["BoundedPort", "listen_tcp", "MAX_ACCEPTS_PER_TURN", "MAX_ACCEPTS_PER_SECOND",
           "ACCEPT_BURST", "LISTEN_BACKLOG"]

#: Connections accepted per reactor turn at most.
MAX_ACCEPTS_PER_TURN: Final = 8
#: Connections accepted per second on average at most.
MAX_ACCEPTS_PER_SECOND: Final = 200
#: Accepts the bucket holds when the listener has been quiet.
ACCEPT_BURST: Final = 50
#: The listen backlog: connections the kernel completes while they wait for an accept (the
#: kernel caps it at ``net.core.somaxconn``).  Twisted's default is 50.
LISTEN_BACKLOG: Final = 256


class BoundedPort(tcp.Port):
    """A `twisted.internet.tcp.Port` that accepts at most ``max_accepts`` per turn and
    ``per_second`` per second on average (timed on ``clock``, the reactor by default)."""

    def __init__(self, port: int, factory: Factory, backlog: int = LISTEN_BACKLOG,
                 interface: str = "", reactor: Any = None,
                 max_accepts: int = MAX_ACCEPTS_PER_TURN,
                 per_second: float = MAX_ACCEPTS_PER_SECOND, burst: int = ACCEPT_BURST,
                 clock: IReactorTime | None = None) -> None:
        super().__init__(port, factory, backlog, interface, reactor)
        self.max_accepts = max_accepts
        self.per_second = per_second
        self.burst = burst
        self.clock = clock if clock is not None else reactor
        self._tokens = float(burst)
        self._filled_at = self.clock.seconds()
        self._resume: IDelayedCall | None = None

    def doRead(self) -> None:  # noqa: N802
        now = self.clock.seconds()
        self._tokens = min(self.burst, self._tokens + (now - self._filled_at) * self.per_second)
        self._filled_at = now
        allowed = min(self.max_accepts, int(self._tokens))
        if allowed < 1:  # the bucket is empty: read again when it holds one accept
            self.stopReading()
            self._resume = self.clock.callLater((1 - self._tokens) / self.per_second,
                                                self._read_again)
            return
        # Twisted's loop reads this number once per turn and afterwards sets it to what it
        # accepted (at least 1), or to 20 more when it accepted all it could.
        self.numberAccepts = allowed
        super().doRead()
        accepted = allowed if self.numberAccepts > allowed else self.numberAccepts
        self._tokens -= accepted

    def _read_again(self) -> None:
        self._resume = None
        if self.connected:
            self.startReading()

    def connectionLost(self, reason: Any) -> None:  # noqa: N802
        if self._resume is not None and self._resume.active():
            self._resume.cancel()
        self._resume = None
        super().connectionLost(reason)


def listen_tcp(reactor: Any, port: int, factory: Factory, interface: str) -> IListeningPort:
    """Listen with a `BoundedPort` on a reactor of real sockets; elsewhere (a memory reactor in
    tests) with the reactor's own ``listenTCP``.  Raises `CannotListenError`."""
    if isinstance(reactor, PosixReactorBase):
        listening = BoundedPort(port, factory, LISTEN_BACKLOG, interface, reactor)
        listening.startListening()
        return listening
    return reactor.listenTCP(port, factory, backlog=LISTEN_BACKLOG, interface=interface)
