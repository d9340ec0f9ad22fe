# -*- test-case-name: tests.test_gxs_security -*-
"""GXS keys, ids and signatures, computed exactly as RetroShare computes them.

The rules (``gxssecurity.cc``, ``rsgenexchange.cc``), each checked against real captured
groups and messages by the tests:

- keys are 2048-bit RSA, e = 65537, carried as PKCS#1 DER (``RSAPublicKey`` for a public key,
  ``RSAPrivateKey`` for a full one) in an `NxsRsaKey`; a key's id is the first 16 bytes of
  SHA-1 over the big-endian modulus then exponent (minimal bytes each);
- a group's id is its admin key's id; a public key starts now and ends 5 years later, a
  private key never ends;
- signatures are RSA PKCS#1 v1.5 over SHA-1;
- a group is signed over ``group data || metadata`` with the metadata's signature set emptied
  (API version 2 first, API 1 accepted on checking), by the admin key (sign type ADMIN) and,
  when it has an author or the service's policy wants one, the author identity's key
  (IDENTITY);
- a message is signed over ``message data || metadata`` with the signature set emptied, the
  message id null, and the original message id null when it equals the message id; the
  message id is the SHA-1 of those same bytes.  Its publish key signs (PUBLISH) when the
  service's policy says so for the group's privacy, and its author signs (IDENTITY) when the
  policy says so or it has an author;
- a signature made before the key's start time is refused.

A check that fails raises `SignatureError` (or returns False from the ``*_ok`` forms); a group
or message that fails is never stored or forwarded (the store and the NXS core rely on this
module for that).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pqi.items.gxs import (
    GRP_META_API_1,
    GRP_META_API_2,
    KEY_DISTRIB_PUBLIC_DEPRECATED,
    KEY_DISTRIB_PUBLISH,
    KEY_TYPE_FULL,
    KEY_TYPE_PUBLIC_ONLY,
    SIGN_TYPE_ADMIN,
    SIGN_TYPE_IDENTITY,
    SIGN_TYPE_PUBLISH,
    GrpMeta,
    KeySet,
    MsgMeta,
    SignatureSet,
    encode_grp_meta,
    encode_msg_meta,
)
from pqi.items.nxs import NxsRsaKey
from pqi.wire.fields import GxsId, GxsMessageId
from pqi.wire.tlvvalues import KeySignature

__all__ = [
    "KEY_BITS", "PUBLIC_KEY_LIFETIME", "SignatureError", "UnknownAuthorError", "AuthenPolicy",
    "KeyPair",
    "key_id_of", "key_pair_from", "load_public", "load_private", "generate_key_pair", "public_half",
    "sign", "verify", "verify_ok", "group_signed_bytes", "message_signed_bytes",
    "message_id", "new_group", "sign_message", "check_group", "check_message",
    "MSG_ROOT_PUBLISH", "MSG_CHILD_PUBLISH", "MSG_ROOT_AUTHOR", "MSG_CHILD_AUTHOR",
    "GRP_OPTION_AUTHOR", "FLAG_PRIVACY_PRIVATE", "FLAG_PRIVACY_RESTRICTED",
    "FLAG_PRIVACY_PUBLIC", "KeyLookup",
]

#: Size of the keys RetroShare makes.
KEY_BITS: Final = 2048
#: A public key's end time is its start plus this (about 5 years, as RetroShare).
PUBLIC_KEY_LIFETIME: Final = 60 * 60 * 24 * 365 * 5
#: Smallest RSA key we accept from a peer (RetroShare's ``checkPublicKey`` wants 2048 bits).
MIN_KEY_BITS: Final = 2048
#: Largest RSA key we accept (bounds the cost of one check).
MAX_KEY_BITS: Final = 8192

#: ``GXS_SERV::MSG_AUTHEN_*`` and ``GRP_OPTION_AUTHEN_*`` (``rsgxsflags.h``).
MSG_ROOT_PUBLISH: Final = 0x01
MSG_CHILD_PUBLISH: Final = 0x02
MSG_ROOT_AUTHOR: Final = 0x04
MSG_CHILD_AUTHOR: Final = 0x08
GRP_OPTION_AUTHOR: Final = 0x01
#: ``GXS_SERV::FLAG_PRIVACY_*``: the low bits of a group's flags.
FLAG_PRIVACY_PRIVATE: Final = 0x01
FLAG_PRIVACY_RESTRICTED: Final = 0x02
FLAG_PRIVACY_PUBLIC: Final = 0x04


class SignatureError(Exception):
    """A group, message or signed object failed a key, id or signature check."""


class UnknownAuthorError(SignatureError):
    """The author's identity is not known (yet): the check may pass once we have it."""

    def __init__(self, message: str, author: GxsId) -> None:
        super().__init__(message)
        self.author = author


@dataclasses.dataclass(frozen=True)
class AuthenPolicy:
    """A GXS service's authentication policy: which signatures its messages and groups need.

    One set of ``MSG_*`` bits per group privacy, and the group-option bits
    (``RsGenExchange::setAuthenPolicyFlag``'s four bytes).
    """

    public: int = 0
    restricted: int = 0
    private: int = 0
    group_options: int = 0

    def for_group(self, group_flags: int) -> int:
        if group_flags & FLAG_PRIVACY_RESTRICTED:
            return self.restricted
        if group_flags & FLAG_PRIVACY_PRIVATE:
            return self.private
        return self.public


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A key's public and private halves, both as `NxsRsaKey` (same id)."""

    public: NxsRsaKey
    private: NxsRsaKey

    @property
    def key_id(self) -> GxsId:
        return self.public.key_id


#: Gives the public key of an identity, or None when we do not have it (yet).
KeyLookup = Callable[[GxsId], "NxsRsaKey | None"]


def _min_bytes(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def key_id_of(key: rsa.RSAPublicKey) -> GxsId:
    """``getRsaKeyFingerprint``: SHA-1 of modulus || exponent, first 16 bytes."""
    numbers = key.public_numbers()
    return GxsId(hashlib.sha1(_min_bytes(numbers.n) + _min_bytes(numbers.e)).digest()[:16])


def load_public(key: NxsRsaKey) -> rsa.RSAPublicKey:
    """The RSA public key an `NxsRsaKey` carries (a full key gives its public half)."""
    try:
        if key.key_flags & KEY_TYPE_FULL:
            pub = load_private(key).public_key()
        else:
            loaded = serialization.load_der_public_key(key.key_data)
            if not isinstance(loaded, rsa.RSAPublicKey):
                raise SignatureError("not an RSA key")
            pub = loaded
    except (ValueError, TypeError) as e:
        raise SignatureError(f"unreadable key {key.key_id}: {e}") from e
    if not MIN_KEY_BITS <= pub.key_size <= MAX_KEY_BITS:
        raise SignatureError(f"key {key.key_id} has {pub.key_size} bits")
    return pub


def load_private(key: NxsRsaKey) -> rsa.RSAPrivateKey:
    """The RSA private key of a full `NxsRsaKey`."""
    try:
        loaded = serialization.load_der_private_key(key.key_data, password=None)
    except (ValueError, TypeError) as e:
        raise SignatureError(f"unreadable private key {key.key_id}: {e}") from e
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise SignatureError("not an RSA key")
    return loaded


def _public_der(pub: rsa.RSAPublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def _private_der(priv: rsa.RSAPrivateKey) -> bytes:
    return priv.private_bytes(serialization.Encoding.DER,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())


def key_pair_from(private_key: rsa.RSAPrivateKey, now: int, distrib: int) -> KeyPair:
    """Wrap an RSA key as RetroShare's key pair (``generateKeyPair`` + distribution flags)."""
    pub = private_key.public_key()
    kid = key_id_of(pub)
    return KeyPair(
        NxsRsaKey(kid, KEY_TYPE_PUBLIC_ONLY | distrib, now, now + PUBLIC_KEY_LIFETIME,
                  _public_der(pub)),
        NxsRsaKey(kid, KEY_TYPE_FULL | distrib, now, 0, _private_der(private_key)))


def generate_key_pair(now: int, distrib: int) -> KeyPair:
    """A new 2048-bit key pair with ``distrib`` (`KEY_DISTRIB_ADMIN`, ...) set on both halves."""
    return key_pair_from(rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS),
                         now, distrib)


def public_half(key: NxsRsaKey) -> NxsRsaKey:
    """The public key of a full key, with RetroShare's public flags and validity."""
    if not key.key_flags & KEY_TYPE_FULL:
        return key
    pub = load_public(key)
    flags = (key.key_flags & ~KEY_TYPE_FULL) | KEY_TYPE_PUBLIC_ONLY
    return NxsRsaKey(key.key_id, flags, key.start_ts, key.start_ts + PUBLIC_KEY_LIFETIME,
                     _public_der(pub))


def sign(data: bytes, key: NxsRsaKey) -> KeySignature:
    """``GxsSecurity::getSignature``: RSA PKCS#1 v1.5 / SHA-1 by a full key."""
    if not key.key_flags & KEY_TYPE_FULL:
        raise SignatureError(f"key {key.key_id} is not a private key")
    sig = load_private(key).sign(data, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    return KeySignature(key.key_id, sig)


def verify(data: bytes, key: NxsRsaKey, signature: KeySignature) -> None:
    """Raise `SignatureError` unless ``signature`` is ``key``'s over ``data``."""
    try:
        load_public(key).verify(signature.sign_data, data, padding.PKCS1v15(),
                                hashes.SHA1())  # noqa: S303
    except InvalidSignature as e:
        raise SignatureError(f"bad signature by {key.key_id}") from e


def verify_ok(data: bytes, key: NxsRsaKey, signature: KeySignature) -> bool:
    """`verify` as a boolean."""
    try:
        verify(data, key, signature)
    except SignatureError:
        return False
    return True


def group_signed_bytes(grp: bytes, meta: GrpMeta, api_version: int | None = None) -> bytes:
    """The bytes a group's signatures cover: data, then metadata without signatures."""
    bare = dataclasses.replace(meta, signatures=SignatureSet())
    return grp + encode_grp_meta(bare, api_version)


def message_signed_bytes(msg: bytes, meta: MsgMeta) -> bytes:
    """The bytes a message's signatures and id cover (see the module docstring)."""
    orig = GxsMessageId.null() if meta.orig_msg_id == meta.msg_id else meta.orig_msg_id
    bare = dataclasses.replace(meta, signatures=SignatureSet(), msg_id=GxsMessageId.null(),
                               orig_msg_id=orig)
    return msg + encode_msg_meta(bare)


def message_id(msg: bytes, meta: MsgMeta) -> GxsMessageId:
    """The id RetroShare gives this message (SHA-1 of the signed bytes)."""
    return GxsMessageId(hashlib.sha1(message_signed_bytes(msg, meta)).digest())


def _key_usable(key: NxsRsaKey, when: int) -> None:
    if when < key.start_ts:
        raise SignatureError(f"signed at {when}, before key {key.key_id} started "
                             f"({key.start_ts})")


def new_group(grp: bytes, meta: GrpMeta, admin: KeyPair, publish: KeyPair | None = None,
              author_key: NxsRsaKey | None = None) -> GrpMeta:
    """Sign a new group: its id becomes the admin key's, its key set the public keys.

    ``author_key`` (the author identity's private key) adds the IDENTITY signature; it is
    required when ``meta.author_id`` is set.
    """
    keys = [admin.public] + ([publish.public] if publish is not None else [])
    meta = dataclasses.replace(meta, group_id=admin.key_id, keys=KeySet.of(keys),
                               signatures=SignatureSet())
    data = group_signed_bytes(grp, meta, GRP_META_API_2)
    sigs = {SIGN_TYPE_ADMIN: sign(data, admin.private)}
    if not meta.author_id == GxsId.null():
        if author_key is None or author_key.key_id != meta.author_id:
            raise SignatureError("a group with an author needs the author's private key")
        sigs[SIGN_TYPE_IDENTITY] = sign(data, author_key)
    return dataclasses.replace(meta, signatures=SignatureSet.of(sigs),
                               api_version=GRP_META_API_2)


def check_group(grp: bytes, meta: GrpMeta, group_id: GxsId, policy: AuthenPolicy,
                author_lookup: KeyLookup | None = None) -> None:
    """``RsGenExchange::validateGrp``: raise `SignatureError` unless the group is sound.

    The admin key is the public key whose id is the group id and whose id is really that key's
    fingerprint; the admin signature must hold (metadata API 2, else 1).  An author signature is
    needed when the group names an author or the policy wants one; ``author_lookup`` gives the
    author's key (None from it, or no lookup: the check fails, the caller may retry later).
    """
    if meta.group_id != group_id:
        raise SignatureError(f"metadata group id {meta.group_id} is not {group_id}")
    admin = next((k for k in meta.keys.public_keys() if k.key_id == group_id), None)
    if admin is None:
        raise SignatureError(f"group {group_id} carries no admin key")
    if key_id_of(load_public(admin)) != group_id:
        raise SignatureError(f"admin key id {group_id} is not its key's fingerprint")
    admin_sig = meta.signatures.get(SIGN_TYPE_ADMIN)
    if admin_sig is None:
        raise SignatureError(f"group {group_id} has no admin signature")
    _key_usable(admin, meta.publish_ts)
    if not any(verify_ok(group_signed_bytes(grp, meta, v), admin, admin_sig)
               for v in (GRP_META_API_2, GRP_META_API_1)):
        raise SignatureError(f"admin signature of group {group_id} does not hold")
    if meta.author_id != GxsId.null() or policy.group_options & GRP_OPTION_AUTHOR:
        _check_author(group_signed_bytes(grp, meta), meta.author_id, meta.signatures,
                      meta.publish_ts, author_lookup, f"group {group_id}",
                      alt=group_signed_bytes(grp, meta, GRP_META_API_1))


def _check_author(data: bytes, author: GxsId, sigs: SignatureSet, when: int,
                  lookup: KeyLookup | None, what: str, alt: bytes | None = None) -> None:
    if author == GxsId.null():
        raise SignatureError(f"{what} needs an author and has none")
    sig = sigs.get(SIGN_TYPE_IDENTITY)
    if sig is None:
        raise SignatureError(f"{what} has no author signature")
    key = lookup(author) if lookup is not None else None
    if key is None:
        raise UnknownAuthorError(f"{what}: author key {author} unknown", author)
    _key_usable(key, when)
    if not (verify_ok(data, key, sig) or (alt is not None and verify_ok(alt, key, sig))):
        raise SignatureError(f"author signature of {what} does not hold")


def sign_message(msg: bytes, meta: MsgMeta, group: GrpMeta, policy: AuthenPolicy,
                 publish_key: NxsRsaKey | None = None,
                 author_key: NxsRsaKey | None = None) -> MsgMeta:
    """``createMessage``: the message's id and the signatures its group's policy needs."""
    meta = dataclasses.replace(meta, signatures=SignatureSet(), msg_id=GxsMessageId.null(),
                               orig_msg_id=GxsMessageId.null() if meta.orig_msg_id ==
                               meta.msg_id else meta.orig_msg_id)
    data = message_signed_bytes(msg, meta)
    flags = policy.for_group(group.group_flags)
    child = meta.parent_id != GxsMessageId.null()
    sigs: dict[int, KeySignature] = {}
    if flags & (MSG_CHILD_PUBLISH if child else MSG_ROOT_PUBLISH):
        if publish_key is None:
            raise SignatureError("this group needs the publish key to post")
        sigs[SIGN_TYPE_PUBLISH] = sign(data, publish_key)
    if flags & (MSG_CHILD_AUTHOR if child else MSG_ROOT_AUTHOR) or \
            meta.author_id != GxsId.null():
        if author_key is None or author_key.key_id != meta.author_id:
            raise SignatureError("this message needs its author's private key")
        sigs[SIGN_TYPE_IDENTITY] = sign(data, author_key)
    mid = GxsMessageId(hashlib.sha1(data).digest())
    orig = mid if meta.orig_msg_id == GxsMessageId.null() else meta.orig_msg_id
    return dataclasses.replace(meta, msg_id=mid, orig_msg_id=orig,
                               signatures=SignatureSet.of(sigs))


def check_message(msg: bytes, meta: MsgMeta, msg_id: GxsMessageId, group: GrpMeta,
                  policy: AuthenPolicy, author_lookup: KeyLookup | None = None) -> None:
    """``RsGenExchange::validateMsg`` plus the id check: raise unless the message is sound."""
    if meta.msg_id != msg_id:
        raise SignatureError(f"metadata message id {meta.msg_id} is not {msg_id}")
    if meta.group_id != group.group_id:
        raise SignatureError(f"message {msg_id} is not of group {group.group_id}")
    data = message_signed_bytes(msg, meta)
    if hashlib.sha1(data).digest() != bytes(msg_id):
        raise SignatureError(f"message id {msg_id} is not the hash of the message")
    flags = policy.for_group(group.group_flags)
    child = meta.parent_id != GxsMessageId.null()
    if flags & (MSG_CHILD_PUBLISH if child else MSG_ROOT_PUBLISH):
        publish = next((k for k in group.keys.public_keys()
                        if k.key_flags & (KEY_DISTRIB_PUBLIC_DEPRECATED | KEY_DISTRIB_PUBLISH)),
                       None)
        sig = meta.signatures.get(SIGN_TYPE_PUBLISH)
        if publish is None or sig is None:
            raise SignatureError(f"message {msg_id} needs a publish signature")
        _key_usable(publish, meta.publish_ts)
        if not verify_ok(data, publish, sig):
            raise SignatureError(f"publish signature of message {msg_id} does not hold")
    if flags & (MSG_CHILD_AUTHOR if child else MSG_ROOT_AUTHOR) or \
            meta.author_id != GxsId.null():
        _check_author(data, meta.author_id, meta.signatures, meta.publish_ts, author_lookup,
                      f"message {msg_id}")

