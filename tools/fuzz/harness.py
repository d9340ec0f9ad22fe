# -*- test-case-name: tests.test_fuzz_corpus -*-
"""What every fuzz harness shares: atheris when it is installed, and the entry point.

A harness imports the code under test inside ``with instrumented():`` so that atheris sees
its branches, exposes ``one_input(data: bytes)`` for the corpus replay test (which needs no
atheris), and ends with ``if __name__ == "__main__": fuzz(one_input)``.

Code generated at run time is not imported, so ``instrumented()`` never sees it: the item
decoders and encoders of `pqi.wire.codegen` are made by ``exec`` on first use.
`instrument_generated` makes every registered item's generated codecs up front and instruments
each of their functions, so the item fuzzers reach the code that really parses peer input.
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

__all__ = ["instrumented", "instrument_generated", "generated_functions", "fuzz"]


def instrumented() -> AbstractContextManager[Any]:
    """Instrument the modules imported inside this block (a no-op without atheris)."""
    return atheris.instrument_imports() if atheris is not None else contextlib.nullcontext()


def generated_functions() -> list[Callable[..., Any]]:
    """Every generated item codec function (each registered class's decoder, encoders)."""
    import pqi.items  # noqa: F401  (registers every item class)
    from pqi.wire import item as item_module

    out: list[Callable[..., Any]] = []
    for cls in item_module.registered().values():
        decoder = item_module._decoder(cls)
        if decoder is not None:
            out.append(decoder)
        encoders = item_module._encoder(cls)
        if encoders is not None:
            out.extend(encoders)
    return out


def instrument_generated() -> int:
    """Instrument the generated codecs (a no-op without atheris); returns how many functions
    were instrumented."""
    functions = generated_functions()
    if atheris is not None:
        for function in functions:
            atheris.instrument_func(function)
    return len(functions) if atheris is not None else 0


def fuzz(one_input: Callable[[bytes], None]) -> None:
    """Run atheris on ``one_input`` with the command line's options and corpus."""
    if atheris is None:
        raise SystemExit("atheris is not installed: python3 -m pip install atheris")
    atheris.Setup(sys.argv, lambda data: one_input(bytes(data)))
    atheris.Fuzz()
