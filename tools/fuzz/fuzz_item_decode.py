# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz `pqi.decode`: whole items (header and body) as a peer could send them.

A decode error is the expected answer to garbage; any other exception is a bug.  When an input
does decode, the item must encode again and decode to an equal item, so that a relayed or
logged item never changes meaning.

Two decoders read each item: the code `pqi.wire.codegen` generates from the schema (what runs
in a node), and the construct schema itself (the reference, and the fallback that names the
failing field).  The generated code is instrumented (`instrument_generated`) and the two are
run side by side: an item the generated decoder accepts must be accepted, equal, by the
schema.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrument_generated, instrumented

with instrumented():
    import pqi
    from pqi.wire import item as item_module
    from pqi.wire.errors import DecodeError
    from pqi.wire.limits import HEADER_SIZE

__all__ = ["one_input"]

instrument_generated()


def one_input(data: bytes) -> None:
    """Decode ``data``; let DecodeError pass silently and anything else escape."""
    try:
        item = pqi.decode(data)
    except DecodeError:
        return
    again = pqi.decode(pqi.encode(item))
    if again != item:
        raise AssertionError(f"re-encoding changed {item!r} into {again!r}")
    cls = type(item)
    if item_module._DECODERS.get(cls) is not None:
        try:
            reference = cls._decode_body_core(bytes(data[HEADER_SIZE:]))
        except DecodeError as e:
            raise AssertionError(
                f"generated decoder accepted what the schema refuses: {e}") from e
        if reference != item:
            raise AssertionError(f"generated decoder read {item!r}, the schema {reference!r}")


if __name__ == "__main__":
    fuzz(one_input)
