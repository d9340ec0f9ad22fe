# -*- test-case-name: tests.test_dht_krpc -*-
"""dht: BitDHT-compatible Kademlia over BitTorrent mainline KRPC, to find friends.

`krpc` is the message codec, `routing` the k-bucket table, `node` the sans-IO core (datagrams and
a clock in, datagrams and events out through `drain`), `protocol` and `service` the Twisted glue.
Simulated networks of nodes run on ``tools.simnet`` (``tools.bench.dht``).  See ``docs/dht.md``.
"""

from .krpc import (
                   RS_VERSION,
                   AnnouncePeer,
                   Connect,
                   Error,
                   FindNode,
                   GetPeers,
                   KRPCDecodeError,
                   KRPCLimitError,
                   NodeInfo,
                   Ping,
                   Response,
                   UnknownQuery,
)
from .node import (
                   ConnectReceived,
                   DHTConfig,
                   DHTNode,
                   FriendFound,
                   Lookup,
                   LookupDone,
                   LookupKind,
                   QueryAnswered,
                   SourceFlooding,
                   dht_node_id,
)
from .protocol import DHTProtocol
from .routing import RoutingTable
from .service import DHTNotRunningError, DHTService, FriendNotFoundError

__all__ = [
    "RS_VERSION", "KRPCDecodeError", "KRPCLimitError", "NodeInfo", "Ping", "FindNode",
    "GetPeers", "AnnouncePeer", "Connect", "UnknownQuery", "Response", "Error",
    "DHTConfig", "DHTNode", "Lookup", "LookupKind", "dht_node_id", "RoutingTable",
    "LookupDone", "FriendFound", "QueryAnswered", "ConnectReceived", "SourceFlooding",
    "DHTProtocol", "DHTService", "DHTNotRunningError", "FriendNotFoundError",
]
