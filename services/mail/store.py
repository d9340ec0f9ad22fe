# -*- test-case-name: tests.test_mail -*-
"""Mail storage: the outbox (per recipient, until written to its link) and the inbox.

The outbox keeps, for every mail and recipient, the exact item bytes that recipient gets, so a
mail resent after a crash or a reconnect is byte-identical to the first attempt.  The inbox
keeps each received mail's item bytes and a *dedupe key*, unique: RsMsgItem carries no message
id on the wire, so the key is a SHA-256 over what identifies a mail (`mail_key`).  A second
delivery of the same mail (the sender crashed after writing it but before its bookkeeping)
finds the key and is dropped; a deleted mail keeps its key, so a late duplicate never brings it
back.  Commits use ``synchronous=FULL``: when `MailStore.add_outgoing` returns, the mail
survives a crash of the process and of the machine.  A sent mail's subject and body go through
`pqi.storage.to_stored`: a subject quoted from a friend's mail may hold bytes that are not UTF-8,
and it is kept (as a BLOB), not refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import struct
from collections.abc import Iterable
from typing import Final

from pqi.items.msg import MsgItem
from pqi.storage import from_stored, private_database, to_stored
from pqi.wire.fields import SslId
from pqi.wire.item import decode, encode

__all__ = ["MailStore", "OutboxEntry", "InboxRow", "mail_key", "MAIL_FILE"]

#: The store's file in the account directory.
MAIL_FILE: Final = "mail.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    send_time INTEGER NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sent_content ON sent(subject, send_time);
CREATE TABLE IF NOT EXISTS outbox (
    mail_id INTEGER NOT NULL REFERENCES sent(id),
    peer TEXT NOT NULL,
    item BLOB NOT NULL,
    delivered REAL,
    PRIMARY KEY (mail_id, peer)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(peer, delivered, mail_id);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    recv_time REAL NOT NULL,
    item BLOB NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    deleted INTEGER NOT NULL DEFAULT 0
);
"""


def mail_key(sender: SslId, item: MsgItem) -> str:
    """The dedupe key of a received mail: sender, send time, subject, body, the to/cc
    addresses and the attached files' hashes.  Fields RetroShare rewrites along the way
    (flags, receive time) are left out."""
    h = hashlib.sha256()
    h.update(bytes(sender))
    h.update(struct.pack(">I", item.send_time))
    for text in (item.subject, item.message):
        data = text.encode("utf-8", "surrogateescape")
        h.update(struct.pack(">I", len(data)) + data)
    for ids in (item.to_peers, item.cc_peers, item.to_ids, item.cc_ids):
        h.update(struct.pack(">I", len(ids)) + b"".join(sorted(bytes(i) for i in ids)))
    files = item.attachment.items
    h.update(struct.pack(">I", len(files)) + b"".join(bytes(f.hash) for f in files))
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class OutboxEntry:
    """One recipient's copy of a sent mail, still to be written to its link."""

    mail_id: int
    peer: SslId
    item: bytes


@dataclasses.dataclass(frozen=True)
class InboxRow:
    """A received mail as stored."""

    id: int
    sender: SslId
    recv_time: float
    item: MsgItem
    read: bool
    tags: tuple[str, ...]
    deleted: bool


class MailStore:
    """The sqlite file behind the mail service."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.db = sqlite3.connect(private_database(self.path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    # --- outbox ------------------------------------------------------------------------------

    def add_outgoing(self, send_time: int, subject: str, body: str,
                     copies: dict[SslId, MsgItem], now: float) -> int:
        """Record a sent mail and each recipient's copy in one transaction; returns its id."""
        with self.db:
            cur = self.db.execute(
                "INSERT INTO sent (send_time, subject, body, created) VALUES (?, ?, ?, ?)",
                (send_time, to_stored(subject), to_stored(body), now))
            mail_id = int(cur.lastrowid or 0)
            self.db.executemany(
                "INSERT INTO outbox (mail_id, peer, item) VALUES (?, ?, ?)",
                [(mail_id, peer.to_hex(), encode(item)) for peer, item in copies.items()])
        return mail_id

    def latest_send_time(self, subject: str, body: str) -> int | None:
        """The newest send time we gave a mail with this subject and body (None: never)."""
        row = self.db.execute("SELECT MAX(send_time) FROM sent WHERE subject = ? AND body = ?",
                              (to_stored(subject), to_stored(body))).fetchone()
        return None if row[0] is None else int(row[0])

    def pending(self, peer: SslId | None = None) -> list[OutboxEntry]:
        """Copies not yet written to their recipient's link, oldest mail first."""
        sql = "SELECT mail_id, peer, item FROM outbox WHERE delivered IS NULL"
        args: tuple = ()
        if peer is not None:
            sql += " AND peer = ?"
            args = (peer.to_hex(),)
        rows = self.db.execute(sql + " ORDER BY mail_id, peer", args).fetchall()
        return [OutboxEntry(int(r[0]), SslId.from_hex(r[1]), bytes(r[2])) for r in rows]

    def pending_ids(self, peer: SslId) -> list[int]:
        """Mail ids of ``peer``'s copies not yet written to its link, oldest first: ids only,
        since the sender looks at the outbox after every write (thousands of copies must not
        be read whole each time)."""
        rows = self.db.execute("SELECT mail_id FROM outbox WHERE delivered IS NULL AND peer = ? "
                               "ORDER BY mail_id", (peer.to_hex(),)).fetchall()
        return [int(r[0]) for r in rows]

    def outgoing_item(self, mail_id: int, peer: SslId) -> bytes | None:
        """The encoded copy of mail ``mail_id`` for ``peer`` (None when there is none)."""
        row = self.db.execute("SELECT item FROM outbox WHERE mail_id = ? AND peer = ?",
                              (mail_id, peer.to_hex())).fetchone()
        return None if row is None else bytes(row[0])

    def pending_peers(self) -> set[SslId]:
        rows = self.db.execute("SELECT DISTINCT peer FROM outbox WHERE delivered IS NULL")
        return {SslId.from_hex(r[0]) for r in rows}

    def mark_delivered(self, mail_id: int, peer: SslId, now: float) -> None:
        with self.db:
            self.db.execute("UPDATE outbox SET delivered = ? WHERE mail_id = ? AND peer = ?",
                            (now, mail_id, peer.to_hex()))

    def sent(self) -> list[tuple[int, int, str, dict[str, float | None]]]:
        """Sent mails: (id, send time, subject, {recipient hex: delivered time or None})."""
        out = []
        for mail_id, send_time, subject in self.db.execute(
                "SELECT id, send_time, subject FROM sent ORDER BY id"):
            recipients = {p: d for p, d in self.db.execute(
                "SELECT peer, delivered FROM outbox WHERE mail_id = ?", (mail_id,))}
            out.append((int(mail_id), int(send_time), from_stored(subject), recipients))
        return out

    def sent_body(self, mail_id: int) -> str | None:
        """The body of sent mail ``mail_id`` (None if there is none)."""
        row = self.db.execute("SELECT body FROM sent WHERE id = ?", (mail_id,)).fetchone()
        return None if row is None else from_stored(row[0])

    # --- inbox -------------------------------------------------------------------------------

    def add_incoming(self, sender: SslId, item: MsgItem, now: float) -> int | None:
        """Store a received mail; None if a mail with the same key was stored before."""
        key = mail_key(sender, item)
        try:
            with self.db:
                cur = self.db.execute(
                    "INSERT INTO inbox (key, sender, recv_time, item) VALUES (?, ?, ?, ?)",
                    (key, sender.to_hex(), now, encode(item)))
        except sqlite3.IntegrityError:
            return None
        return int(cur.lastrowid or 0)

    def inbox(self, *, include_deleted: bool = False, unread_only: bool = False,
              tag: str | None = None) -> list[InboxRow]:
        sql = "SELECT id, sender, recv_time, item, read, tags, deleted FROM inbox"
        where = []
        if not include_deleted:
            where.append("deleted = 0")
        if unread_only:
            where.append("read = 0")
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = [self._row(r) for r in self.db.execute(sql + " ORDER BY id")]
        return [r for r in rows if tag is None or tag in r.tags]

    def get(self, mail_id: int) -> InboxRow | None:
        row = self.db.execute("SELECT id, sender, recv_time, item, read, tags, deleted "
                              "FROM inbox WHERE id = ?", (mail_id,)).fetchone()
        return None if row is None else self._row(row)

    def update(self, mail_id: int, *, read: bool | None = None,
               tags: Iterable[str] | None = None, deleted: bool | None = None) -> bool:
        """Change a mail's read state, tags or deleted mark; False if there is no such mail."""
        sets, args = [], []
        if read is not None:
            sets.append("read = ?")
            args.append(int(read))
        if tags is not None:
            sets.append("tags = ?")
            args.append(json.dumps(sorted(set(tags))))
        if deleted is not None:
            sets.append("deleted = ?")
            args.append(int(deleted))
        if not sets:
            return self.get(mail_id) is not None
        with self.db:
            cur = self.db.execute(f"UPDATE inbox SET {', '.join(sets)} WHERE id = ?",
                                  (*args, mail_id))
        return cur.rowcount == 1

    @staticmethod
    def _row(r: tuple) -> InboxRow:
        item = decode(bytes(r[3]))
        assert isinstance(item, MsgItem)
        return InboxRow(int(r[0]), SslId.from_hex(r[1]), float(r[2]), item, bool(r[4]),
                        tuple(json.loads(r[5])), bool(r[6]))
