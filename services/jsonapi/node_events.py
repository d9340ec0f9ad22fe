# -*- test-case-name: tests.test_jsonapi_events -*-
"""The node's events as RetroShare event records (`events`), published to the streams.

One place maps each of the node's typed events to the frames ``retroshare-service`` sends
for the same cause, e.g. a friend connecting gives FRIEND_LIST NODE_CONNECTED then
NODE_STATUS_CHANGED; a private or lobby chat message gives the chat message event, then
CHAT_SERVICE CHAT_MESSAGE_RECEIVED (and the history change for private chat).  RetroShare
sends the message event last; rsproto sends it first because RetroShare's web interface reads
every CHAT_SERVICE frame as a message event and drops the rest of what arrived with a frame
it cannot read, so the message would be lost when the frames arrive together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from services.chat.lobby import (
    EVENT_CHANGE_NICKNAME,
    EVENT_KEEP_ALIVE,
    EVENT_PEER_JOINED,
    EVENT_PEER_LEFT,
    EVENT_PEER_STATUS,
    LobbyInvited,
    LobbyListChanged,
    LobbyMessage,
    LobbyPeerEvent,
)
from services.chat.service import ChatStatusReceived, MessageReceived
from services.discovery import LocationLearned
from services.events import FriendConnected, FriendDisconnected, UnknownEventError
from services.gxsid.service import IdentityStored
from services.mail.service import MailReceived
from services.sharing.manager import FileListUpdated, SharesIndexed
from services.status import StatusChanged
from services.transfer.service import TransferCompleted, TransferProgress

from . import events as ev
from .rs_identity import identity_stored_event

__all__ = ["NodeEvents", "CHAT_PRIVATE", "CHAT_PUBLIC", "CHAT_TYPE_LOBBY", "chat_message_json",
           "lobby_message_json"]

#: ``chatflags`` of private and broadcast messages (RS_CHAT_PRIVATE / RS_CHAT_PUBLIC).
CHAT_PRIVATE: Final = 2
CHAT_PUBLIC: Final = 1
#: ChatId type of a lobby.
CHAT_TYPE_LOBBY: Final = 3


def chat_message_json(message: Any, now: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ChatId, ChatMessage) records of a `services.chat.service.ChatMessage`."""
    peer = message.peer.to_hex() if message.peer is not None else ev.NULL_SSL_ID
    if message.public:
        cid = ev.chat_id(4, broadcast=peer)
        flags = CHAT_PUBLIC
    else:
        cid = ev.chat_id(1, peer=peer)
        flags = CHAT_PRIVATE
    info = ev.chat_message_info(cid, flags=flags, send_time=message.send_time & 0xFFFFFFFF,
                                recv_time=int(message.recv_time) & 0xFFFFFFFF,
                                msg=message.body, incoming=message.incoming, online=True,
                                broadcast_peer=peer if message.public else ev.NULL_SSL_ID)
    return cid, info


def lobby_message_json(message: LobbyMessage) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ChatId, ChatMessage) records of a lobby message (RetroShare: chatflags 0, the
    signer in ``lobby_peer_gxs_id``; rsproto keeps no receive time apart)."""
    cid = ev.chat_id(CHAT_TYPE_LOBBY, lobby=message.lobby_id)
    info = ev.chat_message_info(cid, send_time=message.send_time & 0xFFFFFFFF,
                                recv_time=message.send_time & 0xFFFFFFFF, msg=message.text,
                                incoming=message.peer is not None, online=True,
                                lobby_gxs_id=message.gxs_id.to_hex(), nickname=message.nick)
    return cid, info


#: Lobby peer events (`services.chat.lobby` EVENT_*) → ``RsChatLobbyEventCode``.
_LOBBY_CODES: Final = {EVENT_PEER_LEFT: ev.LobbyEventCode.PEER_LEFT,
                       EVENT_PEER_STATUS: ev.LobbyEventCode.PEER_STATUS,
                       EVENT_PEER_JOINED: ev.LobbyEventCode.PEER_JOINED,
                       EVENT_CHANGE_NICKNAME: ev.LobbyEventCode.PEER_CHANGE_NICKNAME,
                       EVENT_KEEP_ALIVE: ev.LobbyEventCode.KEEP_ALIVE}


class NodeEvents:
    """Subscribes to a node's typed events and publishes their RetroShare records."""

    def __init__(self, node: Any, publish: Callable[[dict[str, Any]], None],
                 now: Callable[[], int]) -> None:
        self.node = node
        self.publish = publish
        self.now = now
        self._unsubscribers: list[Callable[[], None]] = []

    def attach(self) -> None:
        """Subscribe to every event type the node emits (a node built without a service,
        e.g. without file sharing, simply has no such events)."""
        for event_type, handler in (
                (FriendConnected, self._connected),
                (FriendDisconnected, self._disconnected),
                (StatusChanged, self._status),
                (ChatStatusReceived, self._chat_status),
                (LocationLearned, self._learned),
                (MessageReceived, self._chat),
                (IdentityStored, self._identity),
                (LobbyMessage, self._lobby_message),
                (LobbyPeerEvent, self._lobby_peer),
                (LobbyInvited, self._lobby_invited),
                (LobbyListChanged, self._lobby_list),
                (MailReceived, self._mail),
                (FileListUpdated, self._friend_list),
                (SharesIndexed, self._own_list),
                (TransferCompleted, self._complete),
                (TransferProgress, self._progress)):
            try:
                self._unsubscribers.append(self.node.subscribe(event_type, handler))
            except UnknownEventError:
                continue

    def detach(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()

    # --- translations ----------------------------------------------------------------------

    def _friend(self, code: int, peer: Any, status: int = 0, state: str = "") -> None:
        self.publish(ev.friend_event(self.now(), code, peer.ssl_id.to_hex(), status=status,
                                     state=state))

    def _connected(self, event: FriendConnected) -> None:
        self._friend(ev.FriendCode.NODE_CONNECTED, event.peer)
        self._friend(ev.FriendCode.NODE_STATUS_CHANGED, event.peer)

    def _disconnected(self, event: FriendDisconnected) -> None:
        self._friend(ev.FriendCode.NODE_DISCONNECTED, event.peer)
        self._friend(ev.FriendCode.NODE_STATUS_CHANGED, event.peer)

    def _status(self, event: StatusChanged) -> None:
        self._friend(ev.FriendCode.NODE_STATUS_CHANGED, event.peer, status=int(event.status))

    def _chat_status(self, event: ChatStatusReceived) -> None:
        self.publish(ev.friend_event(self.now(), ev.FriendCode.NODE_STATE_STRING_CHANGED,
                                     event.status.peer.to_hex(), state=event.status.text))

    def _learned(self, event: LocationLearned) -> None:
        self.publish(ev.gossip_event(self.now(), event.ssl_id.to_hex()))

    def _chat(self, event: MessageReceived) -> None:
        now = self.now()
        cid, info = chat_message_json(event.message, now)
        self.publish(ev.chat_message_event(now, info))
        self.publish(ev.chat_service_event(now, cid, info))
        self.publish(ev.chat_history_event(now, event.message.history_id))

    def _identity(self, event: IdentityStored) -> None:
        self.publish(identity_stored_event(self.now(), event))

    def _lobby_message(self, event: LobbyMessage) -> None:
        now = self.now()
        cid, info = lobby_message_json(event)
        self.publish(ev.chat_message_event(now, info))
        self.publish(ev.chat_service_event(now, cid, info))

    def _lobby_peer(self, event: LobbyPeerEvent) -> None:
        code = _LOBBY_CODES.get(event.event_type)
        if code is not None:
            self.publish(ev.lobby_event(self.now(), code, event.lobby_id,
                                        event.gxs_id.to_hex(), event.text))

    def _lobby_invited(self, event: LobbyInvited) -> None:
        self.publish(ev.lobby_event(self.now(), ev.LobbyEventCode.CHAT_LOBBY_INVITE_RECEIVED,
                                    event.lobby_id))

    def _lobby_list(self, event: LobbyListChanged) -> None:
        self.publish(ev.lobby_event(self.now(), ev.LobbyEventCode.CHAT_LOBBY_LIST_CHANGED))

    def _mail(self, event: MailReceived) -> None:
        self.publish(ev.mail_event(self.now(), [str(event.mail.id)]))

    def _friend_list(self, event: FileListUpdated) -> None:
        self.publish(ev.shared_dir_event(self.now(),
                                         ev.SharedDirCode.FRIEND_DIR_LIST_UPDATED))

    def _own_list(self, event: SharesIndexed) -> None:
        self.publish(ev.shared_dir_event(self.now(), ev.SharedDirCode.OWN_DIR_LIST_UPDATED))

    def _complete(self, event: TransferCompleted) -> None:
        info = event.info
        now = self.now()
        self.publish(ev.progress_event(now, info.file_hash.to_hex(), info.name, info.size,
                                       info.size, 0.0, "complete"))
        self.publish(ev.file_transfer_event(now, 1, info.file_hash.to_hex()))

    def _progress(self, event: TransferProgress) -> None:
        info = event.info
        self.publish(ev.progress_event(self.now(), info.file_hash.to_hex(), info.name,
                                       info.size, info.done, info.rate, info.state))
