# -*- test-case-name: tests.test_distant_mail -*-
"""GXS trans (service 0x0230) data: what the messages and groups of distant mail hold.

These are not link items: they are the ``msg`` / ``grp`` bytes inside the NXS items of
service 0x0230 (`pqi.items.nxs`), each one a serialised RetroShare item with its own header
(service 0x0230, subtype `MAIL`, `RECEIPT` or `GROUP`), so they have codec functions here
and no registered class (their subtypes would clash with the NXS items of the same service).

- a mail (``RsGxsTransMailItem``): a 64-bit mail id, the encryption mode, a *recipient hint*
  (the recipient's id OR a random salt: an identity whose bits are not all in it is not the
  recipient) and the payload, encrypted to the recipient's identity key;
- a receipt (``RsGxsTransPresignedReceipt``): the mail id alone; the sender made and signed it
  and put it inside the mail, and the recipient publishes it to say "received";
- a group (``RsGxsTransGroupItem``): no data at all, the header alone.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import struct
from typing import Final

from pqi.wire.errors import EncodeError, InvalidValueError, LimitExceededError, TrailingBytesError
from pqi.wire.fields import GxsId, read_exact, remaining

from .ids import SERVICE_GXS_TRANS

__all__ = [
    "MAIL", "RECEIPT", "GROUP", "MAX_MAIL_PAYLOAD", "ALL_RECIPIENTS", "CryptoType",
    "TransMail", "TransReceipt", "decode_trans_message", "encode_trans_mail",
    "encode_trans_receipt", "encode_trans_group", "is_trans_group", "may_be_recipient",
]

#: ``GxsTransItemsSubtypes``.
MAIL: Final = 0x01
RECEIPT: Final = 0x02
GROUP: Final = 0x03
#: ``RsGxsTransMailItem::MAX_SIZE``.
MAX_MAIL_PAYLOAD: Final = 10 * 8 * 1024 * 1024
#: The hint that names nobody in particular (every identity may be the recipient).
ALL_RECIPIENTS: Final = GxsId(b"\xff" * 16)
_HEAD = struct.Struct(">BHBI")
_VERSION: Final = 0x02
_MAIL_FIXED = struct.Struct(">QB16sI")


class CryptoType(enum.IntEnum):
    """``RsGxsTransEncryptionMode``."""

    CLEAR_TEXT = 1
    RSA = 2
    UNDEFINED = 250


@dataclasses.dataclass(frozen=True)
class TransMail:
    """A distant mail as published in a GXS trans group."""

    mail_id: int
    crypto_type: int
    recipient_hint: GxsId
    payload: bytes


@dataclasses.dataclass(frozen=True)
class TransReceipt:
    """A delivery receipt for mail ``mail_id``."""

    mail_id: int


def may_be_recipient(hint: GxsId, gxs_id: GxsId) -> bool:
    """``maybeRecipient``: every 1 bit of ``gxs_id`` is set in ``hint``."""
    return all(h | (~g & 0xFF) == 0xFF for h, g in zip(hint, gxs_id, strict=True))


def _header(data: bytes, what: str) -> tuple[int, io.BytesIO]:
    stream = io.BytesIO(bytes(data))
    version, service, subtype, size = _HEAD.unpack(read_exact(stream, _HEAD.size, what))
    if version != _VERSION or service != SERVICE_GXS_TRANS or size != len(data):
        raise InvalidValueError(f"not a GXS trans item (v{version}, 0x{service:04x}, {size} of "
                                f"{len(data)} bytes)", field=what, offset=0)
    return subtype, stream


def decode_trans_message(data: bytes) -> TransMail | TransReceipt:
    """Decode a GXS trans message's data: a mail or a receipt (`DecodeError` otherwise)."""
    subtype, stream = _header(data, "trans_message")
    if subtype == RECEIPT:
        (mail_id,) = struct.unpack(">Q", read_exact(stream, 8, "receipt.mail_id"))
        result: TransMail | TransReceipt = TransReceipt(mail_id)
    elif subtype == MAIL:
        mail_id, crypto, hint, size = _MAIL_FIXED.unpack(
            read_exact(stream, _MAIL_FIXED.size, "mail"))
        if size > MAX_MAIL_PAYLOAD:
            raise LimitExceededError("MAX_MAIL_PAYLOAD", size, MAX_MAIL_PAYLOAD,
                                     field="mail.payload", offset=stream.tell() - 4)
        if size > remaining(stream):
            raise InvalidValueError(f"mail payload of {size} bytes, {remaining(stream)} left",
                                    field="mail.payload", offset=stream.tell())
        result = TransMail(mail_id, crypto, GxsId(hint), stream.read(size))
    else:
        raise InvalidValueError(f"GXS trans message of subtype 0x{subtype:02x}",
                                field="trans_message", offset=3)
    if remaining(stream):
        raise TrailingBytesError(f"{remaining(stream)} bytes after a GXS trans message",
                                 offset=stream.tell())
    return result


def _item(subtype: int, body: bytes) -> bytes:
    return _HEAD.pack(_VERSION, SERVICE_GXS_TRANS, subtype, _HEAD.size + len(body)) + body


def encode_trans_mail(mail: TransMail) -> bytes:
    if len(mail.payload) > MAX_MAIL_PAYLOAD:
        raise EncodeError(f"mail payload over MAX_MAIL_PAYLOAD ({MAX_MAIL_PAYLOAD})")
    try:
        fixed = _MAIL_FIXED.pack(mail.mail_id, mail.crypto_type, bytes(mail.recipient_hint),
                                 len(mail.payload))
    except struct.error as e:
        raise EncodeError(f"GXS trans mail: {e}") from e
    return _item(MAIL, fixed + mail.payload)


def encode_trans_receipt(receipt: TransReceipt) -> bytes:
    try:
        return _item(RECEIPT, struct.pack(">Q", receipt.mail_id))
    except struct.error as e:
        raise EncodeError(f"GXS trans receipt: {e}") from e


def encode_trans_group() -> bytes:
    """The data of a GXS trans group (named "Mail" in its metadata): a bare header."""
    return _item(GROUP, b"")


def is_trans_group(data: bytes) -> bool:
    """Whether ``data`` is a GXS trans group's data."""
    return bytes(data) == encode_trans_group()
