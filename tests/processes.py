"""Processes that tests start, stopped whatever happens.

A test that times out, fails or is interrupted must not leave a node running: ``spawn`` starts
the process in its own session (so a terminal's SIGINT cannot reach it and its children die
with it), and the context manager ends it with SIGTERM, then SIGKILL after ``GRACE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

#: How long a process gets to exit after SIGTERM before it is killed.
GRACE_SECONDS = 5.0


def _signal(proc: subprocess.Popen[Any], sig: int) -> None:
    """``sig`` to the process group ``proc`` leads (see `spawn`), else to ``proc`` alone."""
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
            return
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)


def stop(proc: subprocess.Popen[Any]) -> None:
    """End ``proc`` (and its process group when it leads one): SIGTERM, then SIGKILL if it
    lingers past `GRACE_SECONDS`."""
    if proc.poll() is None:
        _signal(proc, signal.SIGTERM)
        try:
            proc.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
            proc.wait(GRACE_SECONDS)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _default_sigint() -> None:
    # A test run in the background inherits SIGINT ignored; a node started from it would then
    # ignore the Ctrl-C a test sends.  Give the child the default (KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def spawn(argv: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    """Run ``argv`` (``subprocess.Popen`` keywords) for the ``with`` block, then ``stop`` it.

    The child gets its own session and the default SIGINT handling whatever the test runner's
    (a background run ignores SIGINT)."""
    proc = subprocess.Popen(list(argv), start_new_session=True, preexec_fn=_default_sigint,
                            **kwargs)
    try:
        yield proc
    finally:
        stop(proc)
