# -*- test-case-name: tests.test_tou_transport -*-
"""Twisted glue: TOU streams as ordinary Twisted transports over a shared UDP port.

`TouSocket` is the TOU side of one UDP port (it plugs into a `tcponudp.udpmux.UdpMux`): it
keeps one `TouStream` per remote address with its `pqi.driver.CoreDriver` (the one timer and
drain loop every core has), feeds it datagrams, sends the datagrams it drains and turns its
events into protocol calls.  Each connection's `TouTransport` is an
`ITransport` with producer/consumer support, so `TLSMemoryBIOFactory` and `pqi.PQIStreamer`
run over it exactly as over TCP.  `TouClientEndpoint` and `TouServerEndpoint` are the endpoint
API (``connect(factory)``, ``listen(factory)``).

Output is drained once per reactor turn (``callLater(0)``), so a burst of datagrams read in one
turn is answered with one ACK.  After an event the driver drains again at once, so what the
protocol wrote in reaction leaves in the same turn.  The datagrams of one service (all its
drains) are written in one pass at its end (`tcponudp.udpmux.UdpMux.send_many`: a few system
calls for a window of segments).

Hole punching (`HolePunch`): the SYNs of a punching connection leave with a small IP TTL for a
while, as RetroShare's ``TcpStream`` does (``TCP_DEFAULT_FIREWALL_TTL``).  They open the mapping
in our own NAT and expire before the far NAT, so the far NAT never sees an unsolicited packet
from us.  A NAT that did (Linux conntrack) would keep an entry for it, and its own host's
packets to us would then be mapped to a *different* external port, which our port-restricted
NAT drops (docs/nat.md).  Once both mappings exist, full-TTL SYNs pass both NATs.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.abstract import isIPAddress
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IConsumer,
    IDelayedCall,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IPushProducer,
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
    ITransport,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from pqi.core import Datagram
from pqi.driver import CoreDriver

from .config import TouConfig
from .errors import TouConnectionError
from .events import Closed, CloseReason, Connected, DataReceived, EndOfStream, Event
from .packet import HEADER_SIZE, Flags
from .stream import State, TouStream
from .udpmux import UdpMux

__all__ = ["TouSocket", "TouTransport", "TouClientEndpoint", "TouServerEndpoint",
           "TouListeningPort", "HolePunch", "LARGE_SEGMENT", "path_segment_limit"]

Address = tuple[str, int]

#: Bytes queued in a stream above which the writing producer is paused.
HIGH_WATER = 256 * 1024
#: The segment payload a `TouSocket` offers an rsproto peer by default: the whole datagram
#: fits one read of Twisted's own UDP port (8192 bytes), whichever port is under the mux.
LARGE_SEGMENT = 8192 - HEADER_SIZE
_SYN_BIT = Flags.SYN._value_
_IP_MTU = 14  # Linux's getsockopt(IPPROTO_IP, IP_MTU) on a connected socket
#: IPv4 and UDP headers: what a datagram adds to the TOU segment on the wire.
_IP_UDP_HEADERS = 20 + 8


def path_segment_limit(host: str) -> int:
    """The largest TOU payload that leaves for ``host`` in one IP packet: the MTU of the route
    to it, less the IPv4, UDP and TOU headers (0 where the system does not say, or for a
    name rather than an IPv4 address).  Loopback allows large segments; an Ethernet path does
    not (1,452 bytes, about the default MSS), so over the internet nothing changes."""
    if not isIPAddress(host):
        return 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))  # a UDP connect sends nothing: it only picks the route
            mtu = probe.getsockopt(socket.IPPROTO_IP, _IP_MTU)
    except OSError:
        return 0
    return max(0, mtu - _IP_UDP_HEADERS - HEADER_SIZE)


@dataclasses.dataclass(frozen=True)
class HolePunch:
    """How a punching connection opens: its SYNs leave with IP TTL ``ttl`` for the first
    ``period`` seconds (while nothing has been heard from the peer), then with the socket's
    own TTL.  ``ttl`` must pass our NAT and expire before the peer's; ``period`` must cover
    the time both ends take to start (the proxy's START tells both at once)."""

    ttl: int
    period: float

    def __post_init__(self) -> None:
        if not 1 <= self.ttl <= 255:
            raise ValueError(f"a TTL is 1..255, not {self.ttl}")
        if self.period < 0:
            raise ValueError(f"period must be >= 0, not {self.period}")


@implementer(ITransport, IConsumer, IPushProducer)
class TouTransport:
    """One TOU connection, as a Twisted transport."""

    def __init__(self, sock: TouSocket, conn: _Connection) -> None:
        self._sock = sock
        self._conn = conn
        self.disconnecting = False
        self.producer: Any = None
        self._streaming = True
        self._producer_paused = False

    # ITransport
    def write(self, data: bytes) -> None:
        if self.disconnecting or self._conn.stream.close_reason is not None:
            return
        self._conn.stream.send(bytes(data))
        self._sock._dirty(self._conn)
        self._check_high_water()

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if self.disconnecting:
            return
        self.disconnecting = True
        self._conn.stream.close(self._sock.now())
        self._sock._dirty(self._conn)

    def abortConnection(self) -> None:
        self.disconnecting = True
        self._conn.stream.abort(self._sock.now())
        self._sock._dirty(self._conn)  # connectionLost comes later, never inside the caller

    def getPeer(self) -> IPv4Address:
        return IPv4Address("UDP", *self._conn.peer)

    def getHost(self) -> IPv4Address:
        return self._sock.host()

    # IConsumer
    def registerProducer(self, producer: Any, streaming: bool) -> None:
        if self.producer is not None:
            raise RuntimeError("a producer is already registered")
        self.producer = producer
        self._streaming = streaming
        self._producer_paused = False
        if not streaming:
            producer.resumeProducing()

    def unregisterProducer(self) -> None:
        self.producer = None

    def _check_high_water(self) -> None:
        if (self.producer is not None and self._streaming and not self._producer_paused
                and self._conn.stream.buffered > HIGH_WATER):
            self._producer_paused = True
            self.producer.pauseProducing()

    def _drained(self) -> None:
        """The stream's queue went below the mark: let the producer write again."""
        if self.producer is None or self._conn.stream.buffered > HIGH_WATER // 2:
            return
        if self._streaming and self._producer_paused:
            self._producer_paused = False
            self.producer.resumeProducing()
        elif not self._streaming:
            self.producer.resumeProducing()

    # IPushProducer (our reader asks us to stop delivering)
    def pauseProducing(self) -> None:
        self._conn.stream.pause_reading()

    def resumeProducing(self) -> None:
        self._conn.stream.resume_reading()
        self._sock._dirty(self._conn)

    def stopProducing(self) -> None:
        self.loseConnection()


class _Connection:
    def __init__(self, sock: TouSocket, peer: Address, stream: TouStream) -> None:
        self.peer = peer
        self.stream = stream
        #: Datagrams drained but not yet written (the write pass runs after each service).
        self.outbox: list[bytes] = []
        self.driver = CoreDriver(stream, sock.reactor, lambda output: sock._output(self, output),
                                 after=lambda: sock._write_out(self))
        self.transport: TouTransport | None = None
        self.protocol: IProtocol | None = None
        self.factory: IProtocolFactory | None = None
        self.connected_d: defer.Deferred[IProtocol] | None = None
        self.lost = False
        #: (TTL, until when) for the SYNs of a punching connection.
        self.punch: tuple[int, float] | None = None

    def send_ttl(self, now: float) -> int | None:
        """The TTL our datagrams need now: the punch TTL while we still send bare SYNs within
        the punch period; None (the socket's own) otherwise."""
        if self.punch is None or self.stream.state is not State.SYN_SENT:
            return None
        ttl, until = self.punch
        return ttl if now < until else None


@implementer(IListeningPort)
class TouListeningPort:
    def __init__(self, sock: TouSocket, factory: IProtocolFactory) -> None:
        self._sock = sock
        self.factory = factory

    def startListening(self) -> None:
        self._sock._listener = self

    def stopListening(self) -> defer.Deferred[None]:
        if self._sock._listener is self:
            self._sock._listener = None
        return defer.succeed(None)

    def getHost(self) -> IPv4Address:
        return self._sock.host()


class TouSocket:
    """The TOU connections of one UDP port."""

    log = Logger()

    def __init__(self, reactor: IReactorTime, mux: UdpMux, *,
                 config: TouConfig | None = None,
                 host: Callable[[], Address] | None = None,
                 large_segments: int = LARGE_SEGMENT) -> None:
        self.reactor = reactor
        self.mux = mux
        self.config = config or TouConfig()
        #: The largest segment payload offered to rsproto peers (0: never offer, neither
        #: segments nor SACK; the SYNs are then RetroShare's to the byte); each connection
        #: offers at most what its path carries in one packet, no larger segment through a
        #: relay, and SACK ranges on every path.
        self.large_segments = large_segments
        self._host = host
        self._conns: dict[Address, _Connection] = {}
        self._listener: TouListeningPort | None = None
        self._pending: set[Address] = set()
        self._flush_call: IDelayedCall | None = None
        mux.tou_handler = self.datagram_received
        mux.tou_batch_handler = self.datagrams_received

    def now(self) -> float:
        return self.reactor.seconds()

    def host(self) -> IPv4Address:
        host, port = self._host() if self._host is not None else ("0.0.0.0", 0)
        return IPv4Address("UDP", host, port)

    @property
    def connections(self) -> dict[Address, TouStream]:
        """The streams not yet over (a finished TIME_WAIT is forgotten here)."""
        self._reap()
        return {a: c.stream for a, c in self._conns.items()}

    # -- API ---------------------------------------------------------------------------------

    def listen(self, factory: IProtocolFactory) -> TouListeningPort:
        """Accept incoming TOU connections (one listener per socket)."""
        port = TouListeningPort(self, factory)
        port.startListening()
        return port

    def connect(self, addr: Address, factory: IProtocolFactory, *,
                punch: HolePunch | None = None, timeout: float | None = None,
                replace: bool = False) -> defer.Deferred[IProtocol]:
        """Open a TOU connection to ``addr``; fires with the protocol once connected, or fails
        with `TouConnectionError`.  Also completes a simultaneous open (hole punching).

        ``punch`` sends the first SYNs with a small TTL (see `HolePunch`); ``timeout``
        replaces the configured handshake deadline; ``replace`` aborts a connection to
        ``addr`` still in its handshake (a stale punch attempt) instead of failing.
        Cancelling the returned Deferred aborts the connection."""
        old = self._conns.get(addr)
        if old is not None and old.stream.close_reason is None:
            if not replace or old.stream.connected:
                return defer.fail(TouConnectionError(CloseReason.ABORTED,
                                                     f"a connection to {addr} already exists"))
            self.log.info("replacing the unfinished TOU handshake with {addr}", addr=addr)
            old.stream.abort(self.now())
            self._service(old)
        self._drop(addr)
        self._reap()
        config = self._config_for(addr)
        if timeout is not None:
            config = dataclasses.replace(config, connect_timeout=timeout)
        stream = TouStream(config=config)
        conn = _Connection(self, addr, stream)
        conn.factory = factory
        now = self.now()
        if punch is not None:
            conn.punch = (punch.ttl, now + punch.period)

        def cancel(_: defer.Deferred[IProtocol]) -> None:
            # The connection ends now (Deferred.cancel fails the Deferred itself).
            conn.connected_d = None
            stream.abort(self.now())
            self._dirty(conn)

        conn.connected_d = defer.Deferred(cancel)
        self._conns[addr] = conn
        stream.connect(now)
        self._service(conn)
        return conn.connected_d

    def _config_for(self, addr: Address) -> TouConfig:
        """The configuration of a new stream with ``addr``: the larger-segment offer that
        its path allows (none through a relay, none where the path takes no more than the
        MSS), the SACK offer whenever we offer anything (a SACK is at most 84 bytes, so
        relays carry it), and window scaling to a direct peer (a relay forwards at its own
        rate, and 64 KiB in flight is what RetroShare's relays are used to)."""
        offer = 0
        if self.large_segments > self.config.mss and not self.mux.is_relayed(addr):
            offer = min(self.large_segments, path_segment_limit(addr[0]))
        if offer <= self.config.mss:
            offer = 0
        if not self.large_segments:
            return self.config
        direct = not self.mux.is_relayed(addr)
        return dataclasses.replace(self.config, offer_segment=offer, sack=True,
                                   scale_window=direct, hole_window=direct)

    # -- datagrams ---------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address) -> None:
        conn = self._conns.get(addr)
        if conn is None or (conn.stream.state is State.CLOSED and conn.lost):
            if self._listener is None:
                return
            self._drop(addr)
            # Only a SYN opens a stream: the path is looked up for nothing else.
            syn = len(data) > 13 and data[13] & _SYN_BIT
            stream = TouStream(config=self._config_for(addr) if syn else self.config)
            conn = _Connection(self, addr, stream)
            conn.factory = self._listener.factory
            stream.listen(self.now())
            stream.datagram_received(data, self.now())
            if stream.state is not State.SYN_RCVD:
                return  # not a SYN: nothing to answer
            self._reap()
            self._conns[addr] = conn
        else:
            conn.stream.datagram_received(data, self.now())
        self._dirty(conn)

    def datagrams_received(self, datagrams: list[bytes], addr: Address) -> None:
        """A burst of segments from ``addr`` read at once: fed to its stream in one pass."""
        conn = self._conns.get(addr)
        if conn is None or conn.lost:
            for data in datagrams:
                self.datagram_received(data, addr)
            return
        now = self.now()
        receive = conn.stream.datagram_received
        for data in datagrams:
            receive(data, now)
        self._dirty(conn)

    def _dirty(self, conn: _Connection) -> None:
        self._pending.add(conn.peer)
        if self._flush_call is None or not self._flush_call.active():
            self._flush_call = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flush_call = None
        pending, self._pending = self._pending, set()
        for addr in pending:
            conn = self._conns.get(addr)
            if conn is not None:
                self._service(conn)

    def _service(self, conn: _Connection) -> None:
        """Drain the stream (its driver re-arms the one timer), then let a paused writer
        write again if the queue went down."""
        conn.driver.service()
        if conn.transport is not None:
            conn.transport._drained()

    def _output(self, conn: _Connection, output: Datagram | Event) -> None:
        """One output of ``conn``'s stream, in order: a datagram for the peer or an event."""
        if isinstance(output, Datagram):
            conn.outbox.append(output.data)
            return
        self._deliver(conn, output)
        # What the protocol did in reaction (write, close) leaves in this same drain.
        conn.driver.service()

    def _write_out(self, conn: _Connection) -> None:
        """The write pass: what ``conn``'s stream drained during one service, in order."""
        if conn.outbox:
            out, conn.outbox = conn.outbox, []
            self.mux.send_many(out, conn.peer, ttl=conn.send_ttl(self.now()))

    def _deliver(self, conn: _Connection, event: Event) -> None:
        if isinstance(event, Connected):
            self._connected(conn)
        elif isinstance(event, DataReceived):
            if conn.protocol is not None:
                conn.protocol.dataReceived(event.data)
        elif isinstance(event, EndOfStream):
            # No half-close for our protocols: the peer is done, so are we (after our data).
            conn.stream.close(self.now())
        elif isinstance(event, Closed):
            self._closed(conn, event.reason)

    def _connected(self, conn: _Connection) -> None:
        factory = conn.factory
        protocol = factory.buildProtocol(IPv4Address("UDP", *conn.peer)) if factory else None
        if protocol is None:
            conn.stream.abort(self.now())
            return
        conn.protocol = protocol
        conn.transport = TouTransport(self, conn)
        protocol.makeConnection(conn.transport)
        if conn.connected_d is not None:
            d, conn.connected_d = conn.connected_d, None
            d.callback(protocol)

    def _closed(self, conn: _Connection, reason: CloseReason) -> None:
        conn.lost = True
        if conn.connected_d is not None:
            d, conn.connected_d = conn.connected_d, None
            d.errback(TouConnectionError(reason, f"to {conn.peer}"))
        if conn.protocol is not None:
            if reason is CloseReason.CLOSED:
                failure = Failure(ConnectionDone(str(reason)))
            else:
                failure = Failure(ConnectionLost(str(reason)))
            protocol, conn.protocol = conn.protocol, None
            if conn.transport is not None:
                conn.transport.disconnecting = True
            protocol.connectionLost(failure)
        self._reap()

    def _reap(self) -> None:
        """Forget the connections that are over (TIME_WAIT included, once it ended): the
        table holds live connections and those still in TIME_WAIT only."""
        for addr in [a for a, c in self._conns.items()
                     if c.lost and c.stream.state is State.CLOSED]:
            del self._conns[addr]

    def _drop(self, addr: Address) -> None:
        conn = self._conns.pop(addr, None)
        if conn is not None:
            self._write_out(conn)
            conn.driver.stop()

    def close(self) -> None:
        """Abort every connection and cancel every timer (for shutdown)."""
        for conn in list(self._conns.values()):
            conn.stream.abort(self.now())
            self._service(conn)
            self._drop(conn.peer)
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        self.mux.tou_handler = None
        self.mux.tou_batch_handler = None


@implementer(IStreamClientEndpoint)
class TouClientEndpoint:
    """``connect(factory)`` to one remote address over a `TouSocket`."""

    def __init__(self, sock: TouSocket, host: str, port: int) -> None:
        self._sock = sock
        self._addr = (host, port)

    def connect(self, factory: IProtocolFactory) -> defer.Deferred[IProtocol]:
        return self._sock.connect(self._addr, factory)


@implementer(IStreamServerEndpoint)
class TouServerEndpoint:
    """``listen(factory)`` for incoming TOU connections on a `TouSocket`."""

    def __init__(self, sock: TouSocket) -> None:
        self._sock = sock

    def listen(self, factory: IProtocolFactory) -> defer.Deferred[IListeningPort]:
        return defer.succeed(self._sock.listen(factory))
