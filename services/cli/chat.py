# -*- test-case-name: tests.test_chat_cli -*-
"""``rsnode chat`` and ``rsnode mail``: talk through the running node (``rsnode run``).

Every command goes over the local control channel to the node of ``--base-dir``; friends are
named by SSL id (hex), profile name or location name.

    rsnode chat bob "Hello!"            a private message (queued if bob is offline)
    rsnode chat --broadcast "Hi all"    a broadcast to every connected friend
    rsnode chat --follow [bob]          print messages as they come (Ctrl-C to stop)
    rsnode chat --follow --since 0      ... starting with the whole history
    rsnode mail send --to bob --subject S [--body B | < body]
    rsnode mail list [--unread] [--tag T]
    rsnode mail read ID
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

from services.cli.identity import CliError, default_base_dir
from services.cli.terminal import safe
from services.node.control_channel import ControlClientError, NodeNotRunningError, call

__all__ = ["register_chat", "register_mail", "format_message", "format_mail_list",
           "format_mail", "FOLLOW_PERIOD", "demo_chat_and_mail"]

#: How often ``chat --follow`` asks the node for new messages (s).
FOLLOW_PERIOD = 0.3


def _call(base: pathlib.Path, command: str, args: dict[str, Any] | None = None) -> Any:
    try:
        return call(base, command, args)
    except NodeNotRunningError as e:
        raise CliError(f"{e}; start it with `rsnode run`") from e
    except (ControlClientError, OSError) as e:
        raise CliError(str(e)) from e


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def format_message(m: dict[str, Any]) -> str:
    """One chat line: time, who (and whether broadcast), plain text."""
    who = m["peer"] or "me"
    arrow = "<-" if m["incoming"] else "->"
    kind = " (broadcast)" if m["public"] else ""
    return f"{_stamp(m['send_time'])} {arrow} {safe(who)}{kind}: {safe(m['text'])}"


def format_mail_list(mails: list[dict[str, Any]]) -> str:
    if not mails:
        return "no mail"
    lines = []
    for m in mails:
        flag = " " if m["read"] else "*"
        tags = f" [{safe(', '.join(m['tags']))}]" if m["tags"] else ""
        clip = f" (+{len(m['attachments'])} files)" if m["attachments"] else ""
        lines.append(f"{flag}{m['id']:>5}  {_stamp(m['send_time'])}  {m['from']}  "
                     f"{safe(m['subject'])}{tags}{clip}")
    return "\n".join(lines)


def format_mail(m: dict[str, Any]) -> str:
    lines = [f"From:    {m['from']}", f"To:      {', '.join(m['to'])}"]
    if m["cc"]:
        lines.append(f"Cc:      {', '.join(m['cc'])}")
    lines += [f"Date:    {_stamp(m['send_time'])}", f"Subject: {safe(m['subject'])}"]
    for f in m["attachments"]:
        lines.append(f"File:    {safe(f['name'])} ({f['size']} bytes, sha1 {f['hash']})")
    return "\n".join(lines) + "\n\n" + safe(m["text"], multiline=True)


# --- chat ------------------------------------------------------------------------------------

def _chat(args: argparse.Namespace) -> int:
    if args.follow:
        return _follow(args.base_dir, args.friend, args.count, print, args.since)
    if args.broadcast:
        text = args.friend if args.text is None else f"{args.friend} {args.text}"
        if not text:
            raise CliError("nothing to say: rsnode chat --broadcast TEXT")
        reached = _call(args.base_dir, "chat_send", {"broadcast": True, "text": text})["reached"]
        print(f"broadcast to {len(reached)} connected friend(s)")
        return 0
    if not args.friend or args.text is None:
        raise CliError("usage: rsnode chat FRIEND TEXT (or --follow, --broadcast)")
    sent = _call(args.base_dir, "chat_send", {"to": args.friend, "text": args.text})
    print("queued: the friend is offline, it leaves when they connect" if sent["queued"]
          else "sent")
    return 0


def _follow(base: pathlib.Path, friend: str | None, count: int | None,
            out: Callable[[str], object], since: int | None = None) -> int:
    """Print incoming messages (of ``friend`` only, if given) until ``count`` were printed,
    starting after history id ``since`` (default: from now on)."""
    query: dict[str, Any] = {"limit": 1}
    if friend:
        query["peer"] = friend
    cursor = _call(base, "chat_history", query)["last_id"] if since is None else since
    shown = 0
    try:
        while count is None or shown < count:
            page = _call(base, "chat_history", {**query, "after": cursor, "limit": 200})
            for m in page["messages"]:
                cursor = max(cursor, m["id"])
                if m["incoming"] and (count is None or shown < count):
                    out(format_message(m))
                    shown += 1
            if not page["messages"]:
                time.sleep(FOLLOW_PERIOD)
    except KeyboardInterrupt:
        pass
    return 0


# --- mail ------------------------------------------------------------------------------------

def _mail_send(args: argparse.Namespace) -> int:
    body = args.body
    if body is None and args.body_file is not None:
        body = pathlib.Path(args.body_file).read_text()
    if body is None:
        body = sys.stdin.read()
    if not (args.to or args.cc or args.bcc):
        raise CliError("a mail needs a recipient: --to FRIEND")
    mail_id = _call(args.base_dir, "mail_send", {"to": args.to, "cc": args.cc, "bcc": args.bcc,
                                                 "subject": args.subject, "body": body})
    print(f"mail {mail_id} is in the outbox; it leaves as each recipient connects")
    return 0


def _mail_list(args: argparse.Namespace) -> int:
    mails = _call(args.base_dir, "mail_list", {"unread": args.unread, "tag": args.tag})
    print(json.dumps(mails, indent=2) if args.json else format_mail_list(mails))
    return 0


def _mail_read(args: argparse.Namespace) -> int:
    mail = _call(args.base_dir, "mail_read", {"id": args.id})
    print(json.dumps(mail, indent=2) if args.json else format_mail(mail))
    return 0


# --- registration ------------------------------------------------------------------------------

def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-dir", type=pathlib.Path, default=default_base_dir(),
                        help="account directory (default: %(default)s)")
    return common


def register_chat(subparsers: Any) -> None:
    """Add ``chat``."""
    common = _common()
    p = subparsers.add_parser("chat", parents=[common],
                              help="send a chat message, or follow incoming ones")
    p.add_argument("friend", nargs="?", help="SSL id, profile name or location name")
    p.add_argument("text", nargs="?", help="the message")
    p.add_argument("--follow", action="store_true", help="print incoming messages")
    p.add_argument("--count", type=int, default=None,
                   help="with --follow: stop after this many messages")
    p.add_argument("--since", type=int, default=None,
                   help="with --follow: start after this history id (0: from the first)")
    p.add_argument("--broadcast", action="store_true",
                   help="send TEXT to every connected friend")
    p.set_defaults(func=_chat)


def register_mail(subparsers: Any) -> None:
    """Add ``mail`` (with ``send``, ``list``, ``read``)."""
    common = _common()
    mail = subparsers.add_parser("mail", help="send and read mail")
    sub = mail.add_subparsers(dest="mail_command", required=True)
    p = sub.add_parser("send", parents=[common], help="send a mail (body from --body, "
                       "--body-file or standard input)")
    p.add_argument("--to", action="append", default=[], help="recipient (repeatable)")
    p.add_argument("--cc", action="append", default=[], help="copy to (repeatable)")
    p.add_argument("--bcc", action="append", default=[], help="hidden copy to (repeatable)")
    p.add_argument("--subject", default="")
    p.add_argument("--body", default=None, help="HTML or plain text")
    p.add_argument("--body-file", default=None)
    p.set_defaults(func=_mail_send)
    p = sub.add_parser("list", parents=[common], help="the inbox (* = unread)")
    p.add_argument("--unread", action="store_true")
    p.add_argument("--tag", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_mail_list)
    p = sub.add_parser("read", parents=[common], help="show a mail and mark it read")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_mail_read)


# --- demo ------------------------------------------------------------------------------------

async def demo_chat_and_mail(reactor: Any, say: Callable[[str], None], alice: Any, bob: Any,
                             carol: Any) -> None:
    """The chat and mail part of ``rsnode demo``: three connected nodes talk."""
    from twisted.internet import defer

    from services.chat.service import MessageReceived
    from services.mail.service import MailReceived

    async def events_after(waits: list[tuple[Any, type]], action: Callable[[], Any]) -> list:
        ds = [node.next_event(event) for node, event in waits]
        await defer.maybeDeferred(action)
        for d in ds:
            d.addTimeout(15, reactor)
        try:
            return [await d for d in ds]
        except defer.TimeoutError:
            raise CliError("the demo did not get there in time") from None

    (received,) = await events_after([(bob, MessageReceived)],
                                     lambda: alice.send_chat(bob.ssl_id, "Hello <b>Bob</b>! ☕"))
    message = received.message
    say(f"✓ chat: alice → bob, private: bob got {message.text!r} "
        f"(the wire carried {message.body!r})")
    (received,) = await events_after([(carol, MessageReceived)],
                                     lambda: bob.broadcast_chat("Meeting at noon, everyone"))
    message = received.message
    say(f"✓ chat: bob → all his friends, broadcast: carol got {message.text!r}")
    at_carol, at_bob = (e.mail for e in await events_after(
        [(carol, MailReceived), (bob, MailReceived)],
        lambda: alice.send_mail([carol.ssl_id], "Minutes", "<p>Notes from <i>today</i>.</p>",
                                cc=[bob.ssl_id])))
    say(f"✓ mail: alice → carol (cc bob): carol's inbox has {at_carol.subject!r} from alice: "
        f"{at_carol.text!r}")
    (reply,) = await events_after([(alice, MailReceived)], lambda: bob.send_draft(
        bob.mail.reply(at_bob.id, "<p>Thanks!</p>")))
    say(f"✓ mail: bob replied to alice: {reply.mail.subject!r}")
