"""``rsnode id`` and ``rsnode lobby`` against two real ``rsnode run`` processes."""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import sys
import time

import pytest

from pqi.identity.account import Account
from pqi.identity.certificate import RsCertificate
from pqi.identity.friends import FriendList
from pqi.wire.address import NetAddress
from services.cli.identity import FRIENDS_FILE
from services.cli.social import format_identities, format_lobbies
from tests.processes import free_port, start_node, until
from tests.test_chat_cli import ROOT, rsnode
from tests.test_mail_sigkill import PASSWORD, online

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def test_identity_and_lobby_commands(tmp_path) -> None:
    """alice and bob make identities; bob lists alice's; alice creates a lobby, bob sees it,
    joins, follows it while alice says something, and prints her message."""
    accounts, ports = {}, {}
    for name in ("alice", "bob"):
        accounts[name] = Account.create(tmp_path / name, name, f"{name}-loc", PASSWORD,
                                        bits=2048)
        ports[name] = free_port()
    for me, other in (("alice", "bob"), ("bob", "alice")):
        friends = FriendList(tmp_path / me / FRIENDS_FILE, now=time.time)
        friends.add_from_certificate(RsCertificate.decode(accounts[other].certificate_text(
            local_addr=NetAddress(ipaddress.ip_address("127.0.0.1"), ports[other]))))
        friends.close()
    a_dir, b_dir = str(tmp_path / "alice"), str(tmp_path / "bob")
    with open(tmp_path / "nodes.log", "ab") as log:
        procs = [start_node(a_dir, ports["alice"], log, PASSWORD),
                 start_node(b_dir, ports["bob"], log, PASSWORD)]
        try:
            until(lambda: online(a_dir, procs[0].pid), "alice up")
            until(lambda: online(b_dir, procs[1].pid), "bob up")
            made = rsnode("id", "create", "--base-dir", a_dir, "alice-id")
            rsnode("id", "create", "--base-dir", b_dir, "bob-id")
            listed = until(lambda: (lambda r: r if "alice-id" in r.stdout else None)(
                rsnode("id", "list", "--base-dir", b_dir)), "alice's identity at bob")
            lobby = rsnode("lobby", "create", "--base-dir", a_dir, "cli-lobby", "--topic", "t")
            lobby_id = lobby.stdout.strip()
            until(lambda: lobby_id in rsnode("lobby", "list", "--base-dir", b_dir).stdout,
                  "the lobby visible at bob")
            joined = rsnode("lobby", "join", "--base-dir", b_dir, lobby_id)
            follow = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "lobby", "follow", "--base-dir", b_dir,
                 "--count", "1"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)  # follow has read its starting point
            said = rsnode("lobby", "say", "--base-dir", a_dir, lobby_id, "hello lobby ✓")
            followed, _ = follow.communicate(timeout=60)
            no_id = rsnode("lobby", "join", "--base-dir", a_dir, "00000000000000aa")
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(30)
    alice_id = made.stdout.split()[0]
    assert made.returncode == 0 and len(alice_id) == 32
    assert f"  {alice_id}  alice-id  (signed by {accounts['alice'].pgp_id.to_hex()})" in \
        listed.stdout
    assert joined.returncode == 0 and said.returncode == 0
    assert followed.strip() == f"[{lobby_id}] alice-id: hello lobby ✓"
    assert no_id.returncode == 2


def test_formatting() -> None:
    """The text forms of identities and lobbies."""
    assert "rsnode id create" in format_identities([])
    line = format_identities([{"own": True, "id": "ab", "name": "me", "pgp_id": None,
                               "pgp_linked": False}])
    assert line == "* ab  me  (anonymous)"
    text = format_lobbies({"joined": [], "visible": [{"id": "01", "name": "n", "topic": "t",
                                                      "count": 3}], "invites": []})
    assert text.splitlines() == ["in:", "visible:", "  01  n  t  (3)"]
