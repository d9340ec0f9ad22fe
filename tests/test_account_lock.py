"""One node per account directory (issue 12 item 4): an OS lock held for the node's life."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.node.lock import LOCK_FILE, AccountLock, AccountLockedError
from tests.processes import spawn

HOLD = ("import sys, time; from services.node.lock import AccountLock; "
        "AccountLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)")


def test_second_lock_names_the_holder(tmp_path) -> None:
    """While one holder has the lock a second is refused with the holder's pid; after the
    first releases, the second gets it."""
    first, second = AccountLock(tmp_path), AccountLock(tmp_path)
    first.acquire()
    with pytest.raises(AccountLockedError) as refused:
        second.acquire()
    assert refused.value.pid == os.getpid() and f"pid {os.getpid()}" in str(refused.value)
    first.release()
    second.acquire()
    assert second.held
    second.release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path) -> None:
    """A process holding the lock and killed with SIGKILL leaves the file behind, yet the
    lock is free at once (the kernel drops it)."""
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    with spawn([sys.executable, "-c", HOLD, str(tmp_path)], env=env,
               stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(AccountLockedError) as refused:
            AccountLock(tmp_path).acquire()
        assert refused.value.pid == proc.pid
        proc.kill()
        proc.wait(10)
    assert (tmp_path / LOCK_FILE).exists()
    lock = AccountLock(tmp_path)
    lock.acquire()
    lock.release()
