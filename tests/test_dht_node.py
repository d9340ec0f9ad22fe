"""The sans-IO DHT core and routing table, driven by hand with a fake clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dht import krpc
from dht.krpc import AnnouncePeer, Error, FindNode, GetPeers, Ping, Response
from dht.node import (
    MAX_PARKED_PER_SOURCE,
    MAX_PARKED_SOURCES,
    QUERY_TIMEOUT,
    ConnectReceived,
    DHTConfig,
    DHTNode,
    FriendFound,
    LookupDone,
    LookupKind,
    QueryAnswered,
    dht_node_id,
)
from dht.routing import BAD_FAILURES, GOOD_INTERVAL, RoutingTable
from pqi.core import Datagram
from tools.bench.dht import dht_network, measure_lookups

US = ("172.16.0.1", 6881)
PEER = ("172.16.0.2", 7000)
PEER_ID = b"\x80" + b"\x01" * 19


def make_node(seed: int = 1, **cfg: object) -> DHTNode:
    return DHTNode(b"\x00" * 20, DHTConfig(**cfg), rng=random.Random(seed))  # type: ignore[arg-type]


def sent(node: DHTNode, now: float = 0.0) -> list[Datagram]:
    """The datagrams among the node's outputs (its events are dropped)."""
    return [o for o in node.drain(now) if isinstance(o, Datagram)]


def recv(node: DHTNode, data: bytes, addr: krpc.Address, now: float) -> list[Datagram]:
    """Feed one datagram; return the datagrams the node wants sent."""
    node.datagram_received(data, addr, now)
    return sent(node, now)


def one(out: list[Datagram]) -> krpc.Message:
    assert len(out) >= 1
    return krpc.decode(out[0].data)


def verify(node: DHTNode, addr: krpc.Address, node_id: bytes, now: float) -> None:
    """Make ``addr`` answer a ping of ours, so it is verified and in the table."""
    node.ping(addr, now)
    tid = one(sent(node, now)).transaction_id
    recv(node, krpc.encode(Response(tid, node_id)), addr, now)


def test_dht_node_id_derivation() -> None:
    """BitDHT's id for a location: SHA1("RS_VERSION_0.5.1\\0" + 16-byte SSL id), pinned for the
    real alice and bob accounts of the vectors."""
    alice = bytes.fromhex("e3d224134f8957af7fa9e65647cb7308")
    bob = bytes.fromhex("65c312566c89e99e04516702cc795383")
    assert dht_node_id(alice).hex() == "efb10fd9acf44eb4b65f3c1c60cc8a0c18346fb9"
    assert dht_node_id(bob).hex() == "d006c07a8d68b5eb6877c31b588b53f99c1e5c0a"
    with pytest.raises(ValueError):
        dht_node_id(b"\x00" * 20)


def test_connect_becomes_an_event_or_is_counted() -> None:
    """BitDHT's connect queries become `ConnectReceived` events when the skin takes them;
    otherwise they are counted."""
    node = make_node()
    src = krpc.NodeInfo(PEER_ID, *PEER)
    msg = krpc.Connect(b"c1", PEER_ID, src, krpc.NodeInfo(node.node_id, *US),
                       krpc.CONNECT_MODE_DIRECT, 0, 0, krpc.CONNECT_REQUEST, krpc.RS_VERSION)
    recv(node, krpc.encode(msg), PEER, 0.0)
    assert node.counters.connect_ignored == 1
    node.accept_connect = True
    node.datagram_received(krpc.encode(msg), PEER, 1.0)
    assert ConnectReceived(msg, PEER) in node.drain(1.0)
    assert node.counters.connect_ignored == 1


def test_ping_answered_with_version() -> None:
    """A verified peer's ping gets our id and ``v`` = BD02RS51 back, same transaction id."""
    node = make_node()
    verify(node, PEER, PEER_ID, 0.0)
    out = recv(node, krpc.encode(Ping(b"xy", PEER_ID)), PEER, 1.0)
    assert out == [Datagram(krpc.encode(Response(b"xy", node.node_id, version=b"BD02RS51")),
                            PEER)]


def test_find_node_reply_always_has_nodes_key() -> None:
    """With no contacts we still send ``nodes`` (empty): BitDHT reads a reply without it as a
    pong (``beMsgType``)."""
    node = make_node()
    node._verify(PEER)  # verified, yet no contact in the table
    request = krpc.encode(FindNode(b"q1", PEER_ID, b"\x05" * 20))
    reply = recv(node, request, PEER, 0.0)[0].data
    assert reply == (b"d1:rd2:id20:" + node.node_id + b"5:nodes0:e1:t2:q11:v8:BD02RS511:y1:re")


def _sent_bytes(out: list) -> int:
    return sum(len(o.data) for o in out if isinstance(o, Datagram))


def test_unverified_source_gets_no_amplification() -> None:
    """An unknown source never gets more bytes than it sent (issue 14, finding 6: a 55-byte
    ping drew 46 + 69 bytes): a find_node pays our verifying ping first, the reply is trimmed
    to the rest; pings get their pong, and the ping once their credit covers it; verified,
    the source gets k full nodes."""
    node = make_node()
    for i in range(20):
        verify(node, (f"10.1.0.{i}", 1000), bytes([i + 1]) * 20, 0.0)
    received = sent = 0
    for n in range(6):  # a ping-only source: pongs, then one ping when paid for
        ping = krpc.encode(Ping(b"p%d" % n, PEER_ID))
        out = recv(node, ping, PEER, 1.0 + n)
        received += len(ping)
        sent += _sent_bytes(out)
        assert sent <= received
    request = krpc.encode(FindNode(b"q1", bytes([99]) * 20, b"\x05" * 20))
    other = ("192.0.2.9", 6881)
    out = recv(node, request, other, 10.0)
    assert _sent_bytes(out) <= len(request)
    probes = [o for o in out if isinstance(krpc.decode(o.data), Ping)]
    assert len(probes) == 1
    # Once it answers our ping, it is verified and gets full answers (BitDHT's 10 nodes).
    recv(node, krpc.encode(Response(krpc.decode(probes[0].data).transaction_id,
                                    bytes([99]) * 20)), other, 10.1)
    full = one(recv(node, request, other, 10.2))
    assert isinstance(full, Response) and len(full.nodes) == node.config.reply_nodes == 10


def test_credit_table_is_bounded() -> None:
    """The per-source byte credit is kept for at most max_verified unverified sources."""
    node = make_node(max_verified=64)
    limit = node.config.max_verified
    for i in range(limit + 50):
        recv(node, krpc.encode(Ping(b"pp", bytes([i % 251 + 1]) * 20)),
             (f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 7000), 0.0)
    assert len(node._credit) == limit


def _known(node: DHTNode, count: int = 20) -> None:
    for i in range(count):
        verify(node, (f"10.1.0.{i}", 1000), bytes([i + 1]) * 20, 0.0)


def test_reply_parked_until_verified_then_sent_in_full() -> None:
    """An unverified find_node gets only our verifying ping at first (the ping fits its
    credit, ten nodes do not); when the source answers the ping, the reply goes out in full,
    with the query's own transaction id: a BitDHT node gets its 10 nodes on its first ask."""
    node = make_node()
    _known(node)
    request = krpc.encode(FindNode(b"q7", PEER_ID, b"\x05" * 20))
    out = recv(node, request, PEER, 1.0)
    assert [type(krpc.decode(o.data)) for o in out] == [Ping]
    assert _sent_bytes(out) <= len(request) and node.counters.parked_replies == 1
    pong = krpc.encode(Response(krpc.decode(out[0].data).transaction_id, PEER_ID))
    released = recv(node, pong, PEER, 1.1)
    answer = one(released)
    assert isinstance(answer, Response) and answer.transaction_id == b"q7"
    assert len(answer.nodes) == node.config.reply_nodes == 10
    assert node.counters.released_replies == 1 and node.is_verified(PEER)


def test_spoofed_source_never_gets_more_than_it_sent() -> None:
    """A source that never answers (a spoofed address) sends pings, find_node and get_peers
    for ten minutes: at every step the bytes we sent it stay at or under the bytes it sent
    us, and replies parked for it are dropped when our verifying ping times out."""
    node = make_node()
    _known(node)
    received = sent_bytes = 0
    queries = [Ping(b"p1", PEER_ID), FindNode(b"f1", PEER_ID, b"\x05" * 20),
               GetPeers(b"g1", PEER_ID, b"\x06" * 20)]
    for step in range(600):
        now = 1.0 + step
        data = krpc.encode(queries[step % len(queries)])
        received += len(data)
        sent_bytes += _sent_bytes(recv(node, data, PEER, now))
        node.handle_timer(now)
        sent_bytes += _sent_bytes(sent(node, now))
        assert sent_bytes <= received
    node.handle_timer(600.0 + QUERY_TIMEOUT + 1)
    assert node._parked == {} and not node.is_verified(PEER)
    assert node.counters.parked_replies >= 1 and node.counters.released_replies == 0


def test_parked_replies_are_bounded() -> None:
    """At most MAX_PARKED_SOURCES sources have replies waiting, each at most
    MAX_PARKED_PER_SOURCE; the rest get replies trimmed to their credit."""
    node = make_node()
    _known(node)
    for i in range(MAX_PARKED_SOURCES + 50):
        addr = (f"10.{9 + i // 65536}.{i // 256 % 256}.{i % 256}", 7000)
        sender = b"\x40" + i.to_bytes(19, "big")
        recv(node, krpc.encode(FindNode(b"ff", sender, b"\x05" * 20)), addr, 1.0)
    assert len(node._parked) == MAX_PARKED_SOURCES
    lone = make_node(rate_limit_exempt=frozenset({PEER[0]}))
    _known(lone)
    for n in range(MAX_PARKED_PER_SOURCE + 6):
        recv(lone, krpc.encode(FindNode(b"f%d" % n, PEER_ID, b"\x05" * 20)), PEER, 1.0)
    assert len(lone._parked[PEER].replies) == MAX_PARKED_PER_SOURCE


def test_get_peers_token_announce_and_rotation() -> None:
    """get_peers hands a token; announce_peer with it stores the peer, which get_peers returns;
    a token from the previous secret still works, one two rotations old does not."""
    node = make_node()
    verify(node, PEER, PEER_ID, 0.0)
    ih = b"\x42" * 20
    r = one(recv(node, krpc.encode(GetPeers(b"g1", PEER_ID, ih)), PEER, 1.0))
    assert isinstance(r, Response) and r.token is not None and r.values is None
    node.handle_timer(301.0)  # one rotation: the token is now "previous"
    sent(node)  # the periodic re-join's queries
    ok = one(recv(node,
        krpc.encode(AnnouncePeer(b"a1", PEER_ID, ih, 6881, r.token)), PEER, 302.0))
    assert ok == Response(b"a1", node.node_id, version=krpc.RS_VERSION)
    r2 = one(recv(node, krpc.encode(GetPeers(b"g2", PEER_ID, ih)), PEER, 303.0))
    assert isinstance(r2, Response) and r2.values == ((PEER[0], 6881),)
    node.handle_timer(602.0)  # second rotation: the first token has expired
    sent(node)  # the periodic re-join's queries
    bad = one(recv(node,
        krpc.encode(AnnouncePeer(b"a2", PEER_ID, ih, 6882, r.token)), PEER, 603.0))
    assert isinstance(bad, Error) and bad.code == krpc.ERROR_PROTOCOL
    assert node.counters.bad_tokens == 1
    # Another IP cannot use PEER's token.
    other = ("172.16.0.3", 7000)
    verify(node, other, b"\x33" * 20, 604.0)
    r3 = one(recv(node, krpc.encode(GetPeers(b"g3", PEER_ID, ih)), PEER, 604.0))
    assert isinstance(r3, Response) and r3.token is not None
    stolen = one(recv(node,
        krpc.encode(AnnouncePeer(b"a3", b"\x33" * 20, ih, 1, r3.token)), other, 605.0))
    assert isinstance(stolen, Error)


def test_announced_peers_expire() -> None:
    """An announced peer is forgotten after 30 minutes."""
    node = make_node()
    verify(node, PEER, PEER_ID, 0.0)
    ih = b"\x42" * 20
    token = node.make_token(PEER[0])
    recv(node, krpc.encode(AnnouncePeer(b"a1", PEER_ID, ih, 0, token, True)),
                           PEER, 1.0)
    assert node.get_stored_peers(ih, 2.0) == [PEER]
    node.handle_timer(1.0 + 30 * 60 + 5)
    assert node.get_stored_peers(ih, 1.0 + 30 * 60 + 5) == []


def test_rate_limit_bans_for_300_seconds() -> None:
    """Over 5 packets/s averaged over 10 s from one IP bans it for 300 s; others unaffected."""
    node = make_node()
    ping = krpc.encode(Ping(b"pp", PEER_ID))
    answered = sum(bool(recv(node, ping, PEER, 0.0)) for _ in range(60))
    assert answered == 50
    assert node.counters.rate_limited == 1
    assert recv(node, ping, PEER, 299.0) == []
    assert recv(node, ping, ("172.16.0.9", 1), 10.0) != []
    assert recv(node, ping, PEER, 301.0) != []
    # A steady 5/s is fine forever.
    node2 = make_node()
    assert all(recv(node2, ping, PEER, t / 5) for t in range(500))
    # Loopback (other local nodes) is exempt by default.
    assert all(recv(node2, ping, ("127.0.0.1", 9), 0.0) for _ in range(100))


def test_malformed_and_oversized_counted_not_raised() -> None:
    """Garbage, oversized datagrams and stray responses are counted and dropped."""
    node = make_node()
    assert recv(node, b"d1:xe", PEER, 0.0) == []
    assert recv(node, b"d" + b"x" * 2000, PEER, 0.0) == []
    assert recv(node, krpc.encode(Response(b"zz", PEER_ID)), PEER, 0.0) == []
    c = node.counters
    assert (c.malformed, c.oversized, c.unexpected_responses) == (1, 1, 1)


def test_unknown_method_gets_204() -> None:
    """BEP 5: an unknown query method is answered with error 204."""
    node = make_node()
    verify(node, PEER, PEER_ID, 0.0)
    out = one(recv(node,
        krpc.encode(krpc.UnknownQuery(b"u1", PEER_ID, b"vote")), PEER, 1.0))
    assert isinstance(out, Error) and out.code == krpc.ERROR_METHOD_UNKNOWN


def test_response_from_wrong_address_ignored() -> None:
    """A response must come from the address we asked; a spoofed one is dropped."""
    node = make_node()
    node.ping(PEER, 0.0)
    tid = one(sent(node)).transaction_id
    recv(node, krpc.encode(Response(tid, PEER_ID)), ("172.25.9.9", 7000), 0.1)
    assert node.counters.unexpected_responses == 1
    assert node.routing.get(PEER_ID) is None


def test_timeouts_make_contacts_bad_and_replacements_step_in() -> None:
    """Unanswered queries fail a contact; after BAD_FAILURES a cached newcomer replaces it."""
    node = make_node(k=2)
    far = [(b"\xf0" + bytes([i]) * 19, (f"10.2.0.{i}", 1)) for i in range(1, 4)]
    # Fill the far bucket (which does not hold our id) with 2, the third goes to the cache.
    for nid, addr in far[:2]:
        verify(node, addr, nid, 0.0)
    for nid, addr in far:
        verify(node, addr, nid, 1.0)
    bucket = node.routing.bucket_for(far[0][0])
    assert [c.node_id for c in bucket.contacts] == [far[0][0], far[1][0]]
    assert [c.node_id for c in bucket.replacements] == [far[2][0]]
    t = 2.0
    for _ in range(BAD_FAILURES):
        node.lookup(far[0][0], t, seeds=())
        sent(node, t)
        t += 10.0
        node.handle_timer(t)
    # Both silent contacts went bad; the first to do so yielded to the single replacement.
    assert node.routing.get(far[2][0]) is not None
    assert [c.is_bad() for c in node.routing.bucket_for(far[0][0]).contacts].count(True) == 1
    assert node.counters.timeouts >= BAD_FAILURES


def test_routing_table_split_and_liveness() -> None:
    """Only the bucket holding our id splits; contacts go questionable after 15 minutes."""
    own = b"\x00" * 20
    table = RoutingTable(own, k=2)
    ids = [bytes([b]) + b"\x00" * 19 for b in (0x80, 0x90, 0xA0, 0x01, 0x02, 0x03)]
    for i, nid in enumerate(ids):
        table.update(nid, ("172.16.0.1", 1000 + i), 0.0, replied=True)
    far = table.bucket_for(ids[0])
    assert far.lo == 1 << 159 and len(far.contacts) == 2  # far half: never split
    assert [c.node_id for c in far.replacements] == [ids[2]]
    assert len(table.buckets) > 2
    c = table.get(ids[0])
    assert c is not None and c.is_good(GOOD_INTERVAL - 1) and not c.is_good(GOOD_INTERVAL + 1)
    # A query alone never inserts; a known id from a new address is ignored.
    table.update(b"\x7f" * 20, ("172.16.0.9", 1), 1.0, replied=False)
    assert table.get(b"\x7f" * 20) is None
    table.update(ids[0], ("172.22.6.6", 1), 1.0, replied=True)
    assert table.get(ids[0]).addr == ("172.16.0.1", 1000)  # type: ignore[union-attr]


@pytest.mark.slow
def test_exact_lookup_finds_node_by_id() -> None:
    """In a small simulated network an exact lookup reports the node whose id is the target
    (a `FriendFound` event, then the `LookupDone`)."""
    net = dht_network(7, 40, settle=30.0)
    nodes = list(net.nodes.values())
    seeker, friend = nodes[5], nodes[33]
    seeker.outputs.clear()
    lk = net.feed(seeker.addr, seeker.core.lookup, friend.core.node_id, exact=True)
    net.run(30.0, until=lambda: lk.done)
    assert seeker.outputs == [FriendFound(friend.core.node_id, friend.addr), LookupDone(lk)]
    assert lk.found == friend.addr


@pytest.mark.slow
def test_get_peers_lookup_and_announce_in_simulation() -> None:
    """A node announces an info hash; another finds it with a get_peers lookup."""
    net = dht_network(11, 60, settle=30.0)
    nodes = list(net.nodes.values())
    ih = b"\x5a" * 20
    lk = net.feed(nodes[3].addr, nodes[3].core.lookup, ih, kind=LookupKind.GET_PEERS)
    net.run(30.0, until=lambda: lk.done)
    assert lk.done
    net.feed(nodes[3].addr, nodes[3].core.announce, lk, 4242)
    net.run(2.0)
    got = net.feed(nodes[50].addr, nodes[50].core.lookup, ih, kind=LookupKind.GET_PEERS)
    net.run(30.0, until=lambda: got.done)
    assert (nodes[3].addr[0], 4242) in got.peers


@pytest.mark.slow
def test_simulation_300_nodes_converge() -> None:
    """300 nodes joined through one bootstrap: lookups of random ids find the true 8 closest."""
    net = dht_network(2026, 300, settle=20.0)
    stats = measure_lookups(net, 30)
    s = stats.summary()
    assert s["nearest_found_rate"] == 1.0
    assert s["closest8_overlap_mean"] >= 7.5
    assert s["round_trips_p95"] <= 8
    assert min(stats.table_sizes) >= 8


def test_idle_node_has_no_deadline_and_ping_answer_is_an_event() -> None:
    """A node that knows nobody waits for nothing (no timer); a ping through the API comes
    back as a `QueryAnswered` event with its ticket, and a silent peer's as None."""
    node = make_node()
    assert node.next_deadline() is None
    ticket = node.ping(PEER, 0.0)
    tid = one(sent(node)).transaction_id
    assert node.next_deadline() is not None
    node.datagram_received(krpc.encode(Response(tid, PEER_ID)), PEER, 0.5)
    answers = [o for o in node.drain(0.5) if isinstance(o, QueryAnswered)]
    assert answers == [QueryAnswered(ticket, Response(tid, PEER_ID))]
    silent = node.ping(("172.16.0.7", 1), 1.0)
    node.handle_timer(1.0 + QUERY_TIMEOUT)
    assert QueryAnswered(silent, None) in node.drain(1.0 + QUERY_TIMEOUT)


@pytest.mark.slow
@given(st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.booleans()), max_size=120))
def test_routing_table_invariants(updates: list[tuple[bytes, bool]]) -> None:
    """Whatever answers and queries arrive, buckets tile the id space, hold at most k contacts
    each, and every contact sits in the bucket covering its id."""
    table = RoutingTable(b"\x55" * 20)
    for i, (nid, replied) in enumerate(updates):
        table.update(nid, ("172.16.0.1", 1 + i), float(i), replied=replied)
    assert table.buckets[0].lo == 0 and table.buckets[-1].hi == 1 << 160
    for a, b in zip(table.buckets, table.buckets[1:], strict=False):
        assert a.hi == b.lo
    for b in table.buckets:
        assert len(b.contacts) <= table.k
        assert all(b.covers(c.key) for c in b.contacts)
    assert len({c.node_id for c in table}) == len(table)


def test_quiet_table_rejoins_and_answers_make_contacts_good_again() -> None:
    """After 15 silent minutes every contact is questionable; housekeeping re-runs the join
    (find_node to the known contacts), and the contacts that answer are good again."""
    node = make_node()
    contacts = {addr: nid for nid, addr in
                [(bytes([0x80 | i]) + bytes(19), (f"10.3.0.{i}", 1)) for i in range(1, 9)]
                + [(bytes([0x40 | i]) + bytes(19), (f"10.4.0.{i}", 1)) for i in range(1, 9)]}
    for addr, nid in contacts.items():
        verify(node, addr, nid, 0.0)
    assert node.routing.good_count(1.0) == 16
    later = GOOD_INTERVAL + 10.0
    node.handle_timer(later)
    out = sent(node, later)
    assert node.routing.good_count(later) == 0
    queries = [(krpc.decode(d.data), d.addr) for d in out]
    assert queries and all(isinstance(q, FindNode) for q, _ in queries)
    for q, addr in queries:
        recv(node, krpc.encode(Response(q.transaction_id, contacts[addr],
                                                    nodes=())), addr, later + 0.1)
    assert node.routing.good_count(later + 0.2) == len(queries)
