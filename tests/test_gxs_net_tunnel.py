"""Distant GXS sync and group search over turtle (`services.turtle.gxs_net_tunnel`, service 0x2233).

The item layouts follow libretroshare's ``rsgxsnettunnel.cc`` (no capture of real nodes
holds them); the network tests run channel services and turtle routers on one `Clock`.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import pqi
from pqi.interfaces import DisconnectReason, PeerIdentity
from pqi.items.gxs_net_tunnel import (
    GxsGroupSummary,
    GxsNetTunnelKeepAliveItem,
    GxsNetTunnelRandomBiasItem,
    GxsNetTunnelSearchGroupDataItem,
    GxsNetTunnelSearchGroupRequestItem,
    GxsNetTunnelSearchGroupSummaryItem,
    GxsNetTunnelSearchSubstringItem,
    GxsNetTunnelVirtualPeerItem,
    GxsServiceSearchReplyItem,
    GxsServiceSearchRequestItem,
)
from pqi.items.turtle import TurtleDirection, TurtleGenericDataItem
from pqi.wire.fields import GxsId, Sha1Hash, SslId
from services.publish.service import MAX_FOLLOWING, ChannelService, ForumService, PublishError
from services.turtle import crypto
from services.turtle.gxs_net_tunnel import (
    MAX_GROUPS,
    MAX_PEERS_PER_GROUP,
    MAX_RESULTS,
    MAX_SEARCHES,
    MAX_VIRTUAL_PEERS,
    GxsNetTunnels,
    group_hash,
    own_virtual_peer,
    tunnel_key,
)
from tests.gxs_net_tunnel_sim import TunnelNet

ids16 = st.binary(min_size=16, max_size=16)
text = st.text(max_size=40)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
summaries = st.builds(GxsGroupSummary, ids16.map(GxsId), text, ids16.map(GxsId), u64, u32,
                      u64, u32, u32, text)
ITEMS = st.one_of(
    st.builds(GxsNetTunnelVirtualPeerItem, virtual_peer_id=ids16.map(SslId)),
    st.just(GxsNetTunnelKeepAliveItem()),
    st.builds(GxsNetTunnelRandomBiasItem, bias=st.binary(min_size=20, max_size=20).map(Sha1Hash)),
    st.builds(GxsNetTunnelSearchSubstringItem, service=u16, substring=text),
    st.builds(GxsNetTunnelSearchGroupRequestItem, service=u16,
              hashed_group_id=st.binary(min_size=20, max_size=20).map(Sha1Hash)),
    st.builds(GxsNetTunnelSearchGroupDataItem, service=u16, encrypted_group_data=st.binary()),
    st.builds(GxsNetTunnelSearchGroupSummaryItem, service=u16,
              groups=st.lists(summaries, max_size=3).map(tuple)),
    st.builds(GxsServiceSearchRequestItem, service=u16, search_data=st.binary()),
    st.builds(GxsServiceSearchReplyItem, service=u16, reply_data=st.binary()),
)


# --- items ----------------------------------------------------------------------------------


@given(ITEMS)
def test_items_round_trip(item: Any) -> None:
    """Every GXS tunnel item decodes to itself, and re-encodes to the same bytes."""
    raw = pqi.encode(item)
    assert pqi.decode(raw) == item
    assert pqi.encode(pqi.decode(raw)) == raw


def test_layouts_from_the_source() -> None:
    """Header version 2, service 0x2233; a virtual peer id is 16 raw bytes; the substring
    search is a u16 service then a STR_KEY (0x0053) string TLV; a summary list is a u32
    count of (id, string, id, u64, u32, u64, u32, u32, string)."""
    vp = SslId(bytes(range(16)))
    assert pqi.encode(GxsNetTunnelVirtualPeerItem(virtual_peer_id=vp)) == \
        struct.pack(">BHBI", 2, 0x2233, 0x01, 8 + 16) + bytes(vp)
    assert pqi.encode(GxsNetTunnelKeepAliveItem()) == struct.pack(">BHBI", 2, 0x2233, 0x02, 8)
    body = struct.pack(">HHI", 0x0217, 0x0053, 6 + 3) + b"cat"
    assert pqi.encode(GxsNetTunnelSearchSubstringItem(service=0x0217, substring="cat")) == \
        struct.pack(">BHBI", 2, 0x2233, 0x04, 8 + len(body)) + body
    g = GxsGroupSummary(GxsId(b"\x01" * 16), "n", GxsId(b"\x02" * 16), 3, 4, 5, 6, 7, "c")
    body = (struct.pack(">HI", 0x0217, 1) + b"\x01" * 16 + struct.pack(">I", 1) + b"n" +
            b"\x02" * 16 + struct.pack(">QIQIII", 3, 4, 5, 6, 7, 1) + b"c")
    assert pqi.encode(GxsNetTunnelSearchGroupSummaryItem(service=0x0217, groups=(g,))) == \
        struct.pack(">BHBI", 2, 0x2233, 0x08, 8 + len(body)) + body


# --- ids and keys ---------------------------------------------------------------------------


def test_ids_hide_the_group_and_stay_constant() -> None:
    """Relays see H(group id), never the id; our virtual peer id for a group is the same
    for the same bias (across restarts) and differs between nodes and groups; each tunnel
    has its own key."""
    g1, g2 = GxsId(b"\x11" * 16), GxsId(b"\x22" * 16)
    assert group_hash(g1) == hashlib.sha1(bytes(g1)).digest() != bytes(g1)
    assert own_virtual_peer(g1, b"a" * 20) == own_virtual_peer(g1, b"a" * 20)
    assert own_virtual_peer(g1, b"a" * 20) != own_virtual_peer(g1, b"b" * 20)
    assert own_virtual_peer(g1, b"a" * 20) != own_virtual_peer(g2, b"a" * 20)
    t1, t2 = SslId(b"\x05" * 16), SslId(b"\x06" * 16)
    assert len(tunnel_key(g1, t1)) == 32
    assert tunnel_key(g1, t1) != tunnel_key(g1, t2) != tunnel_key(g2, t2)


# --- a fake router for the client alone -----------------------------------------------------


class _Router:
    """Records what a `GxsNetTunnels` asks of its router."""

    def __init__(self) -> None:
        self.sent: list[tuple[SslId, Any]] = []
        self.monitored: dict[Sha1Hash, bool] = {}
        self.searches: list[bytes] = []

    def send(self, vp: SslId, item: Any) -> bool:
        self.sent.append((vp, item))
        return True

    def monitor(self, h: Sha1Hash, on: bool) -> None:
        self.monitored[h] = on

    def search(self, data: bytes) -> int:
        self.searches.append(data)
        return len(self.searches)


class _Service:
    """A GXS service as the tunnels see it."""

    service_id = 0x0217

    def __init__(self, groups: list[GxsId] | None = None) -> None:
        self.groups = groups or []
        self.connected: list[SslId] = []
        self.received: list[tuple[SslId, Any]] = []

    def peer_connected(self, peer: PeerIdentity) -> None:
        self.connected.append(peer.ssl_id)

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        self.connected.remove(peer.ssl_id)

    def receive(self, peer: PeerIdentity, item: object) -> None:
        self.received.append((peer.ssl_id, item))

    def served_groups(self) -> list[GxsId]:
        return self.groups

    def search_groups(self, text: str, limit: int) -> list[GxsGroupSummary]:
        return [GxsGroupSummary(g, f"group {i}", GxsId.null(), 0, 0, 0, 0, 0, "")
                for i, g in enumerate(self.groups)][:limit]


def _client(groups: list[GxsId] | None = None) -> tuple[GxsNetTunnels, _Router, _Service]:
    router, service = _Router(), _Service(groups)
    tunnels = GxsNetTunnels(router.send, router.monitor, router.search, b"\x09" * 20)
    tunnels.register(service)
    return tunnels, router, service


def _announce(grp: GxsId, turtle_vp: SslId, gxs_vp: SslId) -> TurtleGenericDataItem:
    inner = pqi.encode(GxsNetTunnelVirtualPeerItem(virtual_peer_id=gxs_vp))
    return TurtleGenericDataItem(tunnel_id=1, data=crypto.encrypt(tunnel_key(grp, turtle_vp),
                                                                  inner))


def test_tunnel_handshake_and_refusals() -> None:
    """A new tunnel first carries our encrypted virtual peer id; the other end's id makes a
    peer of the GXS service; garbage, clear items and items of another service are refused
    and counted, and the peer goes when its tunnel closes."""
    grp = GxsId(b"\x31" * 16)
    tunnels, router, service = _client([grp])
    h = group_hash(grp)
    assert tunnels.handle_tunnel_request(h, SslId(b"\x01" * 16))
    assert not tunnels.handle_tunnel_request(group_hash(GxsId(b"\x32" * 16)), SslId(b"\x01" * 16))
    tvp, gvp = SslId(b"\x41" * 16), SslId(b"\x51" * 16)
    tunnels.add_virtual_peer(h, tvp, TurtleDirection.CLIENT)
    (to, first), = router.sent
    assert to == tvp
    assert pqi.decode(crypto.decrypt(tunnel_key(grp, tvp), first.data)) == \
        GxsNetTunnelVirtualPeerItem(virtual_peer_id=own_virtual_peer(grp, b"\x09" * 20))
    tunnels.receive_turtle_data(_announce(grp, tvp, gvp), h, tvp, TurtleDirection.CLIENT)
    assert service.connected == [gvp] and tunnels.group_of(gvp) == grp
    tunnels.receive_turtle_data(TurtleGenericDataItem(tunnel_id=1, data=b"junk" * 10), h, tvp,
                                TurtleDirection.CLIENT)
    other = pqi.encode(GxsServiceSearchRequestItem(service=1, search_data=b""))
    tunnels.receive_turtle_data(TurtleGenericDataItem(
        tunnel_id=1, data=crypto.encrypt(tunnel_key(grp, tvp), other)), h, tvp,
        TurtleDirection.CLIENT)
    assert tunnels.refused["undecryptable or malformed item"] == 1
    assert tunnels.refused["item of another service"] == 1
    assert service.received == []
    assert not tunnels.send(gvp, GxsNetTunnelKeepAliveItem())  # not the group's service
    tunnels.remove_virtual_peer(h, tvp)
    assert service.connected == [] and not tunnels.is_distant(gvp)


def test_bounds_hold() -> None:
    """Searches kept, hits per search, groups handled, tunnels per group and virtual peers
    never pass their named bounds."""
    groups = [GxsId(i.to_bytes(16, "big")) for i in range(MAX_VIRTUAL_PEERS + 5)]
    tunnels, router, service = _client(groups)
    for _ in range(MAX_SEARCHES + 5):
        tunnels.search(0x0217, "x")
    assert len(tunnels.searches) == MAX_SEARCHES
    rid = next(reversed(tunnels.searches))
    many = tuple(GxsGroupSummary(GxsId(i.to_bytes(16, "big")), "x", GxsId.null(), 0, 0, 0, 0,
                                 0, "") for i in range(MAX_RESULTS + 20))
    tunnels.receive_search_result(rid, pqi.encode(GxsNetTunnelSearchGroupSummaryItem(
        service=0x0217, groups=many)))
    assert len(tunnels.searches[rid].results) == MAX_RESULTS
    h = group_hash(groups[0])
    tunnels.handle_tunnel_request(h, SslId(b"\x01" * 16))
    for i in range(MAX_PEERS_PER_GROUP + 3):
        tunnels.add_virtual_peer(h, SslId(bytes([i + 1]) * 16), TurtleDirection.CLIENT)
    assert len(tunnels.groups[groups[0]].turtle_peers) == MAX_PEERS_PER_GROUP
    for i, g in enumerate(groups[1:]):  # the first group's tunnels are full already
        tvp = SslId((1000 + i).to_bytes(16, "big"))
        tunnels.handle_tunnel_request(group_hash(g), tvp)
        tunnels.add_virtual_peer(group_hash(g), tvp, TurtleDirection.CLIENT)
        tunnels.receive_turtle_data(_announce(g, tvp, SslId((5000 + i).to_bytes(16, "big"))),
                                    group_hash(g), tvp, TurtleDirection.CLIENT)
    assert len(tunnels.virtual_peers) == MAX_VIRTUAL_PEERS
    assert tunnels.refused["too many virtual peers"] == len(groups) - 1 - MAX_VIRTUAL_PEERS
    big, _, _ = _client()
    for i in range(MAX_GROUPS):
        big.follow(0x0217, GxsId((i + 1).to_bytes(16, "big")))
    try:
        big.follow(0x0217, GxsId(b"\xff" * 16))
    except OverflowError:
        pass
    else:
        raise AssertionError("a group beyond MAX_GROUPS was accepted")
    assert len(big.groups) == MAX_GROUPS


def test_search_answers_only_from_registered_services() -> None:
    """A substring search is answered from the named service's groups; a search for
    another service, empty text or garbage gets no answer."""
    tunnels, _, _ = _client([GxsId(b"\x61" * 16)])
    ask = pqi.encode(GxsNetTunnelSearchSubstringItem(service=0x0217, substring="group"))
    answer = pqi.decode(tunnels.receive_search_request(ask, 10) or b"")
    assert isinstance(answer, GxsNetTunnelSearchGroupSummaryItem)
    assert [g.group_id for g in answer.groups] == [GxsId(b"\x61" * 16)]
    assert tunnels.receive_search_request(pqi.encode(GxsNetTunnelSearchSubstringItem(
        service=0x0215, substring="group")), 10) is None
    assert tunnels.receive_search_request(pqi.encode(GxsNetTunnelSearchSubstringItem(
        service=0x0217, substring="  ")), 10) is None
    assert tunnels.receive_search_request(b"\x02\x22\x33", 10) is None


# --- the simulated network ------------------------------------------------------------------


def _line() -> tuple[TunnelNet, GxsId]:
    """A-B-C in a line (friends both for NXS and turtle); A made a channel with one post;
    B is A's friend but does not subscribe; C is not A's friend."""
    net = TunnelNet(ChannelService, 3)
    grp = net.node(0).create("Far away channel", "only A follows it")
    net.node(0).post(grp, "first", "hello")
    net.connect(0, 1)
    net.connect(1, 2)
    net.run(130)
    return net, grp


def test_channel_found_and_followed_that_no_friend_follows() -> None:
    """C cannot get A's channel from its friend B (B knows it but does not follow it, so it
    does not serve it); C finds it by name over turtle, follows it through tunnels across B,
    gets the post and later ones, while B still holds none of its posts."""
    net, grp = _line()
    a, b, c = net.node(0), net.node(1), net.node(2)
    assert b.group(grp) is not None and not b.group(grp).subscribed  # type: ignore[union-attr]
    assert c.group(grp) is None
    rid = c.search_distant("far CHANNEL")
    net.run(5)
    assert [(s.group_id, s.name, s.message_count) for s in c.search_results(rid)] == \
        [(grp, "Far away channel", 1)]
    c.follow_distant(grp)
    net.run(60)
    info = c.group(grp)
    assert info is not None and info.subscribed
    assert [m.title for m in c.messages(grp)] == ["first"]
    a.post(grp, "second", "again")
    net.run(70)
    assert [m.title for m in c.messages(grp)] == ["first", "second"]
    assert b.store.message_count(grp) == 0
    # Every item between routers was a turtle item: the group id never crossed B in clear.
    assert all(t.refused == {} for t in net.tunnels)


def test_distant_peer_sees_only_its_group() -> None:
    """A distant peer is offered only the group of its tunnel: A's other channel never
    reaches C through the tunnel."""
    net, grp = _line()
    other = net.node(0).create("Private matters", "not for the tunnel")
    net.run(5)
    net.node(2).follow_distant(grp)
    net.run(60)
    assert net.node(2).group(grp) is not None
    assert net.node(2).group(other) is None


def test_search_finds_nothing_without_a_match() -> None:
    """A search no group matches collects no hit; a forum search does not find channels."""
    net, _ = _line()
    c = net.node(2)
    rid = c.search_distant("nothing like it")
    forums = c.tunnels.search(0x0215, "far channel")  # forums: A holds no such forum
    net.run(5)
    assert c.search_results(rid) == []
    assert c.tunnels.searches[forums].results == {}
    assert c.tunnels.searches[forums].answers == 0


def test_follow_bound_and_errors() -> None:
    """At most MAX_FOLLOWING distant groups wait at once; empty searches are refused; a
    service without tunnels says distant groups need turtle."""
    net = TunnelNet(ChannelService, 1)
    c = net.node(0)
    for i in range(MAX_FOLLOWING):
        c.follow_distant(GxsId((i + 1).to_bytes(16, "big")))
    try:
        c.follow_distant(GxsId(b"\xee" * 16))
    except PublishError:
        pass
    else:
        raise AssertionError("a distant group beyond MAX_FOLLOWING was accepted")
    assert len(c.following) == MAX_FOLLOWING
    try:
        c.search_distant("  ")
    except PublishError:
        pass
    else:
        raise AssertionError("an empty search was started")
    from tests.publish_net import PublishNet
    plain = PublishNet(ForumService, 1).nodes[0]
    try:
        plain.search_distant("x")
    except PublishError as e:
        assert "turtle" in str(e)
    else:
        raise AssertionError("a search without tunnels was started")


def test_fuzz_harness_survives_mutations() -> None:
    """The atheris harness's inputs, with seeded random changes, never make an exception
    escape the GXS tunnel client (every malformed input is counted and dropped)."""
    import pathlib
    import random

    from tools.fuzz.fuzz_gxs_net_tunnel import one_input

    rng = random.Random(18)
    corpus = pathlib.Path(__file__).resolve().parent.parent / "tools/fuzz/corpus/gxs_net_tunnel"
    seeds = sorted(p.read_bytes() for p in corpus.iterdir())
    assert seeds
    for seed in seeds:
        for _ in range(40):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            one_input(bytes(data))


def test_unknown_author_of_a_distant_group_is_asked_of_friends() -> None:
    """When C does not know the identity that signed A's channel, the group from the tunnel
    is refused, the identity is asked of C's friend B (not of the distant peer), and once C
    holds it the group is listed again and followed."""
    net, grp = _line()
    c = net.node(2)
    author = net.pub.identities[0]
    keys = c.identities
    everyone = keys.pairs  # type: ignore[attr-defined]
    keys.pairs = {k: v for k, v in everyone.items() if k != author}  # type: ignore[attr-defined]
    c.follow_distant(grp)
    net.run(30)
    assert c.group(grp) is None
    assert (author, TunnelNet.ssl(1)) in keys.requested  # type: ignore[attr-defined]
    assert all(not c.tunnels.is_distant(p) for _, p in keys.requested)  # type: ignore
    keys.pairs = everyone  # type: ignore[attr-defined]
    net.run(70)
    info = c.group(grp)
    assert info is not None and info.subscribed
