# -*- test-case-name: tests.test_transfer_cli -*-
"""The control-channel commands of file transfer (what ``rsnode files ...`` calls).

``files_get`` takes a file as ``{"hash", "size", "name"}`` or as ``{"link"}``, a RetroShare
file link (``retroshare://file?name=...&size=...&hash=...``, what search results print).
Without a size, the friends' synced file lists are searched for the hash (when the node runs
the sharing service), which also gives the sources.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from pqi.wire.fields import Sha1Hash, SslId
from services.spec import Commands

from .errors import TransferError

__all__ = ["COMMANDS", "parse_file_link", "file_link"]


def file_link(name: str, size: int, file_hash: Sha1Hash) -> str:
    """The RetroShare link of a file."""
    query = urllib.parse.urlencode({"name": name, "size": str(size), "hash": file_hash.to_hex()},
                                   quote_via=urllib.parse.quote)
    return f"retroshare://file?{query}"


def parse_file_link(text: str) -> tuple[str, int, Sha1Hash]:
    """(name, size, hash) of a RetroShare file link; TransferError if it is not one."""
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme != "retroshare" or parts.netloc != "file":
        raise TransferError(f"not a retroshare://file link: {text!r}")
    q = urllib.parse.parse_qs(parts.query)
    try:
        return (q["name"][0], int(q["size"][0]), Sha1Hash.from_hex(q["hash"][0]))
    except (KeyError, ValueError, IndexError) as e:
        raise TransferError(f"incomplete file link: {e}") from None


def _lookup(node: Any, file_hash: Sha1Hash) -> tuple[str, int, list[SslId]] | None:
    sharing = getattr(node, "sharing", None)
    search = getattr(sharing, "search", None)
    if search is None:
        return None
    for result in search(file_hash=file_hash):
        return result.name, result.size, [s.ssl_id for s in result.sources]
    return None


#: Control commands of file transfer (``rsnode files get/transfers/pause/...``).
COMMANDS = Commands()


@COMMANDS.command("files_get")
def _get(node: Any, args: dict[str, Any]) -> Any:
    sources = [SslId.from_hex(s) for s in args.get("sources", [])] or None
    if args.get("link"):
        name, size, file_hash = parse_file_link(str(args["link"]))
    else:
        try:
            file_hash = Sha1Hash.from_hex(str(args["hash"]))
        except (KeyError, ValueError):
            raise TransferError("give a 40-digit hex SHA-1 or a file link") from None
        size = int(args.get("size") or 0)
        name = str(args.get("name") or "")
        if not size:
            found = _lookup(node, file_hash)
            if found is None:
                raise TransferError("no friend lists that file: give its size "
                                    "(--size) and a source")
            name = name or found[0]
            size = found[1]
            sources = sources or found[2]
    info = node.transfers.download(file_hash, size, name or file_hash.to_hex(), sources,
                                   int(args.get("priority", 1)))
    return info.to_json()


@COMMANDS.command("files_transfers")
def _transfers(node: Any, args: dict[str, Any]) -> Any:
    """The downloads, then (unless ``history`` is false) the finished ones as ``done``."""
    finished = ([dict(t.to_json(), state="done") for t in node.transfers.history]
                if args.get("history", True) else [])
    return [t.to_json() for t in node.transfers.transfers()] + finished


@COMMANDS.command("files_clear")
def _clear(node: Any, args: dict[str, Any]) -> int:
    """Forget the finished downloads; returns how many."""
    return int(node.transfers.clear_history())


@COMMANDS.command("files_pause")
def _pause(node: Any, args: dict[str, Any]) -> None:
    node.transfers.pause(Sha1Hash.from_hex(str(args["hash"])))


@COMMANDS.command("files_resume")
def _resume(node: Any, args: dict[str, Any]) -> None:
    node.transfers.resume(Sha1Hash.from_hex(str(args["hash"])))


@COMMANDS.command("files_cancel")
def _cancel(node: Any, args: dict[str, Any]) -> None:
    node.transfers.cancel(Sha1Hash.from_hex(str(args["hash"])))


@COMMANDS.command("files_priority")
def _priority(node: Any, args: dict[str, Any]) -> Any:
    return node.transfers.set_priority(Sha1Hash.from_hex(str(args["hash"])),
                                       int(args["priority"]))
