"""gxstunnel: RetroShare's GXS tunnels (service 0x0028), end-to-end channels between identities.

`crypto` (the DH group, key derivation, the encrypted framing, tunnel ids and hashes),
`core` (the sans-IO tunnel service: key exchange, keep-alive, close, acknowledged data for
client services such as distant chat), `endpoint` (the core as a turtle client service).
"""

from .core import (
    GxsTunnelCore,
    MonitorTunnels,
    StopMonitoring,
    TunnelDataAcked,
    TunnelDataReceived,
    TunnelDataRefused,
    TunnelError,
    TunnelInfo,
    TunnelStatus,
    TunnelStatusChanged,
    TurtleSend,
)
from .crypto import DhKey, TunnelAuthError, decrypt, encrypt, random_hash, tunnel_id
from .endpoint import TurtleEndpoint

__all__ = [
    "GxsTunnelCore", "MonitorTunnels", "StopMonitoring", "TunnelDataAcked",
    "TunnelDataReceived", "TunnelDataRefused", "TunnelError", "TunnelInfo", "TunnelStatus",
    "TunnelStatusChanged", "TurtleSend",
    "DhKey", "TunnelAuthError", "decrypt", "encrypt", "random_hash", "tunnel_id",
    "TurtleEndpoint",
]
