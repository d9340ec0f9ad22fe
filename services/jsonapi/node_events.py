# -*- test-case-name: tests.test_jsonapi_events -*-
"""The node's events as RetroShare event records (`events`), published to the streams.

One place maps each `Node.subscribe` event kind to the frames ``retroshare-service`` sends
for the same cause, e.g. a friend connecting gives FRIEND_LIST NODE_CONNECTED then
NODE_STATUS_CHANGED; a private chat gives CHAT_SERVICE CHAT_MESSAGE_RECEIVED, the
history change and the chat message event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from . import events as ev

__all__ = ["NodeEvents", "CHAT_PRIVATE", "CHAT_PUBLIC", "chat_message_json"]

#: ``chatflags`` of private and broadcast messages (RS_CHAT_PRIVATE / RS_CHAT_PUBLIC).
CHAT_PRIVATE: Final = 2
CHAT_PUBLIC: Final = 1


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


class NodeEvents:
    """Subscribes to a node's events and publishes their RetroShare records."""

    def __init__(self, node: Any, publish: Callable[[dict[str, Any]], None],
                 now: Callable[[], int]) -> None:
        self.node = node
        self.publish = publish
        self.now = now
        self._unsubscribers: list[Callable[[], None]] = []

    def attach(self) -> None:
        for kind, handler in (
                ("friend_connected", self._connected),
                ("friend_disconnected", self._disconnected),
                ("status_changed", self._status),
                ("chat_status", self._chat_status),
                ("location_learned", self._learned),
                ("message_received", self._chat),
                ("mail_received", self._mail),
                ("file_list_updated", self._friend_list),
                ("shares_indexed", self._own_list),
                ("transfer_complete", self._complete),
                ("transfer_progress", self._progress)):
            self._unsubscribers.append(self.node.subscribe(kind, handler))

    def detach(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()

    # --- translations ----------------------------------------------------------------------

    def _friend(self, code: int, peer: Any, status: int = 0, state: str = "") -> None:
        self.publish(ev.friend_event(self.now(), code, peer.ssl_id.to_hex(), status=status,
                                     state=state))

    def _connected(self, peer: Any) -> None:
        self._friend(ev.FriendCode.NODE_CONNECTED, peer)
        self._friend(ev.FriendCode.NODE_STATUS_CHANGED, peer)

    def _disconnected(self, peer: Any, reason: Any) -> None:
        self._friend(ev.FriendCode.NODE_DISCONNECTED, peer)
        self._friend(ev.FriendCode.NODE_STATUS_CHANGED, peer)

    def _status(self, peer: Any, status: int) -> None:
        self._friend(ev.FriendCode.NODE_STATUS_CHANGED, peer, status=int(status))

    def _chat_status(self, status: Any) -> None:
        self.publish(ev.friend_event(self.now(), ev.FriendCode.NODE_STATE_STRING_CHANGED,
                                     status.peer.to_hex(), state=status.text))

    def _learned(self, ssl_id: Any, pgp_id: Any, addresses: Any) -> None:
        self.publish(ev.gossip_event(self.now(), ssl_id.to_hex()))

    def _chat(self, message: Any) -> None:
        now = self.now()
        cid, info = chat_message_json(message, now)
        self.publish(ev.chat_service_event(now, cid, info))
        self.publish(ev.chat_history_event(now, message.history_id))
        self.publish(ev.chat_message_event(now, info))

    def _mail(self, mail: Any) -> None:
        self.publish(ev.mail_event(self.now(), [str(mail.id)]))

    def _friend_list(self, ssl_id: Any) -> None:
        self.publish(ev.shared_dir_event(self.now(),
                                         ev.SharedDirCode.FRIEND_DIR_LIST_UPDATED))

    def _own_list(self) -> None:
        self.publish(ev.shared_dir_event(self.now(), ev.SharedDirCode.OWN_DIR_LIST_UPDATED))

    def _complete(self, info: Any) -> None:
        now = self.now()
        self.publish(ev.progress_event(now, info.file_hash.to_hex(), info.name, info.size,
                                       info.size, 0.0, "complete"))
        self.publish(ev.file_transfer_event(now, 1, info.file_hash.to_hex()))

    def _progress(self, info: Any) -> None:
        self.publish(ev.progress_event(self.now(), info.file_hash.to_hex(), info.name,
                                       info.size, info.done, info.rate, info.state))
