"""The helper that stops test processes really stops them (issue 12 item 16)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.processes import spawn, stop

#: A process that ignores SIGTERM and SIGINT and starts a child of its own.
STUBBORN = ("import signal, subprocess, sys, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
            "print(child.pid, flush=True); time.sleep(120)")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_spawn_kills_a_stubborn_process_and_its_children_when_the_test_fails() -> None:
    """A test that fails while a process ignoring SIGTERM (and SIGINT, as in a background
    pytest run) and its child run: both are gone afterwards (SIGTERM, then SIGKILL)."""
    with pytest.raises(RuntimeError), spawn([sys.executable, "-c", STUBBORN],
                                            stdout=subprocess.PIPE, text=True) as proc:
        child = int(proc.stdout.readline())
        raise RuntimeError("the test failed here")
    assert proc.returncode is not None and not _alive(proc.pid)
    # The child got SIGKILL with its group; the kernel may take a moment to end an orphan.
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child)


def test_stop_ends_a_process_that_leads_no_group() -> None:
    """`stop` also ends a process started without its own session."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    stop(proc)
    assert proc.returncode is not None
