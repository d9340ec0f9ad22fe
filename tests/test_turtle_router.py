"""The turtle router core on simulated networks (tools/simnet, seeded): depth rules, result
routing, duplicates, tunnels along a path and their death when idle, throttling of a flooding
friend, and the bounds of every table."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from pqi.core import is_core
from pqi.items.turtle import (
    TurtleDirection,
    TurtleFileInfo,
    TurtleFtSearchResultItem,
    TurtleGenericDataItem,
    TurtleOpenTunnelItem,
    TurtleStringSearchRequestItem,
    TurtleTunnelOkItem,
)
from pqi.wire.fields import Sha1Hash
from services.turtle import fileprint
from services.turtle.router import (
    CLEANING_PERIOD,
    EMPTY_TUNNEL_DIGGING,
    MANAGEMENT_PERIOD,
    MAX_DEPTH,
    MAX_RELAY_QUEUE_BYTES,
    MAX_SEARCH_REQUESTS,
    MAX_TUNNEL_REQUESTS,
    TUNNEL_IDLE_TIME,
    FileSearchResult,
    SendItem,
    TurtleLimits,
    TurtleRouter,
)

from .turtle_sim import addr, build, ring_with_chords, ssl

FILE = TurtleFileInfo(size=1234, hash=Sha1Hash(b"\x42" * 20), name="needle.bin")
UNLIMITED = TurtleLimits(search_rate=0, tunnel_request_rate=0)


def test_router_is_a_core():
    """The router keeps the pqi.core contract (drain/next_deadline/handle_timer)."""
    assert is_core(TurtleRouter(ssl(0)))


def _expected_reach(routers, request_id):
    """Walk a line by the rules: the hop a request dies at, from each relay's bias."""
    depth = 1
    for k in range(1, len(routers)):
        low = (routers[k].bias ^ request_id) & 7
        if k == len(routers) - 1:
            return k
        if depth >= MAX_DEPTH and low != 2:
            return k
        if not (depth == 1 and low == 6):
            depth += 1
    return len(routers) - 1


@pytest.mark.parametrize("seed", range(40))
def test_search_depth_on_a_line(seed):
    """On a line of 12 nodes a search from node 0 stops where the depth rules say: depth
    grows by one a hop (not at depth 1 when the relay's bias says so), and at depth 6 only a
    relay whose bias bypasses the limit forwards it."""
    n = 12
    sim = build(n, [(i, i + 1) for i in range(n - 1)], seed=seed)
    rid = sim.feed(0, "search", "needle")
    sim.net.run(5)
    reached = {dst for _, dst, item in sim.sent
               if isinstance(item, TurtleStringSearchRequestItem)}
    assert max(reached) == _expected_reach(sim.routers, rid)
    for src, _, item in sim.sent:
        if isinstance(item, TurtleStringSearchRequestItem) and item.depth > MAX_DEPTH:
            assert (sim.routers[src].bias ^ rid) & 7 == 2


def test_bypass_and_no_increment_both_happen_across_seeds():
    """Across seeds, some searches go one hop past depth 6 (bypass) and some keep depth 1
    for a hop (no increment): the two 1-in-8 rules are live."""
    beyond = shifted = 0
    for seed in range(40):
        sim = build(10, [(i, i + 1) for i in range(9)], seed=seed)
        sim.feed(0, "search", "x")
        sim.net.run(5)
        depths = [(dst, item.depth) for _, dst, item in sim.sent
                  if isinstance(item, TurtleStringSearchRequestItem)]
        beyond += any(d > MAX_DEPTH for _, d in depths)
        shifted += any(dst == 2 and d == 1 for dst, d in depths)
    assert beyond > 0 and shifted > 0


def test_search_in_a_24_node_mesh_results_reach_the_asker_only():
    """24 nodes, a ring with chords: each node handles the request once (copies through
    cycles are dropped), the two sharers' hits come back hop by hop to the asker alone."""
    n = 24
    sim = build(n, ring_with_chords(n, 3), seed=3, shares={9: [FILE], 17: [FILE]})
    rid = sim.feed(0, "search", "needle")
    sim.net.run(10)
    handled = [i for i in range(n) if rid in sim.routers[i].search_requests]
    assert len(handled) == n
    dups = sum(r.stats.dropped["duplicate search request"] for r in sim.routers)
    assert dups > 0
    results = [e for e in sim.events[0] if isinstance(e, FileSearchResult)]
    assert len(results) == 2 and all(r.results == (FILE,) for r in results)
    assert not any(isinstance(e, FileSearchResult) for i in range(1, n) for e in sim.events[i])
    for src, dst, item in sim.sent:
        if isinstance(item, TurtleFtSearchResultItem):
            assert sim.routers[src].search_requests[rid].origin == ssl(dst)


def test_result_for_unknown_or_late_request_is_dropped():
    """A result nobody asked for, or arriving after 20 s, is not forwarded."""
    r = TurtleRouter(ssl(0), rng=random.Random(1))
    r.peer_connected(ssl(1), 0)
    r.peer_connected(ssl(2), 0)
    r.item_received(ssl(1), TurtleFtSearchResultItem(request_id=5, depth=0, results=(FILE,)), 0)
    r.item_received(ssl(1), TurtleStringSearchRequestItem(match_string="a", request_id=6,
                                                          depth=1), 0)
    r.drain(0)
    r.item_received(ssl(2), TurtleFtSearchResultItem(request_id=6, depth=0, results=(FILE,)), 21)
    assert r.drain(21) == []
    assert r.stats.dropped["result for unknown search"] == 1
    assert r.stats.dropped["late search result"] == 1


def test_no_forwarding_to_slow_links():
    """Requests are not forwarded on trickle/relay links (fast=False)."""
    sim = build(3, [(0, 1), (1, 2)], slow={(1, 2)})
    sim.feed(0, "search", "needle")
    sim.net.run(2)
    assert not any(dst == 2 for _, dst, _ in sim.sent)


def _tunnel_line(n=5, seed=7):
    h = Sha1Hash(b"\x99" * 20)
    sim = build(n, [(i, i + 1) for i in range(n - 1)], seed=seed, served={n - 1: {h}})
    sim.feed(0, "monitor_tunnels", h, sim.files[0])
    sim.net.run(3)
    return sim, h


def test_tunnel_opens_along_a_path_with_one_id_everywhere():
    """Node 0 digs for a hash node 4 serves: TUNNEL_OK comes back, every node on the path
    holds the same tunnel id, which is the per-hop prints' result, and both ends got a
    virtual peer (server side at the asker, client side at the server)."""
    sim, h = _tunnel_line()
    oks = [item for _, _, item in sim.sent if isinstance(item, TurtleTunnelOkItem)]
    assert oks
    tid = oks[0].tunnel_id
    assert all(tid in r.tunnels for r in sim.routers)
    reqs = {dst: item for _, dst, item in sim.sent if isinstance(item, TurtleOpenTunnelItem)}
    server = sim.routers[4]
    assert tid == fileprint.serving_tunnel_id(h, server.own_id, server.bias,
                                              reqs[4].partial_tunnel_id)
    vp = fileprint.virtual_peer_id(tid)
    assert sim.files[0].added == [(h, vp, TurtleDirection.SERVER)]
    assert sim.files[4].added == [(h, vp, TurtleDirection.CLIENT)]
    assert sim.routers[0].virtual_peers_of(h) == [vp]


def test_tunnel_data_both_ways_and_relays_only_forward():
    """Data sent at one end arrives at the other through the relays, byte-identical."""
    sim, h = _tunnel_line()
    vp = sim.routers[0].virtual_peers_of(h)[0]
    sim.feed(0, "send_data", vp, TurtleGenericDataItem(tunnel_id=0, data=b"ping"))
    sim.net.run(1)
    (item, fh, vp4, direction), = sim.files[4].data
    assert (item.data, fh, direction) == (b"ping", h, TurtleDirection.SERVER)
    sim.feed(4, "send_data", vp4, TurtleGenericDataItem(tunnel_id=0, data=b"pong"))
    sim.net.run(1)
    assert [(d[0].data, d[3]) for d in sim.files[0].data] == [(b"pong", TurtleDirection.CLIENT)]
    assert sim.routers[2].stats.relayed_items == 2
    assert sim.files[2].data == []


def test_idle_tunnels_die_everywhere():
    """No data for TUNNEL_IDLE_TIME: every node drops the tunnel; both ends lose the peer."""
    sim, h = _tunnel_line()
    tid = next(iter(sim.routers[2].tunnels))
    sim.feed(0, "stop_monitoring", h)  # no re-digging, so the test sees the death
    sim.net.run(TUNNEL_IDLE_TIME + 2 * CLEANING_PERIOD)
    assert all(tid not in r.tunnels for r in sim.routers)
    assert sim.files[4].removed == [(h, fileprint.virtual_peer_id(tid))]


def test_busy_tunnel_stays_and_monitored_hash_is_redug():
    """Data every 20 s keeps a tunnel alive past the idle time."""
    sim, h = _tunnel_line()
    vp = sim.routers[0].virtual_peers_of(h)[0]
    for _ in range(6):
        sim.feed(0, "send_data", vp, TurtleGenericDataItem(tunnel_id=0, data=b"x"))
        sim.net.run(20)
    assert sim.routers[0].virtual_peers_of(h) == [vp]


def test_duplicate_tunnel_request_is_dropped():
    """A second copy of a tunnel request (another route) is not handled again."""
    r = TurtleRouter(ssl(0), rng=random.Random(2))
    for i in (1, 2, 3):
        r.peer_connected(ssl(i), 0)
    req = TurtleOpenTunnelItem(file_hash=Sha1Hash(b"\x01" * 20), request_id=9,
                               partial_tunnel_id=77, depth=1)
    r.item_received(ssl(1), req, 0)
    first = r.drain(0)
    r.item_received(ssl(2), req, 0)
    assert r.drain(0) == [] and first
    assert r.stats.dropped["duplicate tunnel request"] == 1


def test_flooding_friend_is_throttled_others_pass():
    """Friend 1 sends 2000 searches in 10 s, friend 2 sends 10: all of friend 2's reach
    node 3 (within its fair share), friend 1's are cut to what the total bucket allows
    (half its burst, then its rate)."""
    r = TurtleRouter(ssl(0), rng=random.Random(3))
    for i in (1, 2, 3):
        r.peer_connected(ssl(i), 0)
    lim = r.limits
    good = set()
    for k in range(2000):
        now = k * 0.005
        r.item_received(ssl(1), TurtleStringSearchRequestItem(
            match_string="spam", request_id=k, depth=1), now)
        if k % 200 == 0:
            good.add(100000 + k)
            r.item_received(ssl(2), TurtleStringSearchRequestItem(
                match_string="ok", request_id=100000 + k, depth=1), now)
    out = [o for o in r.drain(10) if isinstance(o, SendItem) and o.peer == ssl(3)]
    passed_good = {o.item.request_id for o in out if o.item.request_id >= 100000}
    passed_spam = [o for o in out if o.item.request_id < 100000]
    assert passed_good == good
    # the burst down to half, then no more than the total's rate (fair share plus slack)
    assert len(passed_spam) <= lim.search_burst / 2 + lim.search_rate * 10
    assert len(passed_spam) < 2000 / 4
    assert r.stats.throttled["search"] >= 2000 - len(passed_spam)


def test_request_caches_are_bounded():
    """More distinct requests than the caches hold: the sizes stay at their bounds and the
    oldest entries go first."""
    r = TurtleRouter(ssl(0), rng=random.Random(4), limits=UNLIMITED)
    r.peer_connected(ssl(1), 0)
    for k in range(MAX_SEARCH_REQUESTS + 10):
        r.item_received(ssl(1), TurtleStringSearchRequestItem(
            match_string="a", request_id=k, depth=MAX_DEPTH), 0)
    assert len(r.search_requests) == MAX_SEARCH_REQUESTS
    assert 0 not in r.search_requests and MAX_SEARCH_REQUESTS + 9 in r.search_requests
    for k in range(MAX_TUNNEL_REQUESTS + 10):
        r.item_received(ssl(1), TurtleOpenTunnelItem(
            file_hash=FILE.hash, request_id=k, partial_tunnel_id=k, depth=MAX_DEPTH), 0)
    assert len(r.tunnel_requests) == MAX_TUNNEL_REQUESTS


def test_relayed_tunnels_per_friend_are_capped():
    """One friend cannot make us hold more than `tunnels_per_peer` relayed tunnels."""
    lim = TurtleLimits(tunnel_request_rate=0, tunnels_per_peer=3)
    r = TurtleRouter(ssl(0), rng=random.Random(5), limits=lim)
    r.peer_connected(ssl(1), 0)
    r.peer_connected(ssl(2), 0)
    for k in range(10):
        r.item_received(ssl(1), TurtleOpenTunnelItem(
            file_hash=FILE.hash, request_id=k, partial_tunnel_id=k, depth=1), 0)
        r.item_received(ssl(2), TurtleTunnelOkItem(tunnel_id=1000 + k, request_id=k), 0)
    assert len(r.tunnels) == 3
    assert r.stats.dropped["tunnel refused"] == 7


def _relay_router(rate: float, burst: float) -> TurtleRouter:
    lim = TurtleLimits(tunnel_request_rate=0, relay_rate=rate, relay_burst=burst)
    r = TurtleRouter(ssl(0), rng=random.Random(6), limits=lim)
    r.peer_connected(ssl(1), 0)
    r.peer_connected(ssl(2), 0)
    r.item_received(ssl(1), TurtleOpenTunnelItem(
        file_hash=FILE.hash, request_id=1, partial_tunnel_id=1, depth=1), 0)
    r.item_received(ssl(2), TurtleTunnelOkItem(tunnel_id=55, request_id=1), 0)
    r.drain(0)
    return r


def test_relay_share_paces_relayed_bytes():
    """With a relay share of 1000 B/s, 10 items of 316 bytes go out over about 3 s, in
    order, driven by the core's own deadline; nothing is lost below the queue bound."""
    r = _relay_router(1000, 1000)
    items = [TurtleGenericDataItem(tunnel_id=55, data=bytes([k]) * 300) for k in range(10)]
    for it in items:
        r.item_received(ssl(2), it, 0)
    sent = [o for o in r.drain(0) if isinstance(o, SendItem)]
    assert len(sent) == 3
    now, steps = 0.0, 0
    while r._relay_queues and steps < 100:
        now = r.next_deadline()
        r.handle_timer(now)
        sent += [o for o in r.drain(now) if isinstance(o, SendItem)]
        steps += 1
    assert [o.item for o in sent] == items and all(o.peer == ssl(1) for o in sent)
    assert 2.0 <= now <= 3.5


def test_relay_queue_is_bounded():
    """Beyond MAX_RELAY_QUEUE_BYTES held back for one friend, relayed items are dropped."""
    r = _relay_router(1, 1)
    big = TurtleGenericDataItem(tunnel_id=55, data=bytes(1 << 20))
    for _ in range(10):
        r.item_received(ssl(2), big, 0)
    assert r._relay_queued[ssl(1)] <= MAX_RELAY_QUEUE_BYTES
    assert r.stats.throttled["relay"] == 10 - len(r._relay_queues[ssl(1)])
    assert r.stats.throttled["relay"] >= 6


def test_disconnect_closes_tunnels_through_the_friend():
    """A friend going away closes the tunnels that run through it."""
    sim, h = _tunnel_line(n=3)
    sim.feed(1, "peer_disconnected", ssl(2))
    assert sim.routers[1].tunnels == {}
    assert addr(1) in sim.net.nodes


def test_own_tunnels_per_hash_and_monitored_hashes_are_bounded():
    """Answers to our own dig beyond MAX_TUNNELS_PER_HASH (and the answers one request
    takes, MAX_RESPONSES_PER_REQUEST) are refused; more than
    MAX_MONITORED_HASHES monitored hashes is an error of the caller."""
    from services.turtle.router import (
        MAX_MONITORED_HASHES,
        MAX_RESPONSES_PER_REQUEST,
        MAX_TUNNELS_PER_HASH,
    )

    from .turtle_sim import FakeFiles
    r = TurtleRouter(ssl(0), rng=random.Random(8))
    r.peer_connected(ssl(1), 0)
    files = FakeFiles()
    r.monitor_tunnels(FILE.hash, files, 0)
    rid = r.dig(FILE.hash, 0)
    for k in range(MAX_TUNNELS_PER_HASH + 5):
        r.item_received(ssl(1), TurtleTunnelOkItem(tunnel_id=500 + k, request_id=rid), 1)
    assert len(r.virtual_peers_of(FILE.hash)) == MAX_TUNNELS_PER_HASH
    assert r.stats.dropped["tunnels per hash"] + r.stats.dropped["TUNNEL_OK refused"] == 5
    assert len(r.tunnel_requests[rid].responses) <= MAX_RESPONSES_PER_REQUEST
    for k in range(MAX_MONITORED_HASHES - 1):
        r.monitor_tunnels(Sha1Hash(k.to_bytes(20, "big")), files, 1)
    with pytest.raises(OverflowError):
        r.monitor_tunnels(Sha1Hash(b"\xee" * 20), files, 1)


def test_relayed_tunnel_table_is_bounded_in_total(monkeypatch):
    """With many friends each under its own cap, the whole table stops at MAX_TUNNELS."""
    import services.turtle.router as router_module
    monkeypatch.setattr(router_module, "MAX_TUNNELS", 40)
    r = TurtleRouter(ssl(0), rng=random.Random(9), limits=UNLIMITED)
    for i in range(1, 7):
        r.peer_connected(ssl(i), 0)
    k = 0
    for src in range(1, 6):
        for _ in range(10):
            k += 1
            r.item_received(ssl(src), TurtleOpenTunnelItem(
                file_hash=FILE.hash, request_id=k, partial_tunnel_id=k, depth=1), 0)
            r.item_received(ssl(6), TurtleTunnelOkItem(tunnel_id=9000 + k, request_id=k), 0)
    assert len(r.tunnels) == 40
    assert r.stats.dropped["tunnel refused"] == 10


def _mesh_search_under_flood(flood: bool):
    n = 24
    sim = build(n, ring_with_chords(n, 11), seed=11, shares={17: [FILE]})
    friends5 = set(sim.routers[5].peers)
    rid = None
    for k in range(400):
        sim.net.clock.advance(0.005)
        if flood:
            item = TurtleStringSearchRequestItem(match_string=f"spam{k}",
                                                 request_id=10_000 + k, depth=0)
            for friend in friends5:
                sim.net.send(addr(5), addr(sim.index_of(friend)), item)
        if k == 200:
            rid = sim.feed(0, "search", "needle")
    sim.net.run(10)
    reached = {i for i, r in enumerate(sim.routers) if rid in r.search_requests}
    return sim, friends5, reached


def test_flooding_node_in_a_24_node_mesh_does_not_starve_others():
    """Node 5 of a 24-node mesh sends 400 searches in 2 s to its friends; a search node 0
    starts in the middle of the flood still reaches the sharer (node 17) and most of the
    nodes it reaches without the flood, and brings back the hit; the flooder's friends pass
    on no more than the burst down to half plus the total rate.  (Downstream, relayed
    spam and other searches share each relay's fair share: the flood costs some reach.)"""
    _, _, quiet = _mesh_search_under_flood(False)
    sim, friends5, reached = _mesh_search_under_flood(True)
    assert 17 in reached and reached <= quiet and len(reached) >= 2 * len(quiet) // 3
    assert [e for e in sim.events[0] if isinstance(e, FileSearchResult)]
    lim = TurtleLimits()
    for i in range(len(sim.routers)):
        if ssl(i) in friends5:
            passed = {item.request_id for src, _, item in sim.sent
                      if src == i and isinstance(item, TurtleStringSearchRequestItem)
                      and item.request_id >= 10_000}
            assert len(passed) <= lim.search_burst / 2 + lim.search_rate * 3
            assert sim.routers[i].stats.throttled["search"] > 0


@pytest.mark.parametrize("period", [EMPTY_TUNNEL_DIGGING, 6.0])
def test_hash_with_no_tunnel_is_dug_again_after_the_limits_digging_period(period):
    """A monitored hash whose tunnel request found nothing is dug again once
    ``TurtleLimits.empty_tunnel_digging`` has passed (RetroShare's 50 s by default), not
    before: the first management call after that period sends the next request."""
    from .turtle_sim import FakeFiles
    r = TurtleRouter(ssl(0), rng=random.Random(3),
                     limits=dataclasses.replace(UNLIMITED, empty_tunnel_digging=period))
    r.peer_connected(ssl(1), 0)
    r.monitor_tunnels(FILE.hash, FakeFiles(), 0)
    digs: list[float] = []
    for _ in range(1000):  # management calls, a few per period
        now = r.next_deadline()
        if now > 3 * period + 5:
            break
        r.handle_timer(now)
        digs += [now for out in r.drain(now) if isinstance(getattr(out, "item", None),
                                                           TurtleOpenTunnelItem)]
    assert len(digs) >= 3
    gaps = [b - a for a, b in itertools.pairwise(digs)]
    assert all(period <= gap < period + 2 * MANAGEMENT_PERIOD for gap in gaps)
