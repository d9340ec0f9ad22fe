# -*- test-case-name: tests.test_dirlist -*-
"""Hypothesis strategies for the file-sharing area (directory contents, remote files)."""

from __future__ import annotations

from hypothesis import strategies as st

from pqi.wire.fields import Sha1Hash
from services.sharing.dirlist import DirContent, RemoteFile
from tests.strategies import ids, u32s, u64s, wire_text

__all__ = ["remote_files", "dir_contents", "section_sizes"]

#: Section sizes around every boundary of the 1/2/5-byte form.
section_sizes = st.one_of(st.integers(0, 300), st.integers(8000, 8500),
                          st.integers(0, 0xFFFF_FFFF))

remote_files = st.builds(RemoteFile, wire_text, u64s, ids(Sha1Hash), u32s)


@st.composite
def dir_contents(draw: st.DrawFn, max_files: int = 6) -> DirContent:
    """Directory contents, sometimes with a long name (2- and 5-byte section sizes)."""
    name = draw(st.one_of(wire_text, st.text(min_size=150, max_size=9000)))
    return DirContent(
        name, draw(u32s), draw(u32s),
        tuple(draw(st.lists(ids(Sha1Hash), max_size=6))),
        tuple(draw(st.lists(remote_files, max_size=max_files))))
