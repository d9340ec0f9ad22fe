# -*- test-case-name: tests.test_echo_bot -*-
"""A chat bot that answers every private message: the smallest useful rsproto application.

It embeds a `services.node.node.Node` in an asyncio program (Twisted's asyncio reactor), so the
same loop can run the rest of an application (aiohttp, a Discord bridge, ...).  Run it on an
account made with ``rsnode init`` whose friends are added with ``rsnode friend add``::

    RSNODE_PASSWORD=secret python3 examples/echo_bot.py --base-dir ~/.local/share/rsproto

Each friend that writes to it privately gets ``echo: <the plain text>`` back; SIGINT or
SIGTERM stops the node cleanly (links closed, stores flushed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import signal
import sys
from collections.abc import Callable
from typing import Any

PASSWORD_ENV = "RSNODE_PASSWORD"


def attach(node: Any, prefix: str = "echo: ") -> Callable[[], None]:
    """Answer each private message from a friend with ``prefix`` + its plain text; returns
    the function that detaches the bot."""
    from services.chat.service import MessageReceived

    def on_message(event: MessageReceived) -> None:
        message = event.message
        if message.incoming and not message.public and message.peer is not None:
            node.send_chat(message.peer, prefix + message.text)

    return node.subscribe(MessageReceived, on_message)


async def run(base_dir: pathlib.Path, password: str, port: int, interface: str,
              stop: asyncio.Event) -> None:
    """Start the node, answer messages until ``stop`` is set, then stop the node."""
    from twisted.internet import reactor

    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from services.node.node import FRIENDS_FILE, Node

    loop = asyncio.get_running_loop()
    account = Account.load(base_dir, password)
    friends = FriendList(base_dir / FRIENDS_FILE, now=reactor.seconds)
    node = Node(reactor, account, friends, port=port, interface=interface, owns_friends=True)
    address = await node.startService().asFuture(loop)
    detach = attach(node)
    print(f"echo bot {node.ssl_id} ({account.name}) listening on {address}", flush=True)
    try:
        await stop.wait()
    finally:
        detach()
        await node.stopService().asFuture(loop)
        print("echo bot stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", type=pathlib.Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interface", default="127.0.0.1")
    args = parser.parse_args(argv)
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        import getpass
        password = getpass.getpass("Account password: ")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    from twisted.internet import asyncioreactor
    asyncioreactor.install(loop)  # before anything imports twisted.internet.reactor

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(run(args.base_dir, password, args.port, args.interface, stop))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    sys.exit(main())
