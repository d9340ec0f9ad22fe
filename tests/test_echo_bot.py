"""examples/echo_bot.py against real nodes on 127.0.0.1: in this process, and as a program on
Twisted's asyncio reactor that a friend chats with and then stops with SIGTERM."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import signal
import subprocess
import sys
import time

import pytest

from pqi.identity.account import Account
from pqi.identity.certificate import RsCertificate
from pqi.identity.friends import FriendList
from pqi.items.ids import SERVICE_CHAT
from pqi.wire.address import NetAddress
from services.chat.service import MessageReceived
from services.node.node import FRIENDS_FILE
from tests.processes import free_port
from tests.service_fakes import cert_of, make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180), pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOT = os.path.join(ROOT, "examples", "echo_bot.py")


def load_bot():
    spec = importlib.util.spec_from_file_location("echo_bot", BOT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bot_echoes_private_messages_only(tmp_path) -> None:
    """The bot answers each private message with its plain text, in order, and ignores
    broadcasts."""
    bot = load_bot()

    async def body(reactor):
        a, b = make_node(reactor, tmp_path, "alice"), make_node(reactor, tmp_path, "bob")
        await a.startService()
        await b.startService()
        bot.attach(b)
        echoes = []
        a.subscribe(MessageReceived, lambda e: echoes.append(e.message.body))
        try:
            a.add_friend(cert_of(b))
            b.add_friend(cert_of(a))
            await wait_for(reactor, lambda: SERVICE_CHAT in a.control.enabled(b.ssl_id)
                           and SERVICE_CHAT in b.control.enabled(a.ssl_id))
            await a.send_chat(b.ssl_id, "ping")
            await a.send_chat(b.ssl_id, "<b>hi</b> there")
            await a.broadcast_chat("to everyone")
            await a.send_chat(b.ssl_id, "last")
            await wait_for(reactor, lambda: "echo: last" in echoes)
            return echoes
        finally:
            await a.stopService()
            await b.stopService()

    assert on_fresh_reactor(body, 60) == ["echo: ping", "echo: hi there", "echo: last"]


def test_bot_program_on_asyncio_reactor(tmp_path) -> None:
    """The example run as a program (its own asyncio loop and reactor) befriends alice from
    its friend list, echoes her message, and stops cleanly on SIGTERM."""
    password = "echo-bot-password"
    bot_dir = tmp_path / "bot"
    account = Account.create(bot_dir, "echo", "echo-loc", password, bits=2048)
    bot_port = free_port()
    bot_cert = account.certificate_text(
        local_addr=NetAddress(ipaddress.ip_address("127.0.0.1"), bot_port))

    async def body(reactor):
        a = make_node(reactor, tmp_path, "alice")
        await a.startService()
        friends = FriendList(bot_dir / FRIENDS_FILE, now=time.time)
        friends.add_from_certificate(RsCertificate.decode(cert_of(a)))
        friends.close()
        a.add_friend(bot_cert)
        proc = subprocess.Popen(
            [sys.executable, BOT, "--base-dir", str(bot_dir), "--port", str(bot_port)],
            env=dict(os.environ, RSNODE_PASSWORD=password), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            await wait_for(reactor, lambda: SERVICE_CHAT in a.control.enabled(account.ssl_id),
                           60)
            reply = a.next_event(MessageReceived)
            await a.send_chat(account.ssl_id, "are you there?")
            message = (await reply).message
            proc.send_signal(signal.SIGTERM)
            await wait_for(reactor, lambda: proc.poll() is not None, 30)
            return message, proc.returncode, proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            await a.stopService()

    message, code, output = on_fresh_reactor(body, 150)
    assert message.body == "echo: are you there?" and message.peer == account.ssl_id
    assert code == 0
    assert output.startswith(f"echo bot {account.ssl_id} (echo) listening on 127.0.0.1:")
    assert output.rstrip().endswith("echo bot stopped")
