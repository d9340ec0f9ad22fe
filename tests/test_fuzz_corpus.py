# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Replay every committed fuzz corpus file through its harness.

Each directory ``tools/fuzz/corpus/<target>/`` belongs to ``tools/fuzz/fuzz_<target>.py``; every
input a fuzzer once found interesting (or a helper seeded) must still pass its harness, so a
crash fixed once stays fixed.  Targets are discovered from the directories, so a new harness
is replayed as soon as its corpus exists.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable

import pytest

from tests.conftest import ROOT

CORPUS = ROOT / "tools" / "fuzz" / "corpus"
TARGETS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def _harness(target: str) -> Callable[[bytes], None]:
    """Import a harness without atheris's import-time instrumentation (replay needs none)."""
    with pytest.MonkeyPatch.context() as mp:
        try:
            import atheris
        except ImportError:
            pass
        else:
            mp.setattr(atheris, "instrument_imports",
                       lambda *a, **k: contextlib.nullcontext())
        module = importlib.import_module(f"tools.fuzz.fuzz_{target}")
    return module.one_input  # type: ignore[no-any-return]


def test_known_targets() -> None:
    """The core harnesses have corpora (guards against a renamed or emptied directory)."""
    assert {"item_decode", "tlv_decode"} <= set(TARGETS)


@pytest.mark.parametrize("target", TARGETS)
def test_has_harness(target: str) -> None:
    """Every corpus directory has a harness exposing one_input."""
    assert (ROOT / "tools" / "fuzz" / f"fuzz_{target}.py").is_file()
    assert callable(_harness(target))


@pytest.mark.parametrize("target", TARGETS)
def test_replay(target: str) -> None:
    """Every corpus file passes through its harness without an unexpected exception."""
    one_input = _harness(target)
    files = sorted(p for p in (CORPUS / target).iterdir() if p.is_file())
    assert files, f"corpus {target} is empty"
    for path in files:
        try:
            one_input(path.read_bytes())
        except Exception as e:  # noqa: BLE001  (re-raised with the file that caused it)
            raise AssertionError(f"{path.relative_to(ROOT)}: {e!r}") from e


def test_corpus_stays_small() -> None:
    """The committed corpus stays small: under 400 files and 2 MB in all (11 targets share it)."""
    files = [p for p in CORPUS.rglob("*") if p.is_file()]
    assert len(files) < 400
    assert sum(p.stat().st_size for p in files) < 2_000_000
