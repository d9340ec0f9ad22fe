"""Interop with libtorrent's DHT (an implementation we did not write), on 127.0.0.1 only."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import libtorrent as lt
import pytest
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from dht import krpc
from dht.node import DHTConfig, LookupKind
from dht.service import DHTService

pytestmark = pytest.mark.integration

LOOPBACK = "127.0.0.1"


def _lt_session() -> Any:
    """A libtorrent session running only its DHT on 127.0.0.1, with loopback nodes allowed."""
    cats = lt.alert.category_t
    return lt.session({
        "listen_interfaces": f"{LOOPBACK}:0",
        "enable_dht": True,
        "dht_bootstrap_nodes": "",
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_tcp": False,
        "enable_outgoing_tcp": False,
        # libtorrent drops loopback/private and same-IP nodes unless told otherwise.
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_ignore_dark_internet": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "alert_mask": cats.dht_notification | cats.dht_operation_notification
        | cats.error_notification,
    })


class LibtorrentInteropTests(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.session = _lt_session()
        self.alerts: list[Any] = []
        self.lt_addr = (LOOPBACK, self.session.listen_port())
        self.poller = task.LoopingCall(lambda: self.alerts.extend(self.session.pop_alerts()))
        self.poller.start(0.05)
        self.ours = DHTService(reactor, 0, interface=LOOPBACK, rng=random.Random(42),
                               config=DHTConfig(query_timeout=2.0))
        self.ours.startService()
        self.seen: list[tuple[krpc.Message, krpc.Address]] = []
        node = self.ours.node
        assert node is not None
        received = node.datagram_received

        def spy(data: bytes, addr: krpc.Address, now: float) -> list:
            try:
                self.seen.append((krpc.decode(data), addr))
            except krpc.KRPCDecodeError:
                pass
            return received(data, addr, now)

        node.datagram_received = spy  # type: ignore[method-assign]

    @defer.inlineCallbacks
    def tearDown(self) -> defer.Deferred[None]:
        self.poller.stop()
        yield self.ours.stopService()
        self.session.pause()
        del self.session

    def _until(self, cond: Callable[[], bool], seconds: float = 20.0) -> defer.Deferred[None]:
        """Poll ``cond`` every 50 ms for at most ``seconds``; fail if it never holds."""
        rounds = int(seconds / 0.05)

        @defer.inlineCallbacks
        def loop() -> defer.Deferred[None]:
            for _ in range(rounds):
                if cond():
                    return
                yield task.deferLater(reactor, 0.05, lambda: None)
            raise AssertionError(f"condition not met within {seconds} s")

        return loop()

    @defer.inlineCallbacks
    def _lt_id(self) -> defer.Deferred[bytes]:
        reply = yield self.ours.ping(self.lt_addr)
        assert isinstance(reply, krpc.Response), reply
        return reply.sender_id

    def _lt_knows_us(self, lt_id: bytes) -> defer.Deferred[None]:
        """Wait until libtorrent's routing table lists our node."""
        ours = (LOOPBACK, self.ours.port)

        def listed() -> bool:
            self.session.dht_live_nodes(lt.sha1_hash(lt_id))
            return any(isinstance(a, lt.dht_live_nodes_alert)
                       and any(n["endpoint"] == ours for n in a.nodes) for a in self.alerts)

        return self._until(listed)

    @defer.inlineCallbacks
    def test_ping_both_ways(self) -> defer.Deferred[None]:
        """We ping libtorrent and get its id; told about us, libtorrent queries us and we
        answer, and we end up in each other's routing tables."""
        lt_id = yield self._lt_id()
        assert len(lt_id) == 20
        self.session.add_dht_node((LOOPBACK, self.ours.port))
        yield self._until(lambda: any(krpc.is_query(m) and a == self.lt_addr
                                     for m, a in self.seen))
        node = self.ours.node
        assert node is not None
        yield self._until(lambda: node.routing.get(lt_id) is not None)
        yield self._lt_knows_us(lt_id)

    @defer.inlineCallbacks
    def test_find_node_through_libtorrent(self) -> defer.Deferred[None]:
        """A find_node lookup seeded with only libtorrent's address returns nodes through it."""
        lt_id = yield self._lt_id()
        self.session.add_dht_node((LOOPBACK, self.ours.port))
        node = self.ours.node
        assert node is not None
        yield self._until(lambda: node.routing.get(lt_id) is not None)
        lk = yield self.ours.lookup(random.Random(1).randbytes(20), seeds=[self.lt_addr])
        assert lt_id in [n.node_id for n in lk.results()]
        answers = [m for m, a in self.seen if isinstance(m, krpc.Response) and a == self.lt_addr]
        assert any(m.nodes for m in answers)  # libtorrent listed nodes (at least us)

    @defer.inlineCallbacks
    def test_libtorrent_announces_to_us_and_gets_peers(self) -> defer.Deferred[None]:
        """libtorrent's get_peers gets our token, its announce_peer is stored, and its next
        get_peers receives the announced peer from us."""
        lt_id = yield self._lt_id()
        self.session.add_dht_node((LOOPBACK, self.ours.port))
        node = self.ours.node
        assert node is not None
        yield self._lt_knows_us(lt_id)
        info_hash = bytes(range(20))
        self.session.dht_announce(lt.sha1_hash(info_hash), 6999, 0)
        yield self._until(lambda: any(isinstance(m, krpc.AnnouncePeer) for m, _ in self.seen))
        assert any(isinstance(m, krpc.GetPeers) and m.info_hash == info_hash
                   for m, _ in self.seen)
        assert node.counters.bad_tokens == 0
        assert (LOOPBACK, 6999) in node.get_stored_peers(info_hash, reactor.seconds())
        self.session.dht_get_peers(lt.sha1_hash(info_hash))
        yield self._until(lambda: any(
            isinstance(a, lt.dht_get_peers_reply_alert)
            and (LOOPBACK, 6999) in [tuple(p) for p in a.peers()] for a in self.alerts))

    @defer.inlineCallbacks
    def test_we_announce_and_libtorrent_stores(self) -> defer.Deferred[None]:
        """Our get_peers + announce_peer against libtorrent: its token is accepted (no error)
        and a later get_peers lookup of ours finds our own announcement there."""
        yield self._lt_id()
        info_hash = b"\x33" * 20
        lk = yield self.ours.announce(info_hash, 7001)
        assert self.lt_addr in [v[1] for v in lk.tokens.values()], (self.seen, lk)
        node = self.ours.node
        assert node is not None
        yield self._until(lambda: not any(p.method == b"announce_peer"
                                         for p in node._pending.values()))
        assert node.counters.errors_received == 0
        again = yield self.ours.lookup(info_hash, LookupKind.GET_PEERS, seeds=[self.lt_addr])
        assert (LOOPBACK, 7001) in again.peers
