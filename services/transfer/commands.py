# -*- test-case-name: tests.test_transfer_cli -*-
"""The control-channel commands of file transfer (what ``rsnode files ...`` calls).

``files_get`` takes a file as ``{"hash", "size", "name"}`` or as ``{"link"}``, a RetroShare
file link (``retroshare://file?name=...&size=...&hash=...``, what search results print).
Without a size, the friends' synced file lists are searched for the hash (when the node runs
the sharing service), which also gives the sources.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from pqi.wire.fields import Sha1Hash, SslId

from .service import TransferError

__all__ = ["transfer_commands", "parse_file_link", "file_link"]


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


def transfer_commands(node: Any) -> dict[str, Callable[[dict[str, Any]], Any]]:
    svc = node.transfers

    def get(args: dict[str, Any]) -> Any:
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
        info = svc.download(file_hash, size, name or file_hash.to_hex(), sources,
                            int(args.get("priority", 1)))
        return info.to_json()

    def by_hash(op: Callable[[Sha1Hash], object]) -> Callable[[dict[str, Any]], Any]:
        return lambda args: op(Sha1Hash.from_hex(str(args["hash"]))) and None

    return {
        "files_get": get,
        "files_transfers": lambda args: [t.to_json() for t in svc.transfers()],
        "files_pause": by_hash(svc.pause),
        "files_resume": by_hash(svc.resume),
        "files_cancel": by_hash(svc.cancel),
        "files_priority": lambda args: svc.set_priority(Sha1Hash.from_hex(str(args["hash"])),
                                                        int(args["priority"])),
    }
