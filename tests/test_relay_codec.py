# -*- test-case-name: tests.test_relay_codec -*-
"""The "RLY1" relay: header bytes, the forwarder's classes and limits, the end points."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire.errors import EncodeError
from tcponudp.errors import DatagramTruncatedError, DatagramValueError
from tcponudp.relay import (
    LIFETIMES,
    RELAY_TIMEOUT,
    DropReason,
    RelayClass,
    RelayEnd,
    RelayForwarder,
    RelayHeader,
    RelayLimits,
    decode_relay,
    encode_relay,
    is_relay_packet,
)
from tests.strategies_tou import relay_headers

A = ("192.0.2.1", 7001)
B = ("198.51.100.2", 7002)


def test_header_bytes() -> None:
    """'RLY1', source IPv4 and port, destination IPv4 and port, all network order."""
    raw = encode_relay(RelayHeader(A, B), b"payload")
    assert raw == b"RLY1" + bytes.fromhex("c0000201 1b59 c6336402 1b5a".replace(" ", "")
                                          ) + b"payload"
    assert decode_relay(raw) == (RelayHeader(A, B), b"payload")


def test_decode_errors() -> None:
    """Short packets and a wrong magic are DecodeErrors; encode refuses IPv6 and oversize."""
    with pytest.raises(DatagramTruncatedError):
        decode_relay(b"RLY1" + b"\0" * 11)
    with pytest.raises(DatagramValueError):
        decode_relay(b"RLY2" + b"\0" * 12)
    assert not is_relay_packet(b"RLY1" + b"\0" * 11)
    with pytest.raises(EncodeError):
        encode_relay(RelayHeader(("::1", 1), B), b"")
    with pytest.raises(EncodeError):
        encode_relay(RelayHeader(A, B), b"x" * 1421)


@given(relay_headers, st.binary(max_size=1420))
def test_round_trip(header: RelayHeader, payload: bytes) -> None:
    """Any IPv4 header and payload round-trip."""
    assert decode_relay(encode_relay(header, payload)) == (header, payload)


def test_forwarder_carries_agreed_pairs_unchanged() -> None:
    """Both directions of an agreed pair go on unchanged; a stranger's, or a forged source,
    is refused."""
    fwd = RelayForwarder()
    assert fwd.add(A, B, RelayClass.FRIENDS, 0.0) is RelayClass.FRIENDS
    pkt = encode_relay(RelayHeader(A, B), b"seg")
    assert fwd.forward(pkt, A, 1.0) == (pkt, B)
    back = encode_relay(RelayHeader(B, A), b"ack")
    assert fwd.forward(back, B, 1.0) == (back, A)
    assert fwd.forward(pkt, ("203.0.113.5", 1), 1.0) is None
    assert fwd.forward(encode_relay(RelayHeader(A, ("203.0.113.5", 1)), b"x"), A, 1.0) is None
    assert fwd.refused == 2
    assert fwd.forwarded_bytes == len(pkt) + len(back)


def test_retroshare_default_classes() -> None:
    """RetroShare's defaults: two relays, one general and one friend-of-friend; friends have
    no slots and borrow downwards; a third relay is refused."""
    fwd = RelayForwarder(limits=RelayLimits.retroshare_defaults())
    assert fwd.add(A, B, RelayClass.FRIENDS, 0.0) is RelayClass.FOF
    assert fwd.add(A, ("192.0.2.9", 9), RelayClass.FRIENDS, 0.0) is RelayClass.GENERAL
    assert fwd.add(B, ("192.0.2.9", 9), RelayClass.GENERAL, 0.0) is None
    assert len(fwd) == 2
    fwd.remove(A, B)
    assert len(fwd) == 1
    assert fwd.add(A, B, RelayClass.GENERAL, 0.0) is None  # general slot still taken
    assert fwd.add(A, B, RelayClass.FOF, 0.0) is RelayClass.FOF


def test_friends_first_limits() -> None:
    """Friends-first gives friends the slots and the bandwidth; strangers get a token slot."""
    limits = RelayLimits.friends_first(total=3, bandwidth=50_000)
    fwd = RelayForwarder(limits=limits)
    assert fwd.add(A, B, RelayClass.GENERAL, 0.0) is None
    for i in range(3):
        assert fwd.add(A, ("192.0.2.9", i + 1), RelayClass.FRIENDS, 0.0) is RelayClass.FRIENDS
    assert fwd.add(B, ("192.0.2.9", 9), RelayClass.FRIENDS, 0.0) is None


def test_check_drops_over_bandwidth_silent_and_old() -> None:
    """`check` drops a relay above its (smoothed) bandwidth, one silent for 30 s, and one past
    its class lifetime."""
    fwd = RelayForwarder(limits=RelayLimits(total=3, counts=(3, 3, 3),
                                            bandwidth=(1024, 1024, 1024)))
    c, d = ("192.0.2.3", 3), ("192.0.2.4", 4)
    fwd.add(A, B, RelayClass.GENERAL, 0.0)
    fwd.add(A, c, RelayClass.FOF, 0.0)
    fwd.add(A, d, RelayClass.FRIENDS, 0.0)
    big = encode_relay(RelayHeader(A, B), b"x" * 1400)
    for _ in range(40):  # 57 kB in one second: the filtered rate (0.2 x 57 kB/s) > 1 kB/s
        fwd.forward(big, A, 0.5)
    assert fwd.check(1.0) == [(RelayHeader(A, B), DropReason.BANDWIDTH)]
    keepalive = encode_relay(RelayHeader(A, d), b"k")
    t = 1.0
    while t < LIFETIMES[RelayClass.FRIENDS] + 10:
        t += 10.0
        fwd.forward(keepalive, A, t)
        dropped = fwd.check(t)
        if t > RELAY_TIMEOUT + 1:
            assert (RelayHeader(A, c), DropReason.SILENT) in fwd.dropped
        if dropped and dropped[0][0] == RelayHeader(A, d):
            assert dropped == [(RelayHeader(A, d), DropReason.LIFETIME)]
            break
    assert t > LIFETIMES[RelayClass.FRIENDS]
    assert len(fwd) == 0


def test_relay_end_wraps_and_unwraps() -> None:
    """An end wraps with itself as source and sends to the proxy; it unwraps only packets from
    its remote to itself."""
    proxy = ("203.0.113.1", 7000)
    end = RelayEnd(local=A, proxy=proxy, remote=B)
    data, dest = end.wrap(b"seg")
    assert dest == proxy and decode_relay(data) == (RelayHeader(A, B), b"seg")
    assert end.unwrap(encode_relay(RelayHeader(B, A), b"ack")) == b"ack"
    assert end.unwrap(encode_relay(RelayHeader(("192.0.2.7", 7), A), b"x")) is None
    assert end.unwrap(encode_relay(RelayHeader(B, A), b"")) is None
