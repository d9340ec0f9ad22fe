"""``rsnode channel|forum|board`` against two real ``rsnode run`` processes, and the text the
commands print."""

from __future__ import annotations

import ipaddress
import json
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
from services.cli.publish import format_group, format_groups
from tests.processes import free_port, start_node, until
from tests.test_chat_cli import ROOT, rsnode
from tests.test_mail_sigkill import PASSWORD, online

pytestmark = [pytest.mark.timeout(180)]


@pytest.mark.slow
@pytest.mark.integration
def test_channel_and_forum_commands(tmp_path) -> None:
    """alice makes an identity and a channel; bob sees it, finds it by a turtle search
    (``channel search``), subscribes and follows it; alice posts with a file and bob's
    follow prints the post; bob reads the channel; a forum thread of alice gets bob's reply;
    a bad group id is a usage error."""
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
    attachment = tmp_path / "notes.txt"
    attachment.write_text("channel attachment ✓\n")
    a_dir, b_dir = str(tmp_path / "alice"), str(tmp_path / "bob")
    with open(tmp_path / "nodes.log", "ab") as log:
        procs = [start_node(a_dir, ports["alice"], log, PASSWORD),
                 start_node(b_dir, ports["bob"], log, PASSWORD)]
        try:
            until(lambda: online(a_dir, procs[0].pid), "alice up")
            until(lambda: online(b_dir, procs[1].pid), "bob up")
            rsnode("id", "create", "--base-dir", a_dir, "alice-id")
            rsnode("id", "create", "--base-dir", b_dir, "bob-id")
            made = rsnode("channel", "create", "--base-dir", a_dir, "cli-channel",
                          "--description", "a channel ✓")
            channel = made.stdout.strip()
            until(lambda: channel in rsnode("channel", "list", "--base-dir", b_dir).stdout,
                  "the channel at bob")
            found = rsnode("channel", "search", "--base-dir", b_dir, "CLI channel", "--wait",
                           "3", "--json")  # over turtle: alice answers with her channel
            assert [h["id"] for h in json.loads(found.stdout)] == [channel]
            followed = rsnode("channel", "subscribe", "--base-dir", b_dir, channel)
            follow = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "channel", "follow", "--base-dir",
                 b_dir, "--count", "1"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)  # follow has read its starting point
            post = rsnode("channel", "post", "--base-dir", a_dir, channel, "Hello subscribers",
                          "--body", "first post", "--file", str(attachment))
            printed, _ = follow.communicate(timeout=60)
            read = rsnode("channel", "read", "--base-dir", b_dir, channel, "--json")
            forum = rsnode("forum", "create", "--base-dir", a_dir, "cli-forum").stdout.strip()
            until(lambda: forum in rsnode("forum", "list", "--base-dir", b_dir).stdout,
                  "the forum at bob")
            rsnode("forum", "subscribe", "--base-dir", b_dir, forum)
            thread = rsnode("forum", "post", "--base-dir", a_dir, forum, "A thread",
                            "--body", "hi").stdout.strip()
            until(lambda: thread in rsnode("forum", "read", "--base-dir", b_dir, forum,
                                           "--json").stdout, "the thread at bob")
            reply = rsnode("forum", "post", "--base-dir", b_dir, forum, "Re: A thread",
                           "--body", "hello", "--reply-to", thread)
            shown = until(lambda: (lambda r: r if "Re: A thread" in r.stdout else None)(
                rsnode("forum", "read", "--base-dir", a_dir, forum)), "the reply at alice")
            bad = rsnode("channel", "read", "--base-dir", b_dir, "nothex")
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(30)
    assert made.returncode == 0 and len(channel) == 32
    assert followed.returncode == 0 and post.returncode == 0
    assert "Hello subscribers (new)" in printed and "notes.txt" in printed
    data = json.loads(read.stdout)
    (got,) = data["posts"]
    assert got["id"] == post.stdout.strip() and got["body"] == "first post"
    assert got["files"][0]["name"] == "notes.txt" and data["description"] == "a channel ✓"
    assert reply.returncode == 0 and f"(reply to {thread[:12]})" in shown.stdout
    assert bad.returncode == 2 and "group id" in bad.stderr


def test_formatting() -> None:
    """Lists mark ours and followed groups; network text cannot carry control characters."""
    assert "rsnode forum create" in format_groups([], "forum")
    text = format_groups([{"id": "ab", "name": "n\x1b[2J", "messages": 2, "admin": False,
                           "subscribed": True, "description": "d"}], "channel")
    assert text.splitlines()[0] == "+ ab  n\ufffd[2J  (2 messages)  d"
    page = format_group({"id": "ab", "name": "n", "description": "d", "posts": [
        {"id": "1" * 40, "publish_ts": 0, "author": None, "kind": "post", "title": "t",
         "read": False, "parent": None, "body": "b", "files": []},
        {"id": "2" * 40, "publish_ts": 0, "author": "c" * 32, "kind": "vote", "vote": "up",
         "parent": "1" * 40}]})
    lines = page.splitlines()
    assert lines[0] == "ab  n: d" and lines[1].endswith("publisher t (new)")
    assert lines[2] == "    b" and lines[3].endswith("vote up on 111111111111")
