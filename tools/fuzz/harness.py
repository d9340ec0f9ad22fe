# -*- test-case-name: tests.test_fuzz_corpus -*-
"""What every fuzz harness shares: atheris when it is installed, and the entry point.

A harness imports the code under test inside ``with instrumented():`` so that atheris sees
its branches, exposes ``one_input(data: bytes)`` for the corpus replay test (which needs no
atheris), and ends with ``if __name__ == "__main__": fuzz(one_input)``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

try:
    import atheris
except ImportError:  # replaying the corpus (tests) needs no fuzzer
    atheris = None

__all__ = ["instrumented", "fuzz"]


def instrumented() -> AbstractContextManager[Any]:
    """Instrument the modules imported inside this block (a no-op without atheris)."""
    return atheris.instrument_imports() if atheris is not None else contextlib.nullcontext()


def fuzz(one_input: Callable[[bytes], None]) -> None:
    """Run atheris on ``one_input`` with the command line's options and corpus."""
    if atheris is None:
        raise SystemExit("atheris is not installed: python3 -m pip install atheris")
    atheris.Setup(sys.argv, lambda data: one_input(bytes(data)))
    atheris.Fuzz()
