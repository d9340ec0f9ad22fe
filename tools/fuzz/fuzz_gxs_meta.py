# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the GXS metadata and identity-group decoders (the binaries inside NXS items).

Byte 0 chooses the decoder (group metadata, message metadata, identity group data); the rest
is its input.  A decode error is the answer to garbage; anything decoded must re-encode to a
value that decodes equal.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.items import gxs
    from pqi.wire.errors import DecodeError

__all__ = ["one_input"]

_CODECS = (
    (gxs.decode_grp_meta, gxs.encode_grp_meta),
    (gxs.decode_msg_meta, gxs.encode_msg_meta),
    (gxs.decode_gxsid_group, gxs.encode_gxsid_group),
)


def one_input(data: bytes) -> None:
    if not data:
        return
    decode, encode = _CODECS[data[0] % len(_CODECS)]
    try:
        value = decode(data[1:])
    except DecodeError:
        return
    again = decode(encode(value))  # type: ignore[operator]
    if again != value:
        raise AssertionError(f"re-encoding changed {value!r} into {again!r}")


if __name__ == "__main__":
    fuzz(one_input)
