"""A sender *process* killed with SIGKILL during a burst of 200 mails loses none and
duplicates none in the recipient's inbox.

Both nodes are real ``rsnode run`` processes on 127.0.0.1 with their own accounts (2048-bit
keys); the test drives them over their control channels.  A mail counts as sent when
``mail_send`` answered (the outbox row is committed by then).  At three seeded random points of
the burst the sender is killed right after an answer, after a random extra 0-30 ms during
which it is busy delivering earlier mails and settling their outbox rows, then restarted.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import signal
import time

import pytest

from pqi.identity.account import Account
from pqi.identity.certificate import RsCertificate
from pqi.identity.friends import FriendList
from pqi.wire.address import NetAddress
from services.cli.identity import FRIENDS_FILE
from services.node.control_channel import call
from tests.processes import free_port, start_node, stop, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240), pytest.mark.slow]

PASSWORD = "sigkill-test-password"
MAILS = 200
SEED = 20261125


def online(base, pid: int) -> bool:
    """The node of ``base`` with process id ``pid`` answers and sees its friend with msg on."""
    with open(os.path.join(base, "control.json")) as f:
        if json.load(f)["pid"] != pid:
            return False
    report = call(base, "status", timeout=5)
    return any(f["online"] and 0x0013 in f["services"] for f in report["friends"])


def test_sigkill_during_burst_loses_and_duplicates_nothing(tmp_path) -> None:
    """200 mails, three SIGKILLs of the sender at random points, restarts: the recipient's
    inbox holds each of the 200 exactly once and the sender's outbox ends empty."""
    accounts, ports = {}, {}
    for name in ("alice", "bob"):
        accounts[name] = Account.create(tmp_path / name, name, f"{name}-loc", PASSWORD,
                                        bits=2048)
        ports[name] = free_port()
    for me, other in (("alice", "bob"), ("bob", "alice")):
        friends = FriendList(tmp_path / me / FRIENDS_FILE, now=time.time)
        text = accounts[other].certificate_text(
            local_addr=NetAddress(ipaddress.ip_address("127.0.0.1"), ports[other]))
        friends.add_from_certificate(RsCertificate.decode(text))
        friends.close()
    rng = random.Random(SEED)
    kill_after = set(rng.sample(range(10, MAILS - 10), 3))
    alice_dir, bob_dir = tmp_path / "alice", tmp_path / "bob"
    logs = {n: open(tmp_path / f"{n}.log", "ab") for n in ("alice", "bob")}
    procs = {"bob": start_node(bob_dir, ports["bob"], logs["bob"], PASSWORD),
             "alice": start_node(alice_dir, ports["alice"], logs["alice"], PASSWORD)}
    kills = 0
    try:
        until(lambda: online(bob_dir, procs["bob"].pid), "bob up")
        until(lambda: online(alice_dir, procs["alice"].pid), "alice up")
        bob_hex = accounts["bob"].ssl_id.to_hex()
        for i in range(MAILS):
            call(alice_dir, "mail_send", {"to": [bob_hex], "subject": f"burst {i}",
                                          "body": f"<p>mail number {i}</p>"})
            if i in kill_after:
                time.sleep(rng.uniform(0, 0.03))
                procs["alice"].send_signal(signal.SIGKILL)
                procs["alice"].wait(10)
                kills += 1
                procs["alice"] = start_node(alice_dir, ports["alice"], logs["alice"], PASSWORD)
                until(lambda: online(alice_dir, procs["alice"].pid), "alice back")
        until(lambda: call(alice_dir, "mail_outbox") == [], "alice's outbox empty", 90)
        inbox = until(lambda: (lambda m: m if len(m) >= MAILS else None)(
            call(bob_dir, "mail_list")), "bob's inbox full", 60)
    finally:
        for proc in procs.values():
            stop(proc)
        for log in logs.values():
            log.close()
    subjects = [m["subject"] for m in inbox]
    assert kills == 3
    assert len(subjects) == MAILS and sorted(subjects) == sorted(f"burst {i}"
                                                                  for i in range(MAILS))
