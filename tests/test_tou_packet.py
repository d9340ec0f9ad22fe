# -*- test-case-name: tests.test_tou_packet -*-
"""The TOU segment header: RetroShare's exact bytes, round trips, and errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire.errors import DecodeError, EncodeError, TruncatedError
from tcponudp.errors import DatagramTruncatedError
from tcponudp.packet import (
    CAPABILITY_MAGIC,
    HEADER_SIZE,
    MAX_PAYLOAD,
    MAX_SEGMENT_PAYLOAD,
    Flags,
    TouPacket,
    decode_packet,
    encode_packet,
    encode_segment,
)
from tests.strategies_tou import tou_packets


def test_flag_bits_are_retroshares() -> None:
    """The flag values are RetroShare's reversed bit order, not TCP's."""
    assert (Flags.URG, Flags.ACK, Flags.PSH, Flags.RST, Flags.SYN, Flags.FIN) == (
        0x04, 0x08, 0x10, 0x20, 0x40, 0x80)


def test_syn_bytes() -> None:
    """A SYN as RetroShare writes it: zero ports, big-endian seq, flags in byte 13, zero
    checksum and urgent pointer."""
    syn = TouPacket(seq=0x01020304, ack=0, flags=Flags.SYN, window=65500)
    assert encode_packet(syn) == bytes.fromhex(
        "0000 0000 01020304 00000000 0040 ffdc 0000 0000".replace(" ", ""))


def test_data_segment_bytes() -> None:
    """A data segment with ACK|PSH, window and payload after the 20-byte header."""
    seg = TouPacket(seq=0xFFFFFFFF, ack=0x00000010, flags=Flags.ACK | Flags.PSH, window=0x1234,
                    payload=b"hello")
    assert encode_packet(seg) == bytes.fromhex(
        "00000000 ffffffff 00000010 0018 1234 0000 0000") + b"hello"


def test_header_length_nibble_is_bits_8_to_11() -> None:
    """RetroShare keeps the header length in the low nibble of byte 12 (never set by it); we
    read it there and keep it apart from the flags."""
    raw = bytes.fromhex("00000000 00000001 00000002 05c8 0100 0000 0000")
    packet = decode_packet(raw)
    assert packet.hlen == 5
    assert packet.flags == Flags.ACK | Flags.FIN | Flags.SYN
    assert packet.reserved == 0
    assert encode_packet(packet) == raw


def test_fields_retroshare_ignores_are_read_and_kept() -> None:
    """Non-zero ports, checksum and urgent pointer (RetroShare ignores them) decode and
    re-encode unchanged."""
    raw = bytes.fromhex("1111 2222 00000001 00000002 f008 0000 3333 4444") + b"x"
    packet = decode_packet(raw)
    assert (packet.src_port, packet.dst_port, packet.checksum, packet.urgent) == (
        0x1111, 0x2222, 0x3333, 0x4444)
    assert packet.reserved == 0xF
    assert encode_packet(packet) == raw


@pytest.mark.parametrize("size", [0, 1, 19])
def test_short_datagram_is_truncated(size: int) -> None:
    """Fewer than 20 bytes raise a truncation error in the pqi DecodeError family."""
    with pytest.raises(DatagramTruncatedError) as info:
        decode_packet(b"\0" * size)
    assert isinstance(info.value, TruncatedError)
    assert isinstance(info.value, DecodeError)
    assert info.value.offset == size


def test_header_only_is_a_control_segment() -> None:
    """Exactly 20 bytes is a segment without payload."""
    assert decode_packet(b"\0" * HEADER_SIZE).payload == b""


def test_encode_rejects_out_of_range() -> None:
    """Local misuse (a payload no datagram holds, field out of range) raises EncodeError."""
    with pytest.raises(EncodeError):
        encode_packet(TouPacket(seq=0, ack=0, flags=Flags.ACK, window=0,
                                payload=b"x" * (MAX_SEGMENT_PAYLOAD + 1)))
    with pytest.raises(EncodeError):
        encode_packet(TouPacket(seq=1 << 32, ack=0, flags=Flags.ACK, window=0))
    with pytest.raises(EncodeError):
        encode_packet(TouPacket(seq=0, ack=0, flags=Flags.ACK, window=0, hlen=16))


@given(tou_packets)
def test_round_trip(packet: TouPacket) -> None:
    """Any segment encodes and decodes to itself."""
    assert decode_packet(encode_packet(packet)) == packet


@given(st.binary(min_size=HEADER_SIZE, max_size=200))
def test_any_datagram_of_header_size_round_trips(raw: bytes) -> None:
    """Every datagram of 20 bytes or more decodes, and encodes back to the same bytes."""
    assert encode_packet(decode_packet(raw)) == raw


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.sampled_from([Flags.ACK, Flags.ACK | Flags.PSH, Flags.ACK | Flags.FIN, Flags.SYN,
                        Flags.SYN | Flags.ACK, Flags.RST | Flags.ACK]),
       st.integers(0, 0xFFFF), st.binary(max_size=MAX_PAYLOAD))
def test_encode_segment_is_encode_packet_with_zero_fields(seq: int, ack: int, flags: Flags,
                                                          window: int, payload: bytes) -> None:
    """The stream's fast encoder writes the same bytes as `encode_packet` of the same segment
    (ports, checksum, urgent pointer and header length zero), which decode back to it."""
    packet = TouPacket(seq=seq, ack=ack, flags=flags, window=window, payload=payload)
    data = encode_segment(seq, ack, flags, window, payload)
    assert data == encode_packet(packet)
    assert decode_packet(data) == packet


def test_encode_segment_rejects_out_of_range() -> None:
    """A payload no datagram holds or a field beyond its width is an `EncodeError`, as for
    `encode_packet`; a payload above RetroShare's `MAX_PAYLOAD` is allowed (the stream sends
    one only to an rsproto peer that offered to take it), and so are the capability fields."""
    with pytest.raises(EncodeError):
        encode_segment(0, 0, Flags.ACK, 0, b"x" * (MAX_SEGMENT_PAYLOAD + 1))
    big = encode_segment(0, 0, Flags.ACK, 0, b"x" * (MAX_PAYLOAD + 1))
    assert decode_packet(big).payload == b"x" * (MAX_PAYLOAD + 1)
    syn = decode_packet(encode_segment(0, 0, Flags.SYN, 0, b"", CAPABILITY_MAGIC, 8172))
    assert (syn.checksum, syn.urgent) == (CAPABILITY_MAGIC, 8172)
    with pytest.raises(EncodeError):
        encode_segment(0, 0, Flags.SYN, 0, b"", 0, 0x10000)
    with pytest.raises(EncodeError):
        encode_segment(2**32, 0, Flags.ACK, 0, b"")
    with pytest.raises(EncodeError):
        encode_segment(0, 0, Flags.ACK, 0x10000, b"")
