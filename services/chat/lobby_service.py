# -*- test-case-name: tests.test_gxs_nodes -*-
"""The Twisted skin of the lobby core: fed by the chat service, signing with our identities.

The chat service (0x0012) owns the wire; it hands lobby items and friends' links here
(`ChatService.lobby`).  Identities come from the identity service (keys to check signatures,
our private keys to sign, PGP links for PGP_SIGNED lobbies), bans from reputation.  The
lobbies we are in are saved (atomically) in ``lobbies.json`` and rejoined after a restart;
each lobby's messages, ours and received, are kept in ``lobbies.sqlite`` (the newest
`MAX_HISTORY` per lobby; nicks and texts through `pqi.storage.to_stored`, so a message that is
not UTF-8 is kept as sent, not refused).  Outputs become items sent, events for the node
(``on_event``) and log lines for drops.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import random
import sqlite3
from collections.abc import Callable
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from pqi.driver import CoreDriver
from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.chat import ChatLobbyFlags
from pqi.storage import from_stored, to_stored
from pqi.wire.fields import GxsId, SslId
from services.chat.lobby import (
    MAX_HISTORY,
    Dropped,
    IdentityWanted,
    LobbyCore,
    LobbyInvited,
    LobbyListChanged,
    LobbyMessage,
    LobbyPeerEvent,
    SendItem,
)
from services.gxsid.service import IdentityService

__all__ = ["LobbyService", "LOBBY_FILE", "HISTORY_FILE"]


def _signed(value: int) -> int:
    """A u64 as sqlite's signed 64-bit integer."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value

#: The lobbies we are in, in the account directory.
LOBBY_FILE: Final = "lobbies.json"
#: Lobby messages kept for ``rsnode lobby follow`` (all lobbies, newest last).
MAX_RECENT: Final = 1_000
#: The lobby history, in the account directory.
HISTORY_FILE: Final = "lobbies.sqlite"


class LobbyService:
    """Lobbies of a node (see the module docstring)."""

    log = Logger()

    def __init__(self, sender: IItemSender, reactor: IReactorTime, base_dir: pathlib.Path,
                 identities: IdentityService, hides: Callable[[GxsId], bool],
                 own_id: SslId | None = None,
                 on_event: Callable[[Any], object] = lambda e: None) -> None:
        self.sender = sender
        self.reactor = reactor
        self.identities = identities
        self.path = pathlib.Path(base_dir) / LOBBY_FILE
        self.on_event = on_event
        self.core = LobbyCore(identities.public_key, own_id=own_id, is_banned=hides,
                              is_pgp_linked=identities.is_pgp_linked, rng=random.SystemRandom())
        self.driver = CoreDriver(self.core, reactor, self._output)
        #: (sequence number, LobbyMessage) of recent messages, ours and received.
        self.recent: collections.deque[tuple[int, LobbyMessage]] = collections.deque(
            maxlen=MAX_RECENT)
        self._seq = 0
        self.db = sqlite3.connect(str(pathlib.Path(base_dir) / HISTORY_FILE),
                                  isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS history (seq INTEGER PRIMARY KEY, "
                        "lobby INTEGER, msg_id INTEGER, gxs_id BLOB, nick TEXT, text TEXT, "
                        "send_time INTEGER, peer BLOB)")
        self._load_identities()
        self._load()

    def stop(self) -> None:
        self.driver.stop()

    def close(self) -> None:
        """Close the history file (once the node has stopped)."""
        self.db.close()

    def history(self, lobby_id: int, limit: int = 100) -> list[LobbyMessage]:
        """The lobby's last ``limit`` messages (at most `MAX_HISTORY`), oldest first."""
        rows = self.db.execute(
            "SELECT lobby, msg_id, gxs_id, nick, text, send_time, peer FROM history "
            "WHERE lobby=? ORDER BY seq DESC LIMIT ?",
            (_signed(lobby_id), min(limit, MAX_HISTORY))).fetchall()
        return [LobbyMessage(_unsigned(r[0]), _unsigned(r[1]), GxsId(r[2]), from_stored(r[3]),
                             from_stored(r[4]), r[5], None if r[6] is None else SslId(r[6]))
                for r in reversed(rows)]

    # --- from the chat service ------------------------------------------------------------

    def peer_connected(self, peer: PeerIdentity) -> None:
        self.driver.feed(self.core.peer_connected, peer.ssl_id)

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        self.driver.feed(self.core.peer_disconnected, peer.ssl_id)

    def receive(self, peer: PeerIdentity, item: object) -> None:
        self._load_identities()
        self.driver.feed(self.core.item_received, peer.ssl_id, item)

    # --- what the user does ----------------------------------------------------------------

    def create(self, name: str, topic: str, gxs_id: GxsId, public: bool = True) -> int:
        self._load_identities()
        flags = ChatLobbyFlags.PUBLIC if public else ChatLobbyFlags(0)
        lobby_id = int(self.driver.feed(self.core.create_lobby, name, topic, flags, gxs_id))
        self._save()
        return lobby_id

    def listing(self) -> dict[str, Any]:
        """Lobbies we are in, lobbies friends show us, invitations (and ask friends again)."""
        self.refresh()
        core = self.core
        return {
            "joined": [{"id": f"{lb.lobby_id:016x}", "name": lb.name, "topic": lb.topic,
                        "flags": int(lb.flags), "identity": lb.gxs_id.to_hex(),
                        "members": len(lb.members),
                        "friends": sorted(p.to_hex() for p in lb.participating)}
                       for lb in core.lobbies.values()],
            "visible": [{"id": f"{v.lobby_id:016x}", "name": v.name, "topic": v.topic,
                         "flags": int(v.flags), "count": v.count}
                        for v in core.visible.values() if v.lobby_id not in core.lobbies],
            "invites": [{"id": f"{i.lobby_id:016x}", "name": i.name, "topic": i.topic,
                         "from": i.peer.to_hex()} for i in core.invites.values()],
        }

    def refresh(self) -> None:
        """Ask friends for their lobby lists now (rate-limited by the core)."""
        self.driver.feed(self.core.refresh_visible)

    def join(self, lobby_id: int, gxs_id: GxsId) -> None:
        self._load_identities()
        self.driver.feed(self.core.join, lobby_id, gxs_id)
        self._save()

    def leave(self, lobby_id: int) -> None:
        self.driver.feed(self.core.leave, lobby_id)
        self._save()

    def invite(self, lobby_id: int, peer: SslId) -> None:
        """Invite a friend into a lobby we are in (KeyError: we are not)."""
        self.driver.feed(self.core.invite, lobby_id, peer)

    def deny_invite(self, lobby_id: int) -> bool:
        """Forget an invitation (False: there was none)."""
        return self.core.invites.pop(lobby_id, None) is not None

    def say(self, lobby_id: int, text: str) -> LobbyMessage:
        msg: LobbyMessage = self.driver.feed(self.core.say, lobby_id, text)
        self._remember(msg)
        return msg

    def messages_after(self, seq: int) -> list[tuple[int, LobbyMessage]]:
        """Recent lobby messages with a sequence number above ``seq``."""
        return [(n, m) for n, m in self.recent if n > seq]

    def last_seq(self) -> int:
        return self._seq

    def _remember(self, msg: LobbyMessage) -> None:
        self._seq += 1
        self.recent.append((self._seq, msg))
        lobby = _signed(msg.lobby_id)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO history (lobby, msg_id, gxs_id, nick, text, send_time,"
                            " peer) VALUES (?,?,?,?,?,?,?)",
                            (lobby, _signed(msg.msg_id), bytes(msg.gxs_id),
                             to_stored(msg.nick), to_stored(msg.text), msg.send_time,
                             None if msg.peer is None else bytes(msg.peer)))
            self.db.execute("DELETE FROM history WHERE lobby=? AND seq NOT IN (SELECT seq FROM "
                            "history WHERE lobby=? ORDER BY seq DESC LIMIT ?)",
                            (lobby, lobby, MAX_HISTORY))

    # --- helpers ---------------------------------------------------------------------------

    def _load_identities(self) -> None:
        for gid in self.identities.own_ids():
            if gid not in self.core.identities:
                key = self.identities.private_key(gid)
                info = self.identities.info(gid)
                if key is not None and info is not None:
                    self.core.add_identity(gid, info.name, key)

    def _output(self, output: Any) -> None:
        if isinstance(output, SendItem):
            self.sender.send(output.peer, output.item)
            return
        if isinstance(output, IdentityWanted):
            self.identities.request(output.gxs_id, output.peer)
        elif isinstance(output, Dropped):
            self.log.warn("lobby {lobby:016x}: dropped from {peer}: {reason}",
                          lobby=output.lobby_id, peer=output.peer.to_hex(),
                          reason=output.reason)
        elif isinstance(output, LobbyListChanged):
            self._save()
        elif isinstance(output, LobbyMessage):
            self._remember(output)
        if isinstance(output, LobbyMessage | LobbyPeerEvent | LobbyInvited | LobbyListChanged):
            self.on_event(output)

    def _save(self) -> None:
        data = [{"id": f"{lb.lobby_id:016x}", "name": lb.name, "topic": lb.topic,
                 "flags": int(lb.flags), "gxs_id": lb.gxs_id.to_hex()}
                for lb in self.core.lobbies.values()]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        now = self.reactor.seconds()
        for entry in data:
            try:
                self.core.rejoin(int(entry["id"], 16), str(entry["name"]),
                                 str(entry["topic"]), ChatLobbyFlags(int(entry["flags"])),
                                 GxsId.from_hex(entry["gxs_id"]), now)
            except (KeyError, ValueError, TypeError) as e:
                self.log.warn("lobby file: entry skipped: {e}", e=str(e))
        self.driver.service()
