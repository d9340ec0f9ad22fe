"""Byte-exact tests of the chat items (service 0x0012) and the avatar size limit.

Hex strings are items captured from real RetroShare 0.6.7 nodes (file:line of
``tests/vectors/retroshare``: ``captures/``) or built by hand from ``retroshare-wire-facts.md``.
"""

from __future__ import annotations

import struct

import pytest

import pqi
from pqi.items.chat import (
    MAX_AVATAR_SIZE,
    ChatAvatarItem,
    ChatFlags,
    ChatLobbyConnectChallengeItem,
    ChatLobbyEventItem,
    ChatLobbyFlags,
    ChatLobbyInviteItem,
    ChatLobbyListItem,
    ChatLobbyListRequestItem,
    ChatLobbyMsgItem,
    ChatLobbyUnsubscribeItem,
    ChatMsgItem,
    ChatStatusItem,
    VisibleChatLobby,
)
from pqi.wire.fields import GxsId
from pqi.wire.tlvvalues import KeySignature

SIGNATURE = KeySignature(GxsId(b"\x11" * 16), b"\x99")
#: KEYSIGNATURE TLV: STR_KEYID (the id as 32 hex characters) then SIGN_RSA_SHA1 (raw bytes).
SIGNATURE_HEX = "105000000033" "00a400000026" + "31" * 32 + "012000000007" "99"


def _same(item: pqi.PQItem, hexstr: str) -> None:
    raw = bytes.fromhex(hexstr)
    assert pqi.encode(item) == raw
    assert pqi.decode(raw) == item


def test_empty_chat_on_connect() -> None:
    """alice:11, the 22-byte chat sent on connect: flags 0x03, empty text."""
    item = ChatMsgItem(flags=ChatFlags.PRIVATE | ChatFlags.REQUESTS_AVATAR,
                       send_time=0x6B06DED5, message="")
    _same(item, "0200120100000016000000036b06ded5005700000006")
    assert item.flags == 0x03


def test_ascii_chat() -> None:
    """A private message: flags, send time, STR_MSG text."""
    _same(ChatMsgItem(flags=ChatFlags.PRIVATE, send_time=1, message="Hi"),
          "0200120100000018" "00000001" "00000001" "0057000000084869")


def test_unknown_chat_flag_bits_survive() -> None:
    """Bits RetroShare may add later are kept and written back."""
    raw = bytes.fromhex("0200120100000016800000016b06ded5005700000006")
    item = pqi.decode(raw)
    assert item.flags & ChatFlags.PRIVATE
    assert int(item.flags) == 0x80000001
    assert pqi.encode(item) == raw


def test_status_strings() -> None:
    """alice:235 typing notice, alice:220/246/247 custom-state handshake flags."""
    _same(ChatStatusItem(flags=ChatFlags.PRIVATE, status="is typing..."),
          "020012040000001e00000001005700000012697320747970696e672e2e2e")
    _same(ChatStatusItem(flags=ChatFlags.CUSTOM_STATE, status=""),
          "020012040000001200000010005700000006")
    _same(ChatStatusItem(flags=ChatFlags.CUSTOM_STATE_AVAILABLE, status=""),
          "020012040000001200000080005700000006")
    _same(ChatStatusItem(flags=ChatFlags.PRIVATE | ChatFlags.REQUEST_CUSTOM_STATE, status=""),
          "020012040000001200000041005700000006")


def test_lobby_list_request_and_empty_list() -> None:
    """alice:29 (request, empty body) and alice:39 (no lobbies: count 0)."""
    _same(ChatLobbyListRequestItem(), "0200120d00000008")
    _same(ChatLobbyListItem(lobbies=()), "020012190000000c00000000")


def test_lobby_list_entry() -> None:
    """A listed lobby: id u64, name and topic STR_NAME, count u32, flags u32."""
    lobby = VisibleChatLobby(id=7, name="a", topic="b", count=3, flags=ChatLobbyFlags.PUBLIC)
    _same(ChatLobbyListItem(lobbies=(lobby,)),
          "020012190000002a00000001" "0000000000000007" "00510000000761" "00510000000762"
          "00000003" "00000004")


def test_lobby_invite() -> None:
    """0x1B: lobby id, name, topic, flags."""
    _same(ChatLobbyInviteItem(lobby_id=1, lobby_name="n", lobby_topic="t",
                              lobby_flags=ChatLobbyFlags.PUBLIC | ChatLobbyFlags.PGP_SIGNED),
          "0200121b00000022" "0000000000000001" "0051000000076e" "00510000000774" "00000014")


def test_lobby_challenge_and_unsubscribe() -> None:
    """0x09 challenge code and 0x0A lobby id: one u64 each."""
    _same(ChatLobbyConnectChallengeItem(challenge_code=0x0102030405060708),
          "02001209000000100102030405060708")
    _same(ChatLobbyUnsubscribeItem(lobby_id=9), "0200120a000000100000000000000009")


def test_signed_lobby_message_carries_the_bouncing_object_and_signature() -> None:
    """0x17: chat fields, parent id, then lobby id, msg id, nick and the key signature TLV."""
    item = ChatLobbyMsgItem(flags=ChatFlags.PRIVATE | ChatFlags.LOBBY, send_time=2,
                            message="m", parent_msg_id=3, lobby_id=4, msg_id=5, nick="k",
                            signature=SIGNATURE)
    _same(item, "0200121700000069" "00000201" "00000002" "0057000000076d" "0000000000000003"
          "0000000000000004" "0000000000000005" "0051000000076b" + SIGNATURE_HEX)


def test_signed_lobby_event() -> None:
    """0x18: event type u8, string1, send time, then the bouncing object."""
    item = ChatLobbyEventItem(event_type=1, string1="s", send_time=2, lobby_id=4, msg_id=5,
                              nick="k", signature=SIGNATURE)
    _same(item, "020012180000005e" "01" "00510000000773" "00000002" "0000000000000004"
          "0000000000000005" "0051000000076b" + SIGNATURE_HEX)


@pytest.mark.parametrize("n", [MAX_AVATAR_SIZE - 1, MAX_AVATAR_SIZE])
def test_avatar_up_to_the_limit(n: int) -> None:
    """Avatars of up to MAX_AVATAR_SIZE bytes encode and decode."""
    item = ChatAvatarItem(image=bytes(n))
    raw = pqi.encode(item)
    assert raw[8:12] == struct.pack(">I", n)
    assert pqi.decode(raw) == item


def test_avatar_over_the_limit() -> None:
    """One byte over MAX_AVATAR_SIZE: refused on decode (named limit) and on encode."""
    n = MAX_AVATAR_SIZE + 1
    body = struct.pack(">I", n) + bytes(n)
    raw = struct.pack(">BHBI", 2, 0x0012, 0x03, 8 + len(body)) + body
    with pytest.raises(pqi.LimitExceededError) as e:
        pqi.decode(raw)
    assert e.value.limit == "MAX_AVATAR_SIZE"
    assert e.value.offset == 8
    with pytest.raises(pqi.EncodeError):
        pqi.encode(ChatAvatarItem(image=bytes(n)))
