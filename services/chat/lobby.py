# -*- test-case-name: tests.test_lobby -*-
"""Chat lobbies (chat service 0x0012 lobby items), sans-IO: RetroShare's group chat.

A lobby has a random 64-bit id, a name, a topic and flags (PUBLIC, PGP_SIGNED...); it has no
server.  What travels, as ``DistributedChatService`` and the captures do it:

- friends ask each other for their lobby list (`ChatLobbyListRequestItem` every
  `LOBBY_LIST_PERIOD`); the answer lists public lobbies we are in and private ones the friend
  takes part in (`ChatLobbyListItem`); what friends list is the set of *visible* lobbies;
- joining a visible lobby is sending an invite (`ChatLobbyInviteItem` and its deprecated form)
  to the friends that listed it, then a signed JOINED event; an invite for a lobby we are in
  adds the friend to its participants, one for a lobby we are not in is an invitation
  (`LobbyInvited`) the user may accept;
- messages and events (joined, left, typing/status, keep-alive every
  `KEEP_ALIVE_PERIOD`) are "bouncing objects": signed by the sender's GXS identity, relayed by
  every participant to its other participating friends, each lobby remembering the message
  ids it saw for `MAX_KEEP_MSG_RECORD` seconds so nothing loops or is shown twice;
- on receipt a bouncing object is dropped when too old, from a banned identity, flooding
  (more than the lobby's rate from one friend), or when its signature does not hold
  (`Dropped`, logged by the skin); when the signer is unknown we ask for its identity
  (`IdentityWanted`) and drop it, as RetroShare does;
- leaving sends a signed LEFT event, then `ChatLobbyUnsubscribeItem` to the participants;
- in a private lobby (not listed), friends find each other by connection challenges (see
  `challenge_code`).

Every table is bounded (`MAX_LOBBIES`, `MAX_VISIBLE_LOBBIES`, `MAX_MSG_CACHE`,
`MAX_PARTICIPANTS`, `MAX_INVITES`, `MAX_HISTORY`).

Inputs take ``now``; outputs (`drain`): `SendItem`, `LobbyMessage`, `LobbyPeerEvent`,
`LobbyInvited`, `LobbyListChanged`, `IdentityWanted`, `Dropped`.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from collections.abc import Callable
from typing import Any, Final

from pqi.items.chat import (
    ChatFlags,
    ChatLobbyConnectChallengeItem,
    ChatLobbyEventItem,
    ChatLobbyFlags,
    ChatLobbyInviteDeprecatedItem,
    ChatLobbyInviteItem,
    ChatLobbyListItem,
    ChatLobbyListRequestItem,
    ChatLobbyMsgItem,
    ChatLobbyUnsubscribeItem,
    VisibleChatLobby,
)
from pqi.items.nxs import NxsRsaKey
from pqi.wire.fields import GxsId, SslId
from pqi.wire.item import PQItem
from pqi.wire.tlvvalues import KeySignature
from services.chat.lobby_signing import LobbyItem, check_lobby_item, sign_lobby_item
from services.gxs.security import SignatureError

__all__ = [
    "LobbyCore", "SendItem", "LobbyMessage", "LobbyPeerEvent", "LobbyInvited",
    "LobbyListChanged", "IdentityWanted", "Dropped", "Lobby", "VisibleLobby",
    "EVENT_PEER_LEFT", "EVENT_PEER_STATUS", "EVENT_PEER_JOINED", "EVENT_CHANGE_NICKNAME",
    "EVENT_KEEP_ALIVE", "MAX_KEEP_MSG_RECORD", "KEEP_ALIVE_PERIOD", "LOBBY_LIST_PERIOD",
    "MAX_LOBBIES", "MAX_VISIBLE_LOBBIES", "MAX_MSG_CACHE", "MAX_PARTICIPANTS", "MAX_INVITES",
    "MAX_HISTORY", "MAX_LOBBIES_IN_LIST", "MAX_MESSAGE_BYTES", "TYPING", "challenge_code",
]

#: ``RS_CHAT_LOBBY_EVENT_*``.
EVENT_PEER_LEFT: Final = 0x01
EVENT_PEER_STATUS: Final = 0x02
EVENT_PEER_JOINED: Final = 0x03
EVENT_CHANGE_NICKNAME: Final = 0x04
EVENT_KEEP_ALIVE: Final = 0x05
#: A lobby remembers message ids this long (and refuses older messages) (s).
MAX_KEEP_MSG_RECORD: Final = 1200
#: We send a keep-alive event in each lobby this often (s).
KEEP_ALIVE_PERIOD: Final = 120
#: We ask friends for their lobby lists this often (s).
LOBBY_LIST_PERIOD: Final = 121
#: Shortest time between two lobby list requests the user triggers (s).
MIN_LIST_REQUEST_DELAY: Final = 20
#: A visible lobby no friend listed for this long is forgotten (s).
VISIBLE_LOBBY_TTL: Final = 3 * LOBBY_LIST_PERIOD
#: Private lobbies: a connection challenge after this many relayed objects, at most every
#: `CHALLENGE_MIN_DELAY` s, naming a message seen in the last `CHALLENGE_MAX_MSG_AGE` s.
CHALLENGE_MAX_COUNT: Final = 20
CHALLENGE_MIN_DELAY: Final = 15
CHALLENGE_MAX_MSG_AGE: Final = 30
#: Flood window: one friend may send a lobby at most `_flood_cap` objects per this many s.
FLOOD_WINDOW: Final = 10
#: Bounds.
MAX_LOBBIES: Final = 100
MAX_VISIBLE_LOBBIES: Final = 500
MAX_LOBBIES_IN_LIST: Final = 50
MAX_MSG_CACHE: Final = 10_000
MAX_PARTICIPANTS: Final = 1_000
MAX_INVITES: Final = 50
MAX_HISTORY: Final = 1_000
#: Most outputs waiting for `drain` (a driver drains after every input; a safety cap).
MAX_OUTPUTS: Final = 100_000
#: Longest lobby message we send (RetroShare refuses items over 32000 bytes).
MAX_MESSAGE_BYTES: Final = 30_000
#: The status string RetroShare's GUI sends while its user types.
TYPING: Final = "is typing..."


@dataclasses.dataclass(frozen=True)
class SendItem:
    """Send ``item`` to friend ``peer``."""

    peer: SslId
    item: PQItem


@dataclasses.dataclass(frozen=True)
class LobbyMessage:
    """A lobby message, received (``peer``: the friend it came through) or ours (None)."""

    lobby_id: int
    msg_id: int
    gxs_id: GxsId
    nick: str
    text: str
    send_time: int
    peer: SslId | None


@dataclasses.dataclass(frozen=True)
class LobbyPeerEvent:
    """Someone joined, left, is typing (EVENT_PEER_STATUS), changed nick, or is alive."""

    lobby_id: int
    event_type: int
    gxs_id: GxsId
    nick: str
    text: str
    peer: SslId | None


@dataclasses.dataclass(frozen=True)
class LobbyInvited:
    """A friend invites us into a lobby we are not in."""

    lobby_id: int
    name: str
    topic: str
    flags: ChatLobbyFlags
    peer: SslId


@dataclasses.dataclass(frozen=True)
class LobbyListChanged:
    """The lobbies we are in, or those friends show us, changed."""


@dataclasses.dataclass(frozen=True)
class IdentityWanted:
    """A lobby object was signed by an identity we do not know: ask ``peer`` for it."""

    gxs_id: GxsId
    peer: SslId


@dataclasses.dataclass(frozen=True)
class Dropped:
    """A lobby object from ``peer`` was refused (tampered, too old, banned, flooding...)."""

    lobby_id: int
    peer: SslId
    reason: str


@dataclasses.dataclass
class Lobby:
    """A lobby we are in."""

    lobby_id: int
    name: str
    topic: str
    flags: ChatLobbyFlags
    gxs_id: GxsId
    participating: set[SslId] = dataclasses.field(default_factory=set)
    previously_known: set[SslId] = dataclasses.field(default_factory=set)
    #: Identities seen in the lobby, with when.
    members: dict[GxsId, float] = dataclasses.field(default_factory=dict)
    #: Message ids seen, with when (insertion ordered: oldest first).
    seen: collections.OrderedDict[int, float] = dataclasses.field(
        default_factory=collections.OrderedDict)
    history: collections.deque[LobbyMessage] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=MAX_HISTORY))
    last_keep_alive: float = 0.0
    challenge_count: int = 0
    last_challenge: float = 0.0


@dataclasses.dataclass
class VisibleLobby:
    """A lobby friends list: who listed it, and the largest member count they gave."""

    lobby_id: int
    name: str
    topic: str
    flags: ChatLobbyFlags
    count: int
    friends: set[SslId]
    last_seen: float


def challenge_code(peer: SslId, lobby_id: int, msg_id: int) -> int:
    """``makeConnexionChallengeCode``: a 64-bit mix of a location id, a lobby and a message."""
    mask = (1 << 64) - 1
    r = 0
    for byte in bytes(peer):
        r = (r + msg_id) & mask
        r ^= r >> 35
        r = (r + (r << 6)) & mask
        r ^= (byte * lobby_id) & mask
        r = (r + (r << 26)) & mask
        r ^= r >> 13
    return r


class LobbyCore:
    """All our lobbies, visible lobbies and invitations (see the module docstring).

    ``key_lookup`` gives an identity's public key (None: unknown); ``is_banned`` says whether
    reputation hides an identity; ``is_pgp_linked`` whether an identity is profile-signed (for
    PGP_SIGNED lobbies); ``rng`` makes lobby and message ids.
    """

    def __init__(self, key_lookup: Callable[[GxsId], NxsRsaKey | None], *,
                 own_id: SslId | None = None,
                 is_banned: Callable[[GxsId], bool] = lambda _g: False,
                 is_pgp_linked: Callable[[GxsId], bool] = lambda _g: True,
                 rng: random.Random | None = None) -> None:
        self.key_lookup = key_lookup
        self.own_id = own_id
        self.is_banned = is_banned
        self.is_pgp_linked = is_pgp_linked
        self.rng = rng or random.SystemRandom()
        self.lobbies: dict[int, Lobby] = {}
        self.visible: dict[int, VisibleLobby] = {}
        self.invites: dict[int, LobbyInvited] = {}
        self.identities: dict[GxsId, tuple[str, NxsRsaKey]] = {}
        self.friends: set[SslId] = set()
        self._flood: dict[tuple[SslId, int], collections.deque[float]] = {}
        self._next_list = 0.0
        self._last_refresh = float("-inf")
        self._out: list[Any] = []
        self.dropped = 0

    # --- the core contract -----------------------------------------------------------------

    def drain(self, now: float) -> list[Any]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        times = [lobby.last_keep_alive + KEEP_ALIVE_PERIOD for lobby in self.lobbies.values()]
        if self.friends:
            times.append(self._next_list)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self.friends and now >= self._next_list:
            self._next_list = now + LOBBY_LIST_PERIOD
            for peer in sorted(self.friends):
                self._send(peer, ChatLobbyListRequestItem())
        for lobby in list(self.lobbies.values()):
            if now >= lobby.last_keep_alive + KEEP_ALIVE_PERIOD:
                lobby.last_keep_alive = now
                self._event(lobby, EVENT_KEEP_ALIVE, "", now)
            self._maybe_challenge(lobby, now)
            self._clean(lobby, now)
        for lid in [v.lobby_id for v in self.visible.values()
                    if v.last_seen + VISIBLE_LOBBY_TTL < now]:
            del self.visible[lid]
        for key in [k for k, times in self._flood.items() if not times or
                    times[-1] + FLOOD_WINDOW < now]:
            del self._flood[key]

    # --- identities and friends ------------------------------------------------------------

    def add_identity(self, gxs_id: GxsId, nick: str, private_key: NxsRsaKey) -> None:
        """An identity of ours that may sign in lobbies."""
        self.identities[gxs_id] = (nick, private_key)

    def peer_connected(self, peer: SslId, now: float) -> None:
        self.friends.add(peer)
        self._send(peer, ChatLobbyListRequestItem())
        if self._next_list <= now:
            self._next_list = now + LOBBY_LIST_PERIOD

    def peer_disconnected(self, peer: SslId, now: float) -> None:
        self.friends.discard(peer)
        for v in self.visible.values():
            v.friends.discard(peer)

    # --- what the user does ----------------------------------------------------------------

    def refresh_visible(self, now: float) -> None:
        """Ask friends for their lobby lists now (RetroShare does when its user looks at the
        nearby lobbies), at most once per `MIN_LIST_REQUEST_DELAY`."""
        if now < self._last_refresh + MIN_LIST_REQUEST_DELAY:
            return
        self._last_refresh = now
        for peer in sorted(self.friends):
            self._send(peer, ChatLobbyListRequestItem())

    def create_lobby(self, name: str, topic: str, flags: ChatLobbyFlags, gxs_id: GxsId,
                     now: float, invite: tuple[SslId, ...] = ()) -> int:
        """A new lobby, with us (as ``gxs_id``) in it; invites the given friends."""
        self._own(gxs_id)
        if len(self.lobbies) >= MAX_LOBBIES:
            raise ValueError(f"already in MAX_LOBBIES ({MAX_LOBBIES}) lobbies")
        lobby_id = self.rng.getrandbits(64)
        while lobby_id in self.lobbies or lobby_id == 0:
            lobby_id = self.rng.getrandbits(64)
        self.lobbies[lobby_id] = Lobby(lobby_id, name, topic, ChatLobbyFlags(flags), gxs_id,
                                       last_keep_alive=now)
        for peer in invite:
            self.invite(lobby_id, peer, now)
        self._emit(LobbyListChanged())
        return lobby_id

    def join(self, lobby_id: int, gxs_id: GxsId, now: float) -> None:
        """Join a lobby friends list (visible) or one we were invited to."""
        self._own(gxs_id)
        if lobby_id in self.lobbies:
            return
        if len(self.lobbies) >= MAX_LOBBIES:
            raise ValueError(f"already in MAX_LOBBIES ({MAX_LOBBIES}) lobbies")
        seen = self.visible.get(lobby_id)
        inv = self.invites.pop(lobby_id, None)
        if seen is not None:
            name, topic, flags, friends = seen.name, seen.topic, seen.flags, set(seen.friends)
        elif inv is not None:
            name, topic, flags, friends = inv.name, inv.topic, inv.flags, {inv.peer}
        else:
            raise KeyError(f"no lobby {lobby_id:016x} is visible or invited")
        if flags & ChatLobbyFlags.PGP_SIGNED and not self.is_pgp_linked(gxs_id):
            raise ValueError("this lobby wants a profile-signed identity")
        lobby = Lobby(lobby_id, name, topic, flags, gxs_id, participating=friends & self.friends,
                      last_keep_alive=now)
        self.lobbies[lobby_id] = lobby
        for peer in sorted(lobby.participating):
            self._send_invite(lobby, peer)
        self._emit(LobbyListChanged())
        self._event(lobby, EVENT_PEER_JOINED, "", now)

    def rejoin(self, lobby_id: int, name: str, topic: str, flags: ChatLobbyFlags,
               gxs_id: GxsId, now: float) -> None:
        """A lobby we were in before a restart: back in it, quietly; friends' lists and
        invites tell us who else is there."""
        self._own(gxs_id)
        if lobby_id not in self.lobbies and len(self.lobbies) < MAX_LOBBIES:
            self.lobbies[lobby_id] = Lobby(lobby_id, name, topic, ChatLobbyFlags(flags),
                                           gxs_id, last_keep_alive=now)

    def invite(self, lobby_id: int, peer: SslId, now: float) -> None:
        """Invite a friend into a lobby we are in."""
        self._send_invite(self._lobby(lobby_id), peer)

    def leave(self, lobby_id: int, now: float) -> None:
        lobby = self._lobby(lobby_id)
        self._event(lobby, EVENT_PEER_LEFT, "", now)
        for peer in sorted(lobby.participating):
            self._send(peer, ChatLobbyUnsubscribeItem(lobby_id=lobby_id))
        del self.lobbies[lobby_id]
        self._emit(LobbyListChanged())

    def say(self, lobby_id: int, text: str, now: float) -> LobbyMessage:
        """Send a signed message to the lobby."""
        if len(text.encode("utf-8", "surrogateescape")) > MAX_MESSAGE_BYTES:
            raise ValueError(f"lobby messages are at most {MAX_MESSAGE_BYTES} bytes")
        lobby = self._lobby(lobby_id)
        self._own(lobby.gxs_id)
        nick, key = self.identities[lobby.gxs_id]
        item = sign_lobby_item(ChatLobbyMsgItem(
            flags=ChatFlags.LOBBY | ChatFlags.PRIVATE, send_time=int(now), message=text,
            parent_msg_id=0, lobby_id=lobby_id, msg_id=self._msg_id(lobby), nick=nick,
            signature=KeySignature(key.key_id, b"")), key)
        self._bounce(lobby, item, None, now)
        msg = LobbyMessage(lobby_id, item.msg_id, lobby.gxs_id, nick, text, item.send_time, None)
        lobby.history.append(msg)
        return msg

    def typing(self, lobby_id: int, now: float, text: str = TYPING) -> None:
        """A status string (RetroShare's GUI sends "is typing...")."""
        self._event(self._lobby(lobby_id), EVENT_PEER_STATUS, text, now)

    def history(self, lobby_id: int) -> list[LobbyMessage]:
        return list(self._lobby(lobby_id).history)

    # --- items from friends ----------------------------------------------------------------

    def item_received(self, peer: SslId, item: PQItem, now: float) -> None:
        """A lobby item from friend ``peer`` (other chat items are not for this core)."""
        if isinstance(item, ChatLobbyListRequestItem):
            self._send(peer, ChatLobbyListItem(lobbies=self._list_for(peer)))
        elif isinstance(item, ChatLobbyListItem):
            self._on_list(peer, item, now)
        elif isinstance(item, ChatLobbyInviteItem | ChatLobbyInviteDeprecatedItem):
            self._on_invite(peer, item)
        elif isinstance(item, ChatLobbyUnsubscribeItem):
            lobby = self.lobbies.get(item.lobby_id)
            if lobby is not None and peer in lobby.participating:
                lobby.participating.discard(peer)
                lobby.previously_known.add(peer)
                self._emit(LobbyListChanged())
        elif isinstance(item, ChatLobbyMsgItem | ChatLobbyEventItem):
            self._on_bouncing(peer, item, now)
        elif isinstance(item, ChatLobbyConnectChallengeItem):
            self._on_challenge(peer, item, now)

    def _list_for(self, peer: SslId) -> tuple[VisibleChatLobby, ...]:
        out = []
        for lobby in self.lobbies.values():
            if lobby.flags & ChatLobbyFlags.PUBLIC or peer in lobby.participating or \
                    peer in lobby.previously_known:
                out.append(VisibleChatLobby(lobby.lobby_id, lobby.name, lobby.topic,
                                            len(lobby.members),
                                            ChatLobbyFlags(lobby.flags & (
                                                ChatLobbyFlags.PUBLIC
                                                | ChatLobbyFlags.PGP_SIGNED))))
        return tuple(out[:MAX_LOBBIES_IN_LIST])

    def _on_list(self, peer: SslId, item: ChatLobbyListItem, now: float) -> None:
        changed = False
        for info in item.lobbies[:MAX_LOBBIES_IN_LIST]:
            rec = self.visible.get(info.id)
            if rec is None:
                if len(self.visible) >= MAX_VISIBLE_LOBBIES:
                    continue
                rec = self.visible[info.id] = VisibleLobby(info.id, info.name, info.topic,
                                                           info.flags, info.count, set(), now)
                changed = True
            rec.friends.add(peer)
            rec.count = max(rec.count, info.count)
            rec.last_seen = now
            lobby = self.lobbies.get(info.id)
            if lobby is not None and peer not in lobby.participating:
                # A friend in a lobby we are in: tell it we are there too.
                lobby.participating.add(peer)
                self._send_invite(lobby, peer)
        if changed:
            self._emit(LobbyListChanged())

    def _on_invite(self, peer: SslId, item: ChatLobbyInviteItem | ChatLobbyInviteDeprecatedItem
                   ) -> None:
        lobby = self.lobbies.get(item.lobby_id)
        topic = getattr(item, "lobby_topic", "")
        if lobby is not None:
            if not item.lobby_flags & ChatLobbyFlags.CHALLENGE and \
                    (item.lobby_flags ^ lobby.flags) & (ChatLobbyFlags.PUBLIC
                                                        | ChatLobbyFlags.PGP_SIGNED):
                return
            if not lobby.topic and topic:
                lobby.topic = topic
            lobby.participating.add(peer)
            return
        if item.lobby_flags & ChatLobbyFlags.CHALLENGE or item.lobby_id in self.invites:
            return
        if len(self.invites) >= MAX_INVITES:
            self.invites.pop(next(iter(self.invites)))
        inv = LobbyInvited(item.lobby_id, item.lobby_name, topic, item.lobby_flags, peer)
        self.invites[item.lobby_id] = inv
        self._emit(inv)

    def _on_bouncing(self, peer: SslId, item: LobbyItem, now: float) -> None:
        lobby = self.lobbies.get(item.lobby_id)
        if lobby is None:
            return
        send_time = item.send_time
        if now + 100 > send_time + MAX_KEEP_MSG_RECORD:
            self._drop(item.lobby_id, peer, f"message of {send_time} is too old")
            return
        if item.msg_id in lobby.seen:
            lobby.seen[item.msg_id] = now
            lobby.seen.move_to_end(item.msg_id)
            return
        signer = item.signature.key_id
        if self.is_banned(signer):
            self._drop(item.lobby_id, peer, f"identity {signer} is banned")
            return
        key = self.key_lookup(signer)
        if key is None:
            self._emit(IdentityWanted(signer, peer))
            self._drop(item.lobby_id, peer, f"identity {signer} unknown; asked for it")
            return
        try:
            check_lobby_item(item, key)
        except SignatureError as e:
            self._drop(item.lobby_id, peer, f"bad signature: {e}")
            return
        if lobby.flags & ChatLobbyFlags.PGP_SIGNED and not self.is_pgp_linked(signer):
            self._drop(item.lobby_id, peer, f"identity {signer} is not profile-signed")
            return
        if not self._flood_ok(peer, lobby, now):
            self._drop(item.lobby_id, peer, "flooding")
            return
        if not self._bounce(lobby, item, peer, now):
            return
        if isinstance(item, ChatLobbyMsgItem):
            msg = LobbyMessage(lobby.lobby_id, item.msg_id, signer, item.nick, item.message,
                               item.send_time, peer)
            lobby.history.append(msg)
            self._emit(msg)
        else:
            if item.event_type == EVENT_PEER_LEFT:
                lobby.members.pop(signer, None)
            self._emit(LobbyPeerEvent(lobby.lobby_id, item.event_type, signer, item.nick,
                                      item.string1, peer))

    # --- private lobbies: connection challenges -------------------------------------------
    #
    # A friend in a private lobby we are in may not know we are there (private lobbies are not
    # listed).  Now and then we send each friend a code made from its id, the lobby id and a
    # message id we saw recently; a friend that saw that message too finds the lobby from the
    # code and invites us (CHALLENGE flag), and both relay to each other from then on.

    def _maybe_challenge(self, lobby: Lobby, now: float) -> None:
        if lobby.flags & ChatLobbyFlags.PUBLIC or lobby.challenge_count <= CHALLENGE_MAX_COUNT \
                or now <= lobby.last_challenge + CHALLENGE_MIN_DELAY:
            return
        recent = next((m for m, t in lobby.seen.items() if t + CHALLENGE_MAX_MSG_AGE > now), 0)
        if not recent:
            return
        lobby.challenge_count = 0
        lobby.last_challenge = now
        for peer in sorted(self.friends):
            self._send(peer, ChatLobbyConnectChallengeItem(
                challenge_code=challenge_code(peer, lobby.lobby_id, recent)))

    def _on_challenge(self, peer: SslId, item: ChatLobbyConnectChallengeItem,
                      now: float) -> None:
        if self.own_id is None:
            return
        for lobby in self.lobbies.values():
            if lobby.flags & ChatLobbyFlags.PUBLIC:
                continue
            for mid, seen in lobby.seen.items():
                if seen + CHALLENGE_MAX_MSG_AGE + 5 > now and \
                        challenge_code(self.own_id, lobby.lobby_id, mid) == item.challenge_code:
                    lobby.participating.add(peer)
                    flags = ChatLobbyFlags.CHALLENGE
                    self._send(peer, ChatLobbyInviteItem(
                        lobby_id=lobby.lobby_id, lobby_name=lobby.name,
                        lobby_topic=lobby.topic, lobby_flags=flags))
                    self._send(peer, ChatLobbyInviteDeprecatedItem(
                        lobby_id=lobby.lobby_id, lobby_name=lobby.name, lobby_flags=flags))
                    return

    # --- helpers ---------------------------------------------------------------------------

    def _own(self, gxs_id: GxsId) -> None:
        if gxs_id not in self.identities:
            raise KeyError(f"{gxs_id} is not one of our identities")

    def _lobby(self, lobby_id: int) -> Lobby:
        try:
            return self.lobbies[lobby_id]
        except KeyError:
            raise KeyError(f"not in lobby {lobby_id:016x}") from None

    def _msg_id(self, lobby: Lobby) -> int:
        mid = self.rng.getrandbits(64)
        while mid in lobby.seen:
            mid = self.rng.getrandbits(64)
        return mid

    def _send_invite(self, lobby: Lobby, peer: SslId) -> None:
        self._send(peer, ChatLobbyInviteItem(lobby_id=lobby.lobby_id, lobby_name=lobby.name,
                                             lobby_topic=lobby.topic, lobby_flags=lobby.flags))
        self._send(peer, ChatLobbyInviteDeprecatedItem(
            lobby_id=lobby.lobby_id, lobby_name=lobby.name, lobby_flags=lobby.flags))

    def _event(self, lobby: Lobby, event_type: int, text: str, now: float) -> None:
        if lobby.gxs_id not in self.identities:
            return  # our identity for this lobby is gone: we can read, not sign
        nick, key = self.identities[lobby.gxs_id]
        item = sign_lobby_item(ChatLobbyEventItem(
            event_type=event_type, string1=text, send_time=int(now), lobby_id=lobby.lobby_id,
            msg_id=self._msg_id(lobby), nick=nick, signature=KeySignature(key.key_id, b"")),
            key)
        self._bounce(lobby, item, None, now)

    def _bounce(self, lobby: Lobby, item: LobbyItem, peer: SslId | None, now: float) -> bool:
        """Record and relay to every participating friend but ``peer``; False if seen."""
        if peer is not None:
            lobby.participating.add(peer)
        if item.signature.key_id in lobby.members or len(lobby.members) < MAX_PARTICIPANTS:
            lobby.members[item.signature.key_id] = now
        if item.msg_id in lobby.seen:
            lobby.seen[item.msg_id] = now
            lobby.seen.move_to_end(item.msg_id)
            return False
        lobby.seen[item.msg_id] = now
        while len(lobby.seen) > MAX_MSG_CACHE:
            lobby.seen.popitem(last=False)
        for friend in sorted(lobby.participating):
            if friend != peer and friend in self.friends:
                self._send(friend, item)
        lobby.challenge_count += 1
        self._maybe_challenge(lobby, now)
        return True

    def _flood_ok(self, peer: SslId, lobby: Lobby, now: float) -> bool:
        """``locked_bouncingObjectCheck``: at most max(10, rate x members) per window."""
        cap = max(10.0, 10 * len(lobby.members) / KEEP_ALIVE_PERIOD * FLOOD_WINDOW)
        times = self._flood.setdefault((peer, lobby.lobby_id), collections.deque())
        while times and times[0] + FLOOD_WINDOW < now:
            times.popleft()
        if len(times) > cap:
            return False
        times.append(now)
        return True

    def _clean(self, lobby: Lobby, now: float) -> None:
        while lobby.seen and next(iter(lobby.seen.values())) + MAX_KEEP_MSG_RECORD < now:
            lobby.seen.popitem(last=False)
        for gid in [g for g, t in lobby.members.items() if t + 3 * KEEP_ALIVE_PERIOD < now]:
            del lobby.members[gid]

    def _drop(self, lobby_id: int, peer: SslId, reason: str) -> None:
        self.dropped += 1
        self._emit(Dropped(lobby_id, peer, reason))

    def _send(self, peer: SslId, item: PQItem) -> None:
        self._emit(SendItem(peer, item))

    def _emit(self, output: Any) -> None:
        if len(self._out) < MAX_OUTPUTS:
            self._out.append(output)
