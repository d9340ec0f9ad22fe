# -*- test-case-name: tests.test_publish_commands -*-
"""``rsnode channel``, ``rsnode forum``, ``rsnode board``: GXS publishing on the running node.

    rsnode channel create NAME [--description D] [--identity ID]
    rsnode channel list [--json]                 ours, those we follow, those friends show
    rsnode channel read CHANNEL [--json] [--mark-read]
    rsnode channel post CHANNEL TITLE [--body B] [--file PATH]... [--edit POST]
    rsnode channel subscribe CHANNEL [--auto-download | --no-auto-download] [--distant]
    rsnode channel search TEXT [--wait S] [--json]   channels found beyond our friends
    rsnode channel unsubscribe CHANNEL
    rsnode channel comment CHANNEL POST TEXT     (and ``vote CHANNEL POST [--down]``)
    rsnode channel download CHANNEL POST         fetch a post's files
    rsnode channel follow [CHANNEL] [--count N]  print new posts as they arrive
    rsnode forum create|list|read|subscribe|unsubscribe|search|follow ...   (as above)
    rsnode forum post FORUM TITLE --body B [--reply-to MSG] [--edit MSG]
    rsnode forum pin FORUM MSG [--unpin]
    rsnode board create|list|read|subscribe|unsubscribe|search|comment|vote|follow ...
    rsnode board post BOARD TITLE [--link URL] [--body NOTES]

Text that came from the network (names, titles, bodies) is printed with control characters
replaced, so a post cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from collections.abc import Callable
from typing import Any, Final

from services.cli.common import ask_node, base_dir_parent, describe_subcommands

__all__ = ["register", "format_groups", "format_group", "format_hits", "follow", "search",
           "FOLLOW_PERIOD", "SEARCH_WAIT"]

#: How often ``follow`` and ``search`` ask the node for news (s).
FOLLOW_PERIOD: Final = 0.3
#: How long ``search`` collects hits by default (s); answers come back hop by hop.
SEARCH_WAIT: Final = 5.0
_HELP: Final = {"channel": "channels: the owner posts (with files), subscribers comment",
                "forum": "forums: threads and replies signed by their authors",
                "board": "boards: links and text posts, comments and votes"}


def _clean(text: Any) -> str:
    """Network text made safe for a terminal: control characters become U+FFFD."""
    return "".join(ch if ch.isprintable() or ch == "\n" else "\ufffd" for ch in str(text))


def format_groups(groups: list[dict[str, Any]], kind: str) -> str:
    if not groups:
        return f"no {kind} known yet (create one: rsnode {kind} create NAME)"
    lines = []
    for g in groups:
        mark = "*" if g["admin"] else "+" if g["subscribed"] else " "
        lines.append(f"{mark} {g['id']}  {_clean(g['name'])}  ({g['messages']} messages)  "
                     f"{_clean(g['description'])}")
    return "\n".join(lines) + "\n(* ours, + followed)"


def format_hits(hits: list[dict[str, Any]], kind: str) -> str:
    if not hits:
        return f"no {kind} found"
    return "\n".join(f"{h['id']}  {_clean(h['name'])}  ({h['messages']} messages)"
                     for h in hits) + f"\n(follow one: rsnode {kind} subscribe ID)"


def search(base: pathlib.Path, kind: str, text: str, wait: float, as_json: bool,
           out: Callable[[str], object]) -> int:
    """Search the network for groups by name, collect hits for ``wait`` seconds, print."""
    rid = ask_node(base, f"{kind}_search", {"text": text})["id"]
    deadline = time.monotonic() + max(0.0, wait)
    hits: list[dict[str, Any]] = []
    while True:
        hits = ask_node(base, f"{kind}_search_results", {"id": rid})
        if time.monotonic() >= deadline:
            break
        time.sleep(min(FOLLOW_PERIOD, max(0.0, deadline - time.monotonic())))
    out(json.dumps(hits, indent=2) if as_json else format_hits(hits, kind))
    return 0


def _line(m: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["publish_ts"]))
    who = m["author"] or "publisher"
    head = f"{m['id'][:12]} {when} {who[:12]}"
    if m["kind"] == "vote":
        return f"{head} vote {m['vote']} on {m['parent'][:12]}"
    if m["kind"] == "comment":
        return f"{head} comment on {m['parent'][:12]}: {_clean(m['text'])}"
    unread = "" if m["read"] else " (new)"
    text = m.get("body") or m.get("notes", "")
    out = f"{head} {_clean(m['title'])}{unread}"
    if m.get("parent"):
        out += f"  (reply to {m['parent'][:12]})"
    if m.get("link"):
        out += f"\n    {_clean(m['link'])}"
    if text:
        out += "\n    " + _clean(text).replace("\n", "\n    ")
    for f in m.get("files", ()):
        out += f"\n    file {_clean(f['name'])} ({f['size']} bytes, {f['hash']})"
    return out


def format_group(data: dict[str, Any]) -> str:
    lines = [f"{data['id']}  {_clean(data['name'])}: {_clean(data['description'])}"]
    lines += [_line(m) for m in data["posts"]]
    return "\n".join(lines)


def follow(base: pathlib.Path, kind: str, group: str | None, count: int | None,
           out: Callable[[str], object]) -> int:
    """Print new messages from friends (of ``group`` only, if given) until ``count``."""
    cursor = ask_node(base, f"{kind}_news", {})["last"]
    shown = 0
    try:
        while count is None or shown < count:
            page = ask_node(base, f"{kind}_news", {"after": cursor})
            for m in page["messages"]:
                cursor = max(cursor, m["seq"])
                if (group is None or m["group"] == group) and (count is None or shown < count):
                    out(f"[{m['group'][:12]}] {_line(m)}")
                    shown += 1
            if not page["messages"]:
                time.sleep(FOLLOW_PERIOD)
    except KeyboardInterrupt:
        pass
    return 0


def _run(kind: str, action: str, build: Callable[[argparse.Namespace], dict[str, Any]],
         show: Callable[[Any, argparse.Namespace], str]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        answer = ask_node(args.base_dir, f"{kind}_{action}", build(args))
        text = show(answer, args)
        if text:
            print(text)
        return 0
    return run


def _register_kind(subparsers: Any, kind: str) -> None:
    common = base_dir_parent()
    group_help = f"{kind} id (32 hex digits, as `{kind} list` shows it)"
    sub = subparsers.add_parser(
        kind, help=_HELP[kind],
        description=f"RetroShare {_HELP[kind]}; synced friend to friend, every message "
                    "signed and checked at every hop.",
    ).add_subparsers(dest=f"{kind}_command", required=True)

    p = sub.add_parser("create", parents=[common], help=f"create a {kind}")
    p.add_argument("name", help=f"the {kind}'s name")
    p.add_argument("--description", default="", help="what it is about")
    p.add_argument("--identity", default=None, help="our identity signing it (default: first)")
    if kind == "forum":
        p.add_argument("--moderator", action="append", default=[], dest="moderators",
                       help="an identity that may edit others' posts (repeatable)")
    p.set_defaults(func=_run(kind, "create", lambda a: {
        "name": a.name, "description": a.description, "identity": a.identity,
        "moderators": getattr(a, "moderators", [])}, lambda r, a: str(r)))

    p = sub.add_parser("list", parents=[common], help=f"{kind}s we know")
    p.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    p.set_defaults(func=_run(kind, "list", lambda a: {}, lambda r, a: json.dumps(r, indent=2)
                             if a.json else format_groups(r, kind)))

    p = sub.add_parser("read", parents=[common], help=f"the posts of a {kind}")
    p.add_argument("group", help=group_help)
    p.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    p.add_argument("--mark-read", action="store_true", help="mark everything read")
    p.set_defaults(func=_run(kind, "read", lambda a: {"group": a.group,
                                                      "mark_read": a.mark_read},
                             lambda r, a: json.dumps(r, indent=2) if a.json
                             else format_group(r)))

    p = sub.add_parser("post", parents=[common], help=f"post in a {kind}")
    p.add_argument("group", help=group_help)
    p.add_argument("title", help="the post's title")
    p.add_argument("--body", default="", help="the text (board: the notes)")
    p.add_argument("--edit", default=None, help="a post this one replaces (a new version)")
    if kind == "channel":
        p.add_argument("--file", action="append", default=[], dest="files",
                       help="attach a file (repeatable); subscribers fetch it")
    if kind == "forum":
        p.add_argument("--reply-to", default=None, help="the message this one answers")
    if kind == "board":
        p.add_argument("--link", default="", help="the link posted")
    if kind != "channel":
        p.add_argument("--identity", default=None, help="our identity (default: first)")
    p.set_defaults(func=_run(kind, "post", lambda a: {
        "group": a.group, "title": a.title, "body": a.body, "original": a.edit,
        "files": [str(pathlib.Path(f).resolve()) for f in getattr(a, "files", [])],
        "parent": getattr(a, "reply_to", None), "link": getattr(a, "link", ""),
        "identity": getattr(a, "identity", None)}, lambda r, a: str(r)))

    p = sub.add_parser("subscribe", parents=[common], help=f"follow a {kind}")
    p.add_argument("group", help=group_help)
    if kind == "channel":
        p.add_argument("--auto-download", action=argparse.BooleanOptionalAction, default=None,
                       help="fetch the files of new posts (default: the node's setting)")
    p.add_argument("--distant", action="store_true",
                   help="sync it through turtle tunnels too (implied for a group no friend "
                        "showed us, such as a search hit)")

    def subscribe_args(a: argparse.Namespace) -> dict[str, Any]:
        args: dict[str, Any] = {"group": a.group, "subscribe": True, "distant": a.distant}
        if getattr(a, "auto_download", None) is not None:
            args["auto_download"] = a.auto_download
        return args
    p.set_defaults(func=_run(kind, "subscribe", subscribe_args,
                             lambda r, a: f"following {a.group}"))

    p = sub.add_parser("unsubscribe", parents=[common], help=f"stop following a {kind}")
    p.add_argument("group", help=group_help)
    p.set_defaults(func=_run(kind, "subscribe", lambda a: {"group": a.group,
                                                           "subscribe": False},
                             lambda r, a: f"no longer following {a.group}"))

    p = sub.add_parser("search", parents=[common],
                       help=f"find {kind}s by name beyond our friends (over turtle)")
    p.add_argument("text", help="words the name must hold")
    p.add_argument("--wait", type=float, default=SEARCH_WAIT,
                   help=f"seconds to collect answers (default {SEARCH_WAIT:g})")
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    p.set_defaults(func=lambda a: search(a.base_dir, kind, a.text, a.wait, a.json, print))

    p = sub.add_parser("follow", parents=[common], help="print new messages as they arrive")
    p.add_argument("group", nargs="?", help=f"only this {kind} (default: all)")
    p.add_argument("--count", type=int, default=None, help="stop after this many messages")
    p.set_defaults(func=lambda a: follow(a.base_dir, kind, a.group, a.count, print))

    if kind == "forum":
        p = sub.add_parser("pin", parents=[common], help="pin a post (forum admin)")
        p.add_argument("group", help=group_help)
        p.add_argument("message", help="the message to pin")
        p.add_argument("--unpin", action="store_true", help="unpin it instead")
        p.set_defaults(func=_run(kind, "pin", lambda a: {
            "group": a.group, "message": a.message, "pinned": not a.unpin},
            lambda r, a: "unpinned" if a.unpin else "pinned"))
    else:
        p = sub.add_parser("comment", parents=[common], help="comment on a post")
        p.add_argument("group", help=group_help)
        p.add_argument("post", help="the post")
        p.add_argument("text", help="the comment")
        p.add_argument("--identity", default=None, help="our identity (default: first)")
        p.set_defaults(func=_run(kind, "comment", lambda a: {
            "group": a.group, "post": a.post, "text": a.text, "identity": a.identity},
            lambda r, a: str(r)))
        p = sub.add_parser("vote", parents=[common], help="vote on a post")
        p.add_argument("group", help=group_help)
        p.add_argument("post", help="the post")
        p.add_argument("--down", action="store_true", help="a down vote")
        p.add_argument("--identity", default=None, help="our identity (default: first)")
        p.set_defaults(func=_run(kind, "vote", lambda a: {
            "group": a.group, "post": a.post, "up": not a.down, "identity": a.identity},
            lambda r, a: str(r)))
    if kind == "channel":
        p = sub.add_parser("download", parents=[common], help="fetch the files of a post")
        p.add_argument("group", help=group_help)
        p.add_argument("post", help="the post")
        p.set_defaults(func=_run(kind, "download", lambda a: {"group": a.group,
                                                              "post": a.post},
                                 lambda r, a: "\n".join(
                                     f"fetching {_clean(f['name'])} ({f['size']} bytes)"
                                     for f in r) or "nothing to fetch"))
    describe_subcommands(sub)


def register(subparsers: Any) -> None:
    """Add ``channel``, ``forum`` and ``board``."""
    for kind in ("channel", "forum", "board"):
        _register_kind(subparsers, kind)
