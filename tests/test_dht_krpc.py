"""KRPC codec: BEP 5's example messages byte for byte, BitDHT's key order, the limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dht import krpc
from dht.krpc import (
    AnnouncePeer,
    Connect,
    Error,
    FindNode,
    GetPeers,
    KRPCDecodeError,
    KRPCLimitError,
    NodeInfo,
    Ping,
    Response,
    UnknownQuery,
)
from pqi.wire.errors import DecodeError, EncodeError
from tests.strategies_dht import messages

A = b"abcdefghij0123456789"
M = b"mnopqrstuvwxyz123456"

# (bytes from BEP 5, message) pairs; encode gives exactly these bytes and decode gives the message.
BEP5 = [
    (b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", Ping(b"aa", A)),
    (b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re", Response(b"aa", M)),
    (b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node"
     b"1:t2:aa1:y1:qe", FindNode(b"aa", A, M)),
    (b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers"
     b"1:t2:aa1:y1:qe", GetPeers(b"aa", A, M)),
    (b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee"
     b"1:t2:aa1:y1:re",
     Response(b"aa", A, values=(("97.120.106.101", 11893), ("105.100.104.116", 28269)),
              token=b"aoeusnth")),
    (b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz123456"
     b"4:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
     AnnouncePeer(b"aa", A, M, 6881, b"aoeusnth", implied_port=True)),
    (b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
     Error(b"aa", 201, b"A Generic Error Ocurred")),
]


@pytest.mark.parametrize(("raw", "msg"), BEP5)
def test_bep5_examples_byte_exact(raw: bytes, msg: krpc.Message) -> None:
    """Each BEP 5 example encodes to its exact bytes and decodes back to the same message."""
    assert krpc.encode(msg) == raw
    assert krpc.decode(raw) == msg


def test_bep5_placeholder_nodes_rejected() -> None:
    """BEP 5's ``"nodes": "def456..."`` placeholder (9 bytes) is not a multiple of 26: dropped."""
    raw = b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re"
    with pytest.raises(KRPCDecodeError, match="multiple of 26"):
        krpc.decode(raw)


def test_nodes_response_byte_exact() -> None:
    """A find_node answer carries 26-byte compact nodes: id, IPv4, port, network order."""
    node = NodeInfo(M, "1.2.3.4", 0x1AE1)
    raw = (b"d1:rd2:id20:0123456789abcdefghij5:nodes26:" + M + b"\x01\x02\x03\x04\x1a\xe1"
           b"e1:t2:aa1:y1:re")
    msg = Response(b"aa", b"0123456789abcdefghij", nodes=(node,))
    assert krpc.encode(msg) == raw
    assert krpc.decode(raw) == msg


def test_nodes6_byte_exact() -> None:
    """``nodes6`` carries 38-byte entries (BEP 32); other lengths are rejected."""
    node = NodeInfo(M, "2001:db8::1", 6881)
    packed = M + bytes.fromhex("20010db8000000000000000000000001") + b"\x1a\xe1"
    raw = b"d1:rd2:id20:" + A + b"6:nodes638:" + packed + b"e1:t2:aa1:y1:re"
    assert krpc.encode(Response(b"aa", A, nodes6=(node,))) == raw
    assert krpc.decode(raw).nodes6 == (node,)  # type: ignore[union-attr]
    with pytest.raises(KRPCDecodeError, match="multiple of 38"):
        krpc.decode(b"d1:rd2:id20:" + A + b"6:nodes626:" + packed[:26] + b"e1:t2:aa1:y1:re")


def test_bitdht_ping_key_order_and_version() -> None:
    """BitDHT writes keys in insertion order (a, q, t, y, v) and ``v`` = BD02RS51: accepted."""
    raw = b"d1:ad2:id20:" + A + b"e1:q4:ping1:t2:011:y1:q1:v8:BD02RS51e"
    assert krpc.decode(raw) == Ping(b"01", A, b"BD02RS51")
    # We answer in canonical (sorted) order, which BitDHT's lookup-by-name parser accepts.
    assert krpc.encode(Response(b"01", M, version=krpc.RS_VERSION)) == (
        b"d1:rd2:id20:" + M + b"e1:t2:011:v8:BD02RS511:y1:re")


def test_bitdht_connect_message() -> None:
    """The connect query in BitDHT's key order decodes; we re-encode it canonically."""
    src = NodeInfo(A, "192.0.2.1", 7812)
    dest = NodeInfo(M, "192.0.2.2", 7813)
    body = (b"d2:id20:" + A + b"3:src26:" + src.compact() + b"4:dest26:" + dest.compact()
            + b"4:modei1e5:parami0e6:statusi0e4:typei101ee")
    raw = b"d1:a" + body + b"1:t2:0a1:y1:q1:q7:connecte"
    msg = krpc.decode(raw)
    assert msg == Connect(b"0a", A, src, dest, krpc.CONNECT_MODE_DIRECT, 0, 0,
                          krpc.CONNECT_REQUEST)
    assert krpc.encode(msg) == (
        b"d1:ad4:dest26:" + dest.compact() + b"2:id20:" + A + b"4:modei1e5:parami0e3:src26:"
        + src.compact() + b"6:statusi0e4:typei101ee1:q7:connect1:t2:0a1:y1:qe")


@pytest.mark.parametrize("field", [b"typei99e", b"modei3e"])
def test_connect_unknown_type_or_mode_rejected(field: bytes) -> None:
    """Connect types are 101-104 and modes 1, 2, 4 (bdiface.h); others are malformed."""
    node = NodeInfo(A, "192.0.2.1", 1).compact()
    args = {b"type": b"typei101e", b"mode": b"modei1e"}
    args[field[:4]] = field
    raw = (b"d1:ad4:dest26:" + node + b"2:id20:" + A + b"4:" + args[b"mode"]
           + b"5:parami0e3:src26:" + node + b"6:statusi0e4:" + args[b"type"]
           + b"e1:q7:connect1:t2:aa1:y1:qe")
    with pytest.raises(KRPCDecodeError):
        krpc.decode(raw)


def test_unknown_method_is_decoded_for_a_204() -> None:
    """An unknown query still decodes (we owe the sender error 204)."""
    raw = b"d1:ad2:id20:" + A + b"e1:q4:vote1:t2:aa1:y1:qe"
    assert krpc.decode(raw) == UnknownQuery(b"aa", A, b"vote")


def _nested(depth: int) -> bytes:
    """A ping whose extra argument nests lists so the whole message is ``depth`` deep."""
    inner = b"l" * (depth - 2) + b"e" * (depth - 2)
    return b"d1:ad1:x" + inner + b"2:id20:" + A + b"e1:q4:ping1:t2:aa1:y1:qe"


def test_depth_limit() -> None:
    """Nesting of exactly 10 is accepted; 11 is refused before decoding."""
    assert isinstance(krpc.decode(_nested(10)), Ping)
    with pytest.raises(KRPCLimitError) as info:
        krpc.decode(_nested(11))
    assert info.value.limit == "MAX_BENCODE_DEPTH"


def _with_tokens(count: int) -> bytes:
    """A dictionary holding one list: dict + key + list + (count - 3) empty strings."""
    return b"d1:xl" + b"0:" * (count - 3) + b"ee"


def test_token_limit() -> None:
    """500 bencode values pass the scanner (then fail as KRPC); 501 are refused unread."""
    with pytest.raises(KRPCDecodeError) as info:
        krpc.decode(_with_tokens(500))
    assert not isinstance(info.value, KRPCLimitError)
    assert info.value.field == ".t"
    with pytest.raises(KRPCLimitError) as info:
        krpc.decode(_with_tokens(501))
    assert info.value.limit == "MAX_BENCODE_TOKENS"


def test_datagram_size_limit() -> None:
    """1024 bytes are read; 1025 are dropped unread; we never encode more than 1024."""
    head = b"d1:ad2:id20:" + A + b"e1:q4:ping1:t2:aa1:y1:q1:z"
    pad = b"x" * (1024 - len(head) - len(b"961:e"))
    raw = head + f"{len(pad)}:".encode() + pad + b"e"
    assert len(raw) == 1024
    assert isinstance(krpc.decode(raw), Ping)
    with pytest.raises(KRPCLimitError):
        krpc.decode(raw[:-1] + b"xe")
    with pytest.raises(EncodeError):
        krpc.encode(Response(b"aa", A, values=tuple(("1.2.3.4", p) for p in range(1, 200))))


@pytest.mark.parametrize("raw", [
    b"",
    b"le",
    b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe",       # id of 19 bytes
    b"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe",                           # id not a string
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t0:1:y1:qe",         # empty transaction id
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:xe",       # unknown y
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:vi1e1:y1:qe",  # v not a string
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qeX",      # trailing bytes
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:q",        # unterminated
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:t2:bb1:y1:qe",  # duplicate key
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qi1e1:xe",  # int as key
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t02:aa1:y1:qe",      # leading-zero length
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:ti01e1:y1:qe",       # leading-zero int
    b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e"
    b"5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",            # port 0, not implied
    b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti65536e"
    b"5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",            # port too big
    b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e"
    b"5:token21:aoeusnthaoeusnthaoeuse1:q13:announce_peer1:t2:aa1:y1:qe",  # token of 21
    b"d1:rd2:id20:abcdefghij01234567896:valuesl5:axje.ee1:t2:aa1:y1:re",  # 5-byte peer
    b"d1:eli201ee1:t2:aa1:y1:ee",                                       # error list of 1
])
def test_malformed_rejected(raw: bytes) -> None:
    """Each malformed message raises KRPCDecodeError, a pqi DecodeError, and nothing else."""
    with pytest.raises(KRPCDecodeError) as info:
        krpc.decode(raw)
    assert isinstance(info.value, DecodeError)


def test_unknown_keys_ignored() -> None:
    """libtorrent adds ``ip`` and ``r.p``; BitDHT adds ``o``: extra keys are not errors."""
    raw = (b"d2:ip6:\x7f\x00\x00\x01\x1a\xe11:rd2:id20:" + M + b"1:pi6881ee1:t2:aa1:v4:LT\x02\x11"
           b"1:y1:re")
    assert krpc.decode(raw) == Response(b"aa", M, version=b"LT\x02\x11", ip=("127.0.0.1", 6881))


@pytest.mark.slow
@given(messages)
def test_round_trip(msg: krpc.Message) -> None:
    """Every encodable message decodes to itself."""
    try:
        raw = krpc.encode(msg)
    except EncodeError:
        return  # too big for one datagram: refused at encode time, as it must be
    assert len(raw) <= krpc.MAX_DATAGRAM_SIZE
    assert krpc.decode(raw) == msg


@pytest.mark.slow
@given(messages, st.integers(0, 2000), st.binary(min_size=1, max_size=4))
def test_mutated_messages_only_raise_decode_errors(msg: krpc.Message, where: int,
                                                   junk: bytes) -> None:
    """Overwriting bytes of a valid message gives a message or a KRPCDecodeError, nothing else."""
    try:
        raw = bytearray(krpc.encode(msg))
    except EncodeError:
        return
    pos = where % len(raw)
    raw[pos:pos + len(junk)] = junk
    try:
        krpc.decode(bytes(raw))
    except KRPCDecodeError:
        pass
