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
from typing import Any

from services.cli.identity import CliError, default_base_dir
from services.cli.terminal import safe
from services.node.control_channel import ControlClientError, NodeNotRunningError, call

__all__ = ["register", "files_group", "format_tree", "format_results", "human_size"]


def files_group(subparsers: Any) -> Any:
    """The subparsers of ``rsnode files`` (created on first use, whoever registers first)."""
    parser = subparsers.choices.get("files")
    if parser is None:
        parser = subparsers.add_parser("files", help="share, browse, search and get files")
    for action in parser._actions:  # noqa: SLF001  (argparse has no public accessor)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action
    return parser.add_subparsers(dest="files_command", required=True)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-dir", type=pathlib.Path, default=default_base_dir(),
                        help="account directory (default: %(default)s)")
    common.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    return common


def _ask(args: argparse.Namespace, command: str, params: dict[str, Any]) -> Any:
    try:
        return call(args.base_dir, command, params, timeout=600.0)
    except NodeNotRunningError as e:
        raise CliError(f"{e}; start it with `rsnode run`") from e
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
    r = _ask(args, "files_share", params)
    return _print(args, r, f"sharing {r['path']} as {r['name']!r} ({r['visibility']}): "
                           f"{r['files']} files indexed")


def _shares(args: argparse.Namespace) -> int:
    rows = _ask(args, "files_shares", {})
    text = "\n".join(f"{r['name']}: {r['path']} ({r['visibility']}"
                     + (f": {', '.join(r['friends'])}" if r["friends"] else "")
                     + f"), {r['files']} files" for r in rows) or "nothing shared"
    return _print(args, rows, text)


def _unshare(args: argparse.Namespace) -> int:
    r = _ask(args, "files_unshare", {"name": args.name})
    return _print(args, r, f"{args.name} is no longer shared")


def _visibility(args: argparse.Namespace) -> int:
    r = _ask(args, "files_visibility", {"name": args.name, "visibility": args.visibility,
                                        "friends": args.friend or []})
    who = ", ".join(r["friends"]) if r["visibility"] == "friends" else r["visibility"]
    return _print(args, r, f"{r['name']} is now visible to: {who}")


def _browse(args: argparse.Namespace) -> int:
    tree = _ask(args, "files_browse", {"friend": args.friend, "path": args.path or ""})
    text = format_tree(tree) or "(nothing shared with us, or not synced yet)"
    return _print(args, tree, text)


def _search(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"words": args.words}
    if args.min_size is not None:
        params["min_size"] = args.min_size
    if args.max_size is not None:
        params["max_size"] = args.max_size
    if args.hash:
        params["hash"] = args.hash
    results = _ask(args, "files_search", params)
    return _print(args, results, format_results(results))


def register(subparsers: Any) -> None:
    """Add ``files share|shares|unshare|visibility|browse|search``."""
    sub = files_group(subparsers)
    common = _common()
    p = sub.add_parser("share", parents=[common], help="share a folder with friends")
    p.add_argument("dir", help="the folder to share")
    p.add_argument("--name", help="the name friends see (default: the folder's name)")
    p.add_argument("--visibility", choices=["all", "friends", "none"], default="all",
                   help="who sees it: every friend, the --friend ones, or nobody")
    p.add_argument("--friend", action="append",
                   help="a friend (name or SSL id) who may see it (with --visibility friends)")
    p.set_defaults(func=_share)
    p = sub.add_parser("shares", parents=[common], help="list our shared folders")
    p.set_defaults(func=_shares)
    p = sub.add_parser("unshare", parents=[common], help="stop sharing a folder")
    p.add_argument("name", help="the shared folder's name")
    p.set_defaults(func=_unshare)
    p = sub.add_parser("visibility", parents=[common], help="change who sees a folder")
    p.add_argument("name", help="the shared folder's name")
    p.add_argument("visibility", choices=["all", "friends", "none"])
    p.add_argument("--friend", action="append", help="a friend who may see it (repeatable)")
    p.set_defaults(func=_visibility)
    p = sub.add_parser("browse", parents=[common], help="a friend's shared files")
    p.add_argument("friend", help="the friend's name or SSL id")
    p.add_argument("path", nargs="?", help="a folder in the friend's tree (default: all)")
    p.set_defaults(func=_browse)
    p = sub.add_parser("search", parents=[common], help="search friends' file lists")
    p.add_argument("words", nargs="*", help="words that must all be in the file name")
    p.add_argument("--min-size", type=int, help="smallest size in bytes")
    p.add_argument("--max-size", type=int, help="largest size in bytes")
    p.add_argument("--hash", help="the file's SHA-1 (40 hex digits)")
    p.set_defaults(func=_search)
