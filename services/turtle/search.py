# -*- test-case-name: tests.test_turtle_files -*-
"""Answering anonymous file searches from the anonymously shared files.

RetroShare answers a turtle string search with the files whose name contains the search
string, ignoring case (``SearchKeywords`` with the whole string as one keyword), looking only
at folders flagged "anonymous search"; directories are never returned.  Hits are unique by
hash (one file shared twice is one hit).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pqi.items.turtle import TurtleFileInfo, TurtleStringSearchRequestItem
from pqi.wire.fields import Sha1Hash

__all__ = ["anonymous_hits"]


def anonymous_hits(files: Iterable[Any], item: Any) -> list[TurtleFileInfo]:
    """The hits for search request ``item`` among ``files`` (each with ``name``, ``size``,
    ``hash``).  Boolean-expression searches get no local answer yet (they are still
    forwarded)."""
    if not isinstance(item, TurtleStringSearchRequestItem):
        return []
    needle = item.match_string.casefold()
    if not needle.strip():
        return []
    seen: set[Sha1Hash] = set()
    hits = []
    for f in files:
        if f.hash not in seen and needle in f.name.casefold():
            seen.add(f.hash)
            hits.append(TurtleFileInfo(size=f.size, hash=f.hash, name=f.name))
    return hits
