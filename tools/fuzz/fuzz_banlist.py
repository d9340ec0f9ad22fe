# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz what peers and the disk feed the block lists.

The first byte picks the input: even, a ban-list item (service 0x0101) or a banned-hashes
item (0x0019/0x04) as a friend sends it, decoded and fed to the rules and the banned files;
odd, the rest is a block file (``blocks.json``) read back.  Only `DecodeError` (items) or
`BlockFileError` (files) may come out, and the tables must keep their invariants: only
external addresses learned, bounds respected, every check answered.
"""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.items.banlist import BanListItem
    from pqi.items.filelists import FileListsBannedHashesItem
    from pqi.wire.errors import DecodeError
    from pqi.wire.fields import SslId
    from pqi.wire.item import decode
    from services.banlist import rules as rules_mod
    from services.banlist import store
    from services.banlist.files import BannedFiles
    from services.banlist.identities import IdentityBans
    from services.banlist.rules import BanRules

__all__ = ["one_input"]

_DIR = Path(tempfile.mkdtemp(prefix="fuzz-banlist-"))
_OWN = SslId(bytes(16))
_PEER = SslId(b"\x01" * 16)


def _item(data: bytes) -> None:
    try:
        item = decode(data)
    except DecodeError:
        return
    rules, files = BanRules(_OWN), BannedFiles()
    if isinstance(item, BanListItem):
        rules.received_list(_PEER, [(e.addr.host, e.level, e.reason, e.age)
                                    for e in item.entries if e.addr is not None
                                    and isinstance(e.addr.host, ipaddress.IPv4Address)],
                            1_000_000.0)
        for ban in rules.ban_set():
            assert ban.addr.is_global
            rules.check(ban.addr)
        assert len(rules.black_ranges()) <= rules_mod.MAX_RANGES
    elif isinstance(item, FileListsBannedHashesItem):
        files.received(_PEER, item)
        for h in item.encrypted_hashes:
            assert files.is_banned(h)


def _file(data: bytes) -> None:
    path = _DIR / store.BLOCKS_FILE
    path.write_bytes(data)
    try:
        store.load(path, BanRules(_OWN), BannedFiles(), IdentityBans(), SslId.from_hex, 0.0)
    except store.BlockFileError:
        return


def one_input(data: bytes) -> None:
    """Feed ``data`` (after its selector byte) as an item or as a block file."""
    if not data:
        return
    if data[0] % 2 == 0:
        _item(data[1:])
    else:
        _file(data[1:])


if __name__ == "__main__":
    fuzz(one_input)
