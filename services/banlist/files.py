# -*- test-case-name: tests.test_banlist_files -*-
"""`BannedFiles`: files we never search, show, serve, relay or download (RetroShare's
"unwanted content filtering", ``p3FileDatabase``).

The user bans a file by its SHA-1 (the primary list, with a name, size and time).  Friends
learn of it only as H(H), the SHA-1 of the hash (what turtle tunnels carry), in file-list
items 0x04 of service 0x0019: up to 200 hashes per item, all items of one sending under one
random session id, sent to each friend when it comes online and again whenever the primary
list changes.  A friend's new session id replaces what it said before.  While
``trust_friends`` is on (RetroShare's default) the friends' H(H) are banned too.  A file is
banned when its hash or its H(H) is in the resulting set.  No I/O: the service persists it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Iterable
from typing import Final

from pqi.items.filelists import FileListsBannedHashesItem
from pqi.wire.fields import Sha1Hash

__all__ = ["BannedFiles", "BannedFile", "hash_of_hash", "HASHES_PER_ITEM", "MAX_BANNED_FILES",
           "MAX_PEER_HASHES", "MAX_PEERS", "BannedFilesFullError"]

#: Hashes per 0x04 item (RetroShare starts a new item at 200).
HASHES_PER_ITEM: Final = 200
#: Files the user may ban.
MAX_BANNED_FILES: Final = 10_000
#: H(H) kept per friend; further ones are ignored.
MAX_PEER_HASHES: Final = 10_000
#: Friends whose lists we keep (only online friends' lists are kept, as RetroShare does).
MAX_PEERS: Final = 1024


class BannedFilesFullError(ValueError):
    """`MAX_BANNED_FILES` files are banned already."""


def hash_of_hash(file_hash: bytes) -> Sha1Hash:
    """H(H): the SHA-1 of the 20 hash bytes (``ftServer::encryptHash``)."""
    return Sha1Hash(hashlib.sha1(bytes(file_hash)).digest())


@dataclasses.dataclass(frozen=True)
class BannedFile:
    """One file of the primary list (``BannedFileEntry``)."""

    hash: Sha1Hash
    name: str = ""
    size: int = 0
    since: float = 0.0


@dataclasses.dataclass
class _PeerList:
    session_id: int
    hashes: set[Sha1Hash]


class BannedFiles:
    """The primary list, the friends' H(H) lists, and the question "is this file banned?"."""

    def __init__(self, trust_friends: bool = True) -> None:
        self.trust_friends = trust_friends
        self._primary: dict[Sha1Hash, BannedFile] = {}
        #: H(H) of each primary hash.
        self._hh: dict[Sha1Hash, Sha1Hash] = {}
        self._peers: dict[object, _PeerList] = {}
        #: When the primary list last changed, and when each friend was last sent it.
        self.changed_at = 0.0
        self._sent: dict[object, float] = {}

    # --- the user's list -----------------------------------------------------------------

    def ban(self, file_hash: Sha1Hash, now: float, name: str = "", size: int = 0) -> BannedFile:
        """Ban a file (a second ban keeps the first record)."""
        found = self._primary.get(file_hash)
        if found is not None:
            return found
        if len(self._primary) >= MAX_BANNED_FILES:
            raise BannedFilesFullError(f"{MAX_BANNED_FILES} files are banned already")
        entry = self._primary[file_hash] = BannedFile(file_hash, name, size, now)
        self._hh[hash_of_hash(file_hash)] = file_hash
        self.changed_at = now
        return entry

    def unban(self, file_hash: Sha1Hash, now: float) -> bool:
        if self._primary.pop(file_hash, None) is None:
            return False
        self._hh.pop(hash_of_hash(file_hash), None)
        self.changed_at = now
        return True

    def primary(self) -> list[BannedFile]:
        return sorted(self._primary.values(), key=lambda f: bytes(f.hash))

    def load(self, files: Iterable[BannedFile]) -> None:
        """Restore the persisted primary list (bounded)."""
        for f in files:
            if len(self._primary) >= MAX_BANNED_FILES:
                break
            self._primary[f.hash] = f
            self._hh[hash_of_hash(f.hash)] = f.hash

    # --- the question --------------------------------------------------------------------

    def is_banned(self, file_hash: bytes) -> bool:
        """Whether ``file_hash`` (a real hash or an H(H)) is banned."""
        h = Sha1Hash(bytes(file_hash))
        if h in self._primary or h in self._hh:
            return True
        hh = hash_of_hash(h)
        if self.trust_friends:
            return any(h in p.hashes or hh in p.hashes for p in self._peers.values())
        return False

    # --- exchange with friends -----------------------------------------------------------

    def items_for(self, peer: object, now: float) -> list[FileListsBannedHashesItem]:
        """The 0x04 items to send ``peer`` now: our primary list as H(H) under a fresh
        session id (an empty list is one empty item, as RetroShare sends)."""
        session = secrets.randbits(32)
        hashes = sorted(self._hh, key=bytes)
        self._sent[peer] = now
        chunks = [hashes[i:i + HASHES_PER_ITEM] for i in range(0, len(hashes), HASHES_PER_ITEM)]
        return [FileListsBannedHashesItem(session_id=session, encrypted_hashes=frozenset(c))
                for c in chunks or [[]]]

    def needs_sending(self, peer: object) -> bool:
        """Whether ``peer`` has not been sent the list since it last changed."""
        sent = self._sent.get(peer)
        return sent is None or sent < self.changed_at

    def received(self, peer: object, item: FileListsBannedHashesItem) -> None:
        """A friend's 0x04 item: a new session replaces its list, the same one extends it."""
        found = self._peers.get(peer)
        if found is None:
            if len(self._peers) >= MAX_PEERS:
                return
            found = self._peers[peer] = _PeerList(item.session_id, set())
        if found.session_id != item.session_id:
            found.session_id, found.hashes = item.session_id, set()
        for h in sorted(item.encrypted_hashes, key=bytes):
            if len(found.hashes) >= MAX_PEER_HASHES:
                break
            found.hashes.add(h)

    def peer_gone(self, peer: object) -> None:
        """A friend went offline: forget its list (RetroShare keeps online friends' only)."""
        self._peers.pop(peer, None)
        self._sent.pop(peer, None)

    def peer_hashes(self, peer: object) -> frozenset[Sha1Hash]:
        found = self._peers.get(peer)
        return frozenset() if found is None else frozenset(found.hashes)
