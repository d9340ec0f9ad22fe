"""dht: BitDHT-compatible Kademlia over BitTorrent mainline KRPC, to find friends."""

__all__: list[str] = []
