# -*- test-case-name: tests.test_turtle_fuzz -*-
"""Fuzz the turtle router and the tunnel crypto with what friends can send.

The input is a sequence of records ``peer (1 byte) | length (2 bytes BE) | item bytes``: each
is decoded (a decode error is what garbage should give: the link layer drops that friend)
and, when it decodes, fed to one `TurtleRouter` as coming from friend ``peer % 3`` (the
third is not a friend).  Every few records time moves on and the router's timer runs.  The
bytes of each record are also given to `crypto.decrypt`, which must refuse them with
`TunnelCryptoError` (a `DecodeError`) unless they authenticate.  Any other exception is a
bug.
"""

from __future__ import annotations

import random

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    import pqi
    from pqi.wire.errors import DecodeError
    from pqi.wire.fields import Sha1Hash, SslId
    from services.turtle import crypto
    from services.turtle.router import TurtleLimits, TurtleRouter

__all__ = ["one_input", "records"]

_KEY = crypto.file_key(Sha1Hash(b"\x07" * 20))
_PEERS = [SslId(bytes([i + 1]) * 16) for i in range(3)]


def records(data: bytes) -> list[tuple[int, bytes]]:
    """Split ``data`` into (peer, item bytes) records (a short tail is dropped)."""
    out = []
    pos = 0
    while pos + 3 <= len(data):
        peer, n = data[pos], int.from_bytes(data[pos + 1:pos + 3], "big")
        out.append((peer, data[pos + 3:pos + 3 + n]))
        pos += 3 + n
    return out


def one_input(data: bytes) -> None:
    """Feed the records to a fresh router; only DecodeError may come out of decoding."""
    router = TurtleRouter(_PEERS[2], rng=random.Random(0), limits=TurtleLimits(),
                          file_search=lambda item, peer: [])
    router.peer_connected(_PEERS[0], 0.0)
    router.peer_connected(_PEERS[1], 0.0)
    router.monitor_tunnels(Sha1Hash(b"\x07" * 20), _Nobody(), 0.0)
    now = 0.0
    for k, (peer, raw) in enumerate(records(data)):
        try:
            crypto.decrypt(_KEY, raw)
        except DecodeError:
            pass
        try:
            item = pqi.decode(raw)
        except DecodeError:
            continue
        router.item_received(_PEERS[peer % 3], item, now)
        if k % 4 == 3:
            now += 7.0
            router.handle_timer(now)
        router.drain(now)


class _Nobody:
    """A client service that serves nothing (for monitor_tunnels)."""

    service_id = 0x0017


if __name__ == "__main__":
    fuzz(one_input)
