# -*- test-case-name: tests.test_hole_punch_ttl -*-
"""Hole punching's small-TTL SYNs and the clean-up of a failed punch.

The TTLs are read by a real receiving socket on 127.0.0.1 (``IP_RECVTTL``): the first SYNs of a
punching TOU connection carry the punch TTL, later ones (and everything once the peer has been
heard) the socket's own, and the socket's TTL is always restored.  The clock is fake, so the
punch period is stepped, never waited for.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock

from tcponudp import HolePunch, RelayEnd, TouConnectionError, UdpMux
from tcponudp.packet import Flags, TouPacket, decode_packet, encode_packet
from tcponudp.stream import CloseReason
from tcponudp.transport import TouSocket

#: ``<linux/in.h>``; Python 3.11's socket module does not name it.
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A sending socket and a receiver that reports each datagram's TTL."""
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    receiver.settimeout(5)
    try:
        yield sender, receiver
    finally:
        sender.close()
        receiver.close()


def received(receiver: socket.socket) -> tuple[bytes, int]:
    """The next datagram and the TTL it arrived with."""
    data, ancillary, _, _ = receiver.recvmsg(2048, socket.CMSG_SPACE(4))
    ttls = [int.from_bytes(d[:4], "little") for level, kind, d in ancillary
            if level == socket.IPPROTO_IP and kind == socket.IP_TTL]
    assert len(ttls) == 1
    return data, ttls[0]


def punching_socket(sender: socket.socket) -> tuple[Clock, UdpMux, TouSocket]:
    clock = Clock()
    mux = UdpMux()
    mux.attach(sender.sendto, sender)
    return clock, mux, TouSocket(clock, mux)


@pytest.mark.integration
def test_punch_syns_carry_the_punch_ttl_for_the_period(
        sockets: tuple[socket.socket, socket.socket]) -> None:
    """SYNs sent within the punch period leave with the punch TTL (they open our NAT and die
    before the far one); the first SYN after it, with the socket's usual TTL, which the socket
    keeps between and after the limited writes."""
    sender, receiver = sockets
    usual = sender.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
    clock, mux, tou = punching_socket(sender)
    tou.connect(receiver.getsockname(), Factory.forProtocol(Protocol),
                punch=HolePunch(ttl=3, period=2.5))
    ttls = []
    for _ in range(4):  # SYNs at 0, 1, 2 (within the period) and 3 s
        data, ttl = received(receiver)
        assert decode_packet(data).flags == Flags.SYN
        ttls.append(ttl)
        assert sender.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == usual
        clock.advance(1.0)
    assert ttls == [3, 3, 3, usual]
    assert mux.ttl_limited == 3


@pytest.mark.integration
def test_punch_ttl_ends_once_the_peer_is_heard(
        sockets: tuple[socket.socket, socket.socket]) -> None:
    """The peer's SYN came through both NATs (a simultaneous open): from then on nothing is
    limited, so the answer reaches the peer at once."""
    sender, receiver = sockets
    usual = sender.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
    clock, mux, tou = punching_socket(sender)
    peer = receiver.getsockname()
    tou.connect(peer, Factory.forProtocol(Protocol), punch=HolePunch(ttl=2, period=60.0))
    assert received(receiver)[1] == 2
    mux.datagram_received(encode_packet(TouPacket(seq=77, ack=0, flags=Flags.SYN, window=1000)),
                          peer)
    clock.advance(0)
    data, ttl = received(receiver)
    assert decode_packet(data).ack == 78 and ttl == usual


@pytest.mark.integration
def test_unlimited_connections_and_relayed_datagrams_keep_the_usual_ttl(
        sockets: tuple[socket.socket, socket.socket]) -> None:
    """A connection without a punch, and a datagram wrapped for a relay (the proxy must receive
    it), go out with the socket's TTL even when a TTL is asked for."""
    sender, receiver = sockets
    usual = sender.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
    clock, mux, tou = punching_socket(sender)
    tou.connect(receiver.getsockname(), Factory.forProtocol(Protocol))
    assert received(receiver)[1] == usual
    remote = ("127.0.0.9", 7813)
    mux.add_relay_end(RelayEnd(local=("127.0.0.1", 7813), proxy=receiver.getsockname(),
                               remote=remote))
    mux.send(b"\x00" * 20, remote, ttl=2)
    data, ttl = received(receiver)
    assert data.startswith(b"RLY1") and ttl == usual
    assert mux.ttl_limited == 0


def test_hole_punch_rejects_impossible_values() -> None:
    """A TTL is 1..255 and a period is not negative."""
    for ttl, period in ((0, 1.0), (256, 1.0), (4, -1.0)):
        with pytest.raises(ValueError):
            HolePunch(ttl, period)


def memory_socket() -> tuple[Clock, list[tuple[bytes, Any]], TouSocket]:
    clock = Clock()
    mux = UdpMux()
    sent: list[tuple[bytes, Any]] = []
    mux.attach(lambda d, a: sent.append((d, a)))
    return clock, sent, TouSocket(clock, mux)


def test_a_new_punch_replaces_a_stale_handshake() -> None:
    """A handshake left from an earlier punch blocks a plain connect, but a new punch replaces
    it: the old attempt fails as aborted, the new one sends a fresh SYN."""
    clock, sent, tou = memory_socket()
    addr = ("192.0.2.7", 7813)
    factory = Factory.forProtocol(Protocol)
    old = tou.connect(addr, factory, punch=HolePunch(2, 1.0))
    old_failures: list[Any] = []
    old.addErrback(old_failures.append)
    refused: list[Any] = []
    tou.connect(addr, factory).addErrback(refused.append)
    assert isinstance(refused[0].value, TouConnectionError)
    assert "already exists" in refused[0].getErrorMessage()
    sent.clear()
    new = tou.connect(addr, factory, punch=HolePunch(2, 1.0), replace=True)
    assert old_failures and old_failures[0].value.reason is CloseReason.ABORTED
    assert [decode_packet(d).flags for d, _ in sent] == [Flags.SYN]
    assert not new.called and tou.connections[addr].state.name == "SYN_SENT"


def test_cancelling_a_handshake_aborts_it_so_a_retry_works() -> None:
    """The link manager gave up on a punch: cancelling its Deferred ends the TOU handshake
    (no more SYNs), and the next attempt to the same address is accepted."""
    clock, sent, tou = memory_socket()
    addr = ("192.0.2.7", 7813)
    factory = Factory.forProtocol(Protocol)
    d = tou.connect(addr, factory, timeout=30.0)
    d.addErrback(lambda f: None)
    d.cancel()
    clock.advance(0)
    sent.clear()
    clock.advance(5.0)
    assert sent == [] and addr not in tou.connections
    retry = tou.connect(addr, factory)
    assert not retry.called
    assert [decode_packet(d).flags for d, _ in sent] == [Flags.SYN]


def test_handshake_timeout_per_connection() -> None:
    """``timeout`` bounds one connection's handshake whatever the socket's configuration."""
    clock, _, tou = memory_socket()
    failures: list[Any] = []
    tou.connect(("192.0.2.7", 7813), Factory.forProtocol(Protocol),
                timeout=3.0).addErrback(failures.append)
    clock.pump([0.5] * 5)
    assert not failures
    clock.pump([0.5] * 3)
    assert failures and failures[0].value.reason is CloseReason.CONNECT_TIMEOUT
