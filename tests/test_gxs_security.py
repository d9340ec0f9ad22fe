"""GXS ids and signatures against every real captured group and message, and our own.

For each captured identity, channel, forum, board and mail group our code recomputes the group
id from the admin key and verifies the admin (and author) signatures; for each message the id
and the publish/author signatures; flipping one bit of the signed bytes or of a signature
makes the check fail.
"""

from __future__ import annotations

import dataclasses

import pytest

from pqi.items.gxs import (
    KEY_DISTRIB_PUBLISH,
    SIGN_TYPE_ADMIN,
    SIGN_TYPE_IDENTITY,
    SIGN_TYPE_PUBLISH,
    GrpMeta,
    MsgMeta,
)
from pqi.wire.fields import GxsId, GxsMessageId
from pqi.wire.tlvvalues import KeySignature
from services.gxs import security as sec
from services.gxs.policy import DEFAULT_POLICY, policy_for
from tests.gxs_fixtures import captured_groups, captured_messages, identity_keys, key_pairs


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def test_every_captured_group_id_and_signature_verifies() -> None:
    """3 identities, channel, forum, board, 3 mail groups: id = admin key id, signatures hold."""
    groups = captured_groups()
    assert len(groups) == 9
    for (service, gid), (item, meta) in groups.items():
        admin = next(k for k in meta.keys.public_keys() if k.key_id == gid)
        assert sec.key_id_of(sec.load_public(admin)) == gid
        sec.check_group(item.grp, meta, gid, policy_for(service), identity_keys().get)
        if meta.author_id != GxsId.null():
            assert meta.signatures.get(SIGN_TYPE_IDENTITY) is not None


def test_every_captured_message_id_and_signature_verifies() -> None:
    """Posts, replies, comment, vote, mail: id recomputed, publish/author signatures hold."""
    msgs = captured_messages()
    assert len(msgs) == 9
    groups = {gid: meta for (_, gid), (_, meta) in captured_groups().items()}
    kinds = set()
    for (service, mid), (item, meta) in msgs.items():
        assert sec.message_id(item.msg, meta) == mid
        sec.check_message(item.msg, meta, mid, groups[item.grp_id], policy_for(service),
                          identity_keys().get)
        kinds |= {t for t, _ in meta.signatures.signatures}
    assert kinds == {SIGN_TYPE_IDENTITY, SIGN_TYPE_PUBLISH}


@pytest.mark.parametrize("where", ["grp", "meta", "signature"])
def test_one_bit_changed_in_a_group_fails(where: str) -> None:
    """A bit flipped in the group data, in its metadata or in the admin signature fails."""
    (service, gid), (item, meta) = next(iter(sorted(captured_groups().items())))
    grp = item.grp
    if where == "grp":
        grp = _flip(grp, len(grp) // 2)
    elif where == "meta":
        meta = dataclasses.replace(meta, publish_ts=meta.publish_ts ^ 1)
    else:
        sig = meta.signatures.get(SIGN_TYPE_ADMIN)
        assert sig is not None
        bad = KeySignature(sig.key_id, _flip(sig.sign_data, 7))
        meta = dataclasses.replace(meta, signatures=type(meta.signatures).of(
            {SIGN_TYPE_ADMIN: bad}))
    with pytest.raises(sec.SignatureError):
        sec.check_group(grp, meta, gid, policy_for(service), identity_keys().get)


def test_one_bit_changed_in_each_captured_message_fails() -> None:
    """Every captured message with one data bit flipped fails (id, then signatures)."""
    groups = {gid: meta for (_, gid), (_, meta) in captured_groups().items()}
    for (service, mid), (item, meta) in captured_messages().items():
        with pytest.raises(sec.SignatureError):
            sec.check_message(_flip(item.msg, 9), meta, mid, groups[item.grp_id],
                              policy_for(service), identity_keys().get)
        # Same bytes, claimed under the recomputed id: the signature still does not hold.
        bad = _flip(item.msg, 9)
        meta2 = dataclasses.replace(meta, msg_id=sec.message_id(bad, meta))
        with pytest.raises(sec.SignatureError):
            sec.check_message(bad, meta2, meta2.msg_id, groups[item.grp_id],
                              policy_for(service), identity_keys().get)


def test_a_message_whose_author_is_unknown_fails() -> None:
    """Without the author's key a signed message cannot be accepted (caller retries later)."""
    groups = {gid: meta for (_, gid), (_, meta) in captured_groups().items()}
    (service, mid), (item, meta) = next((k, v) for k, v in captured_messages().items()
                                        if k[0] == 0x0215)
    with pytest.raises(sec.SignatureError, match="unknown"):
        sec.check_message(item.msg, meta, mid, groups[item.grp_id], policy_for(service),
                          lambda _gid: None)


def test_admin_key_that_is_not_the_group_ids_fingerprint_fails() -> None:
    """A group whose id is not its admin key's fingerprint is refused before any signature."""
    (service, gid), (item, meta) = next(iter(sorted(captured_groups().items())))
    other = GxsId(b"\x05" * 16)
    admin = next(k for k in meta.keys.public_keys() if k.key_id == gid)
    forged = dataclasses.replace(meta, group_id=other, keys=type(meta.keys).of(
        [dataclasses.replace(admin, key_id=other)]))
    with pytest.raises(sec.SignatureError, match="fingerprint"):
        sec.check_group(item.grp, forged, other, policy_for(service))


def test_our_groups_and_messages_sign_and_check() -> None:
    """A group we make checks; a message its author signs gets RetroShare's id and checks."""
    admin, author = key_pairs()[0], key_pairs()[1]
    publish = dataclasses.replace(
        key_pairs()[2],
        public=dataclasses.replace(key_pairs()[2].public,
                                   key_flags=0x01 | KEY_DISTRIB_PUBLISH))
    meta = sec.new_group(b"group-data", GrpMeta(GxsId.null(), name="g", publish_ts=1_700_000_100,
                                                 group_flags=sec.FLAG_PRIVACY_PUBLIC),
                         admin, publish)
    assert meta.group_id == admin.key_id
    sec.check_group(b"group-data", meta, admin.key_id, DEFAULT_POLICY)
    msg_meta = sec.sign_message(b"hello", MsgMeta(meta.group_id, author_id=author.key_id,
                                                   name="m", publish_ts=1_700_000_200),
                                meta, DEFAULT_POLICY, author_key=author.private)
    assert msg_meta.msg_id == sec.message_id(b"hello", msg_meta)
    assert msg_meta.orig_msg_id == msg_meta.msg_id
    lookup = {author.key_id: author.public}.get
    sec.check_message(b"hello", msg_meta, msg_meta.msg_id, meta, DEFAULT_POLICY, lookup)
    with pytest.raises(sec.SignatureError):
        sec.check_message(b"hellp", msg_meta, msg_meta.msg_id, meta, DEFAULT_POLICY, lookup)


def test_a_signature_older_than_its_key_fails() -> None:
    """Publish time before the key's start: refused as RetroShare refuses it."""
    admin = key_pairs()[0]
    meta = sec.new_group(b"g", GrpMeta(GxsId.null(), publish_ts=admin.public.start_ts - 1),
                         admin)
    with pytest.raises(sec.SignatureError, match="before key"):
        sec.check_group(b"g", meta, admin.key_id, DEFAULT_POLICY)


def test_private_keys_are_never_carried_by_a_group() -> None:
    """new_group puts only public keys in the key set."""
    meta = sec.new_group(b"g", GrpMeta(GxsId.null(), publish_ts=1_700_000_000), key_pairs()[0])
    assert meta.keys.private_keys() == ()
    assert meta.keys == meta.keys.without_private()


def test_message_id_ignores_signatures_and_its_own_id() -> None:
    """The id covers data and metadata minus signatures, id, and an unversioned orig id."""
    meta = MsgMeta(GxsId(b"\x01" * 16), name="x")
    mid = sec.message_id(b"d", meta)
    signed = dataclasses.replace(meta, msg_id=mid, orig_msg_id=mid)
    assert sec.message_id(b"d", signed) == mid
    versioned = dataclasses.replace(meta, orig_msg_id=GxsMessageId(b"\x07" * 20))
    assert sec.message_id(b"d", versioned) != mid
