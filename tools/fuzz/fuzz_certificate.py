# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the long text certificate decoder.

The input bytes are the certificate's binary sections (the harness base64-encodes them, so the
fuzzer mutates structure, not base64); when the input is itself ASCII it is also decoded as
text.  Only `DecodeError` may come out; a certificate that decodes must encode and decode back
to itself.
"""

from __future__ import annotations

import base64

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.identity.certificate import RsCertificate
    from pqi.wire.errors import DecodeError

__all__ = ["one_input"]


def _check(text: str) -> None:
    try:
        cert = RsCertificate.decode(text)
    except DecodeError:
        return
    if RsCertificate.decode(cert.encode()) != cert:
        raise AssertionError(f"{cert!r} does not round-trip")
    if RsCertificate.decode(cert.encode(wrap=True)) != cert:
        raise AssertionError(f"{cert!r} does not round-trip wrapped")


def one_input(data: bytes) -> None:
    """Decode ``data`` as certificate sections (and as text); only DecodeError may escape."""
    _check(base64.b64encode(data).decode("ascii"))
    if data.isascii():
        _check(data.decode("ascii"))


if __name__ == "__main__":
    fuzz(one_input)
