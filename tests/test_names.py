"""Peer-supplied file names never leave the incoming folder, never name a device, never
carry control characters, and fit in 255 bytes; clashes and planted symlinks get a new name."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from services.transfer.names import MAX_NAME_BYTES, candidates, inside, link_into, sanitise


def test_traversal_and_absolute_names_reduced_to_a_plain_name() -> None:
    """``..``, separators of both kinds and drive letters leave only a last component."""
    assert sanitise("../../etc/passwd") == "passwd"
    assert sanitise("/abs/path/file.txt") == "file.txt"
    assert sanitise("..\\..\\windows\\system.ini") == "system.ini"
    assert sanitise("C:evil.txt") == "C_evil.txt"
    assert sanitise("..") == "download" and sanitise("") == "download"


def test_device_names_and_control_characters() -> None:
    """Windows device names get a prefix; NUL and control characters disappear."""
    assert sanitise("CON") == "_CON" and sanitise("nul.txt") == "_nul.txt"
    assert sanitise("COM1.tar.gz") == "_COM1.tar.gz"
    assert sanitise("a\x00b\x1fc\x7f.txt") == "abc.txt"
    assert sanitise("name. . ") == "name"


def test_long_names_clipped_to_255_bytes_keeping_the_extension() -> None:
    """A 600-byte UTF-8 name is cut on a character boundary, extension kept."""
    name = sanitise("é" * 300 + ".mkv")
    assert len(name.encode()) <= MAX_NAME_BYTES and name.endswith(".mkv")
    name.encode().decode()


@given(st.text(max_size=400))
def test_any_name_is_one_safe_component(text) -> None:
    """Whatever a peer sends, the result is one non-empty component within the limits."""
    name = sanitise(text)
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert all(ord(c) >= 0x20 for c in name)


def test_clash_and_planted_symlink_get_the_next_name(tmp_path) -> None:
    """An existing file and a symlink pointing out of the folder are both skipped: the file
    lands as ``name (2).ext`` inside the folder and the symlink target is untouched."""
    incoming = tmp_path / "in"
    incoming.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (incoming / "f.txt").write_text("old")
    os.symlink(outside, incoming / "f (1).txt")
    src = tmp_path / "data"
    src.write_text("new")
    path = link_into(incoming, "../f.txt", lambda p: os.link(src, p))
    assert os.path.basename(path) == "f (2).txt" and inside(incoming, path)
    assert outside.read_text() == "keep" and (incoming / "f.txt").read_text() == "old"
    assert list(candidates("a.b"))[:3] == ["a.b", "a (1).b", "a (2).b"]
