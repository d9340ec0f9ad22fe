"""Every sqlite database a node keeps, and its journal files, is 0600 whatever the umask
(finding 7 of the audit: they were 0644, only the 0700 directory protected them)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pqi.identity.friends import FriendList
from pqi.storage import DATABASE_SIDE_FILES, private_database
from services.chat.store import ChatStore
from services.mail.store import MailStore
from services.sharing.hashing import HashCache
from services.sharing.remote_store import RemoteTreeStore

OPENERS: dict[str, Callable[[Path], Any]] = {
    "friends": FriendList,
    "chat": ChatStore,
    "mail": MailStore,
    "hash cache": lambda p: HashCache(p, now=lambda: 0.0),
    "file lists": RemoteTreeStore,
}


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask, restored afterwards."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("name", sorted(OPENERS))
def test_database_and_side_files_are_private(name: str, tmp_path: Path,
                                             open_umask: None) -> None:
    """With umask 000 each store's database, and every -wal/-shm/-journal beside it while it
    is open, has mode 0600."""
    path = tmp_path / "store.db"
    store = OPENERS[name](path)
    try:
        files = [path] + [Path(f"{path}{s}") for s in DATABASE_SIDE_FILES
                          if Path(f"{path}{s}").exists()]
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    finally:
        store.close()


def test_existing_database_is_tightened(tmp_path: Path, open_umask: None) -> None:
    """A database (and side file) left 0644 by an earlier version is made 0600 on open."""
    path = tmp_path / "old.db"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    wal = Path(f"{path}-wal")
    wal.write_bytes(b"")
    os.chmod(wal, 0o644)
    assert private_database(path) == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    assert private_database(":memory:") == ":memory:"
