# -*- test-case-name: tests.test_stunner -*-
"""The stunner: RetroShare's request/response bytes, the client, the NAT classifier."""

from __future__ import annotations

import pytest
from hypothesis import given

from pqi.core import Datagram
from pqi.wire.errors import DecodeError, EncodeError
from tcponudp.errors import DatagramTruncatedError, DatagramValueError
from tcponudp.stunner import (
    NatType,
    StunClient,
    StunDone,
    StunRequest,
    StunResponse,
    answer_request,
    classify_nat,
    decode_stun,
    is_stun_packet,
)
from tests.strategies_tou import stun_packets

TID = bytes(range(16))


def test_request_bytes() -> None:
    """A request is 20 bytes: type 0x0001, length 20 (the whole packet), transaction id."""
    assert StunRequest(TID).encode() == bytes.fromhex("0001 0014".replace(" ", "")) + TID


def test_response_bytes_have_host_order_family() -> None:
    """A response is 28 bytes: type 0x0101, length 28, the same id, family ``02 00``
    (AF_INET little-endian), port and IPv4 big-endian."""
    reply = answer_request(StunRequest(TID), ("203.0.113.7", 7812))
    assert reply == (bytes.fromhex("0101001c") + TID + bytes.fromhex("0200 1e84 cb007107"
                                                                     .replace(" ", "")))
    assert len(reply) == 28


def test_decode_response() -> None:
    """A response decodes to its id and mapped address."""
    raw = bytes.fromhex("0101001c") + TID + bytes.fromhex("02001e84cb007107")
    assert decode_stun(raw) == StunResponse(TID, ("203.0.113.7", 7812))


@pytest.mark.parametrize("raw,error", [
    (b"\x00\x01", DatagramTruncatedError),
    (bytes.fromhex("00010015") + TID, DatagramValueError),       # length != size
    (bytes.fromhex("01010014") + TID, DatagramValueError),       # response type, 20 bytes
    (bytes.fromhex("0001001c") + TID + b"\0" * 8, DatagramValueError),  # request, 28 bytes
])
def test_decode_errors(raw: bytes, error: type[DecodeError]) -> None:
    """Wrong sizes and types raise DecodeError subclasses, as RetroShare's shape test rejects
    them."""
    assert not is_stun_packet(raw)
    with pytest.raises(error):
        decode_stun(raw)


def test_encode_rejects_bad_values() -> None:
    """A short id or an IPv6 address cannot be written."""
    with pytest.raises(EncodeError):
        StunRequest(b"short").encode()
    with pytest.raises(EncodeError):
        StunResponse(TID, ("::1", 1)).encode()


@pytest.mark.slow
@given(stun_packets)
def test_round_trip(packet: StunRequest | StunResponse) -> None:
    """Requests and responses round-trip and pass RetroShare's shape test."""
    raw = packet.encode()
    assert is_stun_packet(raw)
    assert decode_stun(raw) == packet


def test_classifier() -> None:
    """Open when mapped equals local; symmetric when peers disagree; cone otherwise (full-cone
    only if an unsolicited packet got in); unknown with too little evidence."""
    local = ("172.31.1.2", 7812)
    ext = ("198.51.100.1", 7812)
    assert classify_nat(local, {}) is NatType.UNKNOWN
    assert classify_nat(local, {("p", 1): local, ("q", 1): local}) is NatType.OPEN
    assert classify_nat(local, {("p", 1): ext}) is NatType.UNKNOWN
    assert classify_nat(local, {("p", 1): ext, ("q", 1): ext}) is NatType.RESTRICTED
    assert classify_nat(local, {("p", 1): ext, ("q", 1): ext},
                        unsolicited_seen=True) is NatType.FULL_CONE
    assert classify_nat(local, {("p", 1): ext, ("q", 1): ("198.51.100.1", 40000)}
                        ) is NatType.SYMMETRIC


def test_client_asks_retries_and_classifies() -> None:
    """The client asks every peer, retries the silent one, gives up after max_tries, ignores
    answers with a wrong transaction id or from strangers, and reports the majority mapping."""
    client = StunClient(local=("172.16.0.2", 5000), retry_interval=2.0, max_tries=2)
    peers = [("192.0.2.1", 1), ("192.0.2.2", 2), ("192.0.2.3", 3)]
    client.start(peers, 0.0)
    sent = client.drain(0.0)
    assert [d.addr for d in sent] == peers
    requests = {d.addr: decode_stun(d.data) for d in sent}
    mapped = ("198.51.100.9", 6000)
    assert not client.datagram_received(answer_request(StunRequest(b"\1" * 16), peers[0]),
                                        peers[0], 0.1)
    assert not client.datagram_received(answer_request(requests[peers[0]], mapped),
                                        ("192.0.2.99", 9), 0.1)
    for peer in peers[:2]:
        assert client.datagram_received(
            StunResponse(requests[peer].transaction_id, mapped).encode(), peer, 0.2)
    assert client.ignored == 2
    assert client.next_deadline() == 2.0
    client.handle_timer(2.0)
    assert client.drain(2.0) == [Datagram(requests[peers[2]].encode(), peers[2])]
    assert not client.done
    client.handle_timer(4.0)
    result = client.result()
    assert client.done and client.drain(4.0) == [StunDone(result)]
    assert client.next_deadline() is None
    assert result.external == mapped
    assert result.nat is NatType.RESTRICTED
