"""Lobby messages and events: every captured signature verifies; ours verify the same way."""

from __future__ import annotations

import dataclasses

import pytest

import pqi
from pqi.items.chat import ChatFlags, ChatLobbyEventItem, ChatLobbyMsgItem
from pqi.wire.tlvvalues import KeySignature
from services.chat.lobby_signing import check_lobby_item, sign_lobby_item, signed_bytes
from services.gxs.security import SignatureError
from tests.captures2_items import counts, items
from tests.gxs_fixtures import identity_keys, key_pairs


def _captured() -> list[tuple[str, int, ChatLobbyMsgItem | ChatLobbyEventItem]]:
    out = []
    for node, line, data in items(frozenset({0x0012})):
        it = pqi.decode(data)
        if isinstance(it, ChatLobbyMsgItem | ChatLobbyEventItem):
            out.append((node, line, it))
    return out


def test_every_captured_lobby_signature_verifies() -> None:
    """All the signed lobby messages and events (sent, relayed, received) check."""
    captured = _captured()
    expected = sum(row[f"{n} {d}"] for row in counts()
                   if (row["service"], row["subtype"]) in {("0x0012", "0x17"), ("0x0012", "0x18")}
                   for n in ("alice", "bob", "carol") for d in ("in", "out"))
    assert len(captured) == expected
    for _, _, it in captured:
        check_lobby_item(it, identity_keys()[it.signature.key_id])


def test_one_bit_changed_fails() -> None:
    """The message text or the signature with one bit flipped: refused."""
    for _, _, it in _captured():
        if isinstance(it, ChatLobbyMsgItem):
            break
    key = identity_keys()[it.signature.key_id]
    changed = dataclasses.replace(it, message=it.message[:-1] + chr(ord(it.message[-1]) ^ 1))
    with pytest.raises(SignatureError):
        check_lobby_item(changed, key)
    sig = bytearray(it.signature.sign_data)
    sig[100] ^= 0x10
    with pytest.raises(SignatureError):
        check_lobby_item(dataclasses.replace(
            it, signature=KeySignature(it.signature.key_id, bytes(sig))), key)


def test_our_signature_checks_and_covers_the_header() -> None:
    """sign_lobby_item then check_lobby_item; the signed bytes start with the item header."""
    pair = key_pairs()[5]
    item = ChatLobbyMsgItem(flags=ChatFlags.LOBBY | ChatFlags.PRIVATE, send_time=5,
                            message="hi", parent_msg_id=0, lobby_id=7, msg_id=9, nick="n",
                            signature=KeySignature(pair.key_id, b""))
    signed = sign_lobby_item(item, pair.private)
    check_lobby_item(signed, pair.public)
    assert signed_bytes(signed)[:4] == bytes([2, 0, 0x12, 0x17])
    with pytest.raises(SignatureError):
        check_lobby_item(signed, identity_keys()[next(iter(identity_keys()))])
