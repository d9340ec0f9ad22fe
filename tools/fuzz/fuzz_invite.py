# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the short invite decoder.

The input bytes are the invite's binary fields (base64-encoded by the harness); ASCII input is
also decoded as text, which covers the ``rsInvite=`` URL form.  Only `DecodeError` may come out;
an invite that decodes must encode (radix and URL) and decode back to itself.
"""

from __future__ import annotations

import base64

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.identity.invite import ShortInvite
    from pqi.wire.errors import DecodeError

__all__ = ["one_input"]


def _check(text: str) -> None:
    try:
        invite = ShortInvite.decode(text)
    except DecodeError:
        return
    if ShortInvite.decode(invite.encode()) != invite:
        raise AssertionError(f"{invite!r} does not round-trip")
    if ShortInvite.decode(invite.to_url()) != invite:
        raise AssertionError(f"{invite!r} does not round-trip as a URL")


def one_input(data: bytes) -> None:
    """Decode ``data`` as invite fields (and as text); only DecodeError may escape."""
    _check(base64.b64encode(data).decode("ascii"))
    if data.isascii():
        _check(data.decode("ascii"))


if __name__ == "__main__":
    fuzz(one_input)
