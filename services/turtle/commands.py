# -*- test-case-name: tests.test_turtle_nodes -*-
"""The control-channel commands of turtle routing (what ``rsnode`` calls).

``files_search_anonymous`` starts an anonymous search and answers, after ``wait`` seconds,
with the hits gathered so far (a Deferred); ``files_transfers`` is the transfer service's,
with each download's sources named ("friend NAME" or "tunnel"); ``files_get`` downloads
anonymously (tunnels, plus friends whose lists show the file) when asked to or when no
friend is named and none lists the file; ``turtle_settings`` shows or changes the relay
share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final

from twisted.internet import task

from pqi.wire.fields import Sha1Hash, SslId
from services.transfer.commands import parse_file_link
from services.transfer.service import TransferError

__all__ = ["turtle_commands", "MAX_SEARCH_WAIT"]

#: Longest an anonymous search command waits for hits (seconds).
MAX_SEARCH_WAIT: Final = 120.0


def turtle_commands(node: Any, commands: dict[str, Callable[[dict[str, Any]], Any]]
                    ) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """``commands`` (the transfer ones) extended with the turtle ones."""
    turtle = node.turtle

    def search(args: dict[str, Any]) -> Any:
        text = str(args.get("text", "")).strip()
        if not text:
            raise ValueError("give the text to search for")
        wait = min(MAX_SEARCH_WAIT, max(0.0, float(args.get("wait", 10.0))))
        request_id = turtle.search(text)

        def collect() -> dict[str, Any]:
            hits = turtle.searches.get(request_id)
            return {"request_id": request_id,
                    "results": [] if hits is None else hits.to_json()}
        return task.deferLater(node.reactor, wait, collect)

    def names() -> dict[SslId, str]:
        profiles = {p.pgp_id: p.name for p in node.friends_list.profiles()}
        return {loc.ssl_id: profiles.get(loc.pgp_id, "") or loc.name
                for loc in node.friends_list.locations()}

    def transfers(args: dict[str, Any]) -> list[dict[str, Any]]:
        rows = commands["files_transfers"](args)
        known = names()
        for row in rows:
            h = Sha1Hash.from_hex(row["hash"])
            t = node.transfers.downloads.get(h)
            files = turtle.files
            labels = []
            for p in [] if t is None else sorted(t.engine.sources):
                if files is not None and files.is_tunnel(p):
                    labels.append("tunnel")
                elif files is None or files.friend_serves(p, h):
                    labels.append(f"friend {known.get(p, p.to_hex())}")
            row["source_list"] = sorted(labels)
        return rows

    def get(args: dict[str, Any]) -> Any:
        if args.get("sources"):
            return commands["files_get"](args)
        if args.get("link"):
            name, size, file_hash = parse_file_link(str(args["link"]))
        else:
            try:
                file_hash = Sha1Hash.from_hex(str(args["hash"]))
            except (KeyError, ValueError):
                raise TransferError("give a 40-digit hex SHA-1 or a file link") from None
            size, name = int(args.get("size") or 0), str(args.get("name") or "")
        if not args.get("anonymous") and (not size or node.listed_by(file_hash)):
            return commands["files_get"](args)
        if not size:
            raise TransferError("an anonymous download needs the file's size")
        return node.download_anonymous(file_hash, size, name or file_hash.to_hex()).to_json()

    def settings(args: dict[str, Any]) -> dict[str, Any]:
        router = turtle.router
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

    return {**commands, "files_search_anonymous": search, "files_transfers": transfers,
            "files_get": get, "turtle_settings": settings}
