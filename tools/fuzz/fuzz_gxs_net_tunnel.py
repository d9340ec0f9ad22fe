"""Fuzz the GXS tunnel client (`services.turtle.gxs_net_tunnel`) with what distant peers can send.

The input is a sequence of records ``kind (1 byte) | length (2 bytes BE) | bytes``.  By
``kind % 4`` the bytes are: a generic search request payload (answered from a fake channel
service), a search result payload (for a search we started), the clear text of a tunnel
item (encrypted with the tunnel's key first, so the decoder behind the cipher is reached),
or raw tunnel data (which the cipher must refuse).  One tunnel is open and announced before
the records.  The client catches what is malformed and counts it; any exception that
escapes is a bug.
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    import pqi
    from pqi.items.gxs_net_tunnel import GxsGroupSummary, GxsNetTunnelVirtualPeerItem
    from pqi.items.turtle import TurtleDirection, TurtleGenericDataItem
    from pqi.wire.fields import GxsId, SslId
    from services.turtle import crypto
    from services.turtle.gxs_net_tunnel import GxsNetTunnels, group_hash, tunnel_key

__all__ = ["one_input", "records"]

_GROUP = GxsId(b"\x07" * 16)
_TURTLE_PEER = SslId(b"\x08" * 16)


def records(data: bytes) -> list[tuple[int, bytes]]:
    """Split ``data`` into (kind, bytes) records (a short tail is dropped)."""
    out = []
    pos = 0
    while pos + 3 <= len(data):
        kind, n = data[pos], int.from_bytes(data[pos + 1:pos + 3], "big")
        out.append((kind, data[pos + 3:pos + 3 + n]))
        pos += 3 + n
    return out


class _Channels:
    """A channel service holding one group, recording what reaches it."""

    service_id = 0x0217

    def __init__(self) -> None:
        self.received: list[object] = []

    def peer_connected(self, peer: object) -> None:
        pass

    def peer_disconnected(self, peer: object, reason: object) -> None:
        pass

    def receive(self, peer: object, item: object) -> None:
        self.received.append(item)

    def served_groups(self) -> list[GxsId]:
        return [_GROUP]

    def search_groups(self, text: str, limit: int) -> list[GxsGroupSummary]:
        return [GxsGroupSummary(_GROUP, text, GxsId.null(), 0, 0, 0, 0, 0, text)][:limit]


def one_input(data: bytes) -> None:
    """Feed the records to a fresh client with one announced tunnel."""
    tunnels = GxsNetTunnels(lambda vp, item: True, lambda h, on: None, lambda d: 1, b"\x01" * 20)
    tunnels.register(_Channels())
    h = group_hash(_GROUP)
    key = tunnel_key(_GROUP, _TURTLE_PEER)
    tunnels.handle_tunnel_request(h, _TURTLE_PEER)
    tunnels.add_virtual_peer(h, _TURTLE_PEER, TurtleDirection.SERVER)
    hello = pqi.encode(GxsNetTunnelVirtualPeerItem(virtual_peer_id=SslId(b"\x09" * 16)))
    tunnels.receive_turtle_data(TurtleGenericDataItem(tunnel_id=1, data=crypto.encrypt(
        key, hello)), h, _TURTLE_PEER, TurtleDirection.SERVER)
    search = tunnels.search(0x0217, "x")
    for kind, raw in records(data):
        k = kind % 4
        if k == 0:
            tunnels.receive_search_request(raw, kind)
        elif k == 1:
            tunnels.receive_search_result(search, raw)
        elif k == 2:
            tunnels.receive_turtle_data(TurtleGenericDataItem(
                tunnel_id=1, data=crypto.encrypt(key, raw, nonce=b"\x00" * 12)), h,
                _TURTLE_PEER, TurtleDirection.SERVER)
        else:
            tunnels.receive_turtle_data(TurtleGenericDataItem(tunnel_id=1, data=raw), h,
                                        _TURTLE_PEER, TurtleDirection.SERVER)


if __name__ == "__main__":
    fuzz(one_input)
