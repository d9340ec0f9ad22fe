# -*- test-case-name: tests.test_items_gxs -*-
"""GXS group and message metadata, key sets and signature sets, as RetroShare serialises them.

An NXS group or message item (`pqi.items.nxs`) carries two opaque binaries: the service's own
data item and this metadata.  The metadata is not an item: its 8-byte header is a u32 *API
version* and a u32 total size (``RsGxsGrpMetaData::serialise``), and the ids in it are raw bytes,
not TLVs.  Signatures are computed over ``data + metadata`` with the signature set emptied
(`pqi.items.gxs` only holds the layouts; `services.gxs.security` the rules), so these codecs
must reproduce RetroShare's bytes exactly, which every real captured group and message checks.

A key set keeps its keys in wire order (RetroShare writes public keys then private keys, each
group in id order); `KeySet.of` builds one in that order from unordered keys.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from typing import Any, Final

import construct as c

from pqi.wire import tlvtypes as tt
from pqi.wire.errors import EncodeError, InvalidValueError, TrailingBytesError
from pqi.wire.fields import GxsId, GxsMessageId, IdField, Sha1Hash, read_exact, u32
from pqi.wire.limits import MAX_SERIAL_SIZE, TLV_HEADER_SIZE
from pqi.wire.tlv import (
    BinaryTLV,
    StringTLV,
    TLVList,
    _read_tlv,
    nested_errors,
    peek_tlv_type,
    tlv_header,
)
from pqi.wire.tlvvalues import KeySignature, KeySignatureTLV

from .nxs import TLV_SECURITY_KEY, NxsRsaKey, RsaKeyTLV

__all__ = [
    "KEY_TYPE_PUBLIC_ONLY", "KEY_TYPE_FULL", "KEY_TYPE_MASK", "KEY_DISTRIB_PUBLISH",
    "KEY_DISTRIB_ADMIN", "KEY_DISTRIB_IDENTITY", "KEY_DISTRIB_PUBLIC_DEPRECATED",
    "SIGN_TYPE_IDENTITY", "SIGN_TYPE_PUBLISH", "SIGN_TYPE_ADMIN",
    "GRP_META_API_1", "GRP_META_API_2", "MSG_META_API", "MAX_KEYS_PER_SET",
    "MAX_SIGNATURES_PER_SET", "MAX_GROUP_NAME", "KeySet", "SignatureSet", "GrpMeta", "MsgMeta",
    "GxsIdGroupData", "decode_grp_meta", "encode_grp_meta", "decode_msg_meta",
    "encode_msg_meta", "decode_gxsid_group", "encode_gxsid_group", "TLV_STR_GROUPID",
    "TLV_SECURITYKEYSET", "TLV_KEYSIGNATURESET", "TLV_KEYSIGNATURETYPE",
]

#: ``RSTLV_KEY_*`` flags of an `NxsRsaKey` (``rstlvkeys.h``).
KEY_TYPE_MASK: Final = 0x000F
KEY_TYPE_PUBLIC_ONLY: Final = 0x0001
KEY_TYPE_FULL: Final = 0x0002
KEY_DISTRIB_PUBLIC_DEPRECATED: Final = 0x0010
KEY_DISTRIB_PUBLISH: Final = 0x0020
KEY_DISTRIB_ADMIN: Final = 0x0040
KEY_DISTRIB_IDENTITY: Final = 0x0080

#: Keys of a signature set (``INDEX_AUTHEN_*``): who signed.
SIGN_TYPE_IDENTITY: Final = 0x10
SIGN_TYPE_PUBLISH: Final = 0x20
SIGN_TYPE_ADMIN: Final = 0x40

#: API versions in the group metadata header; version 2 appends the sign flags.
GRP_META_API_1: Final = 0x0000
GRP_META_API_2: Final = 0xAF01
MSG_META_API: Final = 0x0000

#: TLV types (``rstlvbase.h``).
TLV_STR_GROUPID: Final = 0x00A0
TLV_STR_SIGN: Final = 0x00B4
TLV_STR_GENID: Final = 0x005A
TLV_BIN_IMAGE: Final = 0x0130
TLV_RECOGNSET: Final = 0x1024
TLV_SECURITYKEYSET: Final = 0x1041
TLV_KEYSIGNATURESET: Final = 0x1051
TLV_KEYSIGNATURETYPE: Final = 0x1052
TLV_IMAGE: Final = 0x1060

#: Most keys one key set may hold (a group has 2 to 4; RetroShare has no cap).
MAX_KEYS_PER_SET: Final = 16
#: Most signatures one signature set may hold (three kinds exist).
MAX_SIGNATURES_PER_SET: Final = 8
#: ``RsGxsGrpMetaData::MAX_ALLOWED_STRING_SIZE``: longest group name we create.
MAX_GROUP_NAME: Final = 50

_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">II")


@dataclasses.dataclass(frozen=True)
class KeySet:
    """``RsTlvSecurityKeySet``: a group id text (empty in practice) and RSA keys, wire order."""

    group_id: str = ""
    keys: tuple[NxsRsaKey, ...] = ()

    @classmethod
    def of(cls, keys: list[NxsRsaKey] | tuple[NxsRsaKey, ...], group_id: str = "") -> KeySet:
        """Keys in RetroShare's order: public keys by id, then private keys by id."""
        public = sorted((k for k in keys if k.key_flags & KEY_TYPE_PUBLIC_ONLY),
                        key=lambda k: bytes(k.key_id))
        private = sorted((k for k in keys if not k.key_flags & KEY_TYPE_PUBLIC_ONLY),
                         key=lambda k: bytes(k.key_id))
        return cls(group_id, tuple(public + private))

    def public_keys(self) -> tuple[NxsRsaKey, ...]:
        return tuple(k for k in self.keys if k.key_flags & KEY_TYPE_PUBLIC_ONLY)

    def private_keys(self) -> tuple[NxsRsaKey, ...]:
        return tuple(k for k in self.keys if k.key_flags & KEY_TYPE_FULL)

    def without_private(self) -> KeySet:
        """The set as it travels: RetroShare never sends private keys inside a group."""
        return KeySet(self.group_id, self.public_keys())


class _KeySetTLV(c.Construct):
    """The key set TLV: group id string, then RSA key TLVs; other sub-TLVs skipped."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> KeySet:
        _, base, data = _read_tlv(stream, path, TLV_SECURITYKEYSET)
        sub = io.BytesIO(data)
        keys: list[NxsRsaKey] = []
        with nested_errors(sub, base):
            group_id = StringTLV(TLV_STR_GROUPID)._parsereport(sub, context, path)
            while len(data) - sub.tell() >= TLV_HEADER_SIZE:
                if peek_tlv_type(sub) != TLV_SECURITY_KEY:
                    _read_tlv(sub, path, None)
                    continue
                if len(keys) >= MAX_KEYS_PER_SET:
                    raise InvalidValueError(f"more than MAX_KEYS_PER_SET ({MAX_KEYS_PER_SET}) "
                                            "keys", field=path, offset=base + sub.tell())
                keys.append(RsaKeyTLV._parsereport(sub, context, path))
        return KeySet(group_id, tuple(keys))

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        inner = io.BytesIO()
        StringTLV(TLV_STR_GROUPID)._build(obj.group_id, inner, context, path)
        for key in obj.keys:
            RsaKeyTLV._build(key, inner, context, path)
        data = inner.getvalue()
        stream.write(tlv_header(TLV_SECURITYKEYSET, len(data)))
        stream.write(data)
        return obj


KeySetTLV = _KeySetTLV()


@dataclasses.dataclass(frozen=True)
class SignatureSet:
    """``RsTlvKeySignatureSet``: signatures by sign type (`SIGN_TYPE_*`), in type order."""

    signatures: tuple[tuple[int, KeySignature], ...] = ()

    @classmethod
    def of(cls, by_type: dict[int, KeySignature]) -> SignatureSet:
        return cls(tuple(sorted(by_type.items())))

    def get(self, sign_type: int) -> KeySignature | None:
        for t, sig in self.signatures:
            if t == sign_type:
                return sig
        return None


class _SignatureSetTLV(c.Construct):
    """Pairs of (sign type u32 TLV, key signature TLV); a signature takes the last type read."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> SignatureSet:
        _, base, data = _read_tlv(stream, path, TLV_KEYSIGNATURESET)
        sub = io.BytesIO(data)
        out: dict[int, KeySignature] = {}
        sign_type = 0
        with nested_errors(sub, base):
            while len(data) - sub.tell() >= TLV_HEADER_SIZE:
                t = peek_tlv_type(sub)
                if t == TLV_KEYSIGNATURETYPE:
                    _, _, raw = _read_tlv(sub, path, TLV_KEYSIGNATURETYPE)
                    if len(raw) != 4:
                        raise InvalidValueError("sign type TLV is not a u32", field=path,
                                                offset=base + sub.tell())
                    sign_type = _U32.unpack(raw)[0]
                elif t == tt.KEYSIGNATURE:
                    if sign_type not in out and len(out) >= MAX_SIGNATURES_PER_SET:
                        raise InvalidValueError("more than MAX_SIGNATURES_PER_SET signatures",
                                                field=path, offset=base + sub.tell())
                    out[sign_type] = KeySignatureTLV._parsereport(sub, context, path)
                else:
                    _read_tlv(sub, path, None)
        return SignatureSet.of(out)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        inner = io.BytesIO()
        for sign_type, sig in obj.signatures:
            inner.write(tlv_header(TLV_KEYSIGNATURETYPE, 4) + _U32.pack(sign_type))
            KeySignatureTLV._build(sig, inner, context, path)
        data = inner.getvalue()
        stream.write(tlv_header(TLV_KEYSIGNATURESET, len(data)))
        stream.write(data)
        return obj


SignatureSetTLV = _SignatureSetTLV()


@dataclasses.dataclass(frozen=True)
class GrpMeta:
    """``RsGxsGrpMetaData`` as it travels (the local-only fields are the store's business).

    ``service_string`` is written empty by RetroShare and ignored on reading; it is kept so
    that what we decode re-encodes to the same bytes.
    """

    group_id: GxsId
    orig_grp_id: GxsId = GxsId.null()
    parent_grp_id: GxsId = GxsId.null()
    name: str = ""
    group_flags: int = 0
    publish_ts: int = 0
    circle_type: int = 0
    authen_flags: int = 0
    author_id: GxsId = GxsId.null()
    service_string: str = ""
    circle_id: GxsId = GxsId.null()
    signatures: SignatureSet = SignatureSet()
    keys: KeySet = KeySet()
    sign_flags: int = 0
    api_version: int = GRP_META_API_2


_GRP_BODY = c.Struct(
    "group_id" / IdField(GxsId), "orig_grp_id" / IdField(GxsId),
    "parent_grp_id" / IdField(GxsId), "name" / StringTLV(0), "group_flags" / u32,
    "publish_ts" / u32, "circle_type" / u32, "authen_flags" / u32,
    "author_id" / IdField(GxsId), "service_string" / StringTLV(0),
    "circle_id" / IdField(GxsId), "signatures" / SignatureSetTLV, "keys" / KeySetTLV)


@dataclasses.dataclass(frozen=True)
class MsgMeta:
    """``RsGxsMsgMetaData`` as it travels."""

    group_id: GxsId
    msg_id: GxsMessageId = GxsMessageId.null()
    thread_id: GxsMessageId = GxsMessageId.null()
    parent_id: GxsMessageId = GxsMessageId.null()
    orig_msg_id: GxsMessageId = GxsMessageId.null()
    author_id: GxsId = GxsId.null()
    signatures: SignatureSet = SignatureSet()
    name: str = ""
    publish_ts: int = 0
    msg_flags: int = 0


_MSG_BODY = c.Struct(
    "group_id" / IdField(GxsId), "msg_id" / IdField(GxsMessageId),
    "thread_id" / IdField(GxsMessageId), "parent_id" / IdField(GxsMessageId),
    "orig_msg_id" / IdField(GxsMessageId), "author_id" / IdField(GxsId),
    "signatures" / SignatureSetTLV, "name" / StringTLV(0), "publish_ts" / u32,
    "msg_flags" / u32)


def _parse(schema: c.Construct, stream: io.BytesIO, what: str) -> Any:
    with nested_errors(stream, 0):
        return schema.parse_stream(stream)


def _framed(data: bytes, what: str) -> tuple[int, io.BytesIO]:
    """Check the 8-byte (api version, size) header; the stream is left after it."""
    stream = io.BytesIO(bytes(data))
    version, size = _HEAD.unpack(read_exact(stream, 8, what))
    if size != len(data):
        raise InvalidValueError(f"{what} says {size} bytes, holds {len(data)}", field=what,
                                offset=4)
    return version, stream


def _finish(stream: io.BytesIO, what: str) -> None:
    left = len(stream.getbuffer()) - stream.tell()
    if left:
        raise TrailingBytesError(f"{left} bytes after the last field of {what}",
                                 offset=stream.tell())


def decode_grp_meta(data: bytes) -> GrpMeta:
    """Decode a group metadata binary (API 1 or 2); `DecodeError` on anything else."""
    version, stream = _framed(data, "grp_meta")
    if version not in (GRP_META_API_1, GRP_META_API_2):
        raise InvalidValueError(f"unknown group metadata API version 0x{version:x}",
                                field="grp_meta.version", offset=0)
    body = _parse(_GRP_BODY, stream, "grp_meta")
    sign_flags = 0
    if version == GRP_META_API_2:
        sign_flags = _U32.unpack(read_exact(stream, 4, "grp_meta.sign_flags"))[0]
    _finish(stream, "grp_meta")
    fields = {f.name: body[f.name] for f in dataclasses.fields(GrpMeta)
              if f.name in body and not f.name.startswith("_")}
    return GrpMeta(**fields, sign_flags=sign_flags, api_version=version)


def encode_grp_meta(meta: GrpMeta, api_version: int | None = None) -> bytes:
    """The metadata binary; ``api_version`` overrides the one the value carries."""
    version = meta.api_version if api_version is None else api_version
    if version not in (GRP_META_API_1, GRP_META_API_2):
        raise EncodeError(f"unknown group metadata API version 0x{version:x}")
    try:
        body = _GRP_BODY.build({f.name: getattr(meta, f.name)
                                for f in dataclasses.fields(GrpMeta)
                                if f.name not in ("sign_flags", "api_version")})
    except (c.ConstructError, struct.error, ValueError, TypeError) as e:
        raise EncodeError(f"group metadata: {e!r}") from e
    if version == GRP_META_API_2:
        body += _U32.pack(meta.sign_flags)
    return _frame(version, body)


def _frame(version: int, body: bytes) -> bytes:
    size = 8 + len(body)
    if size > MAX_SERIAL_SIZE:
        raise EncodeError(f"metadata of {size} bytes is above MAX_SERIAL_SIZE")
    return _HEAD.pack(version, size) + body


def decode_msg_meta(data: bytes) -> MsgMeta:
    """Decode a message metadata binary."""
    version, stream = _framed(data, "msg_meta")
    if version != MSG_META_API:
        raise InvalidValueError(f"unknown message metadata API version 0x{version:x}",
                                field="msg_meta.version", offset=0)
    body = _parse(_MSG_BODY, stream, "msg_meta")
    _finish(stream, "msg_meta")
    return MsgMeta(**{f.name: body[f.name] for f in dataclasses.fields(MsgMeta)})


def encode_msg_meta(meta: MsgMeta) -> bytes:
    try:
        body = _MSG_BODY.build({f.name: getattr(meta, f.name)
                                for f in dataclasses.fields(MsgMeta)})
    except (c.ConstructError, struct.error, ValueError, TypeError) as e:
        raise EncodeError(f"message metadata: {e!r}") from e
    return _frame(MSG_META_API, body)


# --- the identity service's group data (0x0211) ---------------------------------------------

#: Item header of a serialised service data item: version, service, subtype, size.
_ITEM_HEAD = struct.Struct(">BHBI")
_GXSID_SERVICE: Final = 0x0211
_GXSID_GROUP_SUBTYPE: Final = 0x02


@dataclasses.dataclass(frozen=True)
class GxsIdGroupData:
    """``RsGxsIdGroupItem``: the identity's PGP link (hash and signature), tags, avatar.

    ``pgp_id_sign`` is a binary OpenPGP signature packet carried in a *string* TLV
    (``TLV_TYPE_STR_SIGN``); it is kept as bytes.  ``image`` is None when the optional image
    TLV is absent, else (image type, bytes).
    """

    pgp_id_hash: Sha1Hash = Sha1Hash.null()
    pgp_id_sign: bytes = b""
    recogn_tags: tuple[str, ...] = ()
    image: tuple[int, bytes] | None = (0, b"")


_GXSID_BODY = c.Struct(
    "pgp_id_hash" / IdField(Sha1Hash), "pgp_id_sign" / BinaryTLV(TLV_STR_SIGN),
    "recogn_tags" / TLVList(TLV_RECOGNSET, StringTLV(TLV_STR_GENID)))
_IMAGE = c.Struct("image_type" / u32, "data" / BinaryTLV(TLV_BIN_IMAGE))


def decode_gxsid_group(data: bytes) -> GxsIdGroupData:
    """Decode the identity group data binary (an item header, then the body)."""
    stream = io.BytesIO(bytes(data))
    version, service, subtype, size = _ITEM_HEAD.unpack(read_exact(stream, 8, "gxsid_group"))
    if (service, subtype) != (_GXSID_SERVICE, _GXSID_GROUP_SUBTYPE) or size != len(data):
        raise InvalidValueError(f"not an identity group item (0x{service:04x}/0x{subtype:02x},"
                                f" {size} of {len(data)} bytes)", field="gxsid_group", offset=0)
    body = _parse(_GXSID_BODY, stream, "gxsid_group")
    image: tuple[int, bytes] | None = None
    if stream.tell() < len(data):
        with nested_errors(stream, 0):
            _, base, payload = _read_tlv(stream, "gxsid_group.image", TLV_IMAGE)
        sub = io.BytesIO(payload)
        with nested_errors(sub, base):
            img = _IMAGE.parse_stream(sub)
        image = (img.image_type, img.data)
    _finish(stream, "gxsid_group")
    return GxsIdGroupData(body.pgp_id_hash, body.pgp_id_sign, tuple(body.recogn_tags), image)


def encode_gxsid_group(group: GxsIdGroupData) -> bytes:
    try:
        body = _GXSID_BODY.build({"pgp_id_hash": group.pgp_id_hash,
                                  "pgp_id_sign": group.pgp_id_sign,
                                  "recogn_tags": list(group.recogn_tags)})
        if group.image is not None:
            img = _IMAGE.build({"image_type": group.image[0], "data": group.image[1]})
            body += tlv_header(TLV_IMAGE, len(img)) + img
    except (c.ConstructError, struct.error, ValueError, TypeError) as e:
        raise EncodeError(f"identity group: {e!r}") from e
    size = 8 + len(body)
    return _ITEM_HEAD.pack(2, _GXSID_SERVICE, _GXSID_GROUP_SUBTYPE, size) + body
