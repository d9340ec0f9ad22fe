# -*- test-case-name: tests.test_transfer_cli -*-
"""``rsnode files get HASH|LINK`` and ``rsnode files transfers`` (live progress bars).

Both talk to the running node over the control channel.  ``files`` may already exist (the
sharing commands add ``share``, ``search``, ``browse``): these subcommands join it.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from typing import Any

from services.cli.common import CliError, NodeNotRunningCliError, base_dir_parent
from services.cli.terminal import safe
from services.node.control_client import ControlClientError, NodeNotRunningError, call

__all__ = ["register", "format_transfers", "progress_bar"]


def _call(base: pathlib.Path, command: str, args: dict[str, Any]) -> Any:
    try:
        return call(base, command, args)
    except NodeNotRunningError:
        raise NodeNotRunningCliError(base) from None
    except (ControlClientError, OSError) as e:
        raise CliError(str(e)) from e


def _call_either(base: pathlib.Path, command: str, fallback: str,
                 args: dict[str, Any]) -> Any:
    """``command`` (the turtle-aware one), or ``fallback`` on a node that runs no turtle."""
    try:
        return _call(base, command, args)
    except CliError as e:
        if "unknown command" not in str(e):
            raise
    return _call(base, fallback, args)


def progress_bar(done: int, size: int, width: int = 30) -> str:
    filled = 0 if size <= 0 else min(width, done * width // size)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def format_transfers(rows: list[dict[str, Any]]) -> str:
    """One line per download: bar, percentage, rate, ETA, state, name."""
    if not rows:
        return "no downloads"
    lines = []
    for r in rows:
        pct = 100.0 * r["done"] / r["size"] if r["size"] else 100.0
        if r["state"] == "done":
            speed = "finished".ljust(22)
        elif r["state"] == "downloading" and not r["rate"]:
            speed = "starting".ljust(22)  # no rate measured yet: no "0.0 B/s, eta -"
        else:
            eta = "-" if r["eta"] is None else f"{r['eta']:.0f} s"
            speed = f"{_human(r['rate'])}/s eta {eta:>6}"
        line = (f"{progress_bar(r['done'], r['size'])} {pct:5.1f}% {speed} "
                f"{r['state']:<11} {safe(r['name'])}")
        if r["error"]:
            line += f"  ({safe(r['error'])})"
        lines.append(line)
        if r.get("source_list"):
            lines.append("      sources: " + ", ".join(r["source_list"]))
    return "\n".join(lines)


def _get(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"priority": args.priority}
    if args.file.startswith("retroshare://"):
        request["link"] = args.file
    else:
        request.update(hash=args.file, size=args.size, name=args.name)
    if args.source:
        request["sources"] = args.source
    if args.anonymous:
        request["anonymous"] = True
    info = _call_either(args.base_dir, "turtle_get", "files_get", request)
    print(f"downloading {safe(info['name'])} ({info['size']} bytes, {info['hash']})")
    return 0


def _find(args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The download ``args.file`` names: its hash (or a unique prefix) or its name."""
    wanted = args.file.strip()
    matches = [r for r in rows if r["state"] != "done" and (
        r["name"] == wanted or (len(wanted) >= 6 and r["hash"].startswith(wanted.lower())))]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(r["name"] for r in rows if r["state"] != "done") or "none"
    if not matches:
        raise CliError(f"no download called {wanted!r} (downloads: {names})")
    raise CliError(f"{wanted!r} names {len(matches)} downloads; give the hash")


def _act(args: argparse.Namespace) -> int:
    row = _find(args, _call(args.base_dir, "files_transfers", {"history": False}))
    _call(args.base_dir, f"files_{args.action}", {"hash": row["hash"]})
    said = {"pause": "paused", "resume": "resumed", "cancel": "cancelled (partial removed)"}
    print(f"{said[args.action]}: {row['name']}")
    return 0


def _clear(args: argparse.Namespace) -> int:
    count = _call(args.base_dir, "files_clear", {})
    print(f"cleared {count} finished download(s) from the list")
    return 0


def _transfers(args: argparse.Namespace) -> int:
    for n in range(args.count if args.count else 1_000_000_000):
        rows = _call_either(args.base_dir, "turtle_transfers", "files_transfers", {})
        text = format_transfers(rows)
        if args.once:
            print(text)
            return 0
        if n:
            sys.stdout.write(f"\x1b[{text.count(chr(10)) + 1}F\x1b[J")
        print(text, flush=True)
        time.sleep(args.interval)
    return 0


def _files_subparsers(subparsers: Any) -> Any:
    files = subparsers.choices.get("files")
    if files is None:
        files = subparsers.add_parser(
            "files", help="share, browse, search and get files",
            description="Share folders, browse and search friends' files, download and "
                        "follow transfers; every action asks the running node.")
    for action in files._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action
    return files.add_subparsers(dest="files_command", required=True, metavar="ACTION")


def register(subparsers: Any) -> None:
    """Add ``files get`` and ``files transfers``."""
    sub = _files_subparsers(subparsers)
    common = argparse.ArgumentParser(add_help=False, parents=[base_dir_parent()])
    p = sub.add_parser("get", parents=[common], help="download a file by hash or link",
                       description="Start downloading a file from friends who have it.")
    p.add_argument("file", help="SHA-1 (hex) or retroshare://file?... link")
    p.add_argument("--size", type=int, default=0, help="size in bytes (else from lists)")
    p.add_argument("--name", default="", help="file name to save under")
    p.add_argument("--source", action="append", default=[], help="friend SSL id (repeat)")
    p.add_argument("--priority", type=int, choices=(0, 1, 2), default=1,
                   help="0 low, 1 normal, 2 high (default: %(default)s)")
    p.add_argument("--anonymous", action="store_true",
                   help="through tunnels (the default when no friend lists the file)")
    p.set_defaults(func=_get)
    p = sub.add_parser("transfers", parents=[common], help="downloads with live progress",
                       description="Downloads with live progress, rate and time left; "
                                   "Ctrl-C to stop watching.")
    p.add_argument("--once", action="store_true", help="print once and exit")
    p.add_argument("--interval", type=float, default=1.0,
                   help="seconds between refreshes (default: %(default)s)")
    p.add_argument("--count", type=int, default=0, help="stop after N refreshes")
    p.set_defaults(func=_transfers)
    actions = {"pause": "stop downloading a file for now (it stays, resumable)",
               "resume": "resume a paused download, or retry one stopped by an error "
                         "(e.g. after freeing disk space)",
               "cancel": "stop a download and remove what was downloaded"}
    for action, text in actions.items():
        p = sub.add_parser(action, parents=[common], help=text.split(" (")[0],
                           description=text[0].upper() + text[1:] + ".")
        p.add_argument("file", help="the download's name or hash (as `files transfers` shows)")
        p.set_defaults(func=_act, action=action)
    p = sub.add_parser("clear", parents=[common], help="forget finished downloads",
                       description="Remove the finished downloads from `files transfers` "
                                   "(the files stay where they are).")
    p.set_defaults(func=_clear)
