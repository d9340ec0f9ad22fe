"""Processes that tests start, stopped whatever happens.

A test that times out, fails or is interrupted must not leave a node running: ``spawn`` starts
the process in its own session (so a terminal's SIGINT cannot reach it and its children die
with it), and the context manager ends it with SIGTERM, then SIGKILL after ``GRACE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: The repository's root: where ``python -m services.cli`` finds the package.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a node started next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(base: Any, port: int, log: Any, password: str) -> subprocess.Popen[Any]:
    """``rsnode run`` for the account in ``base`` on 127.0.0.1:``port``, its output to ``log``,
    in a session of its own (`stop` ends its whole group)."""
    from services.cli.common import PASSWORD_ENV

    env = dict(os.environ, **{PASSWORD_ENV: password})
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--base-dir", str(base), "--port",
         str(port), "--interface", "127.0.0.1"], env=env, stdout=log, stderr=subprocess.STDOUT,
        cwd=ROOT, start_new_session=True)


def until(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """``predicate()``'s first truthy value, polled every 50 ms (control-channel errors while a
    node starts count as not yet); AssertionError after ``timeout`` s."""
    from services.node.control_channel import ControlClientError, NodeNotRunningError

    for _ in range(int(timeout / 0.05)):
        try:
            value = predicate()
        except (NodeNotRunningError, ControlClientError, OSError, ValueError):
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
