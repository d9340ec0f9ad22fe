"""`pqi.storage`: `atomic_write` (the content, the mode, nothing left behind, an atomic swap)
and `to_stored`/`from_stored` (text that is not UTF-8 kept in sqlite, identical)."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi import storage
from pqi.storage import DEFAULT_MODE, TEMP_SUFFIX, atomic_write, from_stored, to_stored


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


#: What a wire decoder makes of "café" in Latin-1 followed by a stray byte.
JUNK = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")


def test_sqlite_refuses_a_lone_surrogate_that_to_stored_binds() -> None:
    """The defect itself: sqlite3 cannot bind the decoded string; its stored form binds, is the
    wire bytes, and reads back identical."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v TEXT)")
    with pytest.raises(UnicodeEncodeError):
        db.execute("INSERT INTO t VALUES (?)", (JUNK,))
    db.execute("INSERT INTO t VALUES (?)", (to_stored(JUNK),))
    (value,) = db.execute("SELECT v FROM t").fetchone()
    assert value == b"caf\xe9 \xff"
    assert from_stored(value) == JUNK


def test_valid_text_is_stored_as_text() -> None:
    """Valid UTF-8 stays a str (old rows and new ones compare equal in SQL)."""
    assert to_stored("") == ""
    assert to_stored("héllo ✓") == "héllo ✓"
    assert from_stored("héllo ✓") == "héllo ✓"


@given(st.binary(max_size=64))
def test_wire_strings_round_trip_through_sqlite(data: bytes) -> None:
    """Every string a wire decoder makes is stored, found by equality and read back identical."""
    text = data.decode("utf-8", "surrogateescape")
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    db.execute("INSERT INTO t (v) VALUES (?)", (to_stored(text),))
    db.execute("INSERT INTO t (v) VALUES (?)", (to_stored(text + "x"),))
    rows = db.execute("SELECT v FROM t WHERE v = ?", (to_stored(text),)).fetchall()
    assert [from_stored(v) for (v,) in rows] == [text]
    assert from_stored(to_stored(text)).encode("utf-8", "surrogateescape") == data


@given(st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters(),
               max_size=16))
def test_any_string_is_stored_without_error(text: str) -> None:
    """Even strings no decoder makes (a JSON client's lone surrogates) bind and read back as the
    string of the same bytes, never an error."""
    value = to_stored(text)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v TEXT)")
    db.execute("INSERT INTO t VALUES (?)", (value,))
    (back,) = db.execute("SELECT v FROM t").fetchone()
    assert isinstance(from_stored(back), str)
    assert from_stored(back).encode("utf-8", "surrogateescape") == (
        value if isinstance(value, bytes) else value.encode("utf-8"))
