# -*- test-case-name: tests.test_chat -*-
"""Chat (0x0012) between friends: private and broadcast messages, status strings, avatars.

What travels is RetroShare's (``p3ChatService``):

- a private message is a `ChatMsgItem` with PRIVATE, a broadcast one the same with PUBLIC,
  each with the send time in seconds and the body as the sender wrote it (RetroShare's GUI
  writes HTML, its JSON API passes text through unchanged; `html_to_text` gives applications
  a plain view of either);
- a body over `MAX_PIECE_BYTES` bytes of UTF-8 leaves as several items, all but the last with
  PARTIAL_MESSAGE and only the PRIVATE/PUBLIC/LOBBY bits; the receiver joins them per friend
  (`Reassembler`, which, unlike RetroShare, caps what one friend can make us hold);
- the receiver drops a message whose PRIVATE|PUBLIC|LOBBY bits are neither none, PRIVATE nor
  PUBLIC (`flags_acceptable`);
- status items: "is typing..." and similar strings, and the custom state exchange: *I have
  one* (CUSTOM_STATE_AVAILABLE) -> *send it* (PRIVATE|REQUEST_CUSTOM_STATE) -> *here it is*
  (CUSTOM_STATE); after our first private message to a friend we send our custom state (an
  18-byte item when it is empty), as RetroShare does;
- avatars: on connect we ask a friend whose avatar we lack (a PRIVATE|REQUESTS_AVATAR message
  with no text), answer such requests with our image (`ChatAvatarItem`, at most
  `MAX_AVATAR_SIZE` bytes), and ask again when a message says AVATAR_AVAILABLE.

Private messages to a friend that is offline (or whose link queue is full) wait in the
`ChatStore` queue, item by item, and leave in order when it connects; everything sent and
received goes to the store's history.  Lobby items go to the lobby handler the node attaches
(`services.chat.lobby_service.LobbyService`, set as ``lobby``); without one they are counted
and ignored.
"""

from __future__ import annotations

import dataclasses
import html
import html.parser
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.chat import (
    MAX_AVATAR_SIZE,
    ChatAvatarItem,
    ChatFlags,
    ChatLobbyConnectChallengeItem,
    ChatLobbyEventItem,
    ChatLobbyInviteDeprecatedItem,
    ChatLobbyInviteItem,
    ChatLobbyListItem,
    ChatLobbyListRequestItem,
    ChatLobbyMsgItem,
    ChatLobbyUnsubscribeItem,
    ChatMsgItem,
    ChatStatusItem,
)
from pqi.items.ids import SERVICE_CHAT
from pqi.wire.fields import SslId
from services.base import Service
from services.chat.lobby import LobbyInvited, LobbyListChanged, LobbyMessage, LobbyPeerEvent
from services.chat.store import CHAT_FILE, ChatStore, HistoryEntry
from services.spec import Commands, ServiceSpec

__all__ = [
    "ChatService", "ChatMessage", "ChatStatus", "Reassembler", "ChatError",
    "AvatarTooLargeError", "MessageTooLongError", "split_message", "flags_acceptable",
    "html_to_text", "text_to_html", "MAX_PIECE_BYTES", "MAX_MESSAGE_BYTES", "TYPING",
    "RETRY_PERIOD", "HISTORY_COMMIT_DELAY", "piece_flags", "MessageReceived",
    "ChatStatusReceived", "AvatarReceived", "SPEC",
]

#: RetroShare cuts message bodies into pieces of at most this many bytes.
MAX_PIECE_BYTES: Final = 15000
#: Longest message (UTF-8 bytes) we send or reassemble; a friend's partial message growing past
#: it is dropped.  RetroShare has no cap (its pending piece grows without bound).
MAX_MESSAGE_BYTES: Final = 1024 * 1024
#: The status string RetroShare's GUI sends while its user types.
TYPING: Final = "is typing..."
#: How soon queued messages are tried again when the friend's link queue was full (s).
RETRY_PERIOD: Final = 0.05
#: How long (s) history rows wait to be committed together: a flood's rows go in batches of
#: a hundred or more rather than one per reactor turn (a crash loses at most this long).
HISTORY_COMMIT_DELAY: Final = 0.01

_KIND_BITS: Final = int(ChatFlags.PRIVATE | ChatFlags.PUBLIC | ChatFlags.LOBBY)
# The flag bits as plain ints: the receive path tests them on every message, and an operator
# on an `enum.IntFlag` builds a new flag object each time (a fifth of a flood's decode cost).
_PRIVATE: Final = int(ChatFlags.PRIVATE)
_PUBLIC: Final = int(ChatFlags.PUBLIC)
_PARTIAL: Final = int(ChatFlags.PARTIAL_MESSAGE)
#: Most UTF-8 bytes one character of a body encodes to.
_MAX_UTF8_BYTES: Final = 4
#: The kind bits a (non-lobby) message may carry: none, PRIVATE or PUBLIC.
_ACCEPTED_KINDS: Final = frozenset({0, _PRIVATE, _PUBLIC})
#: The flags of a private message (a module constant: an enum member's lookup costs 0.1 µs
#: a message).
_PRIVATE_FLAGS: Final = ChatFlags.PRIVATE
_REQUESTS_AVATAR: Final = int(ChatFlags.REQUESTS_AVATAR)
_AVATAR_AVAILABLE: Final = int(ChatFlags.AVATAR_AVAILABLE)
#: Queued items sent per pump round (the rest waits for the next round).
_PUMP_BATCH: Final = 500


class ChatError(Exception):
    """Base of the chat service's errors."""


class AvatarTooLargeError(ChatError):
    """An avatar image must be at most 32767 bytes (RetroShare refuses larger ones)."""


class MessageTooLongError(ChatError):
    """A chat message may be at most 1 MiB of UTF-8: friends running rsproto drop longer ones
    (send a file instead)."""


@dataclasses.dataclass(frozen=True, init=False)
class ChatMessage:
    """A private or broadcast message, received or sent.

    ``peer`` is the friend it came from or went to (None for our own broadcasts);
    ``body`` is what travelled (often HTML), ``text`` its plain view; ``history_id`` orders
    messages in the store.  ``queued``: a sent private message that waits for its friend.
    """

    peer: SslId | None
    incoming: bool
    public: bool
    send_time: int
    recv_time: float
    body: str
    history_id: int
    queued: bool = False

    def __init__(self, peer: SslId | None, incoming: bool, public: bool, send_time: int,
                 recv_time: float, body: str, history_id: int, queued: bool = False) -> None:
        # Every message sent or received makes one: the generated frozen ``__init__`` sets
        # each field through ``object.__setattr__`` (1.3 µs for the eight), filling the
        # instance's dict directly costs a third of that.
        fields = self.__dict__
        fields["peer"] = peer
        fields["incoming"] = incoming
        fields["public"] = public
        fields["send_time"] = send_time
        fields["recv_time"] = recv_time
        fields["body"] = body
        fields["history_id"] = history_id
        fields["queued"] = queued

    @property
    def text(self) -> str:
        return html_to_text(self.body)

    @classmethod
    def from_history(cls, entry: HistoryEntry) -> ChatMessage:
        return cls(entry.peer, entry.incoming, entry.public, entry.send_time, entry.recv_time,
                   entry.body, entry.id)

    def to_json(self) -> dict[str, object]:
        return {"id": self.history_id, "peer": self.peer.to_hex() if self.peer else None,
                "incoming": self.incoming, "public": self.public,
                "send_time": self.send_time, "recv_time": self.recv_time,
                "body": self.body, "text": self.text, "queued": self.queued}


@dataclasses.dataclass(frozen=True)
class ChatStatus:
    """A friend's chat status notice: ``kind`` is "typing", "status" (any other string) or
    "custom_state" (its custom state string, after we asked for it)."""

    peer: SslId
    kind: str
    text: str
    public: bool = False


@dataclasses.dataclass(frozen=True)
class MessageReceived:
    """A friend's chat message arrived (whole, reassembled) and is in the history."""

    message: ChatMessage


@dataclasses.dataclass(frozen=True)
class ChatStatusReceived:
    """A friend's chat status notice ("is typing...", a status string, its custom state)."""

    status: ChatStatus


@dataclasses.dataclass(frozen=True)
class AvatarReceived:
    """A friend sent its avatar."""

    #: The friend location.
    peer: SslId
    #: The image, JPEG as RetroShare sends it (at most ``MAX_AVATAR_SIZE`` bytes).
    image: bytes


#: Control commands of chat (``rsnode chat``).
COMMANDS = Commands()

#: The lobby items (handed to the lobby service) and the events it reports.
LOBBY_ITEMS: Final = (ChatLobbyMsgItem, ChatLobbyEventItem, ChatLobbyConnectChallengeItem,
                      ChatLobbyUnsubscribeItem, ChatLobbyListRequestItem, ChatLobbyListItem,
                      ChatLobbyInviteDeprecatedItem, ChatLobbyInviteItem)
LOBBY_EVENTS: Final = (LobbyMessage, LobbyPeerEvent, LobbyInvited, LobbyListChanged)


def _build(node: Any) -> ChatService:
    """Chat, and its lobbies when the node runs identities and reputation (built before)."""
    chat = ChatService(node.control, node.reactor,
                       ChatStore(Path(node.account.base_dir) / CHAT_FILE, writer_thread=True),
                       node.emit)
    identities = getattr(node, "identities", None)
    if identities is not None:
        from services.chat.lobby_service import LobbyService
        reputation = getattr(node, "reputation", None)
        chat.lobby = LobbyService(node.control, node.reactor, Path(node.account.base_dir),
                                  identities, reputation.hides if reputation else
                                  (lambda _g: False), own_id=node.ssl_id, on_event=node.emit)
    return chat


def _close(chat: ChatService) -> None:
    chat.store.close()
    if chat.lobby is not None:
        chat.lobby.close()


#: Chat on a node: its history and queue in the account's `CHAT_FILE`; lobbies (items and
#: events of the same service) in `services.chat.lobby_service`.
SPEC: Final = ServiceSpec(
    SERVICE_CHAT, "chat", attribute="chat",
    items=(ChatMsgItem, ChatStatusItem, ChatAvatarItem) + LOBBY_ITEMS,
    events=(MessageReceived, ChatStatusReceived, AvatarReceived) + LOBBY_EVENTS,
    commands=COMMANDS, cli="services.cli.chat:register_chat", build=_build, close=_close)


@COMMANDS.command("chat_send")
def _chat_send(node: Any, args: dict[str, Any]) -> Any:
    """Send ``text`` (typed text, escaped; HTML as it is with ``html``) to ``to`` or, with
    ``broadcast``, to every connected friend."""
    html = bool(args.get("html"))
    if args.get("broadcast"):
        return node.broadcast_chat(str(args["text"]), html=html).addCallback(
            lambda peers: {"reached": [p.to_hex() for p in peers]})
    return node.send_chat(str(args["to"]), str(args["text"]), html=html).addCallback(
        lambda m: node.named(m.to_json()))


@COMMANDS.command("chat_history")
def _chat_history(node: Any, args: dict[str, Any]) -> Any:
    peer = args.get("peer")
    ssl_id = None if peer is None else node.friend_location(str(peer))
    store = node.chat.store
    entries = store.history(ssl_id, limit=int(args.get("limit", 50)),
                            after=None if args.get("after") is None else int(args["after"]))
    return {"last_id": store.last_id(),
            "messages": [node.named(ChatMessage.from_history(e).to_json()) for e in entries]}


# --- pure helpers ---------------------------------------------------------------------------

def split_message(body: str) -> list[str]:
    """``body`` cut into pieces of at most `MAX_PIECE_BYTES` UTF-8 bytes, never inside a
    character (RetroShare cuts at exactly 15000 bytes; for ASCII both cuts agree)."""
    data = body.encode("utf-8", "surrogateescape")
    pieces: list[str] = []
    start = 0
    while len(data) - start > MAX_PIECE_BYTES:
        end = start + MAX_PIECE_BYTES
        while end > start and (data[end] & 0xC0) == 0x80:  # continuation byte: back off
            end -= 1
        if end == start:  # not UTF-8 (surrogate-escaped junk): cut at the byte limit
            end = start + MAX_PIECE_BYTES
        pieces.append(data[start:end].decode("utf-8", "surrogateescape"))
        start = end
    pieces.append(data[start:].decode("utf-8", "surrogateescape"))
    return pieces


def piece_flags(flags: ChatFlags, pieces: int) -> list[ChatFlags]:
    """The flags of each piece of a message sent with ``flags``, as RetroShare sets them."""
    if pieces == 1:
        return [flags]
    head = ChatFlags((flags & _KIND_BITS) | _PARTIAL)
    return [head] * (pieces - 1) + [flags]


def flags_acceptable(flags: int) -> bool:
    """RetroShare's receiver check for a (non-lobby) message's kind bits."""
    return (int(flags) & _KIND_BITS) in _ACCEPTED_KINDS


class Reassembler:
    """Joins PARTIAL_MESSAGE pieces per friend, holding at most `MAX_MESSAGE_BYTES` each.

    `feed` returns the whole message ``(flags, body)`` once its last piece arrived, else None.
    A friend whose pending pieces would pass the cap loses them (``overflows`` counts it);
    RetroShare would keep growing.  As RetroShare does, the flags of all pieces are OR-ed.
    """

    def __init__(self, cap: int = MAX_MESSAGE_BYTES) -> None:
        self.cap = cap
        self.overflows = 0
        self._pending: dict[SslId, tuple[int, list[bytes], int]] = {}

    @property
    def pending_bytes(self) -> int:
        return sum(size for _, _, size in self._pending.values())

    def feed(self, peer: SslId, flags: int, body: str) -> tuple[int, str] | None:
        flags = int(flags)
        if not flags & _PARTIAL and peer not in self._pending and \
                len(body) * _MAX_UTF8_BYTES <= self.cap:
            # A whole message with nothing pending (nearly every message): it is its own
            # join, and it fits whatever its characters encode to.
            return flags, body
        data = body.encode("utf-8", "surrogateescape")
        old_flags, parts, size = self._pending.pop(peer, (0, [], 0))
        if size + len(data) > self.cap:
            self.overflows += 1
            return None
        parts.append(data)
        if flags & _PARTIAL:
            self._pending[peer] = (flags | old_flags, parts, size + len(data))
            return None
        whole = b"".join(parts).decode("utf-8", "surrogateescape")
        return (flags | old_flags) & ~_PARTIAL, whole

    def drop(self, peer: SslId) -> None:
        """Forget a friend's unfinished message (its link went down)."""
        self._pending.pop(peer, None)


class _PlainText(html.parser.HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "li", "tr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head"):
            self._skip += 1
        elif tag in self._BREAKS and self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("p", "div", "li", "tr") and self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def html_to_text(body: str) -> str:
    """A plain view of a chat or mail body: tags gone, entities decoded, breaks as newlines.

    Bodies without markup (RetroShare's JSON API, rsproto by default) come back unchanged."""
    if "<" not in body and "&" not in body:
        return body
    parser = _PlainText()
    parser.feed(body)
    parser.close()
    return "".join(parser.out).strip("\n")


def text_to_html(text: str) -> str:
    """Plain text as a body RetroShare's GUI shows verbatim (escaped, newlines as breaks)."""
    return html.escape(text, quote=False).replace("\n", "<br/>")


# --- the service ----------------------------------------------------------------------------

class LobbyHandler(Protocol):
    """What the chat service hands lobby items and friends' links to."""

    def stop(self) -> None: ...

    def close(self) -> None: ...

    def peer_connected(self, peer: PeerIdentity) -> None: ...

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None: ...

    def receive(self, peer: PeerIdentity, item: object) -> None: ...


class ChatService(Service):
    """Private and broadcast chat with friends, with history and the offline queue.

    ``emit(event)`` reports `MessageReceived`, `ChatStatusReceived` and `AvatarReceived` to
    the node.
    """

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime, store: ChatStore,
                 emit: Callable[[object], None] | None = None) -> None:
        super().__init__(sender, reactor)
        self.store = store
        self._emit = emit or (lambda event: None)
        self.reassembler = Reassembler()
        self.custom_state = ""
        self.avatar: bytes | None = None
        #: Friends' avatars and custom state strings, as they sent them.
        self.avatars: dict[SslId, bytes] = {}
        self.custom_states: dict[SslId, str] = {}
        #: Counters: messages dropped for bad flags, lobby items ignored.
        self.dropped_flags = 0
        self.ignored = 0
        self._state_told: set[SslId] = set()
        self._avatar_told: set[SslId] = set()
        self._backlog: set[SslId] = set()
        self._retry: IDelayedCall | None = None
        self._commit: IDelayedCall | None = None
        #: Where lobby items go (the lobby service attaches itself here), and friends' links.
        self.lobby: LobbyHandler | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._backlog = {q.peer for q in self.store.queued()}

    def stop(self) -> None:
        if self.lobby is not None:
            self.lobby.stop()
        for timer in (self._retry, self._commit):
            if timer is not None and timer.active():
                timer.cancel()
        self._retry = self._commit = None
        self.store.commit()

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        if self.lobby is not None:
            self.lobby.peer_connected(peer)
        if peer.ssl_id not in self.avatars:
            self.send(peer.ssl_id, ChatMsgItem(
                flags=ChatFlags.PRIVATE | ChatFlags.REQUESTS_AVATAR, send_time=self._now(),
                message=""))
        self._pump()

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self.reassembler.drop(peer.ssl_id)
        if self.lobby is not None:
            self.lobby.peer_disconnected(peer, reason)

    # --- sending -----------------------------------------------------------------------------

    def send_private(self, peer: SslId, body: str) -> ChatMessage:
        """Send ``body`` to a friend now, or queue it (persistently) until it connects.

        Raises `MessageTooLongError` over `MAX_MESSAGE_BYTES`."""
        # The common message is one piece: skip the cutting, and encode the body at most
        # once (not at all when no encoding of its characters could pass a piece).
        long = (len(body) * _MAX_UTF8_BYTES > MAX_PIECE_BYTES
                and len(body.encode("utf-8", "surrogateescape")) > MAX_PIECE_BYTES)
        if long:
            self._check_length(body)
        seconds = self.reactor.seconds()
        now = int(seconds) & 0xFFFFFFFF
        flags = _PRIVATE_FLAGS
        tell_avatar = self.avatar is not None and peer not in self._avatar_told
        if tell_avatar:
            flags |= ChatFlags.AVATAR_AVAILABLE
        if long:
            pieces = split_message(body)
            items = list(zip(piece_flags(flags, len(pieces)), [now] * len(pieces), pieces,
                             strict=True))
        else:
            items = [(flags, now, body)]
        sent = 0
        if peer in self.peers and peer not in self._backlog:
            for f, t, b in items:
                if not self.send(peer, ChatMsgItem(f, t, b)):  # flags, send_time, message
                    break
                sent += 1
        if sent < len(items):
            self.store.enqueue(peer, [(int(f), t, b) for f, t, b in items[sent:]])
            self._backlog.add(peer)
            self._schedule_retry()
        elif tell_avatar:
            self._avatar_told.add(peer)
        if sent and peer not in self._state_told:
            self._state_told.add(peer)
            self.send(peer, ChatStatusItem(flags=ChatFlags.CUSTOM_STATE,
                                           status=self.custom_state))
        history_id = self._record(peer, incoming=False, public=False, send_time=now,
                                  recv_time=seconds, body=body)
        return ChatMessage(peer, False, False, now, seconds, body, history_id,
                           queued=sent < len(items))

    def send_broadcast(self, body: str) -> list[SslId]:
        """Send ``body`` (PUBLIC) to every connected friend; returns who got it."""
        self._check_length(body)
        now = self._now()
        pieces = split_message(body)
        reached = []
        for peer in list(self.peers):
            if all(self.send(peer, ChatMsgItem(flags=f, send_time=now, message=b))
                   for f, b in zip(piece_flags(ChatFlags.PUBLIC, len(pieces)), pieces,
                                       strict=True)):
                reached.append(peer)
        self._record(None, incoming=False, public=True, send_time=now,
                     recv_time=self.reactor.seconds(), body=body)
        return reached

    def send_typing(self, peer: SslId, text: str = TYPING) -> bool:
        """Tell a friend we are typing (or any other short status string)."""
        return self.send(peer, ChatStatusItem(flags=ChatFlags.PRIVATE, status=text))

    def set_custom_state(self, text: str) -> None:
        """Change our custom state string; connected friends hear that there is a new one
        (and ask for it)."""
        self.custom_state = text
        self._state_told.clear()
        for peer in list(self.peers):
            self.send(peer, ChatStatusItem(flags=ChatFlags.CUSTOM_STATE_AVAILABLE, status=""))

    def set_avatar(self, image: bytes | None) -> None:
        """Our avatar (JPEG, at most `MAX_AVATAR_SIZE` bytes), sent to friends that ask."""
        if image is not None and len(image) > MAX_AVATAR_SIZE:
            raise AvatarTooLargeError(f"avatar of {len(image)} bytes; at most "
                                      f"{MAX_AVATAR_SIZE}")
        self.avatar = image
        self._avatar_told.clear()

    def queued(self, peer: SslId | None = None) -> int:
        """How many message items wait for friends (or for one)."""
        return len(self.store.queued(peer))

    # --- receiving ---------------------------------------------------------------------------

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, ChatMsgItem):
            self._message(peer, item)
        elif isinstance(item, ChatStatusItem):
            self._status(peer, item)
        elif isinstance(item, ChatAvatarItem):
            self.avatars[peer.ssl_id] = item.image
            self._emit(AvatarReceived(peer.ssl_id, item.image))
        elif self.lobby is not None:
            self.lobby.receive(peer, item)
        else:
            self.ignored += 1

    def _message(self, peer: PeerIdentity, item: ChatMsgItem) -> None:
        whole = self.reassembler.feed(peer.ssl_id, int(item.flags), item.message)
        if whole is None:
            return
        flags, body = whole
        if (flags & _KIND_BITS) not in _ACCEPTED_KINDS:  # `flags_acceptable`, without a call
            self.dropped_flags += 1
            self.log.warn("dropped a chat message with flags {flags:#x} from {peer}",
                          flags=flags, peer=peer.ssl_id.to_hex())
            return
        if flags & _REQUESTS_AVATAR:
            if self.avatar is not None:
                self.send(peer.ssl_id, ChatAvatarItem(image=self.avatar))
            return
        if flags & _AVATAR_AVAILABLE:
            self.send(peer.ssl_id, ChatMsgItem(
                flags=ChatFlags.PRIVATE | ChatFlags.REQUESTS_AVATAR, send_time=self._now(),
                message=""))
        public = not flags & _PRIVATE
        now = self.reactor.seconds()
        history_id = self._record(peer.ssl_id, incoming=True, public=public,
                                  send_time=item.send_time, recv_time=now, body=body)
        self._emit(MessageReceived(ChatMessage(peer.ssl_id, True, public, item.send_time,
                                               now, body, history_id)))

    def _status(self, peer: PeerIdentity, item: ChatStatusItem) -> None:
        flags = item.flags
        if flags & ChatFlags.REQUEST_CUSTOM_STATE:
            self.send(peer.ssl_id, ChatStatusItem(flags=ChatFlags.CUSTOM_STATE,
                                                  status=self.custom_state))
        elif flags & ChatFlags.CUSTOM_STATE:
            self.custom_states[peer.ssl_id] = item.status
            self._emit(ChatStatusReceived(ChatStatus(peer.ssl_id, "custom_state", item.status)))
        elif flags & ChatFlags.CUSTOM_STATE_AVAILABLE:
            self.send(peer.ssl_id, ChatStatusItem(
                flags=ChatFlags.PRIVATE | ChatFlags.REQUEST_CUSTOM_STATE, status=""))
        else:
            kind = "typing" if item.status == TYPING else "status"
            self._emit(ChatStatusReceived(ChatStatus(peer.ssl_id, kind, item.status,
                                                     public=bool(flags & ChatFlags.PUBLIC))))

    # --- queue -------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Send queued items of connected friends, in order, while their links take them."""
        again = False
        for peer in sorted(self._backlog & set(self.peers)):
            done: list[int] = []
            full = False
            batch = self.store.queued(peer, limit=_PUMP_BATCH)
            for q in batch:
                if not self.send(peer, ChatMsgItem(flags=ChatFlags(q.flags),
                                                   send_time=q.send_time, message=q.body)):
                    full = True
                    break
                done.append(q.id)
            if done:
                self.store.dequeue(done)
            if full or len(batch) == _PUMP_BATCH:
                again = True
            elif not self.store.has_queued(peer):
                self._backlog.discard(peer)
        if again:
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._retry is None or not self._retry.active():
            self._retry = self.reactor.callLater(RETRY_PERIOD, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self._pump()

    # --- internals ---------------------------------------------------------------------------

    def _record(self, peer: SslId | None, *, incoming: bool, public: bool, send_time: int,
                recv_time: float, body: str) -> int:
        """Add to the history, committed `HISTORY_COMMIT_DELAY` later with the rows added
        meanwhile (one commit per batch; a crash loses at most that long's entries, never a
        queued message)."""
        history_id = self.store.add(peer, incoming=incoming, public=public,
                                    send_time=send_time, recv_time=recv_time, body=body,
                                    text=html_to_text(body), commit=False)
        if self._commit is None:  # else due (it clears itself when it runs, `stop` cancels it)
            self._commit = self.reactor.callLater(HISTORY_COMMIT_DELAY, self._commit_now)
        return history_id

    def _commit_now(self) -> None:
        self._commit = None
        self.store.commit()

    def _now(self) -> int:
        return int(self.reactor.seconds()) & 0xFFFFFFFF

    @staticmethod
    def _check_length(body: str) -> None:
        size = len(body.encode("utf-8", "surrogateescape"))
        if size > MAX_MESSAGE_BYTES:
            raise MessageTooLongError(f"message of {size} bytes; at most {MAX_MESSAGE_BYTES}")
