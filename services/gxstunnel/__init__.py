"""gxstunnel: RetroShare's GXS tunnels (service 0x0028), end-to-end channels between identities.

`crypto` (the DH group, key derivation, the encrypted framing, tunnel ids and hashes).
"""

from .crypto import DhKey, TunnelAuthError, decrypt, encrypt, random_hash, tunnel_id

__all__ = ["DhKey", "TunnelAuthError", "decrypt", "encrypt", "random_hash", "tunnel_id"]
