"""The construct schemas of OpenPGP packets and of certificate/invite sections.

Byte-level pins against RFC 4880 and against real RetroShare bytes, the limits at, under and
over their values, error offsets, and hypothesis round trips of every schema.
"""

from __future__ import annotations

import ipaddress
import struct

import construct as c
import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from pqi.identity.certificate import (
    Ipv4Port,
    ReversedIpv4Port,
    SectionFraming,
    Utf8Rest,
    checksum_section,
    parse_section_body,
    sections,
)
from pqi.identity.errors import CertificateDecodeError, PgpPacketError
from pqi.identity.invite import DnsLocatorBody, HiddenLocatorBody
from pqi.identity.pgp_packets import (
    MAX_MPI_BITS,
    MAX_PGP_KEY_BLOCK,
    MAX_PGP_PACKET_SIZE,
    MAX_PGP_PACKETS,
    MAX_USER_ID,
    Mpi,
    Packet,
    PacketHeader,
    Packets,
    PgpLength,
    PublicKeyBody,
    RawPacket,
    SignatureBody,
    SignatureHashedPart,
    Subpacket,
    SubpacketLength,
    Subpackets,
    UserIdBody,
    parse_whole,
)
from pqi.wire.address import NetAddress
from pqi.wire.errors import DecodeError, EncodeError, LimitExceededError, TruncatedError
from pqi.wire.item import _check_schema
from tests.strategies_pgp_packets import (
    ipv4_addresses,
    key_bodies,
    lengths,
    mpis,
    packet_lists,
    packets,
    signature_bodies,
    subpackets,
)
from tests.strategies_pgp_packets import sections as section_values

SCHEMAS = [PgpLength, SubpacketLength, PacketHeader, Packet, Packets, Mpi(), UserIdBody,
           PublicKeyBody, SignatureHashedPart, SignatureBody, Subpackets,
           SectionFraming("x"), Ipv4Port, ReversedIpv4Port, Utf8Rest("x"), DnsLocatorBody,
           HiddenLocatorBody]


def _fields(container: c.Container) -> dict[str, object]:
    return {k: v for k, v in container.items() if not k.startswith("_")}


def _real_signature(vectors) -> bytes:
    cert = x509.load_der_x509_certificate((vectors / "alice.ssl_cert.der").read_bytes())
    return cert.signature


# --- schema hygiene -------------------------------------------------------------------------

@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: type(s).__name__)
def test_schemas_use_only_bounded_constructs(schema: c.Construct) -> None:
    """Every schema passes the item layer's check: no unbounded core construct inside."""
    _check_schema(schema, type(schema).__name__)


# --- lengths and headers --------------------------------------------------------------------

@pytest.mark.parametrize("n,raw", [
    (0, b"\x00"), (191, b"\xbf"), (192, b"\xc0\x00"), (8383, b"\xdf\xff"),
    (8384, b"\xff\x00\x00\x20\xc0"), (2**32 - 1, b"\xff\xff\xff\xff\xff"),
])
def test_length_forms(n: int, raw: bytes) -> None:
    """RFC 4880 4.2.2 boundaries: the shortest form is written and each form is read."""
    assert PgpLength.build(n) == raw
    assert PgpLength.parse(raw) == n


@pytest.mark.slow
@given(lengths())
def test_length_round_trip(n: int) -> None:
    """Any length builds to its shortest form and parses back."""
    raw = PgpLength.build(n)
    assert PgpLength.parse(raw) == n
    assert len(raw) == (1 if n < 192 else 2 if n < 8384 else 5)


def test_length_refusals() -> None:
    """Partial lengths, impossible lengths and short reads are named errors."""
    with pytest.raises(PgpPacketError, match="partial body"):
        PgpLength.parse(b"\xe0")
    with pytest.raises(PgpPacketError, match="bad subpacket length"):
        SubpacketLength.parse(b"\xfe")
    with pytest.raises(TruncatedError, match="two-octet"):
        PgpLength.parse(b"\xc5")
    with pytest.raises(TruncatedError, match="five-octet"):
        PgpLength.parse(b"\xff\x00\x00")
    with pytest.raises(TruncatedError, match="length missing"):
        PgpLength.parse(b"")
    with pytest.raises(EncodeError):
        PgpLength.build(2**32)
    with pytest.raises(EncodeError):
        PgpLength.build(-1)


@pytest.mark.parametrize("raw,tag,length,new", [
    (b"\xc6\x05", 6, 5, True),
    (b"\x98\x05", 6, 5, False),                        # old format, 1-octet length
    (b"\x99\x01\x0d", 6, 0x10D, False),                # old format, 2-octet length
    (b"\x8a\x00\x00\x00\x02", 2, 2, False),            # old format, 4-octet length
    (b"\xcd\xc0\x10", 13, 208, True),
])
def test_header_formats(raw: bytes, tag: int, length: int, new: bool) -> None:
    """Old-format and new-format headers parse to the same tag and length."""
    header = PacketHeader.parse(raw)
    assert (header.tag, header.length, header.new_format) == (tag, length, new)


def test_header_refusals() -> None:
    """Non-headers, indeterminate lengths and oversized packets fail before any body read."""
    with pytest.raises(PgpPacketError, match="not a packet header") as info:
        PacketHeader.parse(b"\x46\x00")
    assert info.value.offset == 0
    with pytest.raises(PgpPacketError, match="indeterminate"):
        PacketHeader.parse(b"\x9b")
    with pytest.raises(TruncatedError, match="old-format"):
        PacketHeader.parse(b"\x99\x01")
    assert PacketHeader.parse(b"\xc2\xff" + struct.pack(">I", MAX_PGP_PACKET_SIZE)).length == (
        MAX_PGP_PACKET_SIZE)
    with pytest.raises(LimitExceededError) as limit:
        PacketHeader.parse(b"\xc2\xff" + struct.pack(">I", MAX_PGP_PACKET_SIZE + 1))
    assert limit.value.limit == "MAX_PGP_PACKET_SIZE" and limit.value.field == "pgp.packet[2]"
    with pytest.raises(EncodeError):
        PacketHeader.build({"tag": 64, "length": 0})


# --- packets --------------------------------------------------------------------------------

@pytest.mark.slow
@given(packets())
def test_packet_round_trip(packet: RawPacket) -> None:
    """A packet builds with a new-format header and parses back with its offsets."""
    raw = Packet.build(packet)
    assert raw[0] == 0xC0 | packet.tag
    assert Packet.parse(raw) == packet


def test_packet_five_octet_length() -> None:
    """A body of 8384 bytes or more takes the five-octet length and still round-trips."""
    body = bytes(range(256)) * 33
    raw = Packet.build((13, body))
    assert raw[:6] == b"\xcd\xff" + struct.pack(">I", len(body))
    assert Packet.parse(raw) == RawPacket(13, body, 0, 6)


def test_packet_truncated_at_header() -> None:
    """A body shorter than announced is a TruncatedError at the packet's header."""
    with pytest.raises(TruncatedError, match="announces 5 bytes, 4 left") as info:
        Packets.parse(b"\xcd\x01u" + b"\xc2\x05abcd")
    assert info.value.offset == 3


@pytest.mark.slow
@given(packet_lists())
def test_packet_list_round_trip(items: list[tuple[int, bytes]]) -> None:
    """A packet sequence parses to its packets, each with the offset of its header."""
    raw = Packets.build(items)
    parsed = Packets.parse(raw)
    assert [(p.tag, p.body) for p in parsed] == items
    assert all(Packet.build(p) == raw[p.offset:p.body_offset + len(p.body)] for p in parsed)


@pytest.mark.slow
@given(packet_lists(), st.data())
def test_packet_list_every_cut_is_a_decode_error(items: list[tuple[int, bytes]],
                                                 data: st.DataObject) -> None:
    """Cutting a sequence inside a packet gives a DecodeError, never another exception."""
    raw = Packets.build(items)
    ends = {p.body_offset + len(p.body) for p in Packets.parse(raw)} | {0}
    cut = data.draw(st.integers(0, len(raw)))
    if cut in ends:
        assert len(Packets.parse(raw[:cut])) == sorted(ends).index(cut)
    else:
        with pytest.raises(DecodeError):
            Packets.parse(raw[:cut])


def test_packet_count_limit() -> None:
    """MAX_PGP_PACKETS packets are read; one more is refused by name."""
    empty = b"\xcd\x00"
    assert len(Packets.parse(empty * MAX_PGP_PACKETS)) == MAX_PGP_PACKETS
    with pytest.raises(LimitExceededError) as info:
        Packets.parse(empty * (MAX_PGP_PACKETS + 1))
    assert info.value.limit == "MAX_PGP_PACKETS"
    assert info.value.offset == 2 * MAX_PGP_PACKETS


def test_key_block_limit() -> None:
    """A block over MAX_PGP_KEY_BLOCK is refused before its first packet is read."""
    with pytest.raises(LimitExceededError) as info:
        Packets.parse(b"\x00" * (MAX_PGP_KEY_BLOCK + 1))
    assert info.value.limit == "MAX_PGP_KEY_BLOCK"
    with pytest.raises(PgpPacketError, match="not a packet header"):
        Packets.parse(b"\x00" * MAX_PGP_KEY_BLOCK)


# --- body fields ----------------------------------------------------------------------------

@pytest.mark.slow
@given(mpis())
def test_mpi_round_trip(value: int) -> None:
    """MPIs carry the exact bit count then the minimal big-endian bytes."""
    raw = Mpi().build(value)
    assert struct.unpack(">H", raw[:2])[0] == value.bit_length()
    assert len(raw) == 2 + (value.bit_length() + 7) // 8
    assert Mpi().parse(raw) == value


def test_mpi_limits() -> None:
    """An MPI of MAX_MPI_BITS is read; one bit more is refused before reading its bytes."""
    biggest = 2**MAX_MPI_BITS - 1
    assert Mpi().parse(Mpi().build(biggest)) == biggest
    with pytest.raises(LimitExceededError) as info:
        Mpi("k.n").parse(struct.pack(">H", MAX_MPI_BITS + 1))
    assert (info.value.limit, info.value.field) == ("MAX_MPI_BITS", "k.n")
    with pytest.raises(TruncatedError, match="MPI cut short"):
        Mpi().parse(b"\x00\x09\x01")
    with pytest.raises(TruncatedError, match="MPI length missing"):
        Mpi().parse(b"\x00")
    with pytest.raises(EncodeError):
        Mpi().build(-1)


def test_user_id_limit() -> None:
    """A user ID of MAX_USER_ID bytes is read; a longer one is refused, both ways."""
    assert UserIdBody.parse(b"u" * MAX_USER_ID) == b"u" * MAX_USER_ID
    with pytest.raises(LimitExceededError) as info:
        UserIdBody.parse(b"u" * (MAX_USER_ID + 1))
    assert info.value.limit == "MAX_USER_ID"
    with pytest.raises(EncodeError):
        UserIdBody.build(b"u" * (MAX_USER_ID + 1))


def test_real_key_body(vectors) -> None:
    """Alice's real key packet body parses to v4 RSA, her creation time, 4096-bit n, e=65537,
    and builds back to the same bytes."""
    (key, uid, sig) = Packets.parse((vectors / "alice.pgp_pubkey.gpg").read_bytes())
    assert (key.tag, uid.tag, sig.tag) == (6, 13, 2)
    assert key.offset == 0 and key.body_offset == 3  # c6 c1 4d: two-octet length
    body = PublicKeyBody.parse(key.body)
    assert (body.version, body.created, body.algorithm) == (4, 1795563044, 1)
    assert body.n.bit_length() == 4096 and body.e == 65537
    assert PublicKeyBody.build(_fields(body)) == key.body
    assert UserIdBody.parse(uid.body) == b"alice (Generated by RetroShare) <>"


@pytest.mark.slow
@given(key_bodies())
def test_key_body_round_trip(fields: dict[str, int]) -> None:
    """A v4 RSA key body is version, u32 time, algorithm, then the two MPIs."""
    raw = PublicKeyBody.build(fields)
    assert raw[:6] == struct.pack(">BIB", 4, fields["created"], fields["algorithm"])
    assert _fields(PublicKeyBody.parse(raw)) == fields


@pytest.mark.parametrize("body,error,match,offset", [
    (b"\x04\x00\x00", TruncatedError, "cut short", 0),
    (b"\x03\x00\x00\x00\x00\x01", PgpPacketError, "key version 3", 0),
    (b"\x04\x00\x00\x00\x00\x11", PgpPacketError, "algorithm 17", 5),
    (b"\x04\x00\x00\x00\x00\x01\x00\x01\x01\x00\x01\x01\x00", PgpPacketError, "bytes after", 12),
])
def test_key_body_refusals(body: bytes, error: type, match: str, offset: int) -> None:
    """Short, non-v4, non-RSA and over-long key bodies fail by name at the right byte."""
    with pytest.raises(error, match=match) as info:
        parse_whole(PublicKeyBody, body, 100)
    assert info.value.offset == 100 + offset


# --- signatures -----------------------------------------------------------------------------

def test_real_signature_layout(vectors) -> None:
    """A real location-certificate signature: v4 binary document, RSA, SHA-256, hashed
    creation time then issuer key id, an empty unhashed area, no issuer fingerprint."""
    (packet,) = Packets.parse(_real_signature(vectors))
    assert packet.tag == 2 and packet.body_offset == 3
    body = SignatureBody.parse(packet.body)
    assert (body.version, body.sig_type, body.pubkey_algo, body.hash_algo) == (4, 0, 1, 8)
    assert body.unhashed == b""
    hashed = Subpackets.parse(body.hashed)
    assert [(s.kind, s.critical) for s in hashed] == [(2, False), (16, False)]
    assert hashed[1].data == bytes.fromhex("ED101593758F53C0")
    assert body.value.bit_length() <= 4096
    assert SignatureBody.build(_fields(body)) == packet.body
    assert SignatureHashedPart.build(_fields(body)) == packet.body[:6 + len(body.hashed)]


@pytest.mark.slow
@given(signature_bodies())
def test_signature_body_round_trip(fields: dict[str, object]) -> None:
    """A signature body round-trips; its hashed part is exactly the body's prefix."""
    raw = SignatureBody.build(fields)
    assert _fields(SignatureBody.parse(raw)) == fields
    hashed = fields["hashed"]
    assert isinstance(hashed, bytes)
    assert SignatureHashedPart.build(fields) == raw[:6 + len(hashed)]


@pytest.mark.parametrize("body,error,match,offset", [
    (b"\x04\x00\x01", TruncatedError, "signature header cut short", 0),
    (b"\x03\x00\x01\x08\x00\x00", PgpPacketError, "signature version 3", 0),
    (b"\x04\x00\x01\x08\x00\x05\x00", TruncatedError, "hashed subpackets", 4),
    (b"\x04\x00\x01\x08\x00\x00\x00\x03\x00", TruncatedError, "unhashed subpackets", 6),
    (b"\x04\x00\x11\x08\x00\x00\x00\x00\xab\xcd", PgpPacketError, "algorithm 17", 2),
    (b"\x04\x00\x01\x08\x00\x00\x00\x00\xab\xcd\x00\x01\x01\xff", PgpPacketError,
     "bytes after the signature MPI", 13),
])
def test_signature_body_refusals(body: bytes, error: type, match: str, offset: int) -> None:
    """Malformed signature bodies fail by name, at their offset in the caller's buffer."""
    with pytest.raises(error, match=match) as info:
        parse_whole(SignatureBody, body, 10)
    assert info.value.offset == 10 + offset


@pytest.mark.slow
@given(st.lists(subpackets(), max_size=5))
def test_subpackets_round_trip(items: list[Subpacket]) -> None:
    """Subpacket areas: length (type octet included), type with its critical bit, data."""
    raw = Subpackets.build(items)
    assert Subpackets.parse(raw) == items


def test_subpacket_bytes() -> None:
    """The bytes RetroShare writes for creation time, issuer and a critical subpacket."""
    raw = Subpackets.build([Subpacket(2, b"\x65\x53\xf1\x00"), Subpacket(16, b"\x11" * 8),
                            Subpacket(27, b"\x03", critical=True)])
    assert raw == (b"\x05\x02\x65\x53\xf1\x00" + b"\x09\x10" + b"\x11" * 8 + b"\x02\x9b\x03")


def test_subpacket_refusals() -> None:
    """A subpacket of length 0, one running past its area, or too many of them are refused."""
    with pytest.raises(TruncatedError, match="runs past") as info:
        parse_whole(Subpackets, b"\x02\x02\x00\x00", 6)
    assert info.value.offset == 6 + 3  # the empty second subpacket
    with pytest.raises(TruncatedError, match="runs past") as past:
        parse_whole(Subpackets, b"\x05\x02\x00", 6)
    assert past.value.offset == 6
    with pytest.raises(TruncatedError, match="runs past"):
        Subpackets.parse(b"\x00")
    with pytest.raises(PgpPacketError, match="bad subpacket length"):
        Subpackets.parse(b"\xe0\x02")
    one = b"\x01\x1e"  # a 1-byte subpacket (type only)
    assert len(Subpackets.parse(one * MAX_PGP_PACKETS)) == MAX_PGP_PACKETS
    with pytest.raises(LimitExceededError) as limit:
        Subpackets.parse(one * (MAX_PGP_PACKETS + 1))
    assert limit.value.limit == "MAX_PGP_PACKETS"


# --- certificate and invite sections --------------------------------------------------------

@given(section_values())
def test_section_round_trip(value: tuple[int, bytes]) -> None:
    """A section is tag, OpenPGP length, data; it parses back with both offsets."""
    tag, data = value
    raw = SectionFraming("t").build(value)
    assert raw[0] == tag and raw[1:-len(data) or None] == PgpLength.build(len(data))
    section = SectionFraming("t").parse(raw)
    assert (section.tag, section.data, section.offset) == (tag, data, 0)
    assert section.data_offset == len(raw) - len(data)


def test_section_truncated_and_checksum_order() -> None:
    """A short section is a TruncatedError at its header; sections stop at the checksum."""
    with pytest.raises(TruncatedError, match="section 0x05 announces 16 bytes, 2 left") as info:
        list(sections(b"\x09\x01\x06\x05\x10ab", 7, "t"))
    assert info.value.offset == 3
    with pytest.raises(PgpPacketError, match="partial"):
        SectionFraming("t").parse(b"\x01\xe5")
    with pytest.raises(EncodeError):
        SectionFraming("t").build((256, b""))


def test_reversed_ipv4_quirk(vectors) -> None:
    """Invite LOC4/EXT4 octets are reversed, the port is not; certificates write both BE."""
    addr = NetAddress(ipaddress.IPv4Address("127.0.0.1"), 7801)
    assert ReversedIpv4Port.build(addr) == bytes.fromhex("0100007f1e79")
    assert Ipv4Port.build(addr) == bytes.fromhex("7f0000011e79")
    assert ReversedIpv4Port.parse(bytes.fromhex("0100007f1e79")) == addr
    with pytest.raises(EncodeError):
        Ipv4Port.build(NetAddress(ipaddress.IPv6Address("::1"), 1))


@pytest.mark.slow
@given(ipv4_addresses())
def test_ipv4_round_trip(addr: NetAddress) -> None:
    """Both address layouts round-trip, and one is the other with the octets reversed."""
    straight, reversed_ = Ipv4Port.build(addr), ReversedIpv4Port.build(addr)
    assert reversed_ == straight[3::-1] + straight[4:]
    assert Ipv4Port.parse(straight) == ReversedIpv4Port.parse(reversed_) == addr


@pytest.mark.slow
@given(st.integers(0, 65535), st.text(max_size=40), st.integers(0, 2**32 - 1))
def test_locator_bodies_round_trip(port: int, text: str, kind: int) -> None:
    """DNS and hidden locator bodies: fixed numbers, then text filling the section."""
    dns = DnsLocatorBody.build({"port": port, "host": text})
    assert dns == struct.pack(">H", port) + text.encode()
    assert _fields(DnsLocatorBody.parse(dns)) == {"port": port, "host": text}
    hidden = HiddenLocatorBody.build({"kind": kind, "port": port, "address": text})
    assert hidden == struct.pack(">IH", kind, port) + text.encode()
    assert _fields(HiddenLocatorBody.parse(hidden)) == {"kind": kind, "port": port,
                                                        "address": text}


def test_section_body_checks() -> None:
    """Size checks report at the section header, text errors at the bad text's byte."""
    raw = b"\x01\x00" + b"\x93\x02ab" + b"\x91\x04\x1e\x79\xff\xfe"
    _name, short, dns = sections(raw + checksum_section(4, raw), 4, "t")
    assert (short.offset, short.data_offset, dns.offset, dns.data_offset) == (2, 4, 6, 8)
    with pytest.raises(CertificateDecodeError, match="t.loc4 must be 6 bytes, got 2") as info:
        parse_section_body(ReversedIpv4Port, short, "t.loc4", exact=6)
    assert info.value.offset == 2
    with pytest.raises(CertificateDecodeError, match="invite.dns is not UTF-8") as text_info:
        parse_section_body(DnsLocatorBody, dns, "invite.dns", minimum=2)
    assert text_info.value.offset == 10
    with pytest.raises(CertificateDecodeError, match="needs at least 6 bytes, got 4"):
        parse_section_body(HiddenLocatorBody, dns, "invite.hidden", minimum=6)
