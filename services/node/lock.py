# -*- test-case-name: tests.test_account_lock -*-
"""One running node per account directory.

Two nodes on one directory would fight over the same location (each link replacing the
other's every few seconds) and over the files the CLI finds the node by.  The node holds an
OS file lock on ``node.lock`` in the account directory for its whole life: the kernel drops it
when the process ends however it ends (even ``kill -9``), so a stale file never blocks a
restart.  The file holds the owner's pid, so a second node can say who runs already.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

__all__ = ["AccountLock", "AccountLockedError", "LOCK_FILE"]

#: The lock file in the account directory.
LOCK_FILE: Final = "node.lock"


class AccountLockedError(Exception):
    """Another process runs a node on this account directory."""

    def __init__(self, base_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"a node already runs on {base_dir} ({who})")
        self.base_dir = base_dir
        self.pid = pid


class AccountLock:
    """The exclusive lock of one account directory; `acquire` it, `release` it when done."""

    def __init__(self, base_dir: str | os.PathLike[str]) -> None:
        self.base_dir = Path(base_dir)
        self.path = self.base_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise `AccountLockedError` naming the holder's pid; OSError
        when the directory cannot hold the file (e.g. read-only)."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = self._holder(fd)
            os.close(fd)
            raise AccountLockedError(self.base_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; its content is only read while it is locked)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock

    @staticmethod
    def _holder(fd: int) -> int | None:
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text else None
        except (OSError, ValueError):
            return None
