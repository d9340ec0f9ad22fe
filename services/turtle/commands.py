# -*- test-case-name: tests.test_turtle_nodes -*-
"""The control-channel commands of turtle routing (what ``rsnode`` calls).

``files_search_anonymous`` starts an anonymous search and answers, after ``wait`` seconds,
with the hits gathered so far (a Deferred); ``turtle_get`` downloads anonymously (tunnels,
plus friends whose lists show the file) when asked to or when no friend is named and none
lists the file, else as ``files_get`` does; ``turtle_transfers`` is ``files_transfers`` with
each download's sources named ("friend NAME" or "tunnel"); ``turtle_settings`` shows or
changes the relay share.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from twisted.internet import task

from pqi.wire.fields import Sha1Hash, SslId
from services.spec import Commands
from services.transfer.commands import COMMANDS as TRANSFER_COMMANDS
from services.transfer.commands import parse_file_link
from services.transfer.errors import TransferError

__all__ = ["COMMANDS", "MAX_SEARCH_WAIT"]

#: Longest an anonymous search command waits for hits (seconds).
MAX_SEARCH_WAIT: Final = 120.0

COMMANDS = Commands()


@COMMANDS.command("files_search_anonymous")
def _search(node: Any, args: dict[str, Any]) -> Any:
    text = str(args.get("text", "")).strip()
    if not text:
        raise ValueError("give the text to search for")
    wait = min(MAX_SEARCH_WAIT, max(0.0, float(args.get("wait", 10.0))))
    request_id = node.turtle.search(text)

    def collect() -> dict[str, Any]:
        hits = node.turtle.searches.get(request_id)
        return {"request_id": request_id, "results": [] if hits is None else hits.to_json()}
    return task.deferLater(node.reactor, wait, collect)


def _names(node: Any) -> dict[SslId, str]:
    profiles = {p.pgp_id: p.name for p in node.friends_list.profiles()}
    return {loc.ssl_id: profiles.get(loc.pgp_id, "") or loc.name
            for loc in node.friends_list.locations()}


@COMMANDS.command("turtle_transfers")
def _transfers(node: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    rows = TRANSFER_COMMANDS["files_transfers"](node, args)
    known = _names(node)
    files = node.turtle.files
    for row in rows:
        h = Sha1Hash.from_hex(row["hash"])
        t = node.transfers.downloads.get(h)
        labels = []
        for p in [] if t is None else sorted(t.engine.sources):
            if files is not None and files.is_tunnel(p):
                labels.append("tunnel")
            elif files is None or files.friend_serves(p, h):
                labels.append(f"friend {known.get(p, p.to_hex())}")
        row["source_list"] = sorted(labels)
    return rows


@COMMANDS.command("turtle_get")
def _get(node: Any, args: dict[str, Any]) -> Any:
    if args.get("sources"):
        return TRANSFER_COMMANDS["files_get"](node, args)
    if args.get("link"):
        name, size, file_hash = parse_file_link(str(args["link"]))
    else:
        try:
            file_hash = Sha1Hash.from_hex(str(args["hash"]))
        except (KeyError, ValueError):
            raise TransferError("give a 40-digit hex SHA-1 or a file link") from None
        size, name = int(args.get("size") or 0), str(args.get("name") or "")
    listed = node.turtle.files is not None and bool(node.turtle.files.listed_by(file_hash))
    if not args.get("anonymous") and (not size or listed):
        return TRANSFER_COMMANDS["files_get"](node, args)
    if not size:
        raise TransferError("an anonymous download needs the file's size")
    return node.turtle.download_anonymous(file_hash, size,
                                          name or file_hash.to_hex()).to_json()


@COMMANDS.command("turtle_settings")
def _settings(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    router = node.turtle.router
    if "relay_rate" in args:
        rate = float(args["relay_rate"])
        if rate < 0:
            raise ValueError("the relay rate is bytes/s, 0 for unlimited")
        router.limits = dataclasses.replace(router.limits, relay_rate=rate)
        router.reset_buckets()
    if "max_tr_forward_rate" in args:
        router.set_max_tr_forward_rate(int(args["max_tr_forward_rate"]))
    return {"relay_rate": router.limits.relay_rate,
            "max_tr_forward_rate": router.limits.max_tr_forward_rate}
