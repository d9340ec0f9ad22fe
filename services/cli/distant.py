# -*- test-case-name: tests.test_distant_nodes -*-
"""``rsnode distant``: distant chat and who may reach us from afar (GXS identities we are not
friends with).  ``rsnode chat @ID TEXT`` sends a distant chat message (see `services.cli.chat`).

    rsnode distant list [--json]                      open distant chats and their state
    rsnode distant outbox [--json]                    our distant mails and their receipts
    rsnode distant follow [--count N]                 print distant chat messages as they come
    rsnode distant close CHAT                         end a distant chat
    rsnode distant permissions [--chat P] [--mail P]  show or set: everyone, contacts, no_one
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from services.cli.common import CliError, ask_node, base_dir_parent, describe_subcommands

__all__ = ["register", "FOLLOW_PERIOD", "format_chats", "send_distant_chat"]

#: How often ``distant follow`` asks the node for new messages (s).
FOLLOW_PERIOD = 0.3
_PERMISSIONS = ("everyone", "contacts", "no_one")


def format_chats(chats: list[dict[str, Any]]) -> str:
    if not chats:
        return "no distant chat (start one: rsnode chat @IDENTITY TEXT)"
    return "\n".join(f"{c['chat']}  {c['own']} -> {c['peer']}  {c['status']}"
                     f"  ({c['pending']} waiting)" for c in chats)


def send_distant_chat(args: argparse.Namespace) -> int:
    """``rsnode chat @ID TEXT``: open (or reuse) the distant chat with that identity."""
    if args.text is None or not args.text.strip():
        raise CliError("usage: rsnode chat @IDENTITY TEXT (an empty message is not sent)")
    answer = ask_node(args.base_dir, "distant_chat_send",
                      {"to": args.friend[1:], "text": args.text,
                       "identity": getattr(args, "identity", None)})
    state = answer["status"]
    print(f"sent on distant chat {answer['chat']}" if state == "can_talk" else
          f"queued on distant chat {answer['chat']} ({state}): it leaves once the tunnel is up")
    return 0


def _list(args: argparse.Namespace) -> int:
    chats = ask_node(args.base_dir, "distant_chat_list", {})
    print(json.dumps(chats, indent=2) if args.json else format_chats(chats))
    return 0


def _outbox(args: argparse.Namespace) -> int:
    mails = ask_node(args.base_dir, "distant_mail_outbox", {})
    if args.json:
        print(json.dumps(mails, indent=2))
    elif not mails:
        print("no distant mail sent (send one: rsnode mail send --to @IDENTITY)")
    else:
        print("\n".join(f"{m['id']}  -> {m['to']}  {m['status']}" for m in mails))
    return 0


def _close(args: argparse.Namespace) -> int:
    if not ask_node(args.base_dir, "distant_chat_close", {"chat": args.chat}):
        raise CliError(f"no distant chat {args.chat}")
    print("closed")
    return 0


def _follow(args: argparse.Namespace) -> int:
    cursor = ask_node(args.base_dir, "distant_chat_history", {})["last"]
    shown = 0
    try:
        while args.count is None or shown < args.count:
            page = ask_node(args.base_dir, "distant_chat_history", {"after": cursor})
            for m in page["messages"]:
                cursor = max(cursor, m["seq"])
                if m["incoming"] and (args.count is None or shown < args.count):
                    print(f"[{m['chat'][:8]}] @{m['peer']}: {m['text']}", flush=True)
                    shown += 1
            if not page["messages"]:
                time.sleep(FOLLOW_PERIOD)
    except KeyboardInterrupt:
        pass
    return 0


def _permissions(args: argparse.Namespace) -> int:
    now = ask_node(args.base_dir, "distant_permissions", {"chat": args.chat, "mail": args.mail})
    print(f"distant chat: {now['chat']}\ndistant mail: {now['mail']}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``distant`` (list, outbox, follow, close, permissions)."""
    common = base_dir_parent()
    distant = subparsers.add_parser(
        "distant", help="distant chat and distant-messaging permissions",
        description="Chat with GXS identities that are not friends, end to end encrypted "
                    "through turtle tunnels (RetroShare's distant chat), and choose who may "
                    "reach us that way.",
    ).add_subparsers(dest="distant_command", required=True)
    p = distant.add_parser("list", parents=[common], help="open distant chats")
    p.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    p.set_defaults(func=_list)
    p = distant.add_parser("outbox", parents=[common], help="our distant mails")
    p.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    p.set_defaults(func=_outbox)
    p = distant.add_parser("follow", parents=[common],
                           help="print distant chat messages as they come")
    p.add_argument("--count", type=int, default=None, help="stop after this many messages")
    p.set_defaults(func=_follow)
    p = distant.add_parser("close", parents=[common], help="end a distant chat")
    p.add_argument("chat", help="distant chat id (hex, as `distant list` shows it)")
    p.set_defaults(func=_close)
    p = distant.add_parser("permissions", parents=[common],
                           help="who may open distant chats and send distant mail")
    p.add_argument("--chat", choices=_PERMISSIONS, default=None,
                   help="distant chat from: everyone, contacts (identities signed by a "
                        "friend), no_one")
    p.add_argument("--mail", choices=_PERMISSIONS, default=None,
                   help="distant mail from: everyone, contacts, no_one")
    p.set_defaults(func=_permissions)
    describe_subcommands(distant)
