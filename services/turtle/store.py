# -*- test-case-name: tests.test_turtle_files -*-
"""Which downloads go through tunnels, kept across restarts in the account directory.

A download started anonymously (no friend named as its source, or asked for so) digs
tunnels and is asked of direct friends only when their file lists show the file; the set of
such hashes is one small JSON file, replaced with temp + fsync + rename.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

from pqi.wire.fields import Sha1Hash

__all__ = ["AnonymousDownloads", "ANONYMOUS_FILE", "MAX_ANONYMOUS_DOWNLOADS"]

ANONYMOUS_FILE: Final = "turtle-downloads.json"
#: Anonymous downloads at most (the router monitors one hash each).
MAX_ANONYMOUS_DOWNLOADS: Final = 256


class AnonymousDownloads:
    """The set of file hashes downloaded through tunnels, persisted at ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.hashes: set[Sha1Hash] = set()
        if self.path.exists():
            with open(self.path) as f:
                entries = json.load(f)
            if not isinstance(entries, list):
                raise ValueError(f"{self.path}: not a list of hashes")
            self.hashes = {Sha1Hash.from_hex(str(h)) for h in entries[:MAX_ANONYMOUS_DOWNLOADS]}

    def add(self, file_hash: Sha1Hash) -> None:
        if file_hash in self.hashes:
            return
        if len(self.hashes) >= MAX_ANONYMOUS_DOWNLOADS:
            raise OverflowError(f"already {MAX_ANONYMOUS_DOWNLOADS} anonymous downloads")
        self.hashes.add(file_hash)
        self._save()

    def keep_only(self, hashes: set[Sha1Hash]) -> None:
        """Forget the downloads that are over (finished or cancelled)."""
        if self.hashes <= hashes:
            return
        self.hashes &= hashes
        self._save()

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(sorted(h.to_hex() for h in self.hashes), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
