"""Distant chat and distant mail between real ``rsnode run`` processes on 127.0.0.1, in a line
alice - bob - carol (alice and carol are not friends): the issue's acceptance, end to end.

Alice chats with carol's identity through bob; carol's node stops; alice sends distant mails
to carol's identity and is killed with SIGKILL right after one was accepted, then restarted;
bob stores the GXS trans messages; carol's node starts again and her inbox gets every mail
exactly once, and alice's outbox shows every receipt.
"""

from __future__ import annotations

import ipaddress
import signal
import subprocess
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

PASSWORD = "distant-test-password"
MAILS = 6
KILL_AFTER = 2


def knows(base, gxs_id: str) -> bool:
    return any(i["id"] == gxs_id for i in call(base, "id_list", timeout=5))


def test_chat_and_mail_to_a_distant_identity_survive_offline_and_sigkill(tmp_path) -> None:
    """Chat both ways through bob; mails sent while carol is down, with alice killed -9
    mid-way, arrive once each after carol is back, with a receipt for each."""
    names = ("alice", "bob", "carol")
    accounts = {n: Account.create(tmp_path / n, n, f"{n}-loc", PASSWORD, bits=2048)
                for n in names}
    ports = {n: free_port() for n in names}
    for me, other in (("alice", "bob"), ("bob", "alice"), ("bob", "carol"), ("carol", "bob")):
        friends = FriendList(tmp_path / me / FRIENDS_FILE, now=time.time)
        text = accounts[other].certificate_text(
            local_addr=NetAddress(ipaddress.ip_address("127.0.0.1"), ports[other]))
        friends.add_from_certificate(RsCertificate.decode(text))
        friends.close()
    dirs = {n: tmp_path / n for n in names}
    logs = {n: open(tmp_path / f"{n}.log", "ab") for n in names}
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["carol"] = start_node(dirs["carol"], ports["carol"], logs["carol"], PASSWORD)
        carol_id = until(lambda: call(dirs["carol"], "id_create", {"name": "carol-id"}),
                         "carol's identity")["id"]
        procs["bob"] = start_node(dirs["bob"], ports["bob"], logs["bob"], PASSWORD)
        until(lambda: knows(dirs["bob"], carol_id), "bob learns carol's identity")
        procs["alice"] = start_node(dirs["alice"], ports["alice"], logs["alice"], PASSWORD)
        alice_id = until(lambda: call(dirs["alice"], "id_create", {"name": "alice-id"}),
                         "alice's identity")["id"]
        until(lambda: knows(dirs["alice"], carol_id), "alice learns carol's identity")

        sent = call(dirs["alice"], "distant_chat_send", {"to": carol_id, "text": "Hi carol ✓"})
        got = until(lambda: [m for m in call(dirs["carol"], "distant_chat_history",
                                             {"after": 0})["messages"] if m["incoming"]],
                    "carol gets the chat message")
        assert [(m["text"], m["peer"]) for m in got] == [("Hi carol ✓", alice_id)]
        call(dirs["carol"], "distant_chat_send", {"to": alice_id, "text": "Hi alice"})
        back = until(lambda: [m for m in call(dirs["alice"], "distant_chat_history",
                                              {"after": 0})["messages"] if m["incoming"]],
                     "alice gets the answer")
        assert [m["text"] for m in back] == ["Hi alice"]
        assert back[0]["chat"] == sent["chat"]

        stop(procs.pop("carol"))
        for i in range(MAILS):
            until(lambda i=i: call(dirs["alice"], "distant_mail_send", {
                "to": [carol_id], "subject": f"distant {i}", "body": f"mail number {i}"}),
                f"alice accepts mail {i}")
            if i == KILL_AFTER:
                procs["alice"].send_signal(signal.SIGKILL)
                procs["alice"].wait(10)
                procs["alice"] = start_node(dirs["alice"], ports["alice"], logs["alice"], PASSWORD)
        until(lambda: (lambda o: len(o) == MAILS and all(x["status"] == "published" for x in o))(
            call(dirs["alice"], "distant_mail_outbox")), "alice publishes every mail", 60)
        procs["carol"] = start_node(dirs["carol"], ports["carol"], logs["carol"], PASSWORD)
        inbox = until(lambda: (lambda m: m if len(m) >= MAILS else None)(
            call(dirs["carol"], "mail_list")), "carol's inbox", 90)
        outbox = until(lambda: (lambda o: o if all(x["status"] == "receipt" for x in o)
                                else None)(call(dirs["alice"], "distant_mail_outbox")),
                       "every receipt back at alice", 90)
        time.sleep(2)  # a duplicate would land by now
        inbox = call(dirs["carol"], "mail_list")
    finally:
        for proc in procs.values():
            stop(proc)
        for log in logs.values():
            log.close()
    assert sorted(m["subject"] for m in inbox) == sorted(f"distant {i}" for i in range(MAILS))
    assert len(outbox) == MAILS
