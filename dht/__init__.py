# -*- test-case-name: tests.test_dht_krpc -*-
"""dht: BitDHT-compatible Kademlia over BitTorrent mainline KRPC, to find friends.

`krpc` is the message codec, `routing` the k-bucket table, `node` the sans-IO core (datagrams and
a clock in, datagrams and events out through `drain`), `protocol` and `service` the Twisted glue.
Simulated networks of nodes run on ``tools.simnet`` (``tools.bench.dht``).  See ``docs/dht.md``.
"""

from pqi.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "dht.krpc": ("RS_VERSION", "KRPCDecodeError", "KRPCLimitError", "NodeInfo", "Ping",
                 "FindNode", "GetPeers", "AnnouncePeer", "Connect", "UnknownQuery", "Response",
                 "Error"),
    "dht.node": ("DHTConfig", "DHTNode", "Lookup", "LookupKind", "dht_node_id", "LookupDone",
                 "FriendFound", "QueryAnswered", "ConnectReceived", "SourceFlooding"),
    "dht.routing": ("RoutingTable",),
    "dht.protocol": ("DHTProtocol",),
    "dht.service": ("DHTService", "DHTNotRunningError", "FriendNotFoundError"),
})
