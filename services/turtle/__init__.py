"""turtle: RetroShare's turtle router (service 0x0014): anonymous search and tunnels.

`router` (the sans-IO core: searches, tunnel requests, routing by tunnel id, limits),
`fileprint` (tunnel ids as RetroShare computes them), `crypto` (end-to-end encryption of
file items), `interfaces` (`ITurtleClientService`, what tunnel users implement), `files`
(anonymous file transfer over tunnels), `gxs` (distant GXS sync and group search over
tunnels, RetroShare's GXS network tunnels), `search` and `expression` (answers to anonymous
searches), `store` (anonymous downloads kept across restarts), `service` (the skin on the
node) and `commands` (the control channel).
"""

from .crypto import TunnelCryptoError, decrypt, encrypt, file_key, hash_of_hash
from .fileprint import personal_file_print, tunnel_of_virtual_peer, virtual_peer_id
from .gxs_net_tunnel import GxsNetTunnels, GxsSearch, group_hash, own_virtual_peer, tunnel_key
from .interfaces import ITurtleClientService
from .router import (
    FileSearchResult,
    GenericSearchResult,
    SendItem,
    TunnelData,
    TurtleLimits,
    TurtleRouter,
    TurtleStats,
    VirtualPeerAdded,
    VirtualPeerRemoved,
    deliver,
)

__all__ = [
    "TunnelCryptoError", "decrypt", "encrypt", "file_key", "hash_of_hash",
    "personal_file_print", "tunnel_of_virtual_peer", "virtual_peer_id",
    "GxsSearch", "GxsNetTunnels", "group_hash", "own_virtual_peer", "tunnel_key",
    "ITurtleClientService",
    "FileSearchResult", "GenericSearchResult", "SendItem", "TunnelData", "TurtleLimits",
    "TurtleRouter", "TurtleStats", "VirtualPeerAdded", "VirtualPeerRemoved", "deliver",
]
