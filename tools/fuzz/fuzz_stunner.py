# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the stunner decoder and the shared-port demultiplexer.

Oracles: `decode_stun` raises only `DecodeError` and agrees with RetroShare's shape test
(`is_stun_packet`); a decoded packet encodes back to the same bytes; the mux routes any
datagram without raising.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.wire.errors import DecodeError
    from tcponudp.stunner import StunClient, decode_stun, is_stun_packet
    from tcponudp.udpmux import UdpMux

__all__ = ["one_input"]


def one_input(data: bytes) -> None:
    try:
        packet = decode_stun(data)
    except DecodeError:
        if is_stun_packet(data):
            raise AssertionError("RetroShare's shape test accepts what we reject") from None
        packet = None
    if packet is not None:
        if not is_stun_packet(data) or packet.encode() != data:
            raise AssertionError("stun packet does not round-trip")
    client = StunClient(local=("172.16.0.1", 1))
    client.start([("192.0.2.1", 2)], 0.0)
    client.datagram_received(data, ("192.0.2.1", 2), 0.1)
    mux = UdpMux(tou_handler=lambda d, a: None, stun_handler=lambda d, a: None)
    mux.attach(lambda d, a: None)
    mux.datagram_received(data, ("192.0.2.1", 2))


if __name__ == "__main__":
    fuzz(one_input)
