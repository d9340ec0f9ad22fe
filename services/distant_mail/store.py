# -*- test-case-name: tests.test_distant_mail -*-
"""What distant mail keeps on disk: the outbox of mails to identities, and the hashes of the
mails received (so each is delivered once, whichever way it came).

An outgoing mail is written before `DistantMailStore.add` returns (``synchronous=FULL``): a
crash after that loses nothing.  Its record then moves through `Status`: it waits for the
recipient's key and our GXS trans group (PENDING), holds the exact signed message once made
(READY: a crash before publishing publishes these same bytes, never a second message), is
published (PUBLISHED: friends store and forward it), and ends when the receipt comes back
(RECEIPT) or after `services.distant_mail.service.RECEIPT_TIMEOUT` (TIMED_OUT).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import sqlite3
from typing import Final

from pqi.wire.fields import GxsId

__all__ = ["DistantMailStore", "Outgoing", "Status", "DISTANT_MAIL_FILE", "MAX_SEEN",
           "MAX_OUTGOING"]

#: The store's file in the account directory.
DISTANT_MAIL_FILE: Final = "distant-mail.sqlite"
#: Received-mail hashes remembered (the oldest are forgotten first).
MAX_SEEN: Final = 100_000
#: Outgoing mails not yet acknowledged or timed out, at most (`add` refuses more).
MAX_OUTGOING: Final = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outgoing (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mail_id TEXT NOT NULL UNIQUE,
    author TEXT NOT NULL,
    recipient TEXT NOT NULL,
    data BLOB NOT NULL,
    status INTEGER NOT NULL,
    created REAL NOT NULL,
    msg BLOB,
    meta BLOB,
    msg_id TEXT,
    finished REAL
);
CREATE TABLE IF NOT EXISTS seen (
    hash TEXT PRIMARY KEY,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_time ON seen(time);
"""


class Status(enum.IntEnum):
    """Where an outgoing distant mail stands."""

    PENDING = 1
    READY = 2
    PUBLISHED = 3
    RECEIPT = 4
    TIMED_OUT = 5


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One outgoing distant mail."""

    local_id: int
    mail_id: int
    author: GxsId
    recipient: GxsId
    data: bytes
    status: Status
    created: float
    msg: bytes | None
    meta: bytes | None
    finished: float | None


class DistantMailStore:
    """The sqlite file behind distant mail."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.db = sqlite3.connect(os.fspath(path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    # --- outgoing ---------------------------------------------------------------------------

    def add(self, mail_id: int, author: GxsId, recipient: GxsId, data: bytes,
            now: float) -> int:
        """Record a mail to send (durable when this returns); its local id."""
        if self.open_count() >= MAX_OUTGOING:
            raise OverflowError(f"MAX_OUTGOING ({MAX_OUTGOING}) distant mails wait already")
        with self.db:
            cur = self.db.execute(
                "INSERT INTO outgoing (mail_id, author, recipient, data, status, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (f"{mail_id:016x}", author.to_hex(), recipient.to_hex(), data,
                 int(Status.PENDING), now))
        return int(cur.lastrowid or 0)

    def set_ready(self, local_id: int, msg: bytes, meta: bytes, msg_id: str) -> None:
        with self.db:
            self.db.execute("UPDATE outgoing SET status = ?, msg = ?, meta = ?, msg_id = ? "
                            "WHERE id = ?", (int(Status.READY), msg, meta, msg_id, local_id))

    def set_status(self, local_id: int, status: Status, now: float | None = None) -> None:
        with self.db:
            self.db.execute("UPDATE outgoing SET status = ?, finished = ? WHERE id = ?",
                            (int(status), now, local_id))

    def open_count(self) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM outgoing WHERE status < ?",
                              (int(Status.RECEIPT),)).fetchone()
        return int(row[0])

    def outgoing(self, *, open_only: bool = False) -> list[Outgoing]:
        sql = ("SELECT id, mail_id, author, recipient, data, status, created, msg, meta, "
               "finished FROM outgoing")
        args: tuple[int, ...] = ()
        if open_only:
            sql += " WHERE status < ?"
            args = (int(Status.RECEIPT),)
        return [_outgoing(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def by_mail_id(self, mail_id: int) -> Outgoing | None:
        return self._one("mail_id = ?", f"{mail_id:016x}")

    def by_local_id(self, local_id: int) -> Outgoing | None:
        return self._one("id = ?", local_id)

    def _one(self, where: str, value: object) -> Outgoing | None:
        r = self.db.execute("SELECT id, mail_id, author, recipient, data, status, created, msg, "
                            f"meta, finished FROM outgoing WHERE {where}", (value,)).fetchone()
        return None if r is None else _outgoing(r)

    # --- received ---------------------------------------------------------------------------

    def first_sight(self, digest: str, now: float) -> bool:
        """Remember a received mail's hash; False when it was seen before."""
        try:
            with self.db:
                self.db.execute("INSERT INTO seen (hash, time) VALUES (?, ?)", (digest, now))
                count = self.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
                if count > MAX_SEEN:
                    self.db.execute("DELETE FROM seen WHERE hash IN (SELECT hash FROM seen "
                                    "ORDER BY time LIMIT ?)", (count - MAX_SEEN,))
        except sqlite3.IntegrityError:
            return False
        return True


def _outgoing(r: tuple) -> Outgoing:  # type: ignore[type-arg]
    return Outgoing(r[0], int(r[1], 16), GxsId.from_hex(r[2]), GxsId.from_hex(r[3]), r[4],
                    Status(r[5]), r[6], r[7], r[8], r[9])
