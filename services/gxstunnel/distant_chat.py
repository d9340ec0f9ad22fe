# -*- test-case-name: tests.test_distant_chat -*-
"""Distant chat, sans IO: private chat with an identity through a GXS tunnel
(RetroShare's ``DistantChatService``).

A distant chat's id is its tunnel's id.  Chat items (`ChatMsgItem`, `ChatStatusItem`) are
serialised whole into the tunnel's data for the client service `DISTANT_CHAT_SERVICE`.  The
side that was asked applies the permission flags (`DistantChatPermission`: everyone, contacts
only, no one); a refused peer is told with a status item flagged ``CONNEXION_REFUSED``.
Typing notices are status items with RetroShare's text; closing sends a status item flagged
``CLOSING_DISTANT_CONNECTION`` and closes the tunnel.

It drives a `GxsTunnelCore` it is given (every call takes ``now``) and turns the core's
events for it (`handle`) into its own, collected by `drain`.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Callable
from typing import Any, Final

from pqi.items.chat import ChatFlags, ChatMsgItem, ChatStatusItem
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId
from pqi.wire.item import decode, encode

from .core import (
    GxsTunnelCore,
    TunnelDataReceived,
    TunnelDataRefused,
    TunnelStatus,
    TunnelStatusChanged,
)

__all__ = [
    "DISTANT_CHAT_SERVICE", "TYPING_TEXT", "MAX_HISTORY", "MAX_TEXT", "DistantChatPermission",
    "DistantChat", "DistantChatMessage", "DistantChatStatus", "DistantChatTyping",
    "DistantChatRefused",
]

#: ``DISTANT_CHAT_GXS_TUNNEL_SERVICE_ID``: distant chat's client id on GXS tunnels.
DISTANT_CHAT_SERVICE: Final = 0xA0001
#: What RetroShare's GUI sends in a status item while its user types.
TYPING_TEXT: Final = "is typing..."
#: Messages kept (both directions, all chats), oldest dropped first.
MAX_HISTORY: Final = 1000
#: Longest message text we send (RetroShare's chat limit is far larger; this bounds memory).
MAX_TEXT: Final = 64 * 1024


class DistantChatPermission(enum.IntEnum):
    """``RS_DISTANT_CHAT_CONTACT_PERMISSION_FLAG_FILTER_*`` (the same values for mail)."""

    EVERYONE = 0x0
    CONTACTS = 0x1
    NO_ONE = 0x2


@dataclasses.dataclass(frozen=True)
class DistantChatStatus:
    """Distant chat ``chat_id`` (our ``own_id`` with ``peer_id``) is now ``status``
    (`TunnelStatus`: TUNNEL_DN, CAN_TALK, REMOTELY_CLOSED)."""

    chat_id: GxsId
    status: TunnelStatus
    own_id: GxsId
    peer_id: GxsId


@dataclasses.dataclass(frozen=True)
class DistantChatMessage:
    """A message of distant chat ``chat_id``: ``incoming`` from ``peer_id``, or ours.
    ``seq`` numbers the history (`DistantChat.history`)."""

    seq: int
    chat_id: GxsId
    peer_id: GxsId
    text: str
    send_time: int
    incoming: bool


@dataclasses.dataclass(frozen=True)
class DistantChatTyping:
    """``peer_id`` sent a status text (``TYPING_TEXT`` while typing) on ``chat_id``."""

    chat_id: GxsId
    peer_id: GxsId
    status: str


@dataclasses.dataclass(frozen=True)
class DistantChatRefused:
    """The identity behind ``chat_id`` refuses distant chat from us."""

    chat_id: GxsId
    peer_id: GxsId


class DistantChat:
    """Distant chats of a node over ``core`` (see the module docstring).

    ``is_contact(gxs_id)``: whether an identity counts as a contact for
    `DistantChatPermission.CONTACTS`.
    """

    def __init__(self, core: GxsTunnelCore, *,
                 permission: DistantChatPermission = DistantChatPermission.EVERYONE,
                 is_contact: Callable[[GxsId], bool] = lambda g: False) -> None:
        self.core = core
        self.permission = permission
        self._is_contact = is_contact
        #: Whether an identity is banned (the ban list sets it); a banned identity cannot
        #: open a distant chat with us.
        self.is_banned: Callable[[GxsId], bool] = lambda g: False
        self._out: list[Any] = []
        self._seq = 0
        self.history: collections.deque[DistantChatMessage] = collections.deque(
            maxlen=MAX_HISTORY)
        self.refused = 0
        core.register_client(DISTANT_CHAT_SERVICE, self.accepts)

    def drain(self) -> list[Any]:
        out, self._out = self._out, []
        return out

    # --- policy ---------------------------------------------------------------------------

    def accepts(self, peer: GxsId, own: GxsId, we_asked: bool) -> bool:
        """``acceptDataFromPeer``: the asking side always talks; the asked side refuses banned
        identities and obeys the permission flags."""
        if we_asked:
            return True
        if self.is_banned(peer):
            self.refused += 1
            return False
        if self.permission is DistantChatPermission.NO_ONE:
            return False
        if self.permission is DistantChatPermission.CONTACTS:
            return self._is_contact(peer)
        return True

    # --- local API ------------------------------------------------------------------------

    def initiate(self, to_id: GxsId, from_id: GxsId, now: float) -> GxsId:
        """Open a distant chat with ``to_id`` as our identity ``from_id``; its id."""
        return self.core.request_tunnel(to_id, from_id, DISTANT_CHAT_SERVICE, now)

    def send(self, chat_id: GxsId, text: str, now: float) -> DistantChatMessage:
        """Queue a message (it leaves once the tunnel can talk, until acknowledged)."""
        info = self.core.info(chat_id)
        if info is None:
            raise KeyError(f"no distant chat {chat_id.hex()}")
        if len(text.encode("utf-8")) > MAX_TEXT:
            raise ValueError(f"message longer than MAX_TEXT ({MAX_TEXT} bytes)")
        item = ChatMsgItem(ChatFlags.PRIVATE, int(now), text)
        self.core.send_data(chat_id, DISTANT_CHAT_SERVICE, encode(item), now)
        return self._record(chat_id, info.peer_id, text, int(now), False)

    def typing(self, chat_id: GxsId, now: float, status: str = TYPING_TEXT) -> None:
        """Tell the other end we type (or another status text)."""
        self.core.send_data(chat_id, DISTANT_CHAT_SERVICE,
                            encode(ChatStatusItem(ChatFlags.PRIVATE, status)), now)

    def close(self, chat_id: GxsId, now: float) -> bool:
        """End the chat; the other end sees it remotely closed."""
        return self.core.close_tunnel(chat_id, DISTANT_CHAT_SERVICE, now)

    def status(self, chat_id: GxsId) -> TunnelStatus:
        info = self.core.info(chat_id)
        return TunnelStatus.UNKNOWN if info is None else info.status

    # --- from the tunnel core -------------------------------------------------------------

    def handle(self, event: Any, now: float) -> bool:
        """Take a tunnel event; False when it is not distant chat's."""
        if isinstance(event, TunnelStatusChanged):
            info = self.core.info(event.tunnel_id)
            if info is None and event.status is not TunnelStatus.REMOTELY_CLOSED:
                return False
            self._out.append(DistantChatStatus(event.tunnel_id, event.status, event.own_id,
                                               event.peer_id))
            return True
        if isinstance(event, TunnelDataRefused) and event.service_id == DISTANT_CHAT_SERVICE:
            self.refused += 1
            refusal = ChatStatusItem(ChatFlags.CONNEXION_REFUSED, "")
            self.core.send_data(event.tunnel_id, DISTANT_CHAT_SERVICE, encode(refusal), now)
            return True
        if not isinstance(event, TunnelDataReceived) or event.service_id != DISTANT_CHAT_SERVICE:
            return False
        try:
            item = decode(event.data)
        except DecodeError:
            return True
        if isinstance(item, ChatMsgItem):
            self._record(event.tunnel_id, event.peer_id, item.message, item.send_time, True)
        elif isinstance(item, ChatStatusItem):
            if item.flags & ChatFlags.CONNEXION_REFUSED:
                self._out.append(DistantChatRefused(event.tunnel_id, event.peer_id))
            elif item.flags & ChatFlags.CLOSING_DISTANT_CONNECTION:
                self.core.close_tunnel(event.tunnel_id, DISTANT_CHAT_SERVICE, now)
            elif not item.flags & ChatFlags.KEEP_ALIVE:
                self._out.append(DistantChatTyping(event.tunnel_id, event.peer_id, item.status))
        return True

    def _record(self, chat_id: GxsId, peer: GxsId, text: str, send_time: int,
                incoming: bool) -> DistantChatMessage:
        self._seq += 1
        message = DistantChatMessage(self._seq, chat_id, peer, text, send_time, incoming)
        self.history.append(message)
        self._out.append(message)
        return message
