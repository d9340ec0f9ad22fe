# -*- test-case-name: tests.test_dht_krpc -*-
"""dht: BitDHT-compatible Kademlia over BitTorrent mainline KRPC, to find friends.

`krpc` is the message codec, `routing` the k-bucket table, `node` the sans-IO core (datagrams and
a clock in, datagrams out), `protocol` and `service` the Twisted glue, `simulation` an in-process
network of cores for tests and benchmarks.  See ``docs/dht.md``.
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
from .node import DHTConfig, DHTNode, Lookup, LookupKind, dht_node_id
from .protocol import DHTProtocol
from .routing import RoutingTable
from .service import DHTNotRunningError, DHTService, FriendNotFoundError

__all__ = [
    "RS_VERSION", "KRPCDecodeError", "KRPCLimitError", "NodeInfo", "Ping", "FindNode",
    "GetPeers", "AnnouncePeer", "Connect", "UnknownQuery", "Response", "Error",
    "DHTConfig", "DHTNode", "Lookup", "LookupKind", "dht_node_id", "RoutingTable",
    "DHTProtocol", "DHTService", "DHTNotRunningError", "FriendNotFoundError",
]
