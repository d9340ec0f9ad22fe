"""The README, followed literally by a new user: real ``rsnode`` processes on 127.0.0.1.

Issue 12's acceptance walk-through: ``init`` twice, ``cert``, ``friend add``, ``run`` both:
online; a second ``run`` on one account refused; ``friend add`` on running nodes dials at
once; a third node learned through discovery and approved from pending; chat with ``<``,
``&`` and emoji arriving verbatim under the sender's name; a download stopped by a full disk
(alice's account on a small tmpfs: CI runs as root) resuming by itself once the disk grows.
Each account lives under
``--base-dir`` in a temporary folder; every process started is stopped (SIGTERM, then
SIGKILL) whatever happens.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from services.cli.common import EXIT_LOCKED
from services.node.control_channel import ControlClientError, NodeNotRunningError, call
from tests.processes import spawn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = pathlib.Path(__file__).resolve().parent.parent
PASSWORD = "walk-through"
#: Bound on every wait (a busy machine can be slow; the figures are printed).
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.1


@contextlib.contextmanager
def tmpfs(path: pathlib.Path, size: str) -> Iterator[pathlib.Path]:
    """A small tmpfs at ``path``, unmounted afterwards (after the nodes stopped)."""
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def free_port_pair() -> int:
    """A port P with TCP P and UDP P+1 free on 127.0.0.1 (``run`` uses both)."""
    for _ in range(100):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise AssertionError("no free port pair")


class User:
    """One person following the README: an account directory and the ``rsnode`` command."""

    def __init__(self, home: pathlib.Path, name: str) -> None:
        self.name = name
        self.base = home / name
        self.port = free_port_pair()
        self.env = dict(os.environ, RSNODE_PASSWORD=PASSWORD, PYTHONPATH=str(ROOT))
        self.log = home / f"{name}.log"

    def rsnode(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "services.cli", "--base-dir",
                               str(self.base), *args], env=self.env, cwd=ROOT, text=True,
                              capture_output=True, timeout=120)
        if check:
            assert done.returncode == 0, (args, done.stderr)
        return done

    def run(self, stack: ExitStack) -> subprocess.Popen[Any]:
        """``rsnode run`` in the background for the rest of the test."""
        log = stack.enter_context(self.log.open("ab"))
        return stack.enter_context(spawn(
            [sys.executable, "-m", "services.cli", "--base-dir", str(self.base), "run"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))

    def status(self) -> dict[str, Any] | None:
        """The running node's status report (what ``rsnode status --json`` prints), asked
        over the control channel directly so that polling costs no process start."""
        try:
            return call(self.base, "status", timeout=5)
        except (NodeNotRunningError, ControlClientError, OSError, ValueError):
            return None

    def online_with(self, other: User) -> bool:
        report = self.status()
        return report is not None and any(
            f["name"] == other.name and f["online"] for f in report["friends"])


def until(what: str, predicate: Callable[[], Any]) -> tuple[Any, float]:
    """Poll ``predicate`` until it is truthy (bounded); returns it and the seconds taken."""
    start = time.monotonic()
    for _ in range(int(WAIT_SECONDS / POLL_SECONDS)):
        value = predicate()
        if value:
            return value, time.monotonic() - start
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def users(tmp_path: pathlib.Path) -> Iterator[dict[str, User]]:
    yield {name: User(tmp_path, name) for name in ("alice", "bob", "carol")}


def test_the_readme_walk_through(users: dict[str, User], tmp_path: pathlib.Path,
                                 capsys) -> None:
    """A new user's first hour, by the README: every step works, with no address typed."""
    alice = users["alice"]
    # alice's whole account on a 4 MiB disk, to fill it with a download later.
    with tmpfs(tmp_path / "alice-disk", "4m") as disk:
        alice.base = disk / "alice"
        walk(users, tmp_path, capsys)


def walk(users: dict[str, User], home: pathlib.Path, capsys) -> None:
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    # `rsnode init` twice (loopback only, as tests must), then `cert` and `friend add`.
    for user in (alice, bob):
        user.rsnode("init", "--name", user.name, "--location", "laptop", "--bits", "2048",
                    "--port", str(user.port), "--interface", "127.0.0.1")
    alice_cert = alice.rsnode("cert").stdout.strip()
    bob_cert = bob.rsnode("cert").stdout.strip()
    assert bob.rsnode("friend", "add", alice_cert).returncode == 0
    assert alice.rsnode("friend", "add", bob_cert).returncode == 0
    with ExitStack() as stack:
        alice.run(stack)
        bob.run(stack)
        until("both nodes up", lambda: alice.status() and bob.status())
        _, first_link = until("alice and bob online", lambda: alice.online_with(bob)
                              and bob.online_with(alice))
        # One node per account: a second `run` says who runs there.
        second = alice.rsnode("run", check=False)
        assert second.returncode == EXIT_LOCKED
        assert "already runs" in second.stderr and "pid" in second.stderr
        assert alice.online_with(bob)  # the first node was not disturbed

        # A third user; friends are added while the nodes run.
        carol.rsnode("init", "--name", "carol", "--location", "desktop", "--bits", "2048",
                     "--port", str(carol.port), "--interface", "127.0.0.1")
        carol.run(stack)
        until("carol's node", lambda: carol.status() is not None)
        added = bob.rsnode("friend", "add", carol.rsnode("cert").stdout.strip())
        assert "dialling now" in added.stdout
        carol.rsnode("friend", "add", bob.rsnode("cert").stdout.strip())
        _, running_add = until("bob and carol online", lambda: bob.online_with(carol)
                               and carol.online_with(bob))

        # Discovery brings carol to alice as pending; approved from the CLI on both sides.
        until("carol pending at alice",
              lambda: "pending: carol" in alice.rsnode("friend", "list").stdout)
        until("alice pending at carol",
              lambda: "pending: alice" in carol.rsnode("friend", "list").stdout)
        assert "approved carol" in alice.rsnode("friend", "approve", "carol").stdout
        assert "approved alice" in carol.rsnode("friend", "approve", "alice").stdout
        _, approved_link = until("alice and carol online", lambda: alice.online_with(carol))

        # Chat: typed text arrives verbatim, under the sender's name.
        text = "if a<b && c>d then <tag> & <script> ☕ שלום"
        assert alice.rsnode("chat", "bob", text).stdout.strip() in ("sent", "queued: the "
                                                                    "friend is offline, it "
                                                                    "leaves when they connect")
        followed, _ = until("bob's message", lambda: bob.rsnode(
            "chat", "--follow", "--since", "0", "--count", "1").stdout.strip())
        assert followed.endswith(f"<- alice/laptop: {text}")
        listed = alice.rsnode("friend", "list").stdout
        assert "bob" in listed and "last connected 20" in listed  # a local date, not seconds

        # A download that fills alice's disk stops with "disk full", and resumes by itself
        # once the disk has room again.
        data = os.urandom(6 << 20)
        (home / "bob-share").mkdir()
        (home / "bob-share" / "big.bin").write_bytes(data)
        bob.rsnode("files", "share", str(home / "bob-share"))
        report = json.loads(alice.rsnode("status", "--json").stdout)
        bob_id = next(f["ssl_id"] for f in report["friends"] if f["name"] == "bob")
        alice.rsnode("files", "get", hashlib.sha1(data).hexdigest(), "--size", str(len(data)),
                     "--name", "big.bin", "--source", bob_id)
        until("the disk full", lambda: "disk full" in alice.rsnode(
            "files", "transfers", "--once").stdout)
        subprocess.run(["mount", "-o", "remount,size=32m", str(alice.base.parent)], check=True)
        _, resumed = until("the download finished", lambda: "finished" in alice.rsnode(
            "files", "transfers", "--once").stdout)
        assert (alice.base / "Downloads" / "big.bin").read_bytes() == data
        assert "cleared 1" in alice.rsnode("files", "clear").stdout
    with capsys.disabled():
        print(f"\nwalk-through: alice and bob online {first_link:.2f} s after both answered, "
              "friend added to "
              f"running nodes online in {running_add:.2f} s, approved friend online in "
              f"{approved_link:.2f} s; download finished {resumed:.2f} s after the disk grew")
