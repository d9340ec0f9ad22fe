# -*- test-case-name: tests.test_chat_cli -*-
"""``rsnode chat`` and ``rsnode mail``: talk through the running node (``rsnode run``).

Every command goes over the local control channel to the node of ``--base-dir``; friends are
named by SSL id (hex), profile name or location name.  No password is asked: the node already
holds the unlocked keys, and the control channel admits only who can read its token file
(mode 0600 in the account directory), i.e. the account's owner.  Typed text is sent as text
(``<`` and ``&`` arrive verbatim); ``--html`` sends HTML, ``--raw`` shows received HTML.

    rsnode chat bob "Hello!"            a private message (queued if bob is offline)
    rsnode chat @IDENTITY "Hello!"      a distant chat message to a GXS identity
    rsnode chat --broadcast "Hi all"    a broadcast to every connected friend
    rsnode chat --follow [bob]          print messages as they come (Ctrl-C to stop)
    rsnode chat --follow --since 0      ... starting with the whole history
    rsnode mail send --to bob --subject S [--body B | < body]
    rsnode mail send --to @IDENTITY ...  distant mail to a GXS identity (mixes with friends)
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

from services.cli.common import CliError, ask_node, base_dir_parent
from services.cli.terminal import safe

__all__ = ["register_chat", "register_mail", "format_message", "format_mail_list",
           "format_mail", "FOLLOW_PERIOD", "demo_chat_and_mail"]

#: How often ``chat --follow`` asks the node for new messages (s).
FOLLOW_PERIOD = 0.3


def _call(base: pathlib.Path, command: str, args: dict[str, Any] | None = None) -> Any:
    return ask_node(base, command, args)


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _who(m: dict[str, Any], key: str, ids: bool) -> str:
    ident = m.get(key)
    name = m.get(f"{key}_name") or ident or "me"
    return f"{name} [{ident}]" if ids and ident else name


def format_message(m: dict[str, Any], ids: bool = False, raw: bool = False) -> str:
    """One chat line: local time, who by name (ids on request, and whether broadcast), the
    text as the friend wrote it (``raw``: the HTML body)."""
    who = _who(m, "peer", ids)
    arrow = "<-" if m["incoming"] else "->"
    kind = " (broadcast)" if m["public"] else ""
    text = safe(m['body' if raw else 'text'])
    return f"{_stamp(m['send_time'])} {arrow} {safe(who)}{kind}: {text}"


def format_mail_list(mails: list[dict[str, Any]], ids: bool = False) -> str:
    if not mails:
        return "no mail"
    lines = []
    for m in mails:
        flag = " " if m["read"] else "*"
        tags = f" [{safe(', '.join(m['tags']))}]" if m["tags"] else ""
        clip = f" (+{len(m['attachments'])} files)" if m["attachments"] else ""
        lines.append(f"{flag}{m['id']:>5}  {_stamp(m['send_time'])}  {_who(m, 'from', ids)}  "
                     f"{safe(m['subject'])}{tags}{clip}")
    return "\n".join(lines)


def _people(m: dict[str, Any], key: str, ids: bool) -> str:
    names = m.get(f"{key}_names") or m[key]
    if ids:
        names = [f"{n} [{i}]" for n, i in zip(names, m[key], strict=True)]
    return ", ".join(names)


def format_mail(m: dict[str, Any], ids: bool = False, raw: bool = False) -> str:
    lines = [f"From:    {_who(m, 'from', ids)}", f"To:      {_people(m, 'to', ids)}"]
    if m["cc"]:
        lines.append(f"Cc:      {_people(m, 'cc', ids)}")
    lines += [f"Date:    {_stamp(m['send_time'])}", f"Subject: {safe(m['subject'])}"]
    for f in m["attachments"]:
        lines.append(f"File:    {safe(f['name'])} ({f['size']} bytes, sha1 {f['hash']})")
    return "\n".join(lines) + "\n\n" + safe(m["body" if raw else "text"], multiline=True)


# --- chat ------------------------------------------------------------------------------------

def _chat(args: argparse.Namespace) -> int:
    if args.follow:
        return _follow(args.base_dir, args.friend, args.count,
                       lambda m: print(format_message(m, args.ids, args.raw), flush=True),
                       args.since)
    if args.broadcast:
        text = args.friend if args.text is None else f"{args.friend} {args.text}"
        if not text or not text.strip():
            raise CliError("nothing to say: rsnode chat --broadcast TEXT")
        reached = _call(args.base_dir, "chat_send", {"broadcast": True, "text": text,
                                                     "html": args.html})["reached"]
        print(f"broadcast to {len(reached)} connected friend(s)")
        return 0
    if args.friend and args.friend.startswith("@"):
        from services.cli.distant import send_distant_chat
        return send_distant_chat(args)
    if not args.friend or args.text is None:
        raise CliError("usage: rsnode chat FRIEND TEXT (or --follow, --broadcast)")
    if not args.text.strip():
        raise CliError("an empty message is not sent")
    sent = _call(args.base_dir, "chat_send", {"to": args.friend, "text": args.text,
                                              "html": args.html})
    print("queued: the friend is offline, it leaves when they connect" if sent["queued"]
          else "sent")
    return 0


def _follow(base: pathlib.Path, friend: str | None, count: int | None,
            out: Callable[[dict[str, Any]], object], since: int | None = None) -> int:
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
                    out(m)
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
    distant = {k: [r for r in getattr(args, k) if r.startswith("@")] for k in ("to", "cc", "bcc")}
    friends = {k: [r for r in getattr(args, k) if not r.startswith("@")]
               for k in ("to", "cc", "bcc")}
    if any(distant.values()):
        sent = _call(args.base_dir, "distant_mail_send", {
            **distant, "subject": args.subject, "body": body, "html": args.html,
            "identity": args.identity})
        print(f"queued for {len(sent['ids'])} identit{'y' if len(sent['ids']) == 1 else 'ies'}"
              ": stored and forwarded by friends until the recipient's node collects it")
    if any(friends.values()):
        mail_id = _call(args.base_dir, "mail_send", {**friends, "subject": args.subject,
                                                     "body": body, "html": args.html})
        print(mail_sent_line(mail_id, _call(args.base_dir, "mail_outbox")))
    return 0


def mail_sent_line(mail_id: int, outbox: list[dict[str, Any]]) -> str:
    """What ``mail send`` says: which copies left at once and which wait for a recipient."""
    copies = [e for e in outbox if e["mail"] == mail_id]
    online = sum(1 for e in copies if e["online"])
    waiting = len(copies) - online
    if not copies:
        return f"mail {mail_id} delivered"
    parts = []
    if online:
        parts.append(f"sent now to {online} connected recipient{'s' * (online != 1)}")
    if waiting:
        parts.append(f"it leaves for {waiting} recipient{'s' * (waiting != 1)} when they "
                     "connect")
    return f"mail {mail_id}: " + "; ".join(parts)


def _mail_list(args: argparse.Namespace) -> int:
    mails = _call(args.base_dir, "mail_list", {"unread": args.unread, "tag": args.tag})
    print(json.dumps(mails, indent=2) if args.json else format_mail_list(mails, args.ids))
    return 0


def _mail_read(args: argparse.Namespace) -> int:
    mail = _call(args.base_dir, "mail_read", {"id": args.id})
    print(json.dumps(mail, indent=2) if args.json else format_mail(mail, args.ids, args.raw))
    return 0


# --- registration ------------------------------------------------------------------------------

#: What the chat and mail descriptions say about the password.
_NOTE = (" Talks to the running node (`rsnode run`); no password is asked: only the account's "
         "owner can read the node's control token.")


def register_chat(subparsers: Any) -> None:
    """Add ``chat``."""
    common = [base_dir_parent()]
    note = _NOTE
    p = subparsers.add_parser("chat", parents=common,
                              help="send a chat message, or follow incoming ones",
                              description="Send a private or broadcast message, or follow "
                                          "incoming ones." + note)
    p.add_argument("friend", nargs="?", help="SSL id, profile name or location name; "
                   "@IDENTITY (hex) for a distant chat with a GXS identity")
    p.add_argument("text", nargs="?", help="the message, sent as plain text")
    p.add_argument("--follow", action="store_true", help="print incoming messages")
    p.add_argument("--count", type=int, default=None,
                   help="with --follow: stop after this many messages")
    p.add_argument("--since", type=int, default=None,
                   help="with --follow: start after this history id (0: from the first)")
    p.add_argument("--broadcast", action="store_true",
                   help="send TEXT to every connected friend")
    p.add_argument("--html", action="store_true", help="TEXT is HTML: send it as it is")
    p.add_argument("--raw", action="store_true",
                   help="with --follow: show the HTML bodies as received")
    p.add_argument("--ids", action="store_true", help="show SSL ids beside names")
    p.add_argument("--identity", default=None,
                   help="with @IDENTITY: our identity to chat as (default: our first)")
    p.set_defaults(func=_chat)


def register_mail(subparsers: Any) -> None:
    """Add ``mail`` (with ``send``, ``list``, ``read``)."""
    common = [base_dir_parent()]
    note = _NOTE
    mail = subparsers.add_parser("mail", help="send and read mail",
                                 description="Send and read mail." + note)
    sub = mail.add_subparsers(dest="mail_command", required=True, metavar="ACTION")
    p = sub.add_parser("send", parents=common, help="send a mail (body from --body, "
                       "--body-file or standard input)",
                       description="Queue a mail; it leaves as each recipient connects.")
    p.add_argument("--to", action="append", default=[],
                   help="recipient (repeatable): a friend, or @IDENTITY for distant mail")
    p.add_argument("--cc", action="append", default=[], help="copy to (repeatable)")
    p.add_argument("--bcc", action="append", default=[], help="hidden copy to (repeatable)")
    p.add_argument("--subject", default="", help="the subject line")
    p.add_argument("--body", default=None, help="the body, plain text (HTML with --html)")
    p.add_argument("--body-file", default=None, help="read the body from this file")
    p.add_argument("--html", action="store_true", help="the body is HTML: send it as it is")
    p.add_argument("--identity", default=None,
                   help="for @IDENTITY recipients: our identity to send as (default: first)")
    p.set_defaults(func=_mail_send)
    p = sub.add_parser("list", parents=common, help="the inbox (* = unread)",
                       description="The inbox, newest last: unread mark, id, local time, "
                                   "sender's name, subject.")
    p.add_argument("--unread", action="store_true", help="only unread mail")
    p.add_argument("--tag", default=None, help="only mail with this tag")
    p.add_argument("--json", action="store_true", help="print the raw records as JSON")
    p.add_argument("--ids", action="store_true", help="show SSL ids beside names")
    p.set_defaults(func=_mail_list)
    p = sub.add_parser("read", parents=common, help="show a mail and mark it read",
                       description="Show one mail as text and mark it read.")
    p.add_argument("id", type=int, help="the mail's id (from `mail list`)")
    p.add_argument("--json", action="store_true", help="print the raw record as JSON")
    p.add_argument("--ids", action="store_true", help="show SSL ids beside names")
    p.add_argument("--raw", action="store_true", help="show the HTML body as received")
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
                                     lambda: alice.send_chat(bob.ssl_id, "Hello <b>Bob</b>! ☕",
                                                             html=True))
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
