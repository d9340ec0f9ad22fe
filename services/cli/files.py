# -*- test-case-name: tests.test_sharing_nodes -*-
"""``rsnode files ...``: share folders, browse a friend's files, search friends' lists.

Every subcommand asks the running node over the local control channel.  The ``files`` group
is shared with the file-transfer commands (``get``, ``transfers``...): each side adds its
subcommands to the group `files_group` returns, whichever registers first creates it.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from typing import Any

from pqi.wire.fields import Sha1Hash
from services.cli.common import CliError, NodeNotRunningCliError, base_dir_parent
from services.cli.terminal import safe
from services.node.control_client import ControlClientError, NodeNotRunningError, call

#: Seconds between two looks at the hashing progress while ``files share`` watches it.
WATCH_PERIOD = 0.5
#: Most looks ``files share`` takes (a day at `WATCH_PERIOD`): every loop is bounded.
MAX_WATCH_POLLS = 172_800

__all__ = ["register", "files_group", "format_tree", "format_results", "human_size",
           "format_hashing"]


def files_group(subparsers: Any) -> Any:
    """The subparsers of ``rsnode files`` (created on first use, whoever registers first)."""
    parser = subparsers.choices.get("files")
    if parser is None:
        parser = subparsers.add_parser(
            "files", help="share, browse, search and get files",
            description="Share folders, browse and search friends' files, download and "
                        "follow transfers; every action asks the running node.")
    for action in parser._actions:  # noqa: SLF001  (argparse has no public accessor)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action
    return parser.add_subparsers(dest="files_command", required=True, metavar="ACTION")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, parents=[base_dir_parent()])
    common.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    return common


def _ask(args: argparse.Namespace, command: str, params: dict[str, Any]) -> Any:
    try:
        return call(args.base_dir, command, params, timeout=600.0)
    except NodeNotRunningError:
        raise NodeNotRunningCliError(args.base_dir) from None
    except ControlClientError as e:
        message = str(e)
        if "unknown command" in message:
            raise CliError("the running node does not share files") from e
        raise CliError(message) from e
    except OSError as e:
        raise CliError(f"the node did not answer: {e}") from e


def human_size(n: int) -> str:
    """Bytes as ``115 B``, ``3.0 MiB``..."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_tree(tree: dict[str, Any], indent: str = "") -> str:
    """A friend's tree as an indented listing (folders end with ``/``)."""
    lines = []
    for d in tree["dirs"]:
        mark = "" if d.get("synced", True) else "  (not synced yet)"
        lines.append(f"{indent}{safe(d['name'])}/{mark}")
        if "files" in d:
            sub = format_tree(d, indent + "  ")
            if sub:
                lines.append(sub)
    for f in tree["files"]:
        lines.append(f"{indent}{safe(f['name'])}  {human_size(f['size'])}  {f['hash']}")
    return "\n".join(lines)


def format_results(results: list[dict[str, Any]]) -> str:
    """Search results: one line per file, then where each friend has it."""
    if not results:
        return "no file found in friends' lists"
    lines = []
    for r in results:
        lines.append(f"{safe(r['name'])}  {human_size(r['size'])}  {r['hash']}")
        for s in r["sources"]:
            lines.append(f"    at {s['ssl_id']}: {safe(s['path'])}")
    return "\n".join(lines)


def _print(args: argparse.Namespace, result: Any, text: str) -> int:
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


def _share(args: argparse.Namespace) -> int:
    path = pathlib.Path(args.dir).expanduser().resolve()
    params: dict[str, Any] = {"path": str(path), "visibility": args.visibility,
                              "friends": args.friend or []}
    if args.name:
        params["name"] = args.name
    if args.anonymous:
        params["anonymous"] = True
    r = _ask(args, "files_share", {**params, "wait": False})
    anonymous = ", anonymous search and download" if r.get("anonymous") else ""
    if not args.json:
        print(f"sharing {r['path']} as {r['name']!r} ({r['visibility']}{anonymous}); hashing "
              "(Ctrl-C stops watching, not sharing)", flush=True)
    shown = ""
    for _ in range(MAX_WATCH_POLLS):
        progress = _ask(args, "files_hashing", {})
        line = format_hashing(progress)
        if line != shown and not args.json:
            print(f"  {line}", flush=True)
            shown = line
        if not progress["scanning"]:
            break
        time.sleep(WATCH_PERIOD)
    r = next((f for f in _ask(args, "files_shares", {}) if f["name"] == r["name"]), r)
    return _print(args, r, f"{r['name']!r}: {r['files']} files indexed; friends see them "
                           "at their next sync (within seconds)")


def format_hashing(p: dict[str, int]) -> str:
    """The hashing line of ``files shares``."""
    if p.get("scanning") and p["files_done"] >= p["files_total"]:
        text = "hashing: looking through the folders"
    elif p["files_done"] >= p["files_total"]:
        text = f"hashing: done, {p['files_total']} files checked"
    else:
        text = (f"hashing: {p['files_done']} of {p['files_total']} files, "
                f"{human_size(p['bytes_done'])} of {human_size(p['bytes_total'])}")
    if p["waiting"]:
        text += f"; {p['waiting']} recently changed files wait to settle"
    return text


def _shares(args: argparse.Namespace) -> int:
    rows = _ask(args, "files_shares", {})
    progress = _ask(args, "files_hashing", {})
    text = "\n".join(f"{safe(r['name'])}: {r['path']} ({r['visibility']}"
                      + (f": {', '.join(r['friends'])}" if r["friends"] else "")
                      + ("; anonymous" if r.get("anonymous") else "")
                      + f"), {r['files']} files" for r in rows) or "nothing shared"
    if rows:
        text += "\n" + format_hashing(progress)
    return _print(args, {"shares": rows, "hashing": progress} if args.json else rows, text)


def _unshare(args: argparse.Namespace) -> int:
    r = _ask(args, "files_unshare", {"name": args.name})
    return _print(args, r, f"{args.name} is no longer shared")


def _visibility(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"name": args.name, "visibility": args.visibility,
                              "friends": args.friend or []}
    if args.anonymous is not None:
        params["anonymous"] = args.anonymous
    r = _ask(args, "files_visibility", params)
    who = ", ".join(r["friends"]) if r["visibility"] == "friends" else r["visibility"]
    return _print(args, r, f"{r['name']} is now visible to: {who}")


def _browse(args: argparse.Namespace) -> int:
    tree = _ask(args, "files_browse", {"friend": args.friend, "path": args.path or ""})
    text = format_tree(tree) or "(nothing shared with us, or not synced yet)"
    return _print(args, tree, text)


def format_anonymous_results(results: list[dict[str, Any]]) -> str:
    """Hits of an anonymous search: name, size, how many tunnels answered, the link."""
    from services.transfer.commands import file_link  # the transfer service: only here
    if not results:
        return "no anonymous hits (yet)"
    return "\n".join(
        f"{safe(r['name'])}  {human_size(r['size'])}  ({r['sources']} answer"
        f"{'s' if r['sources'] != 1 else ''})\n    "
        + file_link(r["name"], r["size"], Sha1Hash.from_hex(r["hash"]))
        for r in sorted(results, key=lambda r: (-r["sources"], r["name"])))


def _search(args: argparse.Namespace) -> int:
    if args.anonymous:
        text = " ".join(args.words).strip()
        if not text:
            raise CliError("give the text to search for")
        answer = _ask(args, "files_search_anonymous", {"text": text, "wait": args.wait})
        return _print(args, answer["results"], format_anonymous_results(answer["results"]))
    params: dict[str, Any] = {"words": args.words}
    if args.min_size is not None:
        params["min_size"] = args.min_size
    if args.max_size is not None:
        params["max_size"] = args.max_size
    if args.hash:
        params["hash"] = args.hash
    results = _ask(args, "files_search", params)
    return _print(args, results, format_results(results))


def _relay(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if args.rate is not None:
        params["relay_rate"] = args.rate
    if args.tunnel_requests is not None:
        params["max_tr_forward_rate"] = args.tunnel_requests
    r = _ask(args, "turtle_settings", params)
    share = "unlimited" if not r["relay_rate"] else f"{r['relay_rate']:.0f} bytes/s"
    return _print(args, r, f"relay share for others' tunnels: {share}; tunnel requests "
                           f"forwarded: up to {r['max_tr_forward_rate']}/s")


def register(subparsers: Any) -> None:
    """Add ``files share|shares|unshare|visibility|browse|search|relay``."""
    sub = files_group(subparsers)
    common = _common()
    p = sub.add_parser("share", parents=[common], help="share a folder with friends",
                       description="Share a folder and show the hashing progress until it is "
                                   "indexed (Ctrl-C stops watching, not sharing); friends "
                                   "see it at their next sync, within seconds.")
    p.add_argument("dir", help="the folder to share")
    p.add_argument("--name", help="the name friends see (default: the folder's name)")
    p.add_argument("--visibility", choices=["all", "friends", "none"], default="all",
                   help="who sees it: every friend, the --friend ones, or nobody")
    p.add_argument("--anonymous", action="store_true",
                   help="also found by anonymous (turtle) search and served through tunnels")
    p.add_argument("--friend", action="append",
                   help="a friend (name or SSL id) who may see it (with --visibility friends)")
    p.set_defaults(func=_share)
    p = sub.add_parser("shares", parents=[common], help="list our shared folders",
                       description="Our shared folders, who sees them, and hashing progress.")
    p.set_defaults(func=_shares)
    p = sub.add_parser("unshare", parents=[common], help="stop sharing a folder",
                       description="Stop sharing a folder (friends' lists drop it).")
    p.add_argument("name", help="the shared folder's name")
    p.set_defaults(func=_unshare)
    p = sub.add_parser("visibility", parents=[common], help="change who sees a folder",
                       description="Change who sees a shared folder.")
    p.add_argument("name", help="the shared folder's name")
    p.add_argument("visibility", choices=["all", "friends", "none"],
                   help="every friend, the --friend ones, or nobody")
    p.add_argument("--friend", action="append", help="a friend who may see it (repeatable)")
    p.add_argument("--anonymous", action=argparse.BooleanOptionalAction, default=None,
                   help="found by anonymous search and served through tunnels (or not)")
    p.set_defaults(func=_visibility)
    p = sub.add_parser("browse", parents=[common], help="a friend's shared files",
                       description="A friend's shared files as a tree, from the file list "
                                   "their node sent.")
    p.add_argument("friend", help="the friend's name or SSL id")
    p.add_argument("path", nargs="?", help="a folder in the friend's tree (default: all)")
    p.set_defaults(func=_browse)
    p = sub.add_parser("search", parents=[common], help="search friends' file lists",
                       description="Search the file lists friends sent us (by words, size "
                                   "or hash).")
    p.add_argument("words", nargs="*", help="words that must all be in the file name")
    p.add_argument("--min-size", type=int, help="smallest size in bytes")
    p.add_argument("--max-size", type=int, help="largest size in bytes")
    p.add_argument("--hash", help="the file's SHA-1 (40 hex digits)")
    p.add_argument("--anonymous", action="store_true",
                   help="search beyond friends, through tunnels (the words as one text)")
    p.add_argument("--wait", type=float, default=10.0,
                   help="seconds to gather anonymous hits (default: %(default)s)")
    p.set_defaults(func=_search)

    p = sub.add_parser("relay", parents=[common],
                       help="show or set what we relay for others' tunnels",
                       description="Show, or set, how much of others' turtle tunnel traffic "
                                   "this node relays: a bandwidth share and a rate of "
                                   "forwarded tunnel requests.")
    p.add_argument("--rate", type=float,
                   help="bytes/s of others' tunnel data we relay (0: unlimited, RetroShare's)")
    p.add_argument("--tunnel-requests", type=int,
                   help="tunnel requests forwarded per second (10..100, RetroShare: 20)")
    p.set_defaults(func=_relay)
