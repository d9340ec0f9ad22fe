# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the OpenPGP codec: keys, keyrings and signature packets.

The input is parsed as a keyring and as a signature packet.  Only `DecodeError` may come out of
a parse; a key or signature that parses must re-encode to bytes that parse to the same value.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.identity.pgp import PublicKey, Signature, read_keyring
    from pqi.wire.errors import DecodeError

__all__ = ["one_input"]


def one_input(data: bytes) -> None:
    """Parse ``data`` as keys and as a signature; only DecodeError may escape."""
    try:
        keys = read_keyring(data)
    except DecodeError:
        keys = ()
    for key in keys:
        again = PublicKey.from_bytes(key.to_bytes())
        if again != key or again.to_bytes() != key.to_bytes():
            raise AssertionError(f"key {key.pgp_id} does not round-trip")
    try:
        sig = Signature.from_packet(data)
    except DecodeError:
        return
    if Signature.from_packet(sig.to_packet()) != sig:
        raise AssertionError(f"{sig!r} does not round-trip")


if __name__ == "__main__":
    fuzz(one_input)
