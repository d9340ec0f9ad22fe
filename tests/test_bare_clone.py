"""A bare clone runs the vector-using tests: the real-node vectors ship in the repository.

Issue 12 item 1: the suite used to need ``../shared`` beside the checkout. These tests copy the
repository's files to a temporary folder with nothing beside it and run vector-using test
modules there in a subprocess, and check that the shipped vectors are refused when altered.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests import vector_store
from tests.conftest import ROOT
from tests.processes import spawn

#: Test modules that read the real-node vectors (certificates, captures, discovery items).
VECTOR_MODULES = ("tests/test_certificate.py", "tests/test_captures_streams.py",
                  "tests/test_items_discovery.py")
#: Bound on the copied suite's run.
RUN_TIMEOUT_SECONDS = 600
IGNORED = shutil.ignore_patterns(".git", ".cache", "__pycache__", ".hypothesis", ".pytest_cache",
                                 ".ruff_cache", "*.egg-info", "build", "dist")


@pytest.mark.integration
def test_vector_tests_pass_in_a_copy_without_shared(tmp_path: pathlib.Path) -> None:
    """A copy of the repository with no ``../shared`` and no RSPROTO_SHARED passes the
    vector-using modules, and builds its vector cache inside itself."""
    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=IGNORED)
    assert not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k != "RSPROTO_SHARED"}
    env["PYTHONPATH"] = str(clone)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *VECTOR_MODULES]
    with spawn(argv, cwd=clone, env=env, stdout=subprocess.PIPE,
               stderr=subprocess.STDOUT) as proc:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_SECONDS)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert " passed" in text and "error" not in text.lower().splitlines()[-1]
    assert list((clone / "tests" / "vectors" / ".cache").glob("retroshare-*/captures/nodes.json"))


def test_an_altered_archive_is_refused(tmp_path: pathlib.Path, monkeypatch) -> None:
    """A shipped file whose bytes differ from SHA256SUMS stops the extraction with a message
    naming the file, and leaves no partial tree behind."""
    shipped = tmp_path / "retroshare"
    shutil.copytree(vector_store.SHIPPED, shipped)
    with (shipped / "jsonapi.tar.xz").open("r+b") as f:
        f.seek(100)
        f.write(b"\x00" * 8)
    monkeypatch.setattr(vector_store, "SHIPPED", shipped)
    monkeypatch.setattr(vector_store, "CACHE", tmp_path / "cache")
    with pytest.raises(vector_store.VectorError, match="jsonapi.tar.xz does not match"):
        vector_store.vectors_root()
    assert not [p for p in (tmp_path / "cache").iterdir()]


def test_extraction_lays_out_the_shared_tree(tmp_path: pathlib.Path, monkeypatch) -> None:
    """The extracted tree has the account files at the top and the three recorded folders,
    byte for byte what the archives hold; a second call reuses it."""
    monkeypatch.setattr(vector_store, "CACHE", tmp_path / "cache")
    root = vector_store.vectors_root()
    assert (root / "alice.cert.txt").read_bytes() == \
        (vector_store.SHIPPED / "alice.cert.txt").read_bytes()
    for folder in ("captures", "captures2", "jsonapi"):
        assert (root / folder / "README.md").is_file()
    marker = root / "captures" / "nodes.json"
    stamp = marker.stat().st_mtime_ns
    assert vector_store.vectors_root() == root
    assert marker.stat().st_mtime_ns == stamp
