"""Byte-exact tests of the small services' items and of the generic blocks in pqi.wire.compound.

Hex strings are items captured from real RetroShare 0.6.7 nodes (file:line of
``tests/vectors/retroshare``: ``captures/``) or built by hand from ``retroshare-wire-facts.md``.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest

import pqi
from pqi.items.banlist import BanEntry, BanListItem
from pqi.items.bwctrl import BwCtrlAllowedItem
from pqi.items.heartbeat import HeartbeatItem
from pqi.items.rtt import RttPingItem, RttPongItem
from pqi.items.serviceinfo import (
    ServiceInfo,
    ServiceInfoListItem,
    ServiceInfoPermissionsItem,
    full_service_id,
)
from pqi.items.status import PeerStatus, StatusItem
from pqi.wire.address import NetAddress
from pqi.wire.compound import CappedBytes, IdList, IdSet
from pqi.wire.fields import GxsId, Sha1Hash
from pqi.wire.limits import MAX_CONTAINER_COUNT


def _same(item: pqi.PQItem, hexstr: str) -> None:
    raw = bytes.fromhex(hexstr)
    assert pqi.encode(item) == raw
    assert pqi.decode(raw) == item


def test_status_online_and_away() -> None:
    """alice:12 (online on connect) and alice:249 (away): send time then status."""
    _same(StatusItem(send_time=0x6B06DED5, status=PeerStatus.ONLINE),
          "02010201000000106b06ded500000003")
    _same(StatusItem(send_time=0x6B06DF6A, status=PeerStatus.AWAY),
          "02010201000000106b06df6a00000001")


def test_rtt_ping_and_pong() -> None:
    """alice:3 ping (seq, ping ts) and alice:20 pong (seq, ping ts echoed, pong ts)."""
    _same(RttPingItem(seq=1, ping_ts=0x6B06DED500029834),
          "0210110100000014000000016b06ded500029834")
    _same(RttPongItem(seq=1, ping_ts=0x6B06DEDB0002D29C, pong_ts=0x6B06DEDB00030AFF),
          "021011020000001c000000016b06dedb0002d29c6b06dedb00030aff")


def test_bandwidth_allowed() -> None:
    """alice:16: the allowed rate in a UINT32_BW (0x0035) TLV."""
    _same(BwCtrlAllowedItem(allowed_bw=0x0072710F), "020021010000001200350000000a0072710f")


def test_heartbeat_is_an_empty_item() -> None:
    """Heartbeat: header only."""
    _same(HeartbeatItem(), "0200160100000008")


def test_service_list_entry_layout() -> None:
    """A one-service list: map > pair > (u32 key TLV, value TLV), all TLV types 1 (facts 1.5)."""
    sid = full_service_id(0x0011)
    assert sid == 0x02001100
    item = ServiceInfoListItem(services={sid: ServiceInfo("disc", sid)})
    _same(item, "0200200100000038" "000100000030"      # header, map TLV
          "00010000002a"                                 # pair TLV
          "00010000000a02001100"                         # key TLV: the full id
          "00010000001a" "0000000464697363"              # value TLV: name "disc"
          "02001100" "0001" "0000" "0001" "0000")        # id, version 1.0, min 1.0


def test_service_list_is_written_in_key_order() -> None:
    """std::map order: keys ascending whatever order the dict was built in."""
    a, b = full_service_id(0x0012), full_service_id(0x0011)
    item = ServiceInfoListItem(services={a: ServiceInfo("chat", a), b: ServiceInfo("disc", b)})
    raw = pqi.encode(item)
    assert raw.index(b"disc") < raw.index(b"chat")
    assert list(pqi.decode(raw).services) == [b, a]


def test_service_permissions() -> None:
    """Subtype 0x02: one u32 of allowed bandwidth."""
    _same(ServiceInfoPermissionsItem(allowed_bw=1024), "020020020000000c00000400")


def test_ban_list_entry_layout() -> None:
    """BAN_LIST > BAN_ENTRY {ADDRESS (LE-host quirk), level, reason, age, masked bytes, comment}."""
    entry = BanEntry(NetAddress(ipaddress.IPv4Address("1.2.3.4"), 7812), level=1, reason=2,
                     age=3, masked_bytes=1, comment="x")
    entry_hex = ("10920000002c" "107200000012" "00850000000c" "04030201" "841e"
                 "00000001" "00000002" "00000003" "01" "005500000007" "78")
    _same(BanListItem(entries=[entry]), "020101030000003a" "109100000032" + entry_hex)


def test_empty_ban_list() -> None:
    """An empty list is just the BAN_LIST header."""
    _same(BanListItem(entries=[]), "020101030000000e109100000006")


# --- pqi.wire.compound limits ------------------------------------------------------------------

def test_capped_bytes_limit() -> None:
    """CappedBytes reads and writes up to its maximum and refuses one byte more, both ways."""
    con = CappedBytes(8, "TEST_LIMIT")
    for n in (7, 8):
        data = bytes(range(n))
        assert con.parse(struct.pack(">I", n) + data) == data
        assert con.build(data) == struct.pack(">I", n) + data
    with pytest.raises(pqi.LimitExceededError) as e:
        con.parse(struct.pack(">I", 9) + bytes(9))
    assert e.value.limit == "TEST_LIMIT"
    with pytest.raises(pqi.EncodeError):
        con.build(bytes(9))


@pytest.mark.slow
@pytest.mark.parametrize("n", [MAX_CONTAINER_COUNT - 1, MAX_CONTAINER_COUNT])
def test_id_list_count_up_to_the_container_limit(n: int) -> None:
    """IdList accepts counts up to MAX_CONTAINER_COUNT when the bytes are there."""
    data = struct.pack(">I", n) + bytes(16 * n)
    assert len(IdList(GxsId).parse(data)) == n


def test_id_list_count_over_the_container_limit() -> None:
    """One over MAX_CONTAINER_COUNT is refused before anything is read."""
    data = struct.pack(">I", MAX_CONTAINER_COUNT + 1)
    with pytest.raises(pqi.LimitExceededError) as e:
        IdList(GxsId).parse(data)
    assert e.value.limit == "MAX_CONTAINER_COUNT"


def test_id_collection_count_beyond_the_bytes_left() -> None:
    """A count the remaining bytes cannot hold is a TruncatedError at the count."""
    with pytest.raises(pqi.TruncatedError) as e:
        IdSet(Sha1Hash).parse(struct.pack(">I", 2) + bytes(39))
    assert e.value.offset == 0


def test_id_set_is_written_sorted_and_read_as_a_set() -> None:
    """std::set order on the wire; a frozenset in Python."""
    lo, hi = Sha1Hash(bytes(20)), Sha1Hash(b"\xff" * 20)
    raw = IdSet(Sha1Hash).build([hi, lo])
    assert raw == struct.pack(">I", 2) + bytes(lo) + bytes(hi)
    assert IdSet(Sha1Hash).parse(raw) == frozenset({lo, hi})
    assert IdList(Sha1Hash).parse(raw) == (lo, hi)
