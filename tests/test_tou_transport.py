# -*- test-case-name: tests.test_tou_transport -*-
"""TOU as a Twisted transport: TLS and the PQI streamer run over it unchanged, on real UDP
sockets on 127.0.0.1, directly and through the seeded lossy relay (5% loss, reordering)."""

from __future__ import annotations

import datetime
import os
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import crypto
from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory

from pqi.wire.item import UnknownItem
from pqi.wire.streamer import PQIStreamer
from tcponudp.errors import TouConnectionError
from tcponudp.packet import Flags, TouPacket, decode_packet, encode_packet
from tcponudp.stream import CloseReason, TouConfig
from tcponudp.transport import TouClientEndpoint, TouServerEndpoint, TouSocket
from tcponudp.udpmux import UdpMux, UdpMuxProtocol
from tcponudp.udpport import listen_udp
from tests.service_fakes import on_fresh_reactor
from tools.netlab.lossyrelay import Impairment, LossyCore, LossyRelay

MIB = 1 << 20


def _tls_options() -> tuple[CertificateOptions, CertificateOptions]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tou-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    server = CertificateOptions(privateKey=crypto.PKey.from_cryptography_key(key),
                                certificate=crypto.X509.from_cryptography(cert))
    return server, CertificateOptions()


class _Sink(Protocol):
    def __init__(self, n: int, done: defer.Deferred[bytes]) -> None:
        self.n, self.done, self.got = n, done, bytearray()

    def dataReceived(self, data: bytes) -> None:
        self.got += data
        if len(self.got) >= self.n and not self.done.called:
            self.done.callback(bytes(self.got))


def test_memory_reactor_connect_send_close() -> None:
    """With a fake clock and an in-memory wire: connect, write, the peer's protocol sees the
    bytes, loseConnection reaches both protocols as a clean close, timers are left empty."""
    clock = Clock()
    muxes = [UdpMux(), UdpMux()]
    addrs = [("127.0.0.1", 1), ("127.0.0.1", 2)]
    wire: list[tuple[int, bytes, Any]] = []
    for i, mux in enumerate(muxes):
        mux.attach(lambda d, a, i=i: wire.append((1 - i, d, addrs[i])))
    socks = [TouSocket(clock, m) for m in muxes]
    done: defer.Deferred[bytes] = defer.Deferred()
    sink = _Sink(5, done)
    lost: list[str] = []
    sink.connectionLost = lambda r: lost.append(r.getErrorMessage())  # type: ignore[method-assign]
    TouServerEndpoint(socks[1]).listen(Factory.forProtocol(lambda: sink))
    client = Protocol()
    d = TouClientEndpoint(socks[0], *addrs[1]).connect(Factory.forProtocol(lambda: client))
    for _ in range(200):
        clock.advance(0.001)
        while wire:
            i, data, src = wire.pop(0)
            muxes[i].datagram_received(data, src)
        if d.called and client.transport is not None and not done.called:
            client.transport.write(b"hello")
        if done.called and not lost:
            client.transport.loseConnection()
    assert done.result == b"hello"
    assert lost and "closed cleanly" in lost[0]
    clock.advance(5.0)
    assert socks[0].connections == {} and socks[1].connections == {}


def test_reply_written_on_data_carries_the_ack() -> None:
    """Over the driven transport, an echo written in dataReceived leaves in the same turn in
    the segment that acknowledges the request: no pure ACK goes before it."""
    clock = Clock()
    muxes = [UdpMux(), UdpMux()]
    addrs = [("127.0.0.1", 1), ("127.0.0.1", 2)]
    wire: list[tuple[int, bytes, Any]] = []
    for i, mux in enumerate(muxes):
        mux.attach(lambda d, a, i=i: wire.append((1 - i, d, addrs[i])))
    socks = [TouSocket(clock, m) for m in muxes]

    class Echo(Protocol):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data)

    TouServerEndpoint(socks[1]).listen(Factory.forProtocol(Echo))
    client = Protocol()
    d = TouClientEndpoint(socks[0], *addrs[1]).connect(Factory.forProtocol(lambda: client))
    for _ in range(50):
        clock.advance(0.001)
        while wire:
            i, data, src = wire.pop(0)
            muxes[i].datagram_received(data, src)
    assert d.called
    client.transport.write(b"ping")
    clock.advance(0)
    (request,) = [decode_packet(data) for _, data, _ in wire]
    muxes[1].datagram_received(wire.pop()[1], addrs[0])
    clock.advance(0)
    (reply,) = [decode_packet(data) for _, data, _ in wire]
    assert reply.payload == b"ping" and reply.ack == (request.seq + 4) % 2**32
    socks[0].close()
    socks[1].close()
    assert clock.getDelayedCalls() == []


def test_connect_timeout_errback() -> None:
    """A dial nobody answers fails with TouConnectionError(CONNECT_TIMEOUT)."""
    clock = Clock()
    mux = UdpMux()
    mux.attach(lambda d, a: None)
    sock = TouSocket(clock, mux, config=TouConfig(connect_timeout=3.0))
    d = sock.connect(("127.0.0.1", 9), Factory.forProtocol(Protocol))
    failures: list[Any] = []
    d.addErrback(failures.append)
    clock.pump([0.5] * 10)
    assert failures and isinstance(failures[0].value, TouConnectionError)
    assert failures[0].value.reason is CloseReason.CONNECT_TIMEOUT


def test_unknown_segments_are_ignored_without_listener() -> None:
    """A SYN to a socket that does not listen, or a stray ACK, creates nothing."""
    clock = Clock()
    mux = UdpMux()
    sent: list[bytes] = []
    mux.attach(lambda d, a: sent.append(d))
    sock = TouSocket(clock, mux)
    syn = encode_packet(TouPacket(seq=1, ack=0, flags=Flags.SYN, window=100))
    mux.datagram_received(syn, ("127.0.0.1", 5))
    sock.listen(Factory.forProtocol(Protocol))
    mux.datagram_received(encode_packet(TouPacket(seq=1, ack=0, flags=Flags.ACK, window=1)),
                          ("127.0.0.1", 6))
    clock.advance(0)
    assert sent == [] and sock.connections == {}
    mux.datagram_received(syn, ("127.0.0.1", 5))
    clock.advance(0)
    assert [decode_packet(d).flags for d in sent] == [Flags.SYN | Flags.ACK]


def _transfer(impairment: Impairment | None, seed: int = 1, *, batch: bool = False
              ) -> tuple[list[bytes], list[bytes]]:
    """1 MiB of PQI items over TLS over TOU between two UDP ports on 127.0.0.1 (Twisted's own
    ports, or with ``batch`` `tcponudp.udpport.BatchUdpPort`s reading bursts at once)."""
    payloads = [os.urandom(64 * 1024) for _ in range(MIB // (64 * 1024))]
    server_tls, client_tls = _tls_options()

    async def body(reactor: Any) -> list[bytes]:
        got: list[bytes] = []
        all_in: defer.Deferred[None] = defer.Deferred()

        def on_item(item: Any) -> None:
            got.append(item.body)
            if len(got) == len(payloads):
                all_in.callback(None)

        muxes = [UdpMux(), UdpMux()]
        ports = [listen_udp(reactor, 0, UdpMuxProtocol(m), interface="127.0.0.1") if batch
                 else reactor.listenUDP(0, UdpMuxProtocol(m), interface="127.0.0.1")
                 for m in muxes]
        socks = [TouSocket(reactor, m) for m in muxes]
        target = ("127.0.0.1", ports[1].getHost().port)
        relay_port = None
        if impairment is not None:
            relay = LossyRelay(reactor, ("127.0.0.1", ports[0].getHost().port), target,
                               impairment, seed)
            relay_port = reactor.listenUDP(0, relay, interface="127.0.0.1")
            target = ("127.0.0.1", relay_port.getHost().port)
        try:
            server = TLSMemoryBIOFactory(server_tls, False, Factory.forProtocol(
                lambda: PQIStreamer(reactor, on_item=on_item, peer="server")))
            await TouServerEndpoint(socks[1]).listen(server)
            client = TLSMemoryBIOFactory(client_tls, True, Factory.forProtocol(
                lambda: PQIStreamer(reactor, peer="client")))
            tls = await TouClientEndpoint(socks[0], *target).connect(client)
            streamer = tls.wrappedProtocol
            for body_bytes in payloads:
                streamer.send(UnknownItem(service=0x7E57, subtype=1, body=body_bytes))
            await all_in
            tls.transport.loseConnection()
        finally:
            for sock in socks:
                sock.close()
            for port in ports + ([relay_port] if relay_port else []):
                await port.stopListening()
        return got

    return payloads, on_fresh_reactor(body, timeout=120.0)


@pytest.mark.integration
def test_tls_and_streamer_over_tou_loopback() -> None:
    """1 MiB of items over TLS over TOU between two real UDP ports arrives byte-exact."""
    sent, got = _transfer(None)
    assert got == sent


@pytest.mark.integration
def test_tls_and_streamer_over_batch_reading_ports() -> None:
    """The same over ports that read bursts in one call (``UDP_GRO`` where Linux has it):
    the bursts are cut back into the segments sent, and the items arrive byte-exact."""
    sent, got = _transfer(None, batch=True)
    assert got == sent


@pytest.mark.slow
@pytest.mark.integration
def test_tls_and_streamer_through_lossy_relay() -> None:
    """Through the seeded lossy relay (5% loss, 1% duplication, 10% reordering, 2 ms delay),
    1 MiB of items over TLS over TOU still arrives byte-exact."""
    sent, got = _transfer(Impairment(loss=0.05, duplicate=0.01, reorder=0.10, delay=0.002,
                                     reorder_delay=0.01))
    assert got == sent


def test_lossy_core_is_seeded() -> None:
    """The same seed gives the same fates; loss, duplication and reordering are counted."""
    def run(seed: int) -> list[tuple[bytes, Any]]:
        core = LossyCore(Impairment(loss=0.2, duplicate=0.2, reorder=0.3, delay=0.01), seed)
        for i in range(200):
            core.submit(bytes([i]), ("127.0.0.1", 1), i * 0.001)
        out = core.due(10.0)
        assert core.dropped and core.duplicated and core.reordered
        assert len(out) == 200 - core.dropped + core.duplicated
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)
