"""Byte-exact tests of the gossip-discovery items (service 0x0011).

Hex strings are items captured from real RetroShare 0.6.7 nodes (file:line of
``tests/vectors/retroshare``: ``captures/``) or built by hand from ``retroshare-wire-facts.md``.
"""

from __future__ import annotations

import ipaddress

import pytest

import pqi
from pqi.items.discovery import (
    ContactAddresses,
    DiscContactItem,
    DiscIdentityListItem,
    DiscPgpCertItem,
    DiscPgpKeyItem,
    DiscPgpListItem,
    HiddenAddress,
    PgpListMode,
)
from pqi.wire.address import NetAddress
from pqi.wire.fields import GxsId, PgpId, SslId

ALICE_PGP = PgpId.from_hex("CC22FB383D1957C2")
ALICE_SSL = SslId.from_hex("86192d6a6926c8af956f3601f1a77d19")
ALICE_CONTACT = (  # alice:9
    "020011050000009ccc22fb383d1957c286192d6a6926c8af956f3601f1a77d19005c0000000f616c6963"
    "652d6c6f63005f00000019302e362e372d3437322d67636166616161313900000002000200026b06ded5"
    "10720000001200850000000c0100007f791e10720000001200850000000c000000000000107200000006"
    "107200000006107200000006008300000006107100000006107100000006")


def _same(item: pqi.PQItem, hexstr: str) -> None:
    raw = bytes.fromhex(hexstr)
    assert pqi.encode(item) == raw
    assert pqi.decode(raw) == item


def test_pgp_list_friends() -> None:
    """alice:13: mode FRIENDS and a PGPIDSET TLV holding bob's PGP id."""
    _same(DiscPgpListItem(mode=PgpListMode.FRIENDS,
                          pgp_ids=frozenset({PgpId.from_hex("1FF918C2EAD0CCC1")})),
          "020011010000001a0000000110230000000e1ff918c2ead0ccc1")


def test_contact_of_a_clear_net_node() -> None:
    """alice:9: ids, location, version, modes, then the clear-net address tail."""
    item = DiscContactItem(
        pgp_id=ALICE_PGP, ssl_id=ALICE_SSL, location="alice-loc", version="0.6.7-472-gcafaaa19",
        net_mode=2, vs_disc=2, vs_dht=2, last_contact=0x6B06DED5,
        addresses=ContactAddresses(
            local_v4=NetAddress(ipaddress.IPv4Address("127.0.0.1"), 7801),
            ext_v4=NetAddress(ipaddress.IPv4Address("0.0.0.0"), 0)))
    _same(item, ALICE_CONTACT)


def test_contact_of_a_hidden_node() -> None:
    """A DOMADDR string after lastContact selects the hidden tail: address + u16 port."""
    item = DiscContactItem(
        pgp_id=ALICE_PGP, ssl_id=ALICE_SSL, location="l", version="v", net_mode=4, vs_disc=2,
        vs_dht=0, last_contact=5, addresses=HiddenAddress("abc.onion", 9050))
    _same(item, "020011050000004b" "cc22fb383d1957c2" "86192d6a6926c8af956f3601f1a77d19"
          "005c000000076c" "005f0000000776" "00000004" "0002" "0000" "00000005"
          "00840000000f6162632e6f6e696f6e" "235a")


def test_contact_without_tail_is_truncated() -> None:
    """A CONTACT that stops after lastContact fails as truncated, not with a crash."""
    raw = bytes.fromhex(ALICE_CONTACT)[:8 + 8 + 16 + 15 + 31 + 12]
    raw = raw[:4] + len(raw).to_bytes(4, "big") + raw[8:]
    with pytest.raises(pqi.TruncatedError):
        pqi.decode(raw)


def test_identity_list_empty_and_filled() -> None:
    """alice:10 (no identities) and a two-id list, kept in wire order."""
    _same(DiscIdentityListItem(identities=()), "020011060000000c00000000")
    a, b = GxsId(b"\xbb" * 16), GxsId(b"\xaa" * 16)
    _same(DiscIdentityListItem(identities=(a, b)),
          "020011060000002c00000002" + "bb" * 16 + "aa" * 16)


def test_pgp_key_binary() -> None:
    """PGP_CERT_BINARY: PGP id then a u32-length key block."""
    _same(DiscPgpKeyItem(pgp_id=ALICE_PGP, key_data=b"\xc6\x01\x02"),
          "0200110900000017cc22fb383d1957c200000003c60102")


def test_deprecated_pgp_cert_string() -> None:
    """PGP_CERT (0x02, deprecated) is recognised: PGP id then a STR_PGPCERT string."""
    _same(DiscPgpCertItem(pgp_id=ALICE_PGP, pgp_cert="K"),
          "0200110200000017cc22fb383d1957c2005d000000074b")
