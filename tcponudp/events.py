# -*- test-case-name: tests.test_tou_stream -*-
"""What a `tcponudp.stream.TouStream` tells its skin: typed events, drained in order with
the datagrams, and why a stream ended."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CloseReason", "Connected", "DataReceived", "EndOfStream", "Closed", "Event"]


class CloseReason(enum.Enum):
    """Why a stream ended (the text is what a user sees)."""

    CLOSED = "closed cleanly by both sides"
    RESET = "the peer reset the connection"
    ABORTED = "aborted locally"
    CONNECT_TIMEOUT = "the peer never answered the handshake"
    IDLE_TIMEOUT = "nothing heard from the peer for too long"
    RETRANSMIT_LIMIT = "the peer stopped acknowledging data"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake completed."""


@dataclass(frozen=True, slots=True)
class DataReceived:
    """In-order bytes from the peer."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The peer sent FIN: it will send no more (it may still read)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The stream is over; nothing more will be delivered or sent."""

    reason: CloseReason


Event = Connected | DataReceived | EndOfStream | Closed
