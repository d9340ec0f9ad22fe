"""GXS metadata, key and signature sets, identity group data, reputation and lobby items.

Every GXS, reputation and chat item of the second capture campaign (real RetroShare 0.6.7
nodes) must decode and re-encode to the same bytes, and so must the metadata and identity
binaries inside the NXS group and message items.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pqi
from pqi.items import gxs
from pqi.items.chat import ChatLobbyInviteDeprecatedItem, ChatLobbyInviteItem
from pqi.items.nxs import NxsGrpItem, NxsMsgItem, NxsRsaKey
from pqi.items.reputation import ReputationRequestItem, ReputationUpdateItem
from pqi.wire.errors import DecodeError, InvalidValueError, TrailingBytesError
from pqi.wire.fields import GxsId, GxsMessageId, Sha1Hash
from pqi.wire.item import UnknownItem
from pqi.wire.tlvvalues import KeySignature
from tests.captures2_items import counts, items, raw
from tests.strategies import ids, key_signatures
from tests.strategies_items import safe_text

GXS_AND_CHAT = frozenset(range(0x0200, 0x0300)) | {0x0012}
CAPTURED = items(GXS_AND_CHAT)


def test_every_captured_gxs_lobby_and_reputation_item_round_trips() -> None:
    """All 0x02xx and chat items of captures2 decode to known classes and re-encode exactly."""
    expected = sum(row[f"{n} {d}"] for row in counts() if int(row["service"], 16) in
                   GXS_AND_CHAT for n in ("alice", "bob", "carol") for d in ("in", "out"))
    assert len(CAPTURED) == expected
    for node, line, data in CAPTURED:
        item = pqi.decode(data)
        assert not isinstance(item, UnknownItem), f"{node}:{line}"
        assert pqi.encode(item) == data, f"{node}:{line}"


def _grp_items() -> list[tuple[str, int, NxsGrpItem]]:
    return [(n, li, it) for n, li, d in CAPTURED
            if isinstance(it := pqi.decode(d), NxsGrpItem)]


def _msg_items() -> list[tuple[str, int, NxsMsgItem]]:
    return [(n, li, it) for n, li, d in CAPTURED
            if isinstance(it := pqi.decode(d), NxsMsgItem)]


def test_group_metadata_of_every_captured_group_round_trips() -> None:
    """Identity, channel, forum, board and mail groups: metadata API 2, byte-identical."""
    groups = _grp_items()
    assert {it.SERVICE for _, _, it in groups} == {0x0211, 0x0215, 0x0216, 0x0217, 0x0230}
    for node, line, it in groups:
        meta = gxs.decode_grp_meta(it.meta)
        assert meta.group_id == it.grp_id, f"{node}:{line}"
        assert meta.api_version == gxs.GRP_META_API_2
        assert gxs.encode_grp_meta(meta) == it.meta, f"{node}:{line}"


def test_message_metadata_of_every_captured_message_round_trips() -> None:
    """Posts, comments, votes and mail messages: metadata re-encodes byte-identically."""
    msgs = _msg_items()
    assert len(msgs) >= 22
    for node, line, it in msgs:
        meta = gxs.decode_msg_meta(it.meta)
        assert (meta.msg_id, meta.group_id) == (it.msg_id, it.grp_id), f"{node}:{line}"
        assert gxs.encode_msg_meta(meta) == it.meta


def test_alice_identity_group_fields() -> None:
    """alice:133: alice's signed identity, its two keys (admin = the id, publish) and flags."""
    item = pqi.decode(raw("alice", 133))
    assert isinstance(item, NxsGrpItem)
    meta = gxs.decode_grp_meta(item.meta)
    alice = GxsId.from_hex("0ae352e5d8030e0f4f06c72924b8992b")
    assert (meta.group_id, meta.name, meta.group_flags, meta.circle_type) == (
        alice, "alice-signed-id", 0x101, 1)
    assert meta.author_id == GxsId.null()
    flags = {k.key_id: k.key_flags for k in meta.keys.keys}
    assert flags[alice] == gxs.KEY_TYPE_PUBLIC_ONLY | gxs.KEY_DISTRIB_ADMIN
    assert sorted(flags.values()) == [0x21, 0x41]
    assert [t for t, _ in meta.signatures.signatures] == [gxs.SIGN_TYPE_ADMIN]
    data = gxs.decode_gxsid_group(item.grp)
    assert data.recogn_tags == () and data.image == (0, b"")
    assert data.pgp_id_sign[0] & 0x80  # an OpenPGP packet
    assert gxs.encode_gxsid_group(data) == item.grp


def test_reputation_items() -> None:
    """bob:2680 (two opinions, to alice), carol:1251 (one), alice:1437 (a request)."""
    upd = pqi.decode(raw("bob", 2680))
    assert isinstance(upd, ReputationUpdateItem) and len(upd.opinions) == 2
    assert list(upd.opinions) == sorted(upd.opinions, key=lambda o: bytes(o.gxs_id))
    assert len(pqi.decode(raw("carol", 1251)).opinions) == 1  # type: ignore[union-attr]
    assert isinstance(pqi.decode(raw("alice", 1437)), ReputationRequestItem)


def test_lobby_invites_both_forms() -> None:
    """bob:174/175: the join as the current invite (name, topic) and the deprecated one."""
    kinds = {type(pqi.decode(raw("bob", n))) for n in (174, 175)}
    assert kinds == {ChatLobbyInviteItem, ChatLobbyInviteDeprecatedItem}
    for n in (174, 175):
        it = pqi.decode(raw("bob", n))
        assert it.lobby_id == 0x919EFBBE4227D70F and it.lobby_name == "capture-lobby"


def test_metadata_refuses_a_wrong_size_or_version_or_trailing_bytes() -> None:
    """The metadata header's size must be the binary's; unknown API versions are refused."""
    meta = gxs.encode_grp_meta(gxs.GrpMeta(GxsId(b"\x01" * 16)))
    with pytest.raises(InvalidValueError):
        gxs.decode_grp_meta(meta + b"\0")
    bad = bytearray(meta)
    bad[2:4] = b"\x12\x34"
    with pytest.raises(InvalidValueError):
        gxs.decode_grp_meta(bytes(bad))
    msg = gxs.encode_msg_meta(gxs.MsgMeta(GxsId(b"\x01" * 16)))
    padded = bytearray(msg + b"\0\0")
    padded[4:8] = len(padded).to_bytes(4, "big")
    with pytest.raises(TrailingBytesError):
        gxs.decode_msg_meta(bytes(padded))


def test_key_set_bound_holds() -> None:
    """A key set with more than MAX_KEYS_PER_SET keys is refused (bounded loop)."""
    key = NxsRsaKey(GxsId(b"\x02" * 16), 0x21, 1, 2, b"k")
    ok = gxs.GrpMeta(GxsId(b"\x01" * 16), keys=gxs.KeySet("", (key,) * gxs.MAX_KEYS_PER_SET))
    assert gxs.decode_grp_meta(gxs.encode_grp_meta(ok)) == ok
    too_many = dataclasses.replace(ok, keys=gxs.KeySet("", (key,) * (gxs.MAX_KEYS_PER_SET + 1)))
    with pytest.raises(InvalidValueError):
        gxs.decode_grp_meta(gxs.encode_grp_meta(too_many))


def test_key_set_order_is_retroshares() -> None:
    """KeySet.of: public keys by id, then private keys by id (std::map order)."""
    a = NxsRsaKey(GxsId(b"\x09" * 16), 0x41, 0, 0, b"")
    b = NxsRsaKey(GxsId(b"\x01" * 16), 0x21, 0, 0, b"")
    p = NxsRsaKey(GxsId(b"\x00" * 16), 0x42, 0, 0, b"")
    assert gxs.KeySet.of([p, a, b]).keys == (b, a, p)


_keys = st.builds(NxsRsaKey, ids(GxsId), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                  st.integers(0, 2**32 - 1), st.binary(max_size=40))
_sigsets = st.dictionaries(st.sampled_from([0x10, 0x20, 0x40]), key_signatures,
                           max_size=3).map(gxs.SignatureSet.of)
_u32 = st.integers(0, 2**32 - 1)


@given(st.builds(gxs.GrpMeta, ids(GxsId), ids(GxsId), ids(GxsId), safe_text(), _u32, _u32,
                 _u32, _u32, ids(GxsId), st.just(""), ids(GxsId), _sigsets,
                 st.builds(gxs.KeySet, safe_text(), st.lists(_keys, max_size=3).map(tuple)),
                 _u32, st.sampled_from([gxs.GRP_META_API_1, gxs.GRP_META_API_2])))
def test_group_metadata_round_trip(meta: gxs.GrpMeta) -> None:
    """Any group metadata value survives encode/decode (API 1 drops the sign flags)."""
    if meta.api_version == gxs.GRP_META_API_1:
        meta = dataclasses.replace(meta, sign_flags=0)
    assert gxs.decode_grp_meta(gxs.encode_grp_meta(meta)) == meta


@given(st.builds(gxs.MsgMeta, ids(GxsId), ids(GxsMessageId), ids(GxsMessageId),
                 ids(GxsMessageId), ids(GxsMessageId), ids(GxsId), _sigsets, safe_text(),
                 _u32, _u32))
def test_message_metadata_round_trip(meta: gxs.MsgMeta) -> None:
    """Any message metadata value survives encode/decode."""
    assert gxs.decode_msg_meta(gxs.encode_msg_meta(meta)) == meta


@given(st.builds(gxs.GxsIdGroupData, ids(Sha1Hash), st.binary(max_size=300),
                 st.lists(safe_text().filter(bool), max_size=3).map(tuple),
                 st.one_of(st.none(), st.tuples(_u32, st.binary(max_size=50)))))
def test_identity_group_round_trip(data: gxs.GxsIdGroupData) -> None:
    """Any identity group data survives encode/decode, with or without the image."""
    assert gxs.decode_gxsid_group(gxs.encode_gxsid_group(data)) == data


@given(st.binary(max_size=400))
def test_metadata_decoders_raise_only_decode_errors(data: bytes) -> None:
    """Garbage gives a DecodeError (or a value), never another exception."""
    for decoder in (gxs.decode_grp_meta, gxs.decode_msg_meta, gxs.decode_gxsid_group):
        try:
            decoder(data)
        except DecodeError:
            pass


def test_signature_set_keeps_the_last_type_read() -> None:
    """A signature takes the sign type most recently read, as RetroShare's reader does."""
    sig = KeySignature(GxsId(b"\x03" * 16), b"s")
    meta = gxs.GrpMeta(GxsId(b"\x01" * 16), signatures=gxs.SignatureSet.of({0x40: sig}))
    assert gxs.decode_grp_meta(gxs.encode_grp_meta(meta)).signatures.get(0x40) == sig
    assert gxs.decode_grp_meta(gxs.encode_grp_meta(meta)).signatures.get(0x10) is None
