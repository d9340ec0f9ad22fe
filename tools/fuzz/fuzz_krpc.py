# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz KRPC datagram parsing (`dht.krpc.decode`) and the DHT core that consumes it.

Only `KRPCDecodeError` may come out of `decode`; a message that decodes must encode to bytes that
decode to the same message.  Each input is also fed to a `DHTNode`, which must never raise on
peer input.
"""

from __future__ import annotations

import random

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from dht import krpc
    from dht.node import DHTNode
    from pqi.wire.errors import EncodeError

__all__ = ["one_input"]

_NODE = DHTNode(b"\x00" * 20, rng=random.Random(0))
_NOW = [0.0]


def one_input(data: bytes) -> None:
    """Decode ``data``; only KRPCDecodeError may escape, and a decoded message round-trips."""
    try:
        msg = krpc.decode(data)
    except krpc.KRPCDecodeError:
        msg = None
    if msg is not None:
        try:
            raw = krpc.encode(msg)
        except EncodeError:
            # Decoded fields we accept but would not send ourselves (e.g. error codes over
            # 64 bits are fine both ways; a response over 1024 bytes after re-encoding is not).
            raw = None
        if raw is not None and krpc.decode(raw) != msg:
            raise AssertionError(f"{msg!r} re-encoded as {raw!r}")
    # The node must swallow anything (each input from a fresh source so the rate limit stays
    # out of the way).
    _NOW[0] += 1.0
    host = f"10.{(int(_NOW[0]) >> 8) & 0xFF}.{int(_NOW[0]) & 0xFF}.1"
    _NODE.datagram_received(data, (host, 6881), _NOW[0])
    _NODE.handle_timer(_NOW[0])
    _NODE.drain(_NOW[0])


if __name__ == "__main__":
    fuzz(one_input)
