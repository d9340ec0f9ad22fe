# -*- test-case-name: tests.test_cli_password -*-
"""The account password from ``RSNODE_PASSWORD``, taken so the running node no longer holds it.

Scripts hand ``rsnode run`` its password through the environment.  Left there, it stays
readable for the life of the node in ``/proc/<pid>/environ`` (by the same user, root, and
anything that dumps the process) and is inherited by every child process.  `take_password`
removes the variable from ``os.environ`` and, on Linux, also blanks it in the process's
initial environment block, which is what ``/proc/<pid>/environ`` shows (``unsetenv`` alone
leaves those bytes in place).
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["take_password", "scrub_initial_environment"]


def take_password(name: str) -> str | None:
    """The value of ``name`` (None when unset), removed from this process's environment."""
    value = os.environ.pop(name, None)
    if value is not None:
        scrub_initial_environment(name)
    return value


def scrub_initial_environment(name: str) -> bool:
    """Overwrite ``name=...`` in the initial environment block with NULs (Linux only).

    Returns whether an entry was blanked.  Anything unexpected (no ``/proc``, another system,
    an unreadable layout) leaves the block alone: ``os.environ`` is cleaned either way.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
    except OSError:
        return False
    fields = stat[stat.rindex(b")") + 2:].split()
    try:
        env_start, env_end = int(fields[47]), int(fields[48])  # stat fields 50 and 51
    except (IndexError, ValueError):
        return False
    if env_end - env_start != len(block):
        return False
    prefix = name.encode() + b"="
    scrubbed = False
    offset = 0
    for entry in block.split(b"\0"):
        if entry.startswith(prefix):
            ctypes.memset(env_start + offset, 0, len(entry))
            scrubbed = True
        offset += len(entry) + 1
    return scrubbed
