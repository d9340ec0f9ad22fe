# -*- test-case-name: tests.test_lobby -*-
"""Signatures of lobby messages and events ("bouncing objects"), as RetroShare makes them.

The signed bytes are the item serialised *without* its signature TLV, header included, the
header's size being that shorter length (``RsChatSerialiser(RsSerializationFlags::SIGNATURE)``);
the signature is the GXS identity's (RSA PKCS#1 v1.5 / SHA-1 by the identity's admin key,
whose id is the identity id).
"""

from __future__ import annotations

import dataclasses
import struct

import pqi
from pqi.items.chat import ChatLobbyEventItem, ChatLobbyMsgItem
from pqi.items.nxs import NxsRsaKey
from pqi.wire.fields import GxsId
from pqi.wire.limits import TLV_HEADER_SIZE
from pqi.wire.tlvvalues import KeySignature
from services.gxs.security import SignatureError, sign, verify

__all__ = ["LobbyItem", "signed_bytes", "sign_lobby_item", "check_lobby_item"]

LobbyItem = ChatLobbyMsgItem | ChatLobbyEventItem

_HEAD = struct.Struct(">BHBI")


def _signature_tlv_size(sig: KeySignature) -> int:
    return TLV_HEADER_SIZE + (TLV_HEADER_SIZE + 2 * GxsId.LENGTH) + \
        (TLV_HEADER_SIZE + len(sig.sign_data))


def signed_bytes(item: LobbyItem) -> bytes:
    """The bytes the item's signature covers."""
    whole = pqi.encode(item)
    body = whole[8:len(whole) - _signature_tlv_size(item.signature)]
    return _HEAD.pack(item.VERSION, item.SERVICE, item.SUBTYPE, 8 + len(body)) + body


def sign_lobby_item(item: LobbyItem, key: NxsRsaKey) -> LobbyItem:
    """The item signed by identity ``key`` (a full key; its id names the signer)."""
    blank = dataclasses.replace(item, signature=KeySignature(key.key_id, b""))
    return dataclasses.replace(item, signature=sign(signed_bytes(blank), key))


def check_lobby_item(item: LobbyItem, key: NxsRsaKey) -> None:
    """Raise `SignatureError` unless ``key`` (the signer identity's public key) signed it."""
    if key.key_id != item.signature.key_id:
        raise SignatureError(f"key {key.key_id} is not the signer {item.signature.key_id}")
    verify(signed_bytes(item), key, item.signature)
