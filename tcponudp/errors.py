# -*- test-case-name: tests.test_tou_packet -*-
"""Errors of the UDP layer: datagrams we cannot read, and links that ended badly.

Datagram errors join the wire layer's `DecodeError` family, so the code that reads a UDP port
needs one ``except DecodeError`` to drop a bad datagram and carry on.
"""

from __future__ import annotations

from pqi.wire.errors import DecodeError, InvalidValueError, TruncatedError

__all__ = [
    "DatagramDecodeError", "DatagramTruncatedError", "DatagramValueError",
    "TouConnectionError", "NotConnectedError",
]


class DatagramDecodeError(DecodeError):
    """A UDP datagram (TOU segment, stunner packet, relay header) could not be read."""


class DatagramTruncatedError(DatagramDecodeError, TruncatedError):
    """The datagram is shorter than its fixed header."""


class DatagramValueError(DatagramDecodeError, InvalidValueError):
    """A header field has a value the format does not allow (wrong magic, size or type)."""


class TouConnectionError(Exception):
    """A TCP-over-UDP connection could not be made or was lost; ``reason`` says why.

    ``reason`` is a `tcponudp.events.CloseReason`: the peer reset or never answered, the link
    went silent, or too many retransmissions failed.  Seen by users as "the UDP link to your
    friend broke" and by the link manager as the reason to try another path.
    """

    def __init__(self, reason: object, detail: str = "") -> None:
        super().__init__(f"{reason}{': ' + detail if detail else ''}")
        self.reason = reason


class NotConnectedError(Exception):
    """Data was handed to a TCP-over-UDP stream that is not (or no longer) able to send it."""
