# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the "RLY1" relay decoder, the forwarder and the relay end.

Oracles: `decode_relay` raises only `DecodeError`; a decoded packet encodes back to the same
bytes; the forwarder forwards only unchanged packets of an agreed pair from its source; the
end unwraps only what its remote sent to it.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.wire.errors import DecodeError, EncodeError
    from tcponudp.relay import (
        RelayClass,
        RelayEnd,
        RelayForwarder,
        decode_relay,
        encode_relay,
    )

__all__ = ["one_input"]

A = ("192.0.2.1", 7001)
B = ("192.0.2.2", 7002)


def one_input(data: bytes) -> None:
    try:
        header, payload = decode_relay(data)
    except DecodeError:
        header = None
    if header is not None:
        try:
            again = encode_relay(header, payload)
        except EncodeError:
            again = None  # oversized: we would never send it
        if again is not None and again != data:
            raise AssertionError("relay packet does not round-trip")
    fwd = RelayForwarder()
    fwd.add(A, B, RelayClass.FRIENDS, 0.0)
    for sender in (A, B):
        try:
            onward = fwd.forward(data, sender, 1.0)
        except DecodeError:
            continue
        if onward is not None and (onward[0] != data or header is None
                                   or header.source != sender):
            raise AssertionError("forwarder changed or misrouted a packet")
    fwd.check(2.0)
    try:
        RelayEnd(local=B, proxy=("192.0.2.3", 1), remote=A).unwrap(data)
    except DecodeError:
        pass


if __name__ == "__main__":
    fuzz(one_input)
