# -*- test-case-name: tests.test_tou_stream -*-
"""The TOU stream's tunables and the sizes RetroShare's wire fixes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["TouConfig", "DEFAULT_MSS", "RETROSHARE_MSS", "MAX_WINDOW", "MAX_OFFER",
           "OUT_OF_ORDER_ALLOWANCE"]

#: Payload per segment: a relayed datagram (16-byte relay header + 20-byte TOU header + payload)
#: stays within 1400 bytes.
DEFAULT_MSS: Final = 1364
#: What RetroShare itself sends (``MAX_SEG``); it accepts up to twice that in one segment.
RETROSHARE_MSS: Final = 1000
#: The window field is 16 bits.
MAX_WINDOW: Final = 0xFFFF
#: The largest segment payload one may offer: what one IPv4 UDP datagram holds after the
#: 20-byte TOU header.
MAX_OFFER: Final = 65507 - 20
#: Bytes a receiver holds beyond a hole on top of `TouConfig.receive_buffer`, where both ends
#: agreed the wider window scale (`TouConfig.hole_window`): its window's right edge moves on as
#: such bytes arrive, so a sender repairing a hole keeps sending as if the hole were filled.
#: With no hole the window is what it was.  The receiver then holds at most the buffer plus this.
OUT_OF_ORDER_ALLOWANCE: Final = 4 * MAX_WINDOW


@dataclass(frozen=True, slots=True)
class TouConfig:
    """Tunables; defaults follow RetroShare where it has a value, RFC 6298 otherwise."""

    mss: int = DEFAULT_MSS
    #: The largest segment payload we take from an rsproto peer, offered in our SYN or
    #: SYN+ACK (fields RetroShare ignores); 0 offers nothing, and the wire is then exactly
    #: RetroShare's.  Segments that large are sent only if the peer offered too (the smaller
    #: of both offers); `tcponudp.transport.TouSocket` sets it per connection from the path.
    offer_segment: int = 0
    #: Offer SACK ranges to an rsproto peer (`tcponudp.packet.CAPABILITY_SACK` in the SYN or
    #: SYN+ACK).  Where both ends offered, a receiver with a hole reports what it holds beyond
    #: it and the sender repairs every hole it shows in one round trip; RetroShare neither
    #: offers nor is sent them.  `tcponudp.transport.TouSocket` sets it with its offers.
    sack: bool = False
    #: With ``sack``, also offer window scaling (`tcponudp.packet.CAPABILITY_WINDOW`): where
    #: both ends offered it, windows count in units of ``1 << WINDOW_SHIFT`` bytes after the
    #: handshake, so up to `receive_buffer` (not 64 KiB) may be in flight.  RetroShare never
    #: offers it.  `tcponudp.transport.TouSocket` sets it for direct (not relayed) peers.
    scale_window: bool = False
    #: With ``scale_window``, also offer the wider scale (`tcponudp.packet.HOLE_WINDOW_SHIFT`
    #: in the SYN's header-length nibble): where both ends offered it, the receiver holds up to
    #: `OUT_OF_ORDER_ALLOWANCE` more bytes beyond a hole and its window grows by what it holds
    #: there (`tcponudp.reassembly.ReceiveBuffer.window`).  RetroShare never offers it; an
    #: rsproto end that scales windows without it keeps `tcponudp.packet.WINDOW_SHIFT`.
    hole_window: bool = False
    #: Bytes we buffer for the reader (out-of-order plus unread); the advertised window is the
    #: free part of it, at most `MAX_WINDOW`.
    receive_buffer: int = 4 * MAX_WINDOW
    initial_rto: float = 1.0
    #: RFC 6298 says 1 s and allows less; Linux uses 0.2 s.  RetroShare itself has no floor
    #: (2 * (SRTT + 4 RTTVAR)).  Every RTT sample already contains the peer's ACK delay, so the
    #: floor only guards against a too-small RTTVAR on a steady link; a spurious timeout is
    #: detected and undone (see `tcponudp.recovery`).  50 ms is 50 clock granules.
    min_rto: float = 0.05
    max_rto: float = 15.0
    clock_granularity: float = 0.001
    #: Duplicate ACKs that mark the first unacknowledged segment lost before the reorder timer
    #: does (RFC 5681).  Once a connection has seen reordering only time decides (as Linux's
    #: RACK does), until 16 recoveries pass without any.
    dupthresh: int = 3
    #: Send a tail loss probe (RFC 8985) after ~2 SRTT without an ACK instead of waiting for
    #: the retransmission timer.
    tail_loss_probe: bool = True
    #: Retransmissions of one segment before giving up (RetroShare: 10).
    max_retransmits: int = 10
    #: SYN / SYN+ACK repeat interval during the handshake (fixed, for hole punching).
    syn_interval: float = 1.0
    connect_timeout: float = 80.0
    keepalive_interval: float = 15.0
    idle_timeout: float = 60.0
    time_wait: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.offer_segment <= MAX_OFFER:
            raise ValueError(f"offer_segment must be 0..{MAX_OFFER}, not {self.offer_segment}")
