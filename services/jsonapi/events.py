# -*- test-case-name: tests.test_jsonapi_events -*-
"""The event stream, ``/rsEvents/registerEventsHandler``, and the RetroShare event records.

RetroShare frames every event as ``data: <compact JSON>\\n\\n``: first the registration
answer, then ``{"event":{"mType":N,"mTime":…,…}}``; a stream opened with ``eventType`` N > 0
gets only type N.  rsproto adds what users ask for and RetroShare lacks, as event types
RetroShare clients ignore: download progress (`EXT_DOWNLOAD_PROGRESS`) and keep-alives
(`EXT_KEEPALIVE`, every `KEEPALIVE_PERIOD` seconds, so proxies keep idle streams open;
filtered streams get an SSE comment instead).  A client too slow to read is dropped when
`MAX_QUEUED_FRAMES` frames wait for it; at most `MAX_EVENT_STREAMS` streams are open.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any, Final

from twisted.internet import task
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.web import server
from zope.interface import implementer

from .encoding import (
    NULL_GXS_ID,
    NULL_HASH,
    NULL_PGP_ID,
    NULL_SSL_ID,
    Params,
    compact,
    success_condition,
    x64,
)

__all__ = [
    "EventStreams",
    "EventType",
    "FriendCode",
    "SharedDirCode",
    "LobbyEventCode",
    "lobby_event",
    "MAX_EVENT_STREAMS",
    "MAX_QUEUED_FRAMES",
    "KEEPALIVE_PERIOD",
    "EXT_KEEPALIVE",
    "EXT_DOWNLOAD_PROGRESS",
    "friend_event",
    "gossip_event",
    "mail_event",
    "shared_dir_event",
    "file_transfer_event",
    "identity_event",
    "chat_service_event",
    "chat_message_event",
    "chat_history_event",
    "chat_id",
    "chat_message_info",
    "progress_event",
    "keepalive_event",
    "frame",
]

#: Streams open at once (RetroShare's web interface opens one; the soak test 20).
MAX_EVENT_STREAMS: Final = 32
#: Frames waiting for one slow reader before the stream is closed.
MAX_QUEUED_FRAMES: Final = 1024
#: Seconds between keep-alives on an otherwise quiet stream.
KEEPALIVE_PERIOD: Final = 15.0


class EventType:
    """RetroShare's ``RsEventType`` numbers used here."""

    GOSSIP_DISCOVERY: Final = 2
    FRIEND_LIST: Final = 4
    MAIL_STATUS: Final = 7
    GXS_IDENTITY: Final = 12
    SHARED_DIRECTORIES: Final = 13
    FILE_TRANSFER: Final = 14
    CHAT_SERVICE: Final = 15


#: rsproto's extra event types (far above RetroShare's, which its clients ignore).
EXT_KEEPALIVE: Final = 1000
EXT_DOWNLOAD_PROGRESS: Final = 1001


class FriendCode:
    """``RsFriendListEventCode``."""

    UNKNOWN: Final = 0
    NODE_CONNECTED: Final = 1
    NODE_DISCONNECTED: Final = 2
    NODE_ADDED: Final = 5
    NODE_STATUS_CHANGED: Final = 7
    NODE_STATE_STRING_CHANGED: Final = 9
    PROFILE_ADDED: Final = 12


class SharedDirCode:
    """``RsSharedDirectoriesEventCode``."""

    HASHING_PROCESS_STARTED: Final = 1
    HASHING_PROCESS_FINISHED: Final = 5
    HASHING_FILE: Final = 6
    SHARED_DIRS_LIST_CHANGED: Final = 10
    FRIEND_DIR_LIST_UPDATED: Final = 11
    OWN_DIR_LIST_UPDATED: Final = 12
    OWN_DIR_LIST_PROCESSING: Final = 13


# --- event records (member names and order as RetroShare serialises them) -----------------

def _head(kind: int, now: int) -> dict[str, Any]:
    return {"mType": kind, "mTime": x64(now)}


def friend_event(now: int, code: int, ssl_id: str = NULL_SSL_ID, pgp_id: str = NULL_PGP_ID,
                 status: int = 0, state: str = "") -> dict[str, Any]:
    return {**_head(EventType.FRIEND_LIST, now), "mEventCode": code, "mSslId": ssl_id,
            "mPgpId": pgp_id, "mOwnLocator": {"urlString": "://"},
            "mReportedLocator": {"urlString": "://"}, "mStatus": status,
            "mStateString": state, "mTimeShift": x64(0)}


def gossip_event(now: int, about: str, source: str = NULL_SSL_ID) -> dict[str, Any]:
    return {**_head(EventType.GOSSIP_DISCOVERY, now), "mGossipDiscoveryEventType": 1,
            "mFromId": source, "mAboutId": about}


def mail_event(now: int, msg_ids: list[str], code: int = 1) -> dict[str, Any]:
    return {**_head(EventType.MAIL_STATUS, now), "mChangedMsgIds": msg_ids,
            "mMailStatusEventCode": code}


def shared_dir_event(now: int, code: int, path: str = "", file_hash: str = NULL_HASH,
                     counter: int = 0, files_to_hash: int = 0, hashed_size: int = 0,
                     size_to_hash: int = 0) -> dict[str, Any]:
    return {**_head(EventType.SHARED_DIRECTORIES, now), "mEventCode": code,
            "mFilePath": path, "mFileHash": file_hash, "mHashingSpeed": 0,
            "mHashCounter": x64(counter), "mTotalFilesToHash": x64(files_to_hash),
            "mTotalHashedSize": x64(hashed_size), "mTotalSizeToHash": x64(size_to_hash)}


def file_transfer_event(now: int, code: int, file_hash: str = NULL_HASH, request_id: int = 0,
                        results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {**_head(EventType.FILE_TRANSFER, now), "mFileTransferEventCode": code,
            "mHash": file_hash, "mRequestId": request_id, "mResults": results or []}


def identity_event(now: int, identity: str, code: int = 3) -> dict[str, Any]:
    return {**_head(EventType.GXS_IDENTITY, now), "mIdentityEventCode": code,
            "mIdentityId": identity}


def chat_id(kind: int = 0, peer: str = NULL_SSL_ID, broadcast: str = NULL_SSL_ID,
            lobby: int = 0) -> dict[str, Any]:
    """A ``ChatId``: type 1 private (``peer``), 3 lobby, 4 broadcast."""
    return {"broadcast_status_peer_id": broadcast, "type": kind, "peer_id": peer,
            "distant_chat_id": NULL_GXS_ID, "lobby_id": x64(lobby)}


def chat_message_info(cid: dict[str, Any], *, flags: int = 0, send_time: int = 0,
                      recv_time: int = 0, msg: str = "", incoming: bool = False,
                      online: bool = False, broadcast_peer: str = NULL_SSL_ID,
                      lobby_gxs_id: str = NULL_GXS_ID, nickname: str = "") -> dict[str, Any]:
    return {"chat_id": cid, "broadcast_peer_id": broadcast_peer,
            "lobby_peer_gxs_id": lobby_gxs_id, "peer_alternate_nickname": nickname,
            "chatflags": flags, "sendTime": send_time, "recvTime": recv_time, "msg": msg,
            "incoming": incoming, "online": online}


def chat_service_event(now: int, cid: dict[str, Any], msg: dict[str, Any],
                       code: int = 1) -> dict[str, Any]:
    return {**_head(EventType.CHAT_SERVICE, now), "mEventCode": code, "mStr": "",
            "mCid": cid, "mMsg": msg, "mMsgHistoryId": 0, "mHistoryChangeType": 0}


def chat_history_event(now: int, history_id: int) -> dict[str, Any]:
    empty = chat_id()
    return {**_head(EventType.CHAT_SERVICE, now), "mEventCode": 3, "mStr": "", "mCid": empty,
            "mMsg": chat_message_info(empty), "mMsgHistoryId": history_id,
            "mHistoryChangeType": 0}


class LobbyEventCode:
    """``RsChatLobbyEventCode``."""

    CHAT_LOBBY_LIST_CHANGED: Final = 3
    CHAT_LOBBY_INVITE_RECEIVED: Final = 4
    PEER_LEFT: Final = 5
    PEER_STATUS: Final = 6
    PEER_JOINED: Final = 7
    PEER_CHANGE_NICKNAME: Final = 8
    KEEP_ALIVE: Final = 9


def lobby_event(now: int, code: int, lobby_id: int = 0, gxs_id: str = NULL_GXS_ID,
                text: str = "") -> dict[str, Any]:
    """A ``RsChatLobbyEvent`` (someone joined, left, typed...; the lobby list changed)."""
    return {**_head(EventType.CHAT_SERVICE, now), "mEventCode": code,
            "mLobbyId": x64(lobby_id), "mGxsId": gxs_id, "mStr": text,
            "mMsg": chat_message_info(chat_id()), "mTimeShift": 0}


def chat_message_event(now: int, msg: dict[str, Any]) -> dict[str, Any]:
    return {**_head(EventType.CHAT_SERVICE, now), "mChatMessage": msg}


def progress_event(now: int, file_hash: str, name: str, size: int, done: int, rate: float,
                   state: str) -> dict[str, Any]:
    """rsproto's download progress (RetroShare clients poll ``FileDetails`` instead)."""
    return {**_head(EXT_DOWNLOAD_PROGRESS, now), "mHash": file_hash, "mName": name,
            "mSize": x64(size), "mTransferred": x64(done), "mRate": float(rate),
            "mState": state}


def keepalive_event(now: int) -> dict[str, Any]:
    return _head(EXT_KEEPALIVE, now)


def frame(value: dict[str, Any]) -> bytes:
    return b"data: " + compact(value) + b"\n\n"


# --- streams ---------------------------------------------------------------------------------

@implementer(IPushProducer)
class _Stream:
    """One open stream: writes frames while the client reads, queues (bounded) while it
    does not."""

    def __init__(self, owner: EventStreams, request: Any, event_type: int) -> None:
        self.owner = owner
        self.request = request
        self.event_type = event_type
        self.paused = False
        self.closed = False
        self.queue: collections.deque[bytes] = collections.deque()
        self.sent = 0

    def wants(self, kind: int) -> bool:
        return self.event_type == 0 or self.event_type == kind

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self.paused:
            if len(self.queue) >= self.owner.max_queued:
                self.owner.log.warn("event stream reader too slow: closed")
                self.close()
                return
            self.queue.append(data)
            return
        self.request.write(data)
        self.sent += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.owner.forget(self)
        self.queue.clear()
        try:
            self.request.unregisterProducer()
            self.request.finish()
        except RuntimeError:
            pass

    # IPushProducer
    def pauseProducing(self) -> None:  # noqa: N802
        self.paused = True

    def resumeProducing(self) -> None:  # noqa: N802
        self.paused = False
        while self.queue and not self.paused and not self.closed:
            self.request.write(self.queue.popleft())
            self.sent += 1

    def stopProducing(self) -> None:  # noqa: N802
        self.closed = True
        self.owner.forget(self)
        self.queue.clear()


class EventStreams:
    """Every open event stream; `publish` sends an event record to those that want it."""

    log = Logger()

    def __init__(self, clock: Any, *, keepalive: float = KEEPALIVE_PERIOD,
                 max_streams: int = MAX_EVENT_STREAMS,
                 max_queued: int = MAX_QUEUED_FRAMES) -> None:
        self.clock = clock
        self.keepalive = keepalive
        self.max_streams = max_streams
        self.max_queued = max_queued
        self.streams: list[_Stream] = []
        self.published = 0
        self._ticker: task.LoopingCall | None = None
        self.on_open: Callable[[], None] = lambda: None

    def start(self) -> None:
        if self.keepalive > 0 and self._ticker is None:
            self._ticker = task.LoopingCall(self._keepalive)
            self._ticker.clock = self.clock
            self._ticker.start(self.keepalive, now=False)

    def stop(self) -> None:
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self._ticker = None
        for stream in list(self.streams):
            stream.close()

    def forget(self, stream: _Stream) -> None:
        if stream in self.streams:
            self.streams.remove(stream)

    def open(self, request: Any, data: object) -> Any:
        """Start a stream for ``request`` (already authenticated) with its parameters."""
        from .server import JsonApiResource
        if len(self.streams) >= self.max_streams:
            JsonApiResource.json_headers(request, 503)
            body = b'{"errorMsg": "too many event streams"}'
            request.setHeader(b"Content-Length", str(len(body)).encode())
            request.setHeader(b"Content-Type", b"application/json")
            return body
        event_type = Params(data).int("eventType", 0)
        JsonApiResource.json_headers(request)
        request.responseHeaders.removeHeader(b"Access-Control-Expose-Headers")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Content-Type", b"text/event-stream")
        stream = _Stream(self, request, event_type)
        self.streams.append(stream)
        request.registerProducer(stream, True)
        request.notifyFinish().addBoth(lambda _: stream.stopProducing())
        stream.send(frame({"retval": success_condition()}))
        self.on_open()
        return server.NOT_DONE_YET

    def publish(self, event: dict[str, Any]) -> None:
        """Send ``event`` (a record with ``mType``) to every stream that wants it."""
        data = frame({"event": event})
        self.published += 1
        for stream in list(self.streams):
            if stream.wants(event["mType"]):
                stream.send(data)

    def _keepalive(self) -> None:
        data = frame({"event": keepalive_event(int(self.clock.seconds()))})
        for stream in list(self.streams):
            stream.send(data if stream.event_type in (0, EXT_KEEPALIVE)
                        else b": keep-alive\n\n")
