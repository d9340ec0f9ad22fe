# -*- test-case-name: tests.test_turtle_files -*-
"""Answering anonymous file searches from the anonymously shared files.

RetroShare answers a turtle string search with the files whose name contains the search
string, ignoring case (``SearchKeywords`` with the whole string as one keyword), and a
regexp search with the files its boolean expression accepts (`expression`), looking only at
folders flagged "anonymous search"; directories are never returned.  Hits are unique by
hash (one file shared twice is one hit).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pqi.items.turtle import (
    TurtleFileInfo,
    TurtleRegexpSearchRequestItem,
    TurtleStringSearchRequestItem,
)
from pqi.wire.fields import Sha1Hash

from .expression import ExpressionError, FileFacts, compile_expression

__all__ = ["anonymous_hits"]


def anonymous_hits(files: Iterable[Any], item: Any) -> list[TurtleFileInfo]:
    """The hits for search request ``item`` among ``files`` (each with ``name``, ``size``,
    ``hash`` and, when known, ``modif_ts``); a malformed expression gets none."""
    if isinstance(item, TurtleStringSearchRequestItem):
        needle = item.match_string.casefold()
        if not needle.strip():
            return []

        def accept(f: Any) -> bool:
            return needle in f.name.casefold()
    elif isinstance(item, TurtleRegexpSearchRequestItem):
        try:
            predicate = compile_expression(item.expression)
        except ExpressionError:
            return []

        def accept(f: Any) -> bool:
            return predicate(FileFacts(f.name, f.size, f.hash.to_hex(),
                                       getattr(f, "modif_ts", 0)))
    else:
        return []
    seen: set[Sha1Hash] = set()
    hits = []
    for f in files:
        if f.hash not in seen and accept(f):
            seen.add(f.hash)
            hits.append(TurtleFileInfo(size=f.size, hash=f.hash, name=f.name))
    return hits
