# -*- test-case-name: tests.test_dht_krpc -*-
"""Hypothesis strategies for KRPC messages (dht.krpc)."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from dht import krpc

__all__ = ["node_ids", "ipv4_hosts", "ipv6_hosts", "ports", "node_infos", "messages"]

node_ids = st.binary(min_size=20, max_size=20)
tids = st.binary(min_size=1, max_size=krpc.MAX_TRANSACTION_ID_LEN)
tokens = st.binary(min_size=1, max_size=krpc.MAX_TOKEN_LEN)
versions = st.none() | st.binary(min_size=1, max_size=krpc.MAX_VERSION_LEN)
ports = st.integers(1, 0xFFFF)
ipv4_hosts = st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v)))
ipv6_hosts = st.integers(0, 2**128 - 1).map(lambda v: str(ipaddress.IPv6Address(v)))
u32s = st.integers(0, 0xFFFF_FFFF)


def node_infos(hosts: st.SearchStrategy[str] = ipv4_hosts) -> st.SearchStrategy[krpc.NodeInfo]:
    return st.builds(krpc.NodeInfo, node_ids, hosts, st.integers(0, 0xFFFF))


_queries = st.one_of(
    st.builds(krpc.Ping, tids, node_ids, versions),
    st.builds(krpc.FindNode, tids, node_ids, node_ids, versions),
    st.builds(krpc.GetPeers, tids, node_ids, node_ids, versions),
    st.builds(krpc.AnnouncePeer, tids, node_ids, node_ids, ports, tokens, st.booleans(),
              versions),
    st.builds(krpc.Connect, tids, node_ids, node_infos(), node_infos(),
              st.sampled_from([krpc.CONNECT_MODE_DIRECT, krpc.CONNECT_MODE_PROXY,
                               krpc.CONNECT_MODE_RELAY]),
              u32s, u32s,
              st.sampled_from([krpc.CONNECT_REQUEST, krpc.CONNECT_REPLY, krpc.CONNECT_START,
                               krpc.CONNECT_ACK]), versions),
    st.builds(krpc.UnknownQuery, tids, node_ids,
              st.binary(min_size=1, max_size=16).filter(
                  lambda m: m not in (b"ping", b"find_node", b"get_peers", b"announce_peer",
                                      b"connect")), versions),
)

_responses = st.builds(
    krpc.Response, tids, node_ids,
    st.none() | st.lists(node_infos(), max_size=8).map(tuple),
    st.lists(node_infos(ipv6_hosts), max_size=4).map(tuple),
    st.none() | st.lists(st.tuples(ipv4_hosts | ipv6_hosts, st.integers(0, 0xFFFF)),
                         max_size=10).map(tuple),
    st.none() | tokens, versions,
    st.none() | st.tuples(ipv4_hosts, st.integers(0, 0xFFFF)),
)

_errors = st.builds(krpc.Error, tids, st.integers(-(2**63), 2**63 - 1),
                    st.binary(max_size=100), versions)

#: Every KRPC message kind, each small enough to fit in one datagram.
messages = st.one_of(_queries, _responses, _errors)
