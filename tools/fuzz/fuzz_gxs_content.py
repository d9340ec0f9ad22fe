# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the channel, forum and board data decoders (the group and message binaries of NXS).

Byte 0 picks the service (channels, forums, boards); the rest is the data item.  A decode
error is the answer to garbage; anything decoded must re-encode to a value that decodes equal.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.items.gxs_content import CONTENT_SERVICES, decode_content, encode_content
    from pqi.wire.errors import DecodeError

__all__ = ["one_input"]


def one_input(data: bytes) -> None:
    if not data:
        return
    service = CONTENT_SERVICES[data[0] % len(CONTENT_SERVICES)]
    try:
        value = decode_content(service, data[1:])
    except DecodeError:
        return
    again = decode_content(service, encode_content(service, value))
    if again != value:
        raise AssertionError(f"re-encoding changed {value!r} into {again!r}")


if __name__ == "__main__":
    fuzz(one_input)
