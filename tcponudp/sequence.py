# -*- test-case-name: tests.test_tou_stream -*-
"""Sequence-number arithmetic and the sender's bookkeeping shared by the stream's parts.

TOU sequence numbers are 32 bits and wrap; every comparison goes through `seq_diff`.
`SendSequence` is the sender's two edges (first unacknowledged, next to send), one object
that the stream and its loss recovery both read, so the flight is computed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["SEQ_MOD", "seq_diff", "Segment", "SendSequence"]

#: Sequence numbers are taken modulo 2**32.
SEQ_MOD: Final = 1 << 32


def seq_diff(a: int, b: int) -> int:
    """``a - b`` in sequence space, as a signed number."""
    return ((a - b + (1 << 31)) % SEQ_MOD) - (1 << 31)


@dataclass(slots=True)
class Segment:
    """A data segment in flight: retransmissions keep its boundaries (the receiver only takes
    the segment that starts at its next expected number)."""

    seq: int
    data: bytes
    sent_at: float
    transmissions: int = 1
    #: The receiver reported holding it (a SACK range) beyond its cumulative ACK.
    sacked: bool = False

    @property
    def end(self) -> int:
        return (self.seq + len(self.data)) % SEQ_MOD


@dataclass(slots=True)
class SendSequence:
    """``una``: the first unacknowledged sequence number; ``nxt``: the next one to send."""

    una: int
    nxt: int

    def flight(self) -> int:
        """Bytes sent and not yet acknowledged."""
        return seq_diff(self.nxt, self.una)
