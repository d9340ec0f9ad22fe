"""`pqi.storage.atomic_write`: the content, the mode, nothing left behind, an atomic swap."""

from __future__ import annotations

import os
import stat

import pytest

from pqi import storage
from pqi.storage import DEFAULT_MODE, TEMP_SUFFIX, atomic_write


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_content_written_and_replaced(tmp_path) -> None:
    """The file holds exactly the bytes of the last write, even large ones; nothing else stays."""
    path = tmp_path / "state.json"
    atomic_write(path, b"one")
    assert path.read_bytes() == b"one"
    big = bytes(range(256)) * 4096
    atomic_write(path, big)
    assert path.read_bytes() == big
    atomic_write(str(path), b"")
    assert path.read_bytes() == b""
    assert os.listdir(tmp_path) == ["state.json"]


def test_missing_parent_is_created(tmp_path) -> None:
    """A file in a folder that does not exist yet gets the folder."""
    path = tmp_path / "a" / "b" / "f"
    atomic_write(path, b"x")
    assert path.read_bytes() == b"x"


def test_mode_default_private_and_caller_chosen_whatever_the_umask(tmp_path) -> None:
    """0600 unless the caller says otherwise; the umask neither widens nor narrows it."""
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "private", b"k")
        atomic_write(tmp_path / "shared", b"k", 0o644)
    finally:
        os.umask(old)
    assert DEFAULT_MODE == 0o600
    assert _mode(tmp_path / "private") == 0o600
    assert _mode(tmp_path / "shared") == 0o644
    atomic_write(tmp_path / "shared", b"again")  # a rewrite takes the new mode, not the old
    assert _mode(tmp_path / "shared") == 0o600


def test_failure_before_the_rename_leaves_old_file_and_no_temp(tmp_path) -> None:
    """An error after the temp file is written leaves the old content and no temp file."""
    path = tmp_path / "f"
    atomic_write(path, b"old")

    def boom() -> None:
        raise RuntimeError("killed here")

    with pytest.raises(RuntimeError, match="killed here"):
        atomic_write(path, b"new", before_replace=boom)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_failure_while_writing_leaves_no_temp(tmp_path, monkeypatch) -> None:
    """A full disk (ENOSPC from write) propagates; the old file stays, no temp file remains."""
    path = tmp_path / "f"
    atomic_write(path, b"old")

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "write", full)
    with pytest.raises(OSError, match="No space"):
        atomic_write(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_failed_rename_leaves_no_temp(tmp_path) -> None:
    """When the rename itself fails (a directory has the name), the temp file is removed."""
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):
        atomic_write(tmp_path / "taken", b"x")
    assert os.listdir(tmp_path) == ["taken"]


def test_replacement_is_a_rename_of_a_complete_durable_file(tmp_path, monkeypatch) -> None:
    """Until the rename, readers see the whole old file; the new one is a complete, fsynced
    temp file beside it; then one rename swaps them and the directory is fsynced."""
    path = tmp_path / "f"
    atomic_write(path, b"old contents")
    reader = open(path, "rb")  # held open across the swap
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str, dst: object) -> None:
        events.append("rename")
        real_replace(src, dst)

    def at_swap() -> None:
        events.append("before rename")
        assert path.read_bytes() == b"old contents"
        (tmp,) = [n for n in os.listdir(tmp_path) if n != "f"]
        assert tmp.startswith(".f.") and tmp.endswith(TEMP_SUFFIX)
        assert (tmp_path / tmp).read_bytes() == b"new"

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage.os, "replace", replace)
    try:
        atomic_write(path, b"new", before_replace=at_swap)
        assert reader.read() == b"old contents"  # the old inode, untouched: not rewritten
    finally:
        reader.close()
    assert events == ["fsync file", "before rename", "rename", "fsync dir"]
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["f"]
