# -*- test-case-name: tests.test_gxsid -*-
"""GXS identities (service 0x0211): making them, and checking their PGP link.

An identity is a GXS group of the identity service: its group id is its admin key's id and is
the identity's id (the ``RsGxsId`` that signs lobby messages, forum posts, mail...); its data
(`GxsIdGroupData`) says whether a profile (PGP key) vouches for it.  As ``p3IdService``:

- an anonymous identity has group flags PUBLIC (0x4); a profile-signed one PRIVATE|REALID
  (0x101: the old REALID bit, equal to PRIVATE, kept for older peers, plus the new one);
- circle type PUBLIC (1), no author, admin and publish key pairs;
- the PGP link: ``pgp_id_hash = SHA-1(hex text of the identity id || 20-byte fingerprint)``
  and ``pgp_id_sign`` an OpenPGP binary signature of that hash by the profile key.

`pgp_link` finds which of the known profile keys (friends' and ours) made the link and checks
its signature: a signed identity whose signer we do not know stays "unverified", never
"linked".
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from typing import Final

from pqi.identity.errors import SignatureError as PgpSignatureError
from pqi.identity.pgp import ProfileKey, PublicKey
from pqi.items.gxs import (
    KEY_DISTRIB_ADMIN,
    KEY_DISTRIB_PUBLISH,
    GrpMeta,
    GxsIdGroupData,
    decode_gxsid_group,
    encode_gxsid_group,
)
from pqi.items.nxs import NxsRsaKey
from pqi.wire.fields import GxsId, PgpFingerprint, PgpId, Sha1Hash
from services.gxs.security import KeyPair, SignatureError, generate_key_pair, new_group

__all__ = [
    "GROUPFLAG_REALID", "GROUPFLAG_REALID_OLD", "FLAG_PRIVACY_PUBLIC", "CIRCLE_TYPE_PUBLIC",
    "MAX_NICKNAME", "NewIdentity", "pgp_hash", "create_identity", "is_pgp_linked",
    "pgp_link", "identity_key",
]

#: ``RSGXSID_GROUPFLAG_REALID`` and its old value (equal to ``FLAG_PRIVACY_PRIVATE``).
GROUPFLAG_REALID: Final = 0x0100
GROUPFLAG_REALID_OLD: Final = 0x0001
FLAG_PRIVACY_PUBLIC: Final = 0x0004
#: ``GXS_CIRCLE_TYPE_PUBLIC``.
CIRCLE_TYPE_PUBLIC: Final = 1
#: Longest nickname we create (RetroShare's GUI limit is the group name limit).
MAX_NICKNAME: Final = 50


@dataclasses.dataclass(frozen=True)
class NewIdentity:
    """A freshly made identity: what travels (data, metadata) and the keys we keep."""

    grp: bytes
    meta: GrpMeta
    admin: KeyPair
    publish: KeyPair

    @property
    def gxs_id(self) -> GxsId:
        return self.meta.group_id


def pgp_hash(gxs_id: GxsId, fingerprint: PgpFingerprint) -> Sha1Hash:
    """``calcPGPHash``: SHA-1 over the id's lower-case hex text, then the fingerprint."""
    return Sha1Hash(hashlib.sha1(gxs_id.hex().encode("ascii") + bytes(fingerprint)).digest())


def create_identity(nickname: str, now: int, profile: ProfileKey | None = None,
                    admin: KeyPair | None = None,
                    publish: KeyPair | None = None) -> NewIdentity:
    """Make an identity; signed by ``profile`` when given, else anonymous.

    ``admin``/``publish`` let tests inject keys (generating 2048-bit keys is slow).
    """
    if not nickname or len(nickname.encode("utf-8")) > MAX_NICKNAME:
        raise ValueError(f"nickname must be 1..{MAX_NICKNAME} bytes")
    admin = admin or generate_key_pair(now, KEY_DISTRIB_ADMIN)
    publish = publish or generate_key_pair(now, KEY_DISTRIB_PUBLISH)
    gxs_id = admin.key_id
    if profile is not None:
        digest = pgp_hash(gxs_id, profile.fingerprint)
        data = GxsIdGroupData(digest, profile.sign(bytes(digest), created=now))
        flags = GROUPFLAG_REALID_OLD | GROUPFLAG_REALID
    else:
        data = GxsIdGroupData()
        flags = FLAG_PRIVACY_PUBLIC
    grp = encode_gxsid_group(data)
    meta = GrpMeta(group_id=gxs_id, name=nickname, group_flags=flags, publish_ts=now,
                   circle_type=CIRCLE_TYPE_PUBLIC)
    return NewIdentity(grp, new_group(grp, meta, admin, publish), admin, publish)


def is_pgp_linked(meta: GrpMeta) -> bool:
    """Does the identity claim a profile link (either REALID bit)?"""
    return bool(meta.group_flags & (GROUPFLAG_REALID | GROUPFLAG_REALID_OLD))


def pgp_link(grp: bytes, meta: GrpMeta, profiles: Iterable[PublicKey]) -> PgpId | None:
    """The profile that signed this identity, among ``profiles``; None when none of them did.

    Raises `SignatureError` when the identity names a known profile (its hash matches that
    profile's fingerprint) but the signature does not hold: a forged link.
    """
    if not is_pgp_linked(meta):
        return None
    data = decode_gxsid_group(grp)
    for key in profiles:
        if pgp_hash(meta.group_id, key.fingerprint) != data.pgp_id_hash:
            continue
        try:
            key.verify(bytes(data.pgp_id_hash), data.pgp_id_sign)
        except PgpSignatureError as e:
            raise SignatureError(f"identity {meta.group_id}: PGP link to {key.pgp_id} "
                                 f"does not hold: {e}") from e
        return key.pgp_id
    return None


def identity_key(meta: GrpMeta) -> NxsRsaKey | None:
    """The identity's public key (its admin key), which checks what the identity signs."""
    return next((k for k in meta.keys.public_keys() if k.key_id == meta.group_id), None)
