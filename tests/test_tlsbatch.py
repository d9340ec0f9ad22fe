# -*- test-case-name: tests.test_tlsbatch -*-
"""The batching TLS protocol: same bytes and events as Twisted's, far fewer calls per byte.

Real OpenSSL handshakes between two friends' locations over `twisted.test.iosim`
(``tests.test_tls.connect_in_memory``), so the links are the ones a node makes.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from OpenSSL import SSL
from twisted.internet import task
from twisted.internet.error import ConnectionDone
from twisted.protocols.policies import ProtocolWrapper

from pqi.identity.tlsbatch import (
    MAX_DELIVERY,
    MAX_SSL_WRITE,
    MAX_WRAPPERS,
    BatchingTLSProtocol,
    take_whole_writes,
)
from tests.identity_fixtures import *  # noqa: F403
from tests.test_tls import (  # noqa: F401 (fixtures)
    Identity,
    Link,
    alice,
    befriend,
    bob,
    connect_in_memory,
    friend_lists,
)

#: Application data per TLS record (RFC 8446, section 5.1).
RECORD = 16 * 1024


class CountingConnection:
    """A pyOpenSSL connection that counts the ``send`` calls made on it."""

    def __init__(self, inner: SSL.Connection) -> None:
        self.inner = inner
        self.sends = 0

    def send(self, data: Any) -> int:
        self.sends += 1
        return self.inner.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def link(request: pytest.FixtureRequest) -> Link:
    """Alice's location linked to Bob's, both friends, handshake done."""
    dialler: Identity = request.getfixturevalue("alice")
    listener: Identity = request.getfixturevalue("bob")
    a, b = request.getfixturevalue("friend_lists")
    befriend(a, listener)
    befriend(b, dialler)
    made = connect_in_memory(dialler, a, listener, b)
    assert made.client_app.built and made.server_app.built
    return made


def pump(link: Link) -> None:
    for _ in range(100):
        if not link.pump.pump():
            return


def counted_deliveries(link: Link) -> list[int]:
    """Wrap the server's app so each ``dataReceived`` records its size."""
    server = link.server_app.built[0]
    sizes: list[int] = []
    original = server.dataReceived

    def record(data: bytes) -> None:
        sizes.append(len(data))
        original(data)

    server.dataReceived = record  # type: ignore[method-assign]
    return sizes


async def _both_built(reactor: Any, client_app: Any, server_app: Any) -> None:
    """Wait (5 s at most) until both ends of a real link built their application."""
    for _ in range(500):
        if client_app.built and server_app.built:
            return
        await task.deferLater(reactor, 0.01, lambda: None)


def _count_writes(transport: Any) -> list[int]:
    """Make ``transport`` record the size of each write handed to it (what goes through
    Twisted's buffer instead of straight to the socket)."""
    sizes: list[int] = []
    original = transport.write

    def counting(chunk: bytes) -> None:
        sizes.append(len(chunk))
        original(chunk)

    transport.write = counting
    transport.writeSequence = lambda chunks: [counting(c) for c in chunks]
    return sizes


def test_node_links_use_the_batching_protocol(link: Link) -> None:
    """Both ends of a friend link run `BatchingTLSProtocol`."""
    assert isinstance(link.client_tls, BatchingTLSProtocol)
    assert isinstance(link.server_tls, BatchingTLSProtocol)


def test_one_read_is_one_delivery(link: Link) -> None:
    """512 KiB (32 records) arriving in one read reach the app intact in one call."""
    sizes = counted_deliveries(link)
    data = os.urandom(512 * 1024)
    link.client_app.built[0].transport.write(data)
    pump(link)
    assert link.server_app.built[0].received == data
    assert sizes == [len(data)]


def test_views_only_to_an_application_that_takes_them(link: Link) -> None:
    """A plain application gets ``bytes``; one whose ``accepts_views`` is true gets read-only
    memoryviews of buffers the TLS layer never touches again: what it keeps of the first
    delivery still holds its bytes after more arrive."""
    server = link.server_app.built[0]
    got: list[Any] = []
    original = server.dataReceived

    def record(data: Any) -> None:
        got.append(data)
        original(bytes(data))

    server.dataReceived = record  # type: ignore[method-assign]
    first, second = os.urandom(100_000), os.urandom(100_000)
    link.client_app.built[0].transport.write(first)
    pump(link)
    assert [type(d) for d in got] == [bytes]
    server.accepts_views = True
    link.client_app.built[0].transport.write(first)
    pump(link)
    link.client_app.built[0].transport.write(second)
    pump(link)
    assert [type(d) for d in got] == [bytes, memoryview, memoryview]
    assert got[1].readonly and bytes(got[1]) == first and bytes(got[2]) == second
    assert server.received == first + first + second


def test_delivery_bound(link: Link) -> None:
    """A read holding more than `MAX_DELIVERY` bytes is handed up in pieces of at most that
    much (plus the record that crossed the bound), in order."""
    sizes = counted_deliveries(link)
    data = os.urandom(3 * MAX_DELIVERY + 12345)
    link.client_app.built[0].transport.write(data)
    pump(link)
    assert link.server_app.built[0].received == data
    assert len(sizes) == 4
    assert all(MAX_DELIVERY <= s < MAX_DELIVERY + RECORD for s in sizes[:3])


def test_one_ssl_write_per_piece(link: Link) -> None:
    """A write goes to OpenSSL in `MAX_SSL_WRITE` pieces, each taken whole, and leaves in one
    transport write; the peer reads the same bytes."""
    counting = CountingConnection(link.client_tls._tlsConnection)
    link.client_tls._tlsConnection = counting
    transport = link.client_tls.transport
    writes: list[int] = []
    original = transport.write

    def record(data: bytes) -> None:
        writes.append(len(data))
        original(data)

    transport.write = record
    data = os.urandom(2 * MAX_SSL_WRITE + 1000)
    link.client_app.built[0].transport.write(data)
    assert counting.sends == 3
    assert len(writes) == 1 and writes[0] > len(data)
    pump(link)
    assert link.server_app.built[0].received == data


def test_whole_writes_mode() -> None:
    """`take_whole_writes` clears OpenSSL's partial-write mode that pyOpenSSL sets."""
    context = SSL.Context(SSL.TLS_METHOD)
    assert context.set_mode(0) & 1
    take_whole_writes(context)
    assert not context.set_mode(0) & 1


def test_data_before_close(link: Link) -> None:
    """Data and the close alert in one read: the app gets all the data, then a clean close."""
    server = link.server_app.built[0]
    client = link.client_app.built[0]
    data = os.urandom(100_000)
    client.transport.write(data)
    client.transport.loseConnection()
    pump(link)
    assert server.received == data
    assert server.lost is not None and server.lost.check(ConnectionDone)


def test_data_before_error(link: Link) -> None:
    """Intact records before a forged one in the same read are delivered; then the link
    fails with OpenSSL's error."""
    server = link.server_app.built[0]
    client = link.client_app.built[0]
    client.transport.write(b"a" * 1000)
    client.transport.write(b"b" * 1000)
    wire = bytearray(link.client_tls.transport.getOutBuffer())
    wire[-5] ^= 0xFF  # inside the second record's authentication tag
    link.server_tls.dataReceived(bytes(wire))
    pump(link)
    assert server.received == b"a" * 1000
    assert server.lost is not None and server.lost.check(SSL.Error)


@pytest.mark.integration
def test_real_tcp_sends_straight_from_the_bio(request: pytest.FixtureRequest) -> None:
    """Over real TCP on 127.0.0.1, what OpenSSL makes leaves by the socket at once when the
    transport has nothing waiting; what the socket refuses (a peer that does not read) goes
    through Twisted's buffer in order: 24 MiB written while the reader is paused arrive
    intact, and both paths were taken."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint

    from pqi.identity.tls import client_endpoint_factory, server_factory
    from tests.service_fakes import on_fresh_reactor
    from tests.test_tls import RecorderFactory

    dialler: Identity = request.getfixturevalue("alice")
    listener: Identity = request.getfixturevalue("bob")
    a, b = request.getfixturevalue("friend_lists")
    befriend(a, listener)
    befriend(b, dialler)
    data = os.urandom(24 << 20)

    async def body(reactor: Any) -> tuple[bytes, int]:
        client_app, server_app = RecorderFactory(), RecorderFactory()
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            server_factory(listener, b, server_app, clock=reactor))
        try:
            await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(
                client_endpoint_factory(dialler, a, client_app, listener.ssl_id,
                                        clock=reactor))
            await _both_built(reactor, client_app, server_app)
            client, server = client_app.built[0], server_app.built[0]
            server.transport.pauseProducing()  # the reader stops: the socket fills up
            tls = client.transport
            tcp_transport = tls.transport
            buffered = _count_writes(tcp_transport)
            for offset in range(0, len(data), 1 << 20):
                tls.write(data[offset:offset + (1 << 20)])
            server.transport.resumeProducing()
            for _ in range(3000):
                if len(server.received) >= len(data):
                    break
                await task.deferLater(reactor, 0.01, lambda: None)
            client.transport.loseConnection()
            return bytes(server.received), sum(buffered)
        finally:
            await port.stopListening()

    received, through_twisted = on_fresh_reactor(body)  # type: ignore[misc]
    assert received == data
    # The paused reader's socket cannot hold 24 MiB: some records went through Twisted's
    # buffer; the first ones, sent while nothing waited, went direct (the kernel's buffers
    # on loopback hold megabytes).
    assert 0 < through_twisted < len(data) - (1 << 20)


class _CountingWrapper(ProtocolWrapper):
    """A wrapper that does something with writes (counts them): not to be looked through."""

    seen = 0

    def write(self, data: bytes) -> None:
        type(self).seen += len(data)
        super().write(data)


@pytest.mark.integration
@pytest.mark.parametrize(("wrapper", "depth"), [(ProtocolWrapper, 1),
                                                (ProtocolWrapper, MAX_WRAPPERS),
                                                (ProtocolWrapper, MAX_WRAPPERS + 1),
                                                (_CountingWrapper, 1)])
def test_direct_sends_look_through_pass_through_wrappers(
        request: pytest.FixtureRequest, wrapper: type[ProtocolWrapper], depth: int) -> None:
    """A node's TLS layer sits on a wrapper (its link's wire), not on the TCP transport.
    Wrappers that keep `ProtocolWrapper`'s own writes are looked through, up to
    `MAX_WRAPPERS` of them: a small write leaves by the socket at once, none of it through
    Twisted's buffer, so it does not wait for the reactor's next turn.  Below more wrappers
    than that, or a wrapper with a ``write`` of its own, every byte goes through Twisted's
    buffer (and through that wrapper).  Either way the bytes arrive intact."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
    from twisted.protocols.policies import WrappingFactory

    from pqi.identity.tls import client_endpoint_factory, server_factory
    from tests.service_fakes import on_fresh_reactor
    from tests.test_tls import RecorderFactory

    dialler: Identity = request.getfixturevalue("alice")
    listener: Identity = request.getfixturevalue("bob")
    a, b = request.getfixturevalue("friend_lists")
    befriend(a, listener)
    befriend(b, dialler)
    _CountingWrapper.seen = 0
    data = os.urandom(3000)

    async def body(reactor: Any) -> tuple[bytes, int, type, int]:
        client_app, server_app = RecorderFactory(), RecorderFactory()
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            server_factory(listener, b, server_app, clock=reactor))
        try:
            wrapping: Any = client_endpoint_factory(dialler, a, client_app, listener.ssl_id,
                                                    clock=reactor)
            for _ in range(depth):
                wrapping = WrappingFactory(wrapping)
                wrapping.protocol = wrapper
            await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(
                wrapping)
            await _both_built(reactor, client_app, server_app)
            client, server = client_app.built[0], server_app.built[0]
            tls = client.transport
            tcp_transport = tls.transport
            for _ in range(depth):
                tcp_transport = tcp_transport.transport
            buffered = _count_writes(tcp_transport)
            _CountingWrapper.seen = 0
            tls.write(data)
            for _ in range(500):
                if len(server.received) >= len(data):
                    break
                await task.deferLater(reactor, 0.01, lambda: None)
            client.transport.loseConnection()
            return bytes(server.received), sum(buffered), type(tls.transport), \
                _CountingWrapper.seen
        finally:
            await port.stopListening()

    received, through_twisted, under, seen = on_fresh_reactor(body)  # type: ignore[misc]
    assert received == data
    assert under is wrapper
    if wrapper is ProtocolWrapper and depth <= MAX_WRAPPERS:
        assert through_twisted == 0 and seen == 0
    elif wrapper is ProtocolWrapper:
        assert through_twisted > len(data)
    else:
        assert through_twisted == seen > len(data)


def test_a_node_links_wire_is_looked_through() -> None:
    """A node's link wire (the wrapper under its TLS layer) hands writes down unchanged, so
    the TLS layer finds the socket below it and sends straight to it; a wire that took over
    ``write`` would put every message behind the reactor's next turn without a word."""
    from pqi.link.netinterface import _LinkWire

    assert _LinkWire.write is ProtocolWrapper.write
    assert _LinkWire.writeSequence is ProtocolWrapper.writeSequence
