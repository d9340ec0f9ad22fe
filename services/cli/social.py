# -*- test-case-name: tests.test_social_cli -*-
"""``rsnode id`` and ``rsnode lobby``: identities and chat lobbies of the running node.

    rsnode id create NAME [--anonymous]     a new GXS identity (profile-signed by default)
    rsnode id list [--json]                 ours (*) and those friends sent us
    rsnode lobby list [--json]              lobbies we are in, those friends show, invites
    rsnode lobby create NAME [--topic T] [--private] [--identity ID]
    rsnode lobby join LOBBY [--identity ID] join a lobby friends show (or we were invited to)
    rsnode lobby leave LOBBY
    rsnode lobby say LOBBY TEXT
    rsnode lobby follow [LOBBY] [--count N] print lobby messages as they come
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

from services.cli.chat import _call
from services.cli.common import CliError, base_dir_parent, describe_subcommands
from services.cli.terminal import safe

__all__ = ["register", "format_identities", "format_lobbies", "FOLLOW_PERIOD", "demo_lobby"]

#: How often ``lobby follow`` asks the node for new messages (s).
FOLLOW_PERIOD = 0.3


def format_identities(ids: list[dict[str, Any]]) -> str:
    if not ids:
        return "no identity (create one: rsnode id create NAME)"
    lines = []
    for i in ids:
        link = ("signed by " + i["pgp_id"] if i["pgp_id"] else
                "signed (profile unknown)" if i["pgp_linked"] else "anonymous")
        lines.append(f"{'*' if i['own'] else ' '} {i['id']}  {safe(i['name'])}  ({link})")
    return "\n".join(lines)


def format_lobbies(data: dict[str, Any]) -> str:
    lines = ["in:"] + [f"  {lb['id']}  {safe(lb['name'])}  {safe(lb['topic'])}  "
                       f"({lb['members']} seen, {len(lb['friends'])} friends)"
                       for lb in data["joined"]]
    lines += ["visible:"] + [f"  {v['id']}  {safe(v['name'])}  {safe(v['topic'])}  "
                             f"({v['count']})" for v in data["visible"]]
    if data["invites"]:
        lines += ["invited:"] + [f"  {i['id']}  {safe(i['name'])}  from {safe(i['from'])}"
                                 for i in data["invites"]]
    return "\n".join(lines)


def _id_create(args: argparse.Namespace) -> int:
    info = _call(args.base_dir, "id_create", {"name": args.name, "anonymous": args.anonymous})
    print(f"{info['id']}  {info['name']}")
    return 0


def _id_list(args: argparse.Namespace) -> int:
    ids = _call(args.base_dir, "id_list")
    print(json.dumps(ids, indent=2) if args.json else format_identities(ids))
    return 0


def _lobby_list(args: argparse.Namespace) -> int:
    data = _call(args.base_dir, "lobby_list")
    print(json.dumps(data, indent=2) if args.json else format_lobbies(data))
    return 0


def _lobby_create(args: argparse.Namespace) -> int:
    print(_call(args.base_dir, "lobby_create", {"name": args.name, "topic": args.topic,
                                               "private": args.private,
                                               "identity": args.identity}))
    return 0


def _lobby_join(args: argparse.Namespace) -> int:
    _call(args.base_dir, "lobby_join", {"lobby": args.lobby, "identity": args.identity})
    print(f"joined {args.lobby}")
    return 0


def _lobby_leave(args: argparse.Namespace) -> int:
    _call(args.base_dir, "lobby_leave", {"lobby": args.lobby})
    print(f"left {args.lobby}")
    return 0


def _lobby_say(args: argparse.Namespace) -> int:
    _call(args.base_dir, "lobby_say", {"lobby": args.lobby, "text": args.text})
    return 0


def _lobby_follow(args: argparse.Namespace) -> int:
    return follow(args.base_dir, args.lobby, args.count, print)


def follow(base: pathlib.Path, lobby: str | None, count: int | None,
           out: Callable[[str], object]) -> int:
    """Print incoming lobby messages (of ``lobby`` only, if given) until ``count`` were shown."""
    cursor = _call(base, "lobby_history", {})["last"]
    shown = 0
    try:
        while count is None or shown < count:
            page = _call(base, "lobby_history", {"after": cursor})
            for m in page["messages"]:
                cursor = max(cursor, m["seq"])
                if m["incoming"] and (lobby is None or m["lobby"] == lobby) and (
                        count is None or shown < count):
                    out(f"[{m['lobby']}] {safe(m['nick'])}: {safe(m['text'])}")
                    shown += 1
            if not page["messages"]:
                time.sleep(FOLLOW_PERIOD)
    except KeyboardInterrupt:
        pass
    return 0


def register(subparsers: Any) -> None:
    """Add ``id`` (create, list) and ``lobby`` (list, create, join, leave, say, follow)."""
    common = base_dir_parent()
    ids = subparsers.add_parser(
        "id", help="GXS identities",
        description="Our GXS identities (signed by our profile key, or anonymous) and those "
                    "friends synced to us; lobbies and distant messages use them.",
    ).add_subparsers(dest="id_command", required=True)
    p = ids.add_parser("create", parents=[common], help="make an identity")
    p.add_argument("name", help="the identity's name, as others see it")
    p.add_argument("--anonymous", action="store_true", help="not signed by our profile")
    p.set_defaults(func=_id_create)
    p = ids.add_parser("list", parents=[common], help="identities we know (* = ours)")
    p.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    p.set_defaults(func=_id_list)
    describe_subcommands(ids)

    lobby = subparsers.add_parser(
        "lobby", help="chat lobbies",
        description="Group chat in RetroShare's chat lobbies: messages signed by our "
                    "identity, relayed by friends to the lobby's other members.",
    ).add_subparsers(dest="lobby_command", required=True)
    p = lobby.add_parser("list", parents=[common], help="lobbies in, visible, invited")
    p.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    p.set_defaults(func=_lobby_list)
    p = lobby.add_parser("create", parents=[common], help="create a lobby")
    p.add_argument("name", help="the lobby's name")
    p.add_argument("--topic", default="", help="the lobby's topic")
    p.add_argument("--private", action="store_true", help="not listed to friends")
    p.add_argument("--identity", default=None, help="our identity to use (default: first)")
    p.set_defaults(func=_lobby_create)
    p = lobby.add_parser("join", parents=[common], help="join a visible lobby")
    p.add_argument("lobby", help="lobby id (hex, as `lobby list` shows it)")
    p.add_argument("--identity", default=None, help="our identity to use (default: first)")
    p.set_defaults(func=_lobby_join)
    p = lobby.add_parser("leave", parents=[common], help="leave a lobby")
    p.add_argument("lobby", help="lobby id (hex, as `lobby list` shows it)")
    p.set_defaults(func=_lobby_leave)
    p = lobby.add_parser("say", parents=[common], help="send a message to a lobby")
    p.add_argument("lobby", help="lobby id (hex, as `lobby list` shows it)")
    p.add_argument("text", help="the message")
    p.set_defaults(func=_lobby_say)
    p = lobby.add_parser("follow", parents=[common], help="print lobby messages as they come")
    p.add_argument("lobby", nargs="?", help="only this lobby (default: every lobby we are in)")
    p.add_argument("--count", type=int, default=None, help="stop after this many messages")
    p.set_defaults(func=_lobby_follow)
    describe_subcommands(lobby)


# --- demo ------------------------------------------------------------------------------------

async def demo_lobby(reactor: Any, say: Callable[[str], None], alice: Any, bob: Any,
                     carol: Any) -> None:
    """The identities and lobby part of ``rsnode demo``: signed identities, a lobby."""
    from twisted.internet import defer, task

    async def until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
        for _ in range(int(timeout / 0.05)):
            if predicate():
                return
            await task.deferLater(reactor, 0.05, lambda: None)
        raise CliError(f"the demo did not get there in time: {what}")

    ids = [n.identities.create(f"{n.account.name}-id") for n in (alice, bob, carol)]
    await until(lambda: all(n.identities.info(i.gxs_id) is not None
                            for n in (alice, bob, carol) for i in ids), "identities synced")
    seen = carol.identities.info(ids[0].gxs_id)
    say(f"✓ identities: carol knows alice-id {ids[0].gxs_id} "
        f"(signed by {seen.pgp_id or 'an unknown profile'})")
    lobby = alice.chat.lobby.create("demo-lobby", "rsproto demo", ids[0].gxs_id)
    for node, ident in ((bob, ids[1]), (carol, ids[2])):
        await until(lambda node=node: any(v["id"] == f"{lobby:016x}"
                                          for v in node.chat.lobby.listing()["visible"]),
                    "the lobby visible")
        node.chat.lobby.join(lobby, ident.gxs_id)
    from services.chat.lobby import LobbyMessage
    d = alice.next_event(LobbyMessage)
    d.addTimeout(30, reactor)
    try:
        await until(lambda: carol.ssl_id in alice.chat.lobby.core.lobbies[lobby].participating
                    and bob.ssl_id in alice.chat.lobby.core.lobbies[lobby].participating,
                    "both in the lobby")
        carol.chat.lobby.say(lobby, "Hello lobby ✓")
        message = await d
    except defer.TimeoutError:
        raise CliError("the demo did not get there in time: a lobby message") from None
    say(f"✓ lobby: carol → demo-lobby: alice got {message.text!r}, signed by "
        f"{message.nick}, checked at every hop")
