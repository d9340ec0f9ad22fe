# -*- test-case-name: tests.test_tou_stream -*-
"""tcponudp: RetroShare's reliable TCP-like stream over UDP (TOU), stunner and relay.

`packet` is the 20-byte TOU header; `stream` the sans-IO stream (a `pqi.core` core), which
coordinates its parts: `reassembly` (receive buffer), `recovery` (loss recovery), `rtt` (RFC
6298), `congestion` (pluggable congestion control), with `config`, `events` and `sequence` as
their shared vocabulary; `transport` the Twisted transport and endpoints (driven by
`pqi.driver.CoreDriver`), `udpmux` the shared UDP port, `udpport` a UDP port that reads
coalesced bursts, `stunner` the external-address probe and NAT classifier, `relay` the "RLY1"
relay. See ``docs/tou.md``.
"""

from .config import TouConfig
from .congestion import CongestionControl, NewReno
from .errors import (
    DatagramDecodeError,
    DatagramTruncatedError,
    DatagramValueError,
    NotConnectedError,
    TouConnectionError,
)
from .events import Closed, CloseReason, Connected, DataReceived, EndOfStream
from .packet import HEADER_SIZE, Flags, TouPacket, decode_packet, encode_packet
from .recovery import RecoveryStats
from .relay import (
    RelayClass,
    RelayEnd,
    RelayForwarder,
    RelayHeader,
    RelayLimits,
    decode_relay,
    encode_relay,
)
from .stream import State, TouStream
from .stunner import (
    NatType,
    StunClient,
    StunDone,
    StunRequest,
    StunResponse,
    answer_request,
    classify_nat,
    decode_stun,
)
from .transport import (
    HolePunch,
    TouClientEndpoint,
    TouServerEndpoint,
    TouSocket,
    TouTransport,
)
from .udpmux import UdpMux, UdpMuxProtocol, classify
from .udpport import BatchUdpPort, listen_udp

__all__ = [
    "CongestionControl", "NewReno",
    "DatagramDecodeError", "DatagramTruncatedError", "DatagramValueError", "NotConnectedError",
    "TouConnectionError",
    "HEADER_SIZE", "Flags", "TouPacket", "decode_packet", "encode_packet",
    "RelayClass", "RelayEnd", "RelayForwarder", "RelayHeader", "RelayLimits", "decode_relay",
    "encode_relay",
    "Closed", "CloseReason", "Connected", "DataReceived", "EndOfStream", "RecoveryStats", "State",
    "TouConfig",
    "TouStream",
    "NatType", "StunClient", "StunDone", "StunRequest", "StunResponse", "answer_request",
    "classify_nat",
    "decode_stun",
    "HolePunch", "TouClientEndpoint", "TouServerEndpoint", "TouSocket", "TouTransport",
    "UdpMux", "UdpMuxProtocol", "classify", "BatchUdpPort", "listen_udp",
]
