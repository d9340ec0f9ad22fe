# -*- test-case-name: tests.test_turtle_captures -*-
"""Tunnel ids as RetroShare builds them: per-hop partial ids and virtual peer ids.

A tunnel id is never chosen by one node.  The asker puts a *partial tunnel id* in its
``OPEN_TUNNEL`` request; every relay replaces it with a print of (hash, its own id, the
incoming partial id, its secret bias); the node that serves the hash xors what it received
with its own print.  So the same route always gives the same tunnel id, two routes for one
hash give different ids, and no node can tell from an id where the tunnel starts or ends.
The prints must be bit-exact with ``p3turtle::generatePersonalFilePrint`` or a RetroShare
relay and an rsproto relay would disagree on the ids of one tunnel.
"""

from __future__ import annotations

from typing import Final

from pqi.wire.fields import Sha1Hash, SslId

__all__ = ["personal_file_print", "first_partial_id", "relay_partial_id", "serving_tunnel_id",
           "virtual_peer_id", "tunnel_of_virtual_peer"]

_MASK: Final = 0xFFFFFFFF


def personal_file_print(file_hash: Sha1Hash, own_id: SslId, seed: int, asymmetric: bool) -> int:
    """``generatePersonalFilePrint``: a u32 stirred from the lowercase hex of the hash and
    of our SSL id, starting at ``seed``; ``asymmetric`` picks one of the two stirrings (the
    relay/asker one, True, or the server one, False)."""
    text = (file_hash.to_hex() + own_id.to_hex()).encode("ascii")
    res = seed & _MASK
    decal = 0
    if asymmetric:
        for ch in text:
            res = (res + 7 * ch + decal) & _MASK
            decal = (decal * 44497 + 15641 + res % 86243) & _MASK
    else:
        for ch in text:
            res = (res + 7 * ch + decal) & _MASK
            decal = (decal * 86243 + 15649 + res % 44497) & _MASK
    return res


def first_partial_id(file_hash: Sha1Hash, own_id: SslId, bias: int) -> int:
    """The partial id the asker starts from (``diggTunnel``) before it, like every relay,
    perturbs it on the way out (`relay_partial_id`)."""
    return personal_file_print(file_hash, own_id, bias, True)


def relay_partial_id(file_hash: Sha1Hash, own_id: SslId, bias: int, incoming: int) -> int:
    """The partial id a node forwards, given the one it received (the multi-tunnel trick:
    one route, one id)."""
    return personal_file_print(file_hash, own_id, (incoming ^ bias) & _MASK, True)


def serving_tunnel_id(file_hash: Sha1Hash, own_id: SslId, bias: int, incoming: int) -> int:
    """The tunnel id the serving node answers in ``TUNNEL_OK``."""
    return (incoming ^ personal_file_print(file_hash, own_id, bias, False)) & _MASK


def virtual_peer_id(tunnel_id: int) -> SslId:
    """The virtual peer id of a tunnel end (``locked_addDistantPeer``): the tunnel id big
    endian in the first four bytes, zeros after."""
    return SslId(tunnel_id.to_bytes(4, "big") + bytes(12))


def tunnel_of_virtual_peer(vpid: SslId) -> int | None:
    """The tunnel id a virtual peer id stands for, or None if ``vpid`` is not shaped as one."""
    raw = bytes(vpid)
    if any(raw[4:]):
        return None
    return int.from_bytes(raw[:4], "big")
