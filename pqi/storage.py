# -*- test-case-name: tests.test_storage -*-
"""Files written whole or not at all: the one way rsproto replaces a file on disk.

A node keeps small files it rewrites while running (the DHT state, the address it listens on,
the control channel's port and token, shared folders, a partial download's state...).  A crash
or a power cut in the middle of a rewrite must leave the old file or the new one, never half of
either, and never a stray temporary file under the final name.  `atomic_write` writes a private
temporary file in the same directory (so the rename cannot cross a file system), fsyncs it,
renames it over the final name and fsyncs the directory, so the rename itself is durable.

Text in sqlite: strings decoded from the wire keep bytes that are not UTF-8 as lone surrogates
(``surrogateescape``), and a JSON client's ``"\\udcff"`` escape makes one too; Python's sqlite3
refuses to bind such a string.  `to_stored` turns text into what a column can hold (the string
itself when it is valid UTF-8, else its bytes as a BLOB) and `from_stored` turns either back
into the identical string, so a friend's junk byte is kept, not fatal, and rows written before
(valid UTF-8 TEXT) read as they always did.

Standard library only, so every layer may use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = ["atomic_write", "fsync_dir", "private_database", "to_stored", "from_stored",
           "DEFAULT_MODE", "TEMP_SUFFIX", "DATABASE_SIDE_FILES"]

#: Permissions of a file written by `atomic_write` unless the caller says otherwise: private,
#: since most of what a node writes (keys' neighbours, tokens, addresses) is nobody else's.
DEFAULT_MODE: Final = 0o600
#: How the temporary files end (they start with ``.`` and the final name: hidden, recognisable).
TEMP_SUFFIX: Final = ".tmp"
#: The files sqlite keeps beside a database (rollback journal, write-ahead log, shared memory).
DATABASE_SIDE_FILES: Final = ("-journal", "-wal", "-shm")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename or unlink in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_database(path: str | os.PathLike[str]) -> str:
    """``path`` made ready for ``sqlite3.connect``: the database exists with mode 0600.

    sqlite creates a database with 0644 (less the umask) and gives its journal, WAL and
    shared-memory files the database's mode, so creating the file 0600 first (and tightening
    an existing one and its side files) keeps every one of them private whatever the umask.
    ``:memory:`` and the empty name (temporary databases) are returned as they are.
    """
    name = os.fspath(path)
    if name in ("", ":memory:") or name.startswith("file:"):
        return name
    fd = os.open(name, os.O_RDWR | os.O_CREAT, DEFAULT_MODE)
    try:
        os.fchmod(fd, DEFAULT_MODE)
    finally:
        os.close(fd)
    for suffix in DATABASE_SIDE_FILES:
        try:
            os.chmod(name + suffix, DEFAULT_MODE)
        except FileNotFoundError:
            pass
    return name


def to_stored(text: str) -> str | bytes:
    """``text`` as a sqlite value: itself if it is valid UTF-8, else its bytes (a BLOB).

    The bytes are the ones the wire carries (``surrogateescape``: each escaped surrogate back to
    its byte), so a column keeps what the peer sent and `from_stored` gives back the identical
    string for every string a wire decoder makes.  The mapping is fixed, so ``WHERE col = ?``
    with ``to_stored(text)`` finds the row stored from the same text.  Strings no wire decoder
    makes (only a JSON client's escapes) are stored too, never an error, and read back as the
    string of the same wire bytes: escapes of valid UTF-8 (``"\\udcc3\\udca9"``) as that text
    (``"é"``), and a lone surrogate outside U+DC80..U+DCFF, which ``surrogateescape`` cannot
    encode, as its UTF-8-like triplet (``surrogatepass``), escaped.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")
    return text


def from_stored(value: str | bytes) -> str:
    """The string `to_stored` was given: TEXT as it is, a BLOB decoded with surrogateescape."""
    if isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", "surrogateescape")


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = DEFAULT_MODE, *,
                 before_replace: Callable[[], None] | None = None) -> None:
    """Replace ``path`` by ``data``: afterwards it holds the old bytes or the new ones.

    The parent directory is created if missing.  ``mode`` is the new file's permissions
    (exactly, whatever the umask).  ``before_replace``, if given, runs once the temporary file
    is durable and before the rename (tests kill the process there).  On any failure the
    temporary file is removed, ``path`` is left as it was, and the error propagates.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(final.parent)
