# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz `pqi.decode`: whole items (header and body) as a peer could send them.

A decode error is the expected answer to garbage; any other exception is a bug.  When an input
does decode, the item must encode again and decode to an equal item, so that a relayed or
logged item never changes meaning.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    import pqi
    from pqi.wire.errors import DecodeError

__all__ = ["one_input"]


def one_input(data: bytes) -> None:
    """Decode ``data``; let DecodeError pass silently and anything else escape."""
    try:
        item = pqi.decode(data)
    except DecodeError:
        return
    again = pqi.decode(pqi.encode(item))
    if again != item:
        raise AssertionError(f"re-encoding changed {item!r} into {again!r}")


if __name__ == "__main__":
    fuzz(one_input)
