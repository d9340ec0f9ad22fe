# -*- test-case-name: tests.test_items_chat -*-
"""Chat (service 0x0012): private messages, typing/status strings, avatars and chat lobbies.

Messages longer than 15000 bytes travel in several items; all but the last carry
`ChatFlags.PARTIAL_MESSAGE` and the receiver concatenates them (that is the service's job, the
items here are the pieces).  Lobby messages and events are signed "bouncing objects" relayed
from friend to friend.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

import construct as c

from pqi.wire import tlvtypes as tt
from pqi.wire.compound import CappedBytes, DataclassStruct, FlagsField, TupleArray
from pqi.wire.fields import u8, u32, u64
from pqi.wire.item import PQItem
from pqi.wire.tlv import StringTLV
from pqi.wire.tlvvalues import KeySignature, KeySignatureTLV

from .ids import SERVICE_CHAT

__all__ = [
    "ChatFlags", "ChatLobbyFlags", "MAX_AVATAR_SIZE", "VisibleChatLobby",
    "ChatMsgItem", "ChatAvatarItem", "ChatStatusItem", "ChatLobbyMsgItem",
    "ChatLobbyEventItem", "ChatLobbyConnectChallengeItem", "ChatLobbyUnsubscribeItem",
    "ChatLobbyListRequestItem", "ChatLobbyListItem", "ChatLobbyInviteItem",
    "ChatLobbyInviteDeprecatedItem",
]

#: Largest avatar image RetroShare sends or accepts (bytes).
MAX_AVATAR_SIZE: Final = 32767


class ChatFlags(enum.IntFlag):
    """``RS_CHAT_FLAG_*`` (``rschatitems.h``)."""

    PRIVATE = 0x0001
    REQUESTS_AVATAR = 0x0002
    CONTAINS_AVATAR = 0x0004
    AVATAR_AVAILABLE = 0x0008
    CUSTOM_STATE = 0x0010
    PUBLIC = 0x0020
    REQUEST_CUSTOM_STATE = 0x0040
    CUSTOM_STATE_AVAILABLE = 0x0080
    PARTIAL_MESSAGE = 0x0100
    LOBBY = 0x0200
    CLOSING_DISTANT_CONNECTION = 0x0400
    ACK_DISTANT_CONNECTION = 0x0800
    KEEP_ALIVE = 0x1000
    CONNEXION_REFUSED = 0x2000


class ChatLobbyFlags(enum.IntFlag):
    """``RS_CHAT_LOBBY_FLAGS_*`` (``rschats.h``); 0x2 is retired and kept raw."""

    AUTO_SUBSCRIBE = 0x0001
    PUBLIC = 0x0004
    CHALLENGE = 0x0008
    PGP_SIGNED = 0x0010


class ChatMsgItem(PQItem):
    """``RsChatMsgItem``: flags, send time and the (HTML) text."""

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x01
    PRIORITY = 7
    BODY = c.Struct("flags" / FlagsField(ChatFlags), "send_time" / u32,
                    "message" / StringTLV(tt.STR_MSG))
    flags: ChatFlags
    send_time: int
    message: str


class ChatAvatarItem(PQItem):
    """``RsChatAvatarItem``: an image (JPEG) of at most `MAX_AVATAR_SIZE` bytes."""

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x03
    PRIORITY = 2
    BODY = c.Struct("image" / CappedBytes(MAX_AVATAR_SIZE, "MAX_AVATAR_SIZE"))
    image: bytes


class ChatStatusItem(PQItem):
    """``RsChatStatusItem``: flags and a status string ("is typing...", a custom state)."""

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x04
    PRIORITY = 7
    BODY = c.Struct("flags" / FlagsField(ChatFlags), "status" / StringTLV(tt.STR_MSG))
    flags: ChatFlags
    status: str


class ChatLobbyConnectChallengeItem(PQItem):
    """``RsChatLobbyConnectChallengeItem``: proves we know a lobby a friend is in."""

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x09
    PRIORITY = 7
    BODY = c.Struct("challenge_code" / u64)
    challenge_code: int


class ChatLobbyUnsubscribeItem(PQItem):
    """``RsChatLobbyUnsubscribeItem``: we left that lobby."""

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x0A
    PRIORITY = 7
    BODY = c.Struct("lobby_id" / u64)
    lobby_id: int


class ChatLobbyListRequestItem(PQItem):
    """``RsChatLobbyListRequestItem``: asks for the friend's visible lobbies (empty body)."""

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x0D
    PRIORITY = 7


class ChatLobbyMsgItem(PQItem):
    """``RsChatLobbyMsgItem``: a signed lobby message.

    The chat message fields, the parent message id, then the bouncing object: lobby id,
    message id, nickname and the GXS signature (present on the wire; left out only when
    RetroShare serialises the item to compute that signature).
    """

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x17
    PRIORITY = 7
    BODY = c.Struct("flags" / FlagsField(ChatFlags), "send_time" / u32,
                    "message" / StringTLV(tt.STR_MSG), "parent_msg_id" / u64,
                    "lobby_id" / u64, "msg_id" / u64, "nick" / StringTLV(tt.STR_NAME),
                    "signature" / KeySignatureTLV)
    flags: ChatFlags
    send_time: int
    message: str
    parent_msg_id: int
    lobby_id: int
    msg_id: int
    nick: str
    signature: KeySignature


class ChatLobbyEventItem(PQItem):
    """``RsChatLobbyEventItem``: a signed lobby event (join, leave, nick change, typing...)."""

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x18
    PRIORITY = 7
    BODY = c.Struct("event_type" / u8, "string1" / StringTLV(tt.STR_NAME), "send_time" / u32,
                    "lobby_id" / u64, "msg_id" / u64, "nick" / StringTLV(tt.STR_NAME),
                    "signature" / KeySignatureTLV)
    event_type: int
    string1: str
    send_time: int
    lobby_id: int
    msg_id: int
    nick: str
    signature: KeySignature


@dataclasses.dataclass(frozen=True)
class VisibleChatLobby:
    """``VisibleChatLobbyInfo``: a lobby a friend can see, as listed to us."""

    id: int
    name: str
    topic: str
    count: int
    flags: ChatLobbyFlags


_VisibleChatLobby = DataclassStruct(
    VisibleChatLobby, "id" / u64, "name" / StringTLV(tt.STR_NAME),
    "topic" / StringTLV(tt.STR_NAME), "count" / u32, "flags" / FlagsField(ChatLobbyFlags))


class ChatLobbyListItem(PQItem):
    """``RsChatLobbyListItem``: the lobbies the friend can see (u32 count + entries)."""

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x19
    PRIORITY = 7
    BODY = c.Struct("lobbies" / TupleArray(_VisibleChatLobby, min_size=8 + 6 + 6 + 4 + 4))
    lobbies: tuple[VisibleChatLobby, ...]


class ChatLobbyInviteDeprecatedItem(PQItem):
    """``RsChatLobbyInviteItem_Deprecated`` (0x1a): the invitation without its topic.

    RetroShare 0.6.7 still sends it beside `ChatLobbyInviteItem` (for older peers) when it
    joins or invites; a receiver that understands 0x1b ignores it.
    """

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x1A
    PRIORITY = 7
    BODY = c.Struct("lobby_id" / u64, "lobby_name" / StringTLV(tt.STR_NAME),
                    "lobby_flags" / FlagsField(ChatLobbyFlags))
    lobby_id: int
    lobby_name: str
    lobby_flags: ChatLobbyFlags


class ChatLobbyInviteItem(PQItem):
    """``RsChatLobbyInviteItem``: an invitation to a lobby with its name, topic and flags."""

    SERVICE = SERVICE_CHAT
    SUBTYPE = 0x1B
    PRIORITY = 7
    BODY = c.Struct("lobby_id" / u64, "lobby_name" / StringTLV(tt.STR_NAME),
                    "lobby_topic" / StringTLV(tt.STR_NAME),
                    "lobby_flags" / FlagsField(ChatLobbyFlags))
    lobby_id: int
    lobby_name: str
    lobby_topic: str
    lobby_flags: ChatLobbyFlags
