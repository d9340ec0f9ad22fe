# -*- test-case-name: tests.test_gxs_store -*-
"""The GXS store: one sqlite file per GXS service, groups and messages with their metadata.

Only groups and messages that passed `services.gxs.security` are put here (the NXS core and
the publishing code check first); the store keeps the bytes exactly as they travelled (data and
metadata binaries), so what we forward is what its author signed.  Beside them: our private
keys (admin/publish keys of groups we made, identities' keys), whether we subscribe to a
group, and the NXS update timestamps (our server-side "last change" times and, per friend, the
friend's times we last synced to), so a restarted node syncs as cheaply as before.

Every change is one sqlite transaction; the file runs in WAL mode with full sync, so a crash
leaves either the old or the new state.  Tables are bounded: `MAX_GROUPS` groups,
`MAX_MESSAGES_PER_GROUP` messages per group, `MAX_PEER_STATES` friends' timestamps; a store
that is full refuses with `StoreFullError`.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sqlite3
from collections.abc import Iterator
from typing import Final

from pqi.items.gxs import GrpMeta, MsgMeta, decode_grp_meta, decode_msg_meta
from pqi.items.nxs import NxsRsaKey
from pqi.wire.fields import GxsId, GxsMessageId, SslId

__all__ = [
    "GxsStore", "StoredGroup", "StoredMessage", "StoreFullError", "MAX_GROUPS",
    "MAX_MESSAGES_PER_GROUP", "MAX_PEER_STATES", "MAX_PRIVATE_KEYS",
]

#: Most groups one service's store holds.
MAX_GROUPS: Final = 10_000
#: Most messages one group holds.
MAX_MESSAGES_PER_GROUP: Final = 20_000
#: Most friends whose sync timestamps we keep.
MAX_PEER_STATES: Final = 1_000
#: Most private keys we keep (our own groups' and identities').
MAX_PRIVATE_KEYS: Final = 2_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    grp_id BLOB PRIMARY KEY, grp BLOB NOT NULL, meta BLOB NOT NULL, publish_ts INTEGER,
    author_id BLOB, recv_ts INTEGER, subscribed INTEGER NOT NULL DEFAULT 0,
    msg_server_ts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS messages (
    msg_id BLOB PRIMARY KEY, grp_id BLOB NOT NULL, msg BLOB NOT NULL, meta BLOB NOT NULL,
    publish_ts INTEGER, author_id BLOB, recv_ts INTEGER);
CREATE INDEX IF NOT EXISTS messages_by_group ON messages (grp_id);
CREATE TABLE IF NOT EXISTS private_keys (
    key_id BLOB PRIMARY KEY, key_flags INTEGER, start_ts INTEGER, end_ts INTEGER, der BLOB);
CREATE TABLE IF NOT EXISTS peer_grp_ts (peer BLOB PRIMARY KEY, ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS peer_msg_ts (
    peer BLOB, grp_id BLOB, ts INTEGER NOT NULL, PRIMARY KEY (peer, grp_id));
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class StoreFullError(Exception):
    """A bound of the store (`MAX_GROUPS`, `MAX_MESSAGES_PER_GROUP`...) is reached."""


@dataclasses.dataclass(frozen=True)
class StoredGroup:
    """A group as stored: the two binaries as received, the decoded metadata, local state."""

    grp: bytes
    meta_bytes: bytes
    meta: GrpMeta
    subscribed: bool
    recv_ts: int


@dataclasses.dataclass(frozen=True)
class StoredMessage:
    """A message as stored."""

    msg: bytes
    meta_bytes: bytes
    meta: MsgMeta
    recv_ts: int


class GxsStore:
    """One GXS service's groups, messages, keys and sync timestamps in one sqlite file.

    ``path`` None keeps everything in memory (tests, benches).
    """

    def __init__(self, path: pathlib.Path | str | None, service: int,
                 max_groups: int = MAX_GROUPS,
                 max_messages_per_group: int = MAX_MESSAGES_PER_GROUP) -> None:
        self.service = service
        self.max_groups = max_groups
        self.max_messages_per_group = max_messages_per_group
        self.db = sqlite3.connect(":memory:" if path is None else str(path),
                                  isolation_level=None)
        if path is not None:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- groups ----------------------------------------------------------------------------

    def has_group(self, grp_id: GxsId) -> bool:
        return self.db.execute("SELECT 1 FROM groups WHERE grp_id=?",
                               (bytes(grp_id),)).fetchone() is not None

    def group(self, grp_id: GxsId) -> StoredGroup | None:
        row = self.db.execute("SELECT grp, meta, subscribed, recv_ts FROM groups WHERE grp_id=?",
                              (bytes(grp_id),)).fetchone()
        if row is None:
            return None
        return StoredGroup(row[0], row[1], decode_grp_meta(row[1]), bool(row[2]), row[3])

    def group_meta(self, grp_id: GxsId) -> GrpMeta | None:
        g = self.group(grp_id)
        return None if g is None else g.meta

    def put_group(self, grp: bytes, meta_bytes: bytes, now: int,
                  subscribed: bool | None = None) -> None:
        """Store (or replace with a newer version) a checked group; bumps the server time."""
        meta = decode_grp_meta(meta_bytes)
        gid = bytes(meta.group_id)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            old = self.db.execute("SELECT subscribed FROM groups WHERE grp_id=?",
                                  (gid,)).fetchone()
            if old is None:
                (count,) = self.db.execute("SELECT COUNT(*) FROM groups").fetchone()
                if count >= self.max_groups:
                    raise StoreFullError(f"store holds MAX_GROUPS ({self.max_groups}) groups")
            sub = bool(old[0]) if subscribed is None and old is not None else bool(subscribed)
            self.db.execute(
                "INSERT OR REPLACE INTO groups (grp_id, grp, meta, publish_ts, author_id, "
                "recv_ts, subscribed, msg_server_ts) VALUES (?,?,?,?,?,?,?, COALESCE("
                "(SELECT msg_server_ts FROM groups WHERE grp_id=?), 0))",
                (gid, grp, meta_bytes, meta.publish_ts, bytes(meta.author_id), now, int(sub),
                 gid))
            self._bump_grp_server_ts(now)

    def set_subscribed(self, grp_id: GxsId, subscribed: bool, now: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE groups SET subscribed=? WHERE grp_id=?",
                            (int(subscribed), bytes(grp_id)))
            self._bump_grp_server_ts(now)

    def groups(self, subscribed_only: bool = False) -> list[tuple[GxsId, int, GxsId]]:
        """(group id, publish time, author) of every (subscribed) group, in id order."""
        sql = "SELECT grp_id, publish_ts, author_id FROM groups"
        if subscribed_only:
            sql += " WHERE subscribed=1"
        return [(GxsId(r[0]), r[1], GxsId(r[2])) for r in self.db.execute(sql + " ORDER BY grp_id")]

    def subscribed(self, grp_id: GxsId) -> bool:
        row = self.db.execute("SELECT subscribed FROM groups WHERE grp_id=?",
                              (bytes(grp_id),)).fetchone()
        return bool(row and row[0])

    # --- messages --------------------------------------------------------------------------

    def has_message(self, msg_id: GxsMessageId) -> bool:
        return self.db.execute("SELECT 1 FROM messages WHERE msg_id=?",
                               (bytes(msg_id),)).fetchone() is not None

    def message(self, msg_id: GxsMessageId) -> StoredMessage | None:
        row = self.db.execute("SELECT msg, meta, recv_ts FROM messages WHERE msg_id=?",
                              (bytes(msg_id),)).fetchone()
        if row is None:
            return None
        return StoredMessage(row[0], row[1], decode_msg_meta(row[1]), row[2])

    def put_message(self, msg: bytes, meta_bytes: bytes, now: int) -> None:
        """Store a checked message of a stored group; bumps that group's message time."""
        meta = decode_msg_meta(meta_bytes)
        gid = bytes(meta.group_id)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("SELECT 1 FROM groups WHERE grp_id=?", (gid,)).fetchone() is None:
                raise KeyError(f"no group {meta.group_id} for message {meta.msg_id}")
            if self.db.execute("SELECT 1 FROM messages WHERE msg_id=?",
                               (bytes(meta.msg_id),)).fetchone() is not None:
                return
            (count,) = self.db.execute("SELECT COUNT(*) FROM messages WHERE grp_id=?",
                                       (gid,)).fetchone()
            if count >= self.max_messages_per_group:
                raise StoreFullError(f"group {meta.group_id} holds MAX_MESSAGES_PER_GROUP "
                                     f"({self.max_messages_per_group}) messages")
            self.db.execute("INSERT INTO messages VALUES (?,?,?,?,?,?,?)",
                            (bytes(meta.msg_id), gid, msg, meta_bytes, meta.publish_ts,
                             bytes(meta.author_id), now))
            self.db.execute("UPDATE groups SET msg_server_ts=MAX(?, msg_server_ts + 1) "
                            "WHERE grp_id=?", (now, gid))

    def message_ids(self, grp_id: GxsId, since: int = 0) -> list[tuple[GxsMessageId, GxsId]]:
        """(message id, author) of the group's messages published at or after ``since``."""
        return [(GxsMessageId(r[0]), GxsId(r[1])) for r in self.db.execute(
            "SELECT msg_id, author_id FROM messages WHERE grp_id=? AND publish_ts>=? "
            "ORDER BY msg_id", (bytes(grp_id), since))]

    def messages(self, grp_id: GxsId) -> Iterator[StoredMessage]:
        for msg_id, _ in self.message_ids(grp_id):
            m = self.message(msg_id)
            if m is not None:
                yield m

    def message_count(self, grp_id: GxsId) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM messages WHERE grp_id=?",
                                   (bytes(grp_id),)).fetchone()[0])

    def last_post_ts(self, grp_id: GxsId) -> int:
        row = self.db.execute("SELECT MAX(publish_ts) FROM messages WHERE grp_id=?",
                              (bytes(grp_id),)).fetchone()
        return int(row[0] or 0)

    # --- keys ------------------------------------------------------------------------------

    def put_private_key(self, key: NxsRsaKey) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            (count,) = self.db.execute("SELECT COUNT(*) FROM private_keys").fetchone()
            if count >= MAX_PRIVATE_KEYS:
                raise StoreFullError(f"MAX_PRIVATE_KEYS ({MAX_PRIVATE_KEYS}) keys kept")
            self.db.execute("INSERT OR REPLACE INTO private_keys VALUES (?,?,?,?,?)",
                            (bytes(key.key_id), key.key_flags, key.start_ts, key.end_ts,
                             key.key_data))

    def private_keys(self, key_id: GxsId) -> list[NxsRsaKey]:
        return [NxsRsaKey(GxsId(r[0]), r[1], r[2], r[3], r[4]) for r in self.db.execute(
            "SELECT key_id, key_flags, start_ts, end_ts, der FROM private_keys WHERE key_id=?",
            (bytes(key_id),))]

    # --- sync timestamps -------------------------------------------------------------------

    def _bump_grp_server_ts(self, now: int) -> None:
        """Our group list changed: its time moves to ``now``, and always forward.

        Strictly increasing even within one second, so a friend that synced earlier in the
        same second still sees a newer time (RetroShare's whole seconds can miss that).
        """
        self.db.execute("INSERT OR REPLACE INTO settings VALUES ('grp_server_ts', MAX(?, "
                        "COALESCE((SELECT value FROM settings WHERE name='grp_server_ts'), 0)"
                        " + 1))", (now,))

    def grp_server_ts(self) -> int:
        """When our group list last changed (what a friend's request is compared with)."""
        row = self.db.execute("SELECT value FROM settings WHERE name='grp_server_ts'").fetchone()
        return int(row[0]) if row else 0

    def msg_server_ts(self, grp_id: GxsId) -> int:
        row = self.db.execute("SELECT msg_server_ts FROM groups WHERE grp_id=?",
                              (bytes(grp_id),)).fetchone()
        return int(row[0]) if row else 0

    def peer_grp_ts(self, peer: SslId) -> int:
        """The friend's group server time we last synced to."""
        row = self.db.execute("SELECT ts FROM peer_grp_ts WHERE peer=?",
                              (bytes(peer),)).fetchone()
        return int(row[0]) if row else 0

    def set_peer_grp_ts(self, peer: SslId, ts: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("SELECT 1 FROM peer_grp_ts WHERE peer=?",
                               (bytes(peer),)).fetchone() is None:
                (count,) = self.db.execute("SELECT COUNT(*) FROM peer_grp_ts").fetchone()
                if count >= MAX_PEER_STATES:
                    raise StoreFullError(f"MAX_PEER_STATES ({MAX_PEER_STATES}) friends")
            self.db.execute("INSERT OR REPLACE INTO peer_grp_ts VALUES (?,?)", (bytes(peer), ts))

    def peer_msg_ts(self, peer: SslId, grp_id: GxsId) -> int:
        row = self.db.execute("SELECT ts FROM peer_msg_ts WHERE peer=? AND grp_id=?",
                              (bytes(peer), bytes(grp_id))).fetchone()
        return int(row[0]) if row else 0

    def set_peer_msg_ts(self, peer: SslId, grp_id: GxsId, ts: int) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO peer_msg_ts VALUES (?,?,?)",
                            (bytes(peer), bytes(grp_id), ts))
