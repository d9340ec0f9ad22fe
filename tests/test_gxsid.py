"""Identities: the PGP link of each captured signed identity, and identities we make."""

from __future__ import annotations

import dataclasses

import pytest

from pqi.identity.pgp import ProfileKey
from pqi.items.gxs import decode_gxsid_group, encode_gxsid_group
from pqi.wire.fields import GxsId
from services.gxs.policy import policy_for
from services.gxs.security import SignatureError, check_group
from services.gxsid.identity import (
    create_identity,
    identity_key,
    is_pgp_linked,
    pgp_hash,
    pgp_link,
)
from tests.captures2_items import nodes
from tests.gxs_fixtures import captured_groups, key_pairs, profile_keys


def _identities() -> dict[GxsId, tuple[bytes, object]]:
    return {gid: (item.grp, meta) for (svc, gid), (item, meta) in captured_groups().items()
            if svc == 0x0211}


def test_each_captured_identity_is_linked_to_its_owners_profile() -> None:
    """alice's, bob's and carol's signed ids: hash and PGP signature name their profile."""
    ids = _identities()
    assert len(ids) == 3
    profiles = profile_keys()
    for name, info in nodes().items():
        gid = GxsId.from_hex(info["gxs_id_signed"])
        grp, meta = ids[gid]
        assert is_pgp_linked(meta)  # type: ignore[arg-type]
        assert pgp_link(grp, meta, profiles.values()) == profiles[name].pgp_id  # type: ignore
        assert str(profiles[name].pgp_id) == info["pgp_id"]


def test_identity_signed_by_a_profile_we_do_not_know_is_not_linked() -> None:
    """Without the signer's profile key the link is unknown (None), not an error."""
    gid = GxsId.from_hex(nodes()["alice"]["gxs_id_signed"])
    grp, meta = _identities()[gid]
    others = [k for n, k in profile_keys().items() if n != "alice"]
    assert pgp_link(grp, meta, others) is None  # type: ignore[arg-type]


def test_a_forged_pgp_signature_is_refused() -> None:
    """The right hash with a signature bit flipped: SignatureError."""
    gid = GxsId.from_hex(nodes()["bob"]["gxs_id_signed"])
    grp, meta = _identities()[gid]
    data = decode_gxsid_group(grp)
    sig = bytearray(data.pgp_id_sign)
    sig[-3] ^= 0x01
    forged = encode_gxsid_group(dataclasses.replace(data, pgp_id_sign=bytes(sig)))
    with pytest.raises(SignatureError):
        pgp_link(forged, meta, profile_keys().values())  # type: ignore[arg-type]


def test_pgp_hash_is_over_the_hex_id_and_the_fingerprint() -> None:
    """calcPGPHash reproduced: the captured hash of carol's id."""
    gid = GxsId.from_hex(nodes()["carol"]["gxs_id_signed"])
    grp, _ = _identities()[gid]
    assert pgp_hash(gid, profile_keys()["carol"].fingerprint) == \
        decode_gxsid_group(grp).pgp_id_hash


@pytest.fixture(scope="module")
def profile() -> ProfileKey:
    return ProfileKey.generate("gxs-test", bits=2048, created=1_700_000_000)


def test_our_signed_identity_checks_like_a_real_one(profile: ProfileKey) -> None:
    """create_identity(profile): flags 0x101, group signature and PGP link both hold."""
    admin, publish = key_pairs()[3], key_pairs()[4]
    ident = create_identity("me", 1_700_000_100, profile, admin, publish)
    assert ident.gxs_id == admin.key_id and ident.meta.group_flags == 0x101
    check_group(ident.grp, ident.meta, ident.gxs_id, policy_for(0x0211))
    assert pgp_link(ident.grp, ident.meta, [profile.public]) == profile.pgp_id
    assert identity_key(ident.meta) == admin.public


def test_our_anonymous_identity() -> None:
    """create_identity() without a profile: PUBLIC flag, no link, still a sound group."""
    ident = create_identity("anon", 1_700_000_100, None, key_pairs()[3], key_pairs()[4])
    assert not is_pgp_linked(ident.meta) and ident.meta.group_flags == 0x4
    check_group(ident.grp, ident.meta, ident.gxs_id, policy_for(0x0211))
    assert pgp_link(ident.grp, ident.meta, profile_keys().values()) is None


def test_nickname_bounds() -> None:
    """An empty or over-long nickname is refused."""
    for bad in ("", "x" * 51):
        with pytest.raises(ValueError):
            create_identity(bad, 1, None, key_pairs()[3], key_pairs()[4])
