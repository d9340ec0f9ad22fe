# -*- test-case-name: tests.test_search -*-
"""Search friends' synced file lists locally: by name words, size range and hash.

Nothing goes on the wire: the trees the file-list service synced are searched in memory.  A
file that several friends have (same SHA-1) is one result listing every friend and path, which
is what a multi-source download needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Final

from pqi.wire.fields import Sha1Hash, SslId

from .remote import RemoteTree

__all__ = ["Query", "Source", "SearchResult", "search", "MAX_RESULTS", "EmptyQueryError"]

#: Most results one search returns.
MAX_RESULTS: Final = 1000


class EmptyQueryError(ValueError):
    """A search needs at least one word, a size bound or a hash."""


@dataclasses.dataclass(frozen=True)
class Query:
    """All given criteria must match: every word in the name (case-insensitive), the size
    within [min_size, max_size], the hash equal."""

    words: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    hash: Sha1Hash | None = None

    def __post_init__(self) -> None:
        words = tuple(w.casefold() for w in self.words if w.strip())
        object.__setattr__(self, "words", words)
        if not words and self.min_size is None and self.max_size is None and self.hash is None:
            raise EmptyQueryError("give words, a size bound or a hash to search for")

    def matches(self, name: str, size: int, file_hash: bytes) -> bool:
        if self.hash is not None and file_hash != self.hash:
            return False
        if self.min_size is not None and size < self.min_size:
            return False
        if self.max_size is not None and size > self.max_size:
            return False
        folded = name.casefold()
        return all(w in folded for w in self.words)


@dataclasses.dataclass(frozen=True)
class Source:
    """A friend that has the file, and where in its tree."""

    ssl_id: SslId
    path: str


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """One file (by hash) and every friend holding it."""

    hash: Sha1Hash
    name: str
    size: int
    sources: tuple[Source, ...]

    def to_json(self) -> dict[str, object]:
        return {"hash": self.hash.to_hex(), "name": self.name, "size": self.size,
                "sources": [{"ssl_id": s.ssl_id.to_hex(), "path": s.path}
                            for s in self.sources]}


def search(trees: Iterable[RemoteTree], query: Query,
           limit: int = MAX_RESULTS) -> list[SearchResult]:
    """Files matching ``query`` in ``trees``: most sources first, then by name."""
    found: dict[tuple[Sha1Hash, int], tuple[str, list[Source]]] = {}
    for tree in trees:
        for path, f in tree.walk():
            if not query.matches(f.name, f.size, f.hash):
                continue
            key = (f.hash, f.size)
            entry = found.get(key)
            if entry is None:
                if len(found) >= limit:
                    continue
                entry = found[key] = (f.name, [])
            full = f"{path}/{f.name}" if path else f.name
            entry[1].append(Source(tree.ssl_id, full))
    results = [SearchResult(h, name, size, _unique(sources))
               for (h, size), (name, sources) in found.items()]
    results.sort(key=lambda r: (-len({s.ssl_id for s in r.sources}), r.name, r.hash))
    return results


def _unique(sources: Sequence[Source]) -> tuple[Source, ...]:
    return tuple(sorted(set(sources), key=lambda s: (s.ssl_id, s.path)))
