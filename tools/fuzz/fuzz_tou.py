# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the TOU segment decoder, the SACK ranges' decoder and the stream's handling of any
datagram.

Oracles: `decode_packet` and `decode_sack` raise only `DecodeError`; a decoded segment, and
decoded SACK ranges (at both range limits), encode back to the same bytes; a connected stream
fed the datagram (plain, with SACK ranges, and with the wider window scale and its room beyond
a hole) raises nothing and still answers with decodable segments.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from pqi.core import Datagram
    from pqi.wire.errors import DecodeError
    from tcponudp.packet import (
        MAX_SACK_BLOCKS,
        WIDE_SACK_BLOCKS,
        decode_packet,
        decode_sack,
        encode_packet,
        encode_sack,
    )
    from tcponudp.stream import TouConfig, TouStream

__all__ = ["one_input"]


#: RetroShare's wire, SACK ranges, and the wider window scale with room beyond a hole.
_CONFIGS = (TouConfig(), TouConfig(sack=True),
            TouConfig(sack=True, scale_window=True, hole_window=True))


def _connected_pair(config: TouConfig) -> TouStream:
    a, b = TouStream(config=config, isn=1), TouStream(config=config, isn=2)
    b.listen(0.0)
    a.connect(0.0)
    for _ in range(4):
        for d in _datagrams(a.drain(0.0)):
            b.datagram_received(d, 0.0)
        for d in _datagrams(b.drain(0.0)):
            a.datagram_received(d, 0.0)
    return b


def _datagrams(outputs: list[object]) -> list[bytes]:
    return [o.data for o in outputs if isinstance(o, Datagram)]


def one_input(data: bytes) -> None:
    try:
        packet = decode_packet(data)
    except DecodeError:
        packet = None
    if packet is not None and len(packet.payload) <= 1400 and encode_packet(packet) != data:
        raise AssertionError("decoded segment does not encode to its bytes")
    for limit in (MAX_SACK_BLOCKS, WIDE_SACK_BLOCKS):
        try:
            blocks = decode_sack(data, limit)
        except DecodeError:
            blocks = None
        if blocks is not None and encode_sack(blocks, limit) != data:
            raise AssertionError("decoded SACK ranges do not encode to their bytes")
    for config in _CONFIGS:
        stream = _connected_pair(config)
        stream.datagram_received(data, 1.0)
        stream.handle_timer(1.0)
        for out in _datagrams(stream.drain(1.0)):
            decode_packet(out)


if __name__ == "__main__":
    fuzz(one_input)
