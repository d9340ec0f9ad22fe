"""Local search over friends' synced file lists: words, sizes, hash, grouping by hash."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire.fields import Sha1Hash
from services.sharing.dirlist import DirContent, RemoteFile
from services.sharing.remote import RemoteTree
from services.sharing.search import EmptyQueryError, Query, Source, search
from tests.service_fakes import peer
from tests.strategies_sharing import remote_files

ROOT = Sha1Hash.null()


def h(n: int) -> Sha1Hash:
    return Sha1Hash(hashlib.sha1(bytes([n])).digest())


NEEDLE = RemoteFile("needle-5MiB.bin", 5242880, h(50), 1)
RANDOM = RemoteFile("random-3MiB.bin", 3145728, h(51), 1)
HELLO = RemoteFile("Hello-From-Bob.txt", 115, h(52), 1)


def tree(n: int, files_top: tuple, files_sub: tuple) -> RemoteTree:
    t = RemoteTree(peer(n).ssl_id)
    t.apply(ROOT, DirContent("", 1, 0, (h(1),)), 1.0)
    t.apply(h(1), DirContent("shared", 1, 1, (h(2),), files_top), 1.0)
    t.apply(h(2), DirContent("data", 1, 1, (), files_sub), 1.0)
    return t


def test_words_are_all_required_case_insensitive() -> None:
    """Every word must appear in the name, in any case."""
    trees = [tree(1, (HELLO,), (NEEDLE, RANDOM))]
    assert [r.name for r in search(trees, Query(("MIB",)))] == ["needle-5MiB.bin",
                                                                "random-3MiB.bin"]
    assert [r.name for r in search(trees, Query(("needle", "bin")))] == ["needle-5MiB.bin"]
    assert [r.name for r in search(trees, Query(("hello", "bob")))] == ["Hello-From-Bob.txt"]
    assert search(trees, Query(("needle", "txt"))) == []


def test_size_and_hash() -> None:
    """Size bounds are inclusive; a hash query finds exactly that file."""
    trees = [tree(1, (HELLO,), (NEEDLE, RANDOM))]
    assert [r.size for r in search(trees, Query(min_size=3145728, max_size=4000000))] == [
        3145728]
    assert [r.name for r in search(trees, Query(max_size=115))] == ["Hello-From-Bob.txt"]
    (hit,) = search(trees, Query(hash=h(50)))
    assert hit.name == "needle-5MiB.bin" and hit.sources == (
        Source(peer(1).ssl_id, "shared/data/needle-5MiB.bin"),)


def test_same_file_at_several_friends_is_one_result() -> None:
    """A file (same hash) held by two friends is one result listing both, ranked first."""
    trees = [tree(1, (HELLO,), (NEEDLE,)), tree(2, (NEEDLE,), (RANDOM,))]
    results = search(trees, Query(("bin",)))
    assert [r.name for r in results] == ["needle-5MiB.bin", "random-3MiB.bin"]
    assert {s.ssl_id for s in results[0].sources} == {peer(1).ssl_id, peer(2).ssl_id}
    assert {s.path for s in results[0].sources} == {"shared/data/needle-5MiB.bin",
                                                    "shared/needle-5MiB.bin"}


def test_empty_query_refused() -> None:
    """A query with nothing to match is an error, not "everything"."""
    with pytest.raises(EmptyQueryError):
        Query(("  ",))


def test_limit() -> None:
    """No more than ``limit`` distinct files come back."""
    files = tuple(RemoteFile(f"f{i}", i, h(i), 1) for i in range(30))
    assert len(search([tree(1, files, ())], Query(("f",)), limit=7)) == 7


@pytest.mark.slow
@given(st.lists(remote_files, max_size=12),
       st.text(min_size=1, max_size=3).filter(lambda w: w.strip() != ""))
def test_search_finds_exactly_the_matching_files(files, word) -> None:
    """Every result matches and every matching file is in a result (by hash and size)."""
    t = RemoteTree(peer(1).ssl_id)
    t.apply(ROOT, DirContent("", 1, 0, (), tuple(files)), 1.0)
    q = Query((word,))
    results = search([t], q)
    expected = {(f.hash, f.size) for f in files if word.casefold() in f.name.casefold()}
    assert {(r.hash, r.size) for r in results} == expected
