# -*- test-case-name: tests.test_udpmux -*-
"""The shared UDP port: datagrams go to the right layer by shape, stun requests are answered,
relays are forwarded or unwrapped, and a real UDP socket carries it all."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol

from tcponudp.packet import Flags, TouPacket, encode_packet
from tcponudp.relay import RelayClass, RelayEnd, RelayForwarder, RelayHeader, encode_relay
from tcponudp.stunner import StunRequest, StunResponse, answer_request
from tcponudp.udpmux import DatagramKind, UdpMux, UdpMuxProtocol, classify
from tests.service_fakes import on_fresh_reactor

A = ("127.0.0.1", 7001)
B = ("127.0.0.1", 7002)
TOU = encode_packet(TouPacket(seq=1, ack=2, flags=Flags.ACK, window=10, payload=b"p"))


def test_classify_by_shape() -> None:
    """Bencode, relay, stun request/response, TOU and garbage are told apart."""
    assert classify(b"d1:ad2:id20:") == DatagramKind.DHT
    assert classify(encode_relay(RelayHeader(A, B), TOU)) == DatagramKind.RELAY
    assert classify(StunRequest(b"\0" * 16).encode()) == DatagramKind.STUN
    assert classify(answer_request(StunRequest(b"\0" * 16), A)) == DatagramKind.STUN
    assert classify(TOU) == DatagramKind.TOU
    assert classify(b"\0\0\0\0" + b"\0" * 15) == DatagramKind.UNKNOWN
    assert classify(b"") == DatagramKind.UNKNOWN


def _mux() -> tuple[UdpMux, list[tuple[bytes, Any]], dict[str, list[Any]]]:
    sent: list[tuple[bytes, Any]] = []
    got: dict[str, list[Any]] = {"dht": [], "tou": [], "stun": []}
    mux = UdpMux(dht_handler=lambda d, a: got["dht"].append((d, a)),
                 tou_handler=lambda d, a: got["tou"].append((d, a)),
                 stun_handler=lambda d, a: got["stun"].append((d, a)))
    mux.attach(lambda d, a: sent.append((d, a)))
    return mux, sent, got


def test_dispatch_and_stun_answer() -> None:
    """Each kind reaches its handler; a stun request is answered with the sender's address;
    unknown datagrams are counted."""
    mux, sent, got = _mux()
    mux.datagram_received(b"d1:y1:qe", A)
    mux.datagram_received(TOU, A)
    req = StunRequest(b"\7" * 16)
    mux.datagram_received(req.encode(), A)
    resp = StunResponse(b"\7" * 16, B).encode()
    mux.datagram_received(resp, B)
    mux.datagram_received(b"junk", B)
    assert got == {"dht": [(b"d1:y1:qe", A)], "tou": [(TOU, A)], "stun": [(resp, B)]}
    assert sent == [(answer_request(req, A), A)]
    assert mux.unclaimed == 1


def test_relay_forwarding_and_ends() -> None:
    """As proxy the mux forwards unchanged; as an end it unwraps to the TOU handler under the
    remote's address, and wraps what TOU sends to that remote."""
    proxy = ("127.0.0.1", 7000)
    mux, sent, got = _mux()
    mux.relay_forwarder = RelayForwarder()
    mux.relay_forwarder.add(A, B, RelayClass.FRIENDS, 0.0)
    pkt = encode_relay(RelayHeader(A, B), TOU)
    mux.datagram_received(pkt, A)
    assert sent == [(pkt, B)]
    end_mux, end_sent, end_got = _mux()
    end_mux.add_relay_end(RelayEnd(local=B, proxy=proxy, remote=A))
    end_mux.datagram_received(pkt, proxy)
    assert end_got["tou"] == [(TOU, A)]
    end_mux.send(b"answer", A)
    assert end_sent == [(encode_relay(RelayHeader(B, A), b"answer"), proxy)]
    end_mux.datagram_received(pkt, ("127.0.0.1", 9999))  # not from our proxy
    assert end_mux.unclaimed == 1
    end_mux.remove_relay_end(A)
    end_mux.send(b"direct", A)
    assert end_sent[-1] == (b"direct", A)


def test_write_errors_do_not_escape() -> None:
    """An OSError from the socket for one destination is logged, not raised."""
    mux = UdpMux()

    def fail(data: bytes, addr: Any) -> None:
        raise OSError("unreachable")

    mux.attach(fail)
    mux.send(b"x", A)


@pytest.mark.integration
def test_real_socket_answers_stun() -> None:
    """A UdpMuxProtocol on 127.0.0.1 answers a stun request from a real client socket with
    the client's address and port."""

    async def body(reactor: Any) -> tuple[bytes, int]:
        answered: defer.Deferred[bytes] = defer.Deferred()

        class Client(DatagramProtocol):
            def datagramReceived(self, data: bytes, addr: Any) -> None:
                answered.callback(data)

        server = reactor.listenUDP(0, UdpMuxProtocol(UdpMux()), interface="127.0.0.1")
        client = reactor.listenUDP(0, Client(), interface="127.0.0.1")
        port = client.getHost().port
        try:
            client.write(StunRequest(b"\5" * 16).encode(),
                         ("127.0.0.1", server.getHost().port))
            data = await answered
        finally:
            await server.stopListening()
            await client.stopListening()
        return data, port

    data, port = on_fresh_reactor(body)
    assert data == answer_request(StunRequest(b"\5" * 16), ("127.0.0.1", port))


@pytest.mark.integration
def test_send_many_delivers_the_same_datagrams_in_order() -> None:
    """`UdpMux.send_many` on a real socket: the peer receives exactly the datagrams given, in
    order, however the runs were grouped (segmentation offload where the kernel has it: runs
    of equal size up to `GSO_MAX_SEGMENTS`, a shorter datagram closing a run)."""
    import socket

    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.bind(("127.0.0.1", 0))
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5.0)
        mux = UdpMux()
        mux.attach(lambda d, a: sender.sendto(d, a), sender)
        datagrams = ([bytes([i]) * 120 for i in range(70)] + [b"short" * 10]
                     + [bytes([i]) * 120 for i in range(10)])
        mux.send_many(datagrams, receiver.getsockname())
        got = [receiver.recv(2048) for _ in datagrams]
    finally:
        sender.close()
        receiver.close()
    assert got == datagrams
    # 64 equal ones; 6 more closed by the short one; the last 10.
    assert (mux.gso_sends, mux.gso_datagrams) == ((3, 81) if mux.gso else (0, 0))


def test_send_many_sends_one_by_one_through_a_relay_or_with_a_ttl() -> None:
    """A relayed address is wrapped per datagram and a TTL of its own is set per datagram:
    neither goes through segmentation offload, and the order holds."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sent: list[tuple[bytes, Any]] = []
        mux = UdpMux()
        mux.attach(lambda d, a: sent.append((d, a)), sock)
        proxy = ("127.0.0.1", 9)
        mux.add_relay_end(RelayEnd(local=A, proxy=proxy, remote=B))
        mux.send_many([b"1" * 30, b"2" * 30], B)
        mux.send_many([b"3" * 30, b"4" * 30], A, ttl=3)
    finally:
        sock.close()
    assert [a for _, a in sent] == [proxy, proxy, A, A]
    assert sent[2:] == [(b"3" * 30, A), (b"4" * 30, A)]
    assert mux.ttl_limited == 2 and mux.gso_sends == 0


@pytest.mark.integration
def test_batch_port_hands_over_the_datagrams_sent_in_order() -> None:
    """A burst sent in one segmentation-offload send reaches a `BatchUdpPort` as exactly the
    datagrams sent, in order (a shorter last one included), in fewer reads than datagrams
    where the kernel coalesces; a protocol without ``datagramsReceived`` gets them one by one."""
    import socket

    from tcponudp.udpport import listen_udp

    datagrams = [bytes([i]) * 300 for i in range(40)] + [b"tail" * 10]

    async def body(reactor: Any) -> tuple[list[bytes], list[bytes], int, int]:
        batches: list[list[bytes]] = []
        singles: list[bytes] = []
        both: defer.Deferred[None] = defer.Deferred()

        def check() -> None:
            if sum(map(len, batches)) == len(datagrams) and len(singles) == len(datagrams):
                both.callback(None)

        class Batched(DatagramProtocol):
            def datagramsReceived(self, data: list[bytes], addr: Any) -> None:
                batches.append(data)
                check()

            def datagramReceived(self, data: bytes, addr: Any) -> None:
                batches.append([data])
                check()

        class Single(DatagramProtocol):
            def datagramReceived(self, data: bytes, addr: Any) -> None:
                singles.append(data)
                check()

        ports = [listen_udp(reactor, 0, Batched(), interface="127.0.0.1"),
                 listen_udp(reactor, 0, Single(), interface="127.0.0.1")]
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sender.bind(("127.0.0.1", 0))
            mux = UdpMux()
            mux.attach(lambda d, a: sender.sendto(d, a), sender)
            for port in ports:
                mux.send_many(datagrams, ("127.0.0.1", port.getHost().port))
            await both
        finally:
            sender.close()
            for port in ports:
                await port.stopListening()
        return [d for b in batches for d in b], singles, ports[0].reads, ports[0].datagrams

    got, singles, reads, counted = on_fresh_reactor(body)
    assert got == datagrams and singles == datagrams
    assert counted == len(datagrams) and reads <= len(datagrams)


def test_a_burst_of_tou_segments_reaches_tou_in_one_call() -> None:
    """`UdpMux.datagrams_received`: a burst of TOU segments goes to the batch handler at once
    (counted as TOU); a burst with anything else in it is dispatched one by one."""
    mux = UdpMux()
    batches: list[tuple[list[bytes], Any]] = []
    singles: list[bytes] = []
    mux.tou_batch_handler = lambda d, a: batches.append((d, a))
    mux.tou_handler = lambda d, a: singles.append(d)
    dht: list[bytes] = []
    mux.dht_handler = lambda d, a: dht.append(d)
    seg = [encode_packet(TouPacket(seq=i, ack=0, flags=Flags.ACK, window=1, payload=b"x"))
           for i in range(3)]
    mux.datagrams_received(seg, A)
    assert batches == [(seg, A)] and mux.counts[DatagramKind.TOU] == 3
    mux.datagrams_received([seg[0], b"d1:ad2:id20:" + b"0" * 20 + b"e1:q4:ping1:t2:aa1:y1:qe"], A)
    assert singles == [seg[0]] and len(dht) == 1 and len(batches) == 1
