"""Blocking communication: the ban-list service (0x0101) with RetroShare's rules for banned
IP addresses, denied friends, banned files and banned identities (`service` assembles them on
a node; `rules`, `files` and `identities` hold the decisions, without I/O; `store` keeps them
on disk)."""

from .files import BannedFile, BannedFiles, hash_of_hash
from .identities import IdentityBans, Opinion
from .rules import Ban, BanRules, BanSettings, CheckResult, Origin, Reason
from .service import SPEC, BanListService, BlocksChanged, parse_range
from .store import BLOCKS_FILE, BlockFileError

__all__ = [
    "BannedFile", "BannedFiles", "hash_of_hash", "IdentityBans", "Opinion",
    "Ban", "BanRules", "BanSettings", "CheckResult", "Origin", "Reason",
    "SPEC", "BanListService", "BlocksChanged", "parse_range", "BLOCKS_FILE", "BlockFileError",
]
