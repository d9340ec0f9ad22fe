# -*- test-case-name: tests.test_banlist_service -*-
"""The block lists on disk: one JSON file in the account directory, replaced atomically.

It holds what the ban-list service keeps between runs (RetroShare's ``banlist.cfg`` and
the file-list's banned files): the settings, the user's black and white ranges, each source's
reported addresses, the banned files and our identity opinions.  Denied friends live in the
friend list (`pqi.identity.friends.FriendList.deny_profile`).  Every change rewrites the file
with `pqi.storage.atomic_write`, so a kill -9 leaves the previous or the new list.  A file
that does not parse is a `BlockFileError`: the node refuses to start rather than run with an
empty ban list.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Final

from pqi.storage import atomic_write
from pqi.wire.fields import Sha1Hash

from .files import BannedFile, BannedFiles
from .identities import IdentityBans, Opinion
from .rules import Ban, BanRules, BanSettings, Reason

__all__ = ["BLOCKS_FILE", "BlockFileError", "save", "load"]

#: The file, in the account directory.
BLOCKS_FILE: Final = "blocks.json"
_VERSION: Final = 1


class BlockFileError(ValueError):
    """The block file exists but is not a block list this version reads."""


def _ban(b: Ban) -> dict[str, Any]:
    return {"addr": str(b.addr), "masked_bytes": b.masked_bytes, "reason": int(b.reason),
            "level": int(b.level), "since": b.since, "comment": b.comment}


def _unban(d: dict[str, Any]) -> Ban:
    return Ban(ipaddress.IPv4Address(d["addr"]), int(d["masked_bytes"]), int(d["reason"]),
               int(d["level"]), float(d["since"]), str(d["comment"]))


def save(path: str | os.PathLike[str], rules: BanRules, files: BannedFiles,
         identities: IdentityBans) -> None:
    """Write everything to ``path`` (atomically)."""
    data = {
        "version": _VERSION,
        "settings": dataclasses.asdict(rules.settings),
        "black": [_ban(b) for b in rules.black_ranges() if b.reason != Reason.AUTO_RANGE],
        "white": [_ban(b) for b in rules.whitelist()],
        "sources": [{"peer": bytes(k).hex() if isinstance(k, bytes) else str(k),
                     "last_update": last, "entries": [_ban(b) for b in entries]}
                    for k, (last, entries) in rules.sources().items()],
        "files": {"trust_friends": files.trust_friends,
                  "banned": [{"hash": f.hash.to_hex(), "name": f.name, "size": f.size,
                              "since": f.since} for f in files.primary()]},
        "identities": [{"id": k.hex(), "opinion": int(o), "reason": r, "since": t}
                       for k, (o, r, t) in sorted(identities.own_opinions().items())],
    }
    atomic_write(Path(path), json.dumps(data, indent=1, sort_keys=True).encode())


def load(path: str | os.PathLike[str], rules: BanRules, files: BannedFiles,
         identities: IdentityBans, peer_key: Any, now: float) -> bool:
    """Fill the three tables from ``path``; False when there is no file yet.

    ``peer_key(hex)`` turns a stored source back into the key the rules use.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return False
    try:
        data = json.loads(raw.decode("utf-8"))
        if data.get("version") != _VERSION:
            raise BlockFileError(f"{path}: unknown version {data.get('version')!r}")
        settings = data["settings"]
        rules.settings = BanSettings(**{f.name: type(getattr(BanSettings(), f.name))(
            settings[f.name]) for f in dataclasses.fields(BanSettings) if f.name in settings})
        for b in data["black"]:
            rules.load_range(_unban(b), white=False)
        for b in data["white"]:
            rules.load_range(_unban(b), white=True)
        for s in data["sources"]:
            rules.load_source(peer_key(s["peer"]), float(s["last_update"]),
                              [_unban(b) for b in s["entries"]])
        files.trust_friends = bool(data["files"]["trust_friends"])
        files.load(BannedFile(Sha1Hash.from_hex(f["hash"]), str(f["name"]), int(f["size"]),
                              float(f["since"])) for f in data["files"]["banned"])
        for i in data["identities"]:
            identities.set_own_opinion(bytes.fromhex(i["id"]), Opinion(int(i["opinion"])),
                                       float(i["since"]), str(i["reason"]))
    except BlockFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise BlockFileError(f"{path}: {e}") from e
    rules.condense(now)
    return True
