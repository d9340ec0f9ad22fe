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

from services.cli.identity import CliError, default_base_dir
from services.cli.terminal import safe
from services.node.control_channel import ControlClientError, NodeNotRunningError, call

__all__ = ["register", "format_transfers", "progress_bar"]


def _call(base: pathlib.Path, command: str, args: dict[str, Any]) -> Any:
    try:
        return call(base, command, args)
    except NodeNotRunningError as e:
        raise CliError(f"{e}; start it with `rsnode run`") from e
    except (ControlClientError, OSError) as e:
        raise CliError(str(e)) from e


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
        eta = "-" if r["eta"] is None else f"{r['eta']:.0f} s"
        line = (f"{progress_bar(r['done'], r['size'])} {pct:5.1f}% {_human(r['rate'])}/s "
                f"eta {eta:>6} {r['state']:<11} {safe(r['name'])}")
        if r["error"]:
            line += f"  ({safe(r['error'])})"
        lines.append(line)
    return "\n".join(lines)


def _get(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"priority": args.priority}
    if args.file.startswith("retroshare://"):
        request["link"] = args.file
    else:
        request.update(hash=args.file, size=args.size, name=args.name)
    if args.source:
        request["sources"] = args.source
    info = _call(args.base_dir, "files_get", request)
    print(f"downloading {safe(info['name'])} ({info['size']} bytes, {info['hash']})")
    return 0


def _transfers(args: argparse.Namespace) -> int:
    for n in range(args.count if args.count else 1_000_000_000):
        rows = _call(args.base_dir, "files_transfers", {})
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
        files = subparsers.add_parser("files", help="shared files and downloads")
    for action in files._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return action
    return files.add_subparsers(dest="files_command", required=True)


def register(subparsers: Any) -> None:
    """Add ``files get`` and ``files transfers``."""
    sub = _files_subparsers(subparsers)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-dir", type=pathlib.Path, default=default_base_dir(),
                        help="account directory (default: %(default)s)")
    p = sub.add_parser("get", parents=[common], help="download a file by hash or link")
    p.add_argument("file", help="SHA-1 (hex) or retroshare://file?... link")
    p.add_argument("--size", type=int, default=0, help="size in bytes (else from lists)")
    p.add_argument("--name", default="", help="file name to save under")
    p.add_argument("--source", action="append", default=[], help="friend SSL id (repeat)")
    p.add_argument("--priority", type=int, choices=(0, 1, 2), default=1)
    p.set_defaults(func=_get)
    p = sub.add_parser("transfers", parents=[common], help="downloads with live progress")
    p.add_argument("--once", action="store_true", help="print once and exit")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--count", type=int, default=0, help="stop after N refreshes")
    p.set_defaults(func=_transfers)
