"""Twisted glue: demultiplexing, timers on a fake clock, the service on real UDP sockets."""

from __future__ import annotations

import json
import pathlib
import random
import shutil
import tempfile

import pytest
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial import unittest

from dht import krpc
from dht.krpc import Ping, Response
from dht.node import DHTConfig, DHTNode, QueryAnswered, dht_node_id
from dht.protocol import DHTProtocol
from dht.service import (
    DHTNotRunningError,
    DHTService,
    FriendNotFoundError,
    read_bootstrap_file,
    write_bootstrap_file,
)


class _Transport:
    """Records what the protocol writes (the UDP transport's ``write``)."""

    def __init__(self) -> None:
        self.written: list[tuple[bytes, tuple[str, int]]] = []

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.written.append((data, addr))


def _protocol(clock: Clock) -> tuple[DHTProtocol, _Transport, list, list]:
    node = DHTNode(b"\x01" * 20, rng=random.Random(3))
    other: list = []
    events: list = []
    proto = DHTProtocol(node, clock, other_handler=lambda d, a: other.append((d, a)),
                        on_event=events.append)
    transport = _Transport()
    proto.transport = transport  # type: ignore[assignment]
    return proto, transport, other, events


class _TempDirs:
    """``tmp_path()`` under a private temporary directory removed after the test (trial's
    ``mktemp`` would write beside the checkout when pytest runs it)."""

    def tmp_path(self) -> str:
        base = getattr(self, "_tmp_base", None)
        if base is None:
            base = self._tmp_base = tempfile.mkdtemp(prefix="rsproto-dht-")
            self.addCleanup(shutil.rmtree, base, True)  # type: ignore[attr-defined]
        return tempfile.mktemp(dir=base)


class _UDPReactor(Clock):
    """A clock that records ``listenUDP`` calls (MemoryReactor has no UDP)."""

    def __init__(self) -> None:
        super().__init__()
        self.bound: list[tuple[int, str]] = []
        self.stopped = False

    def listenUDP(self, port: int, protocol: DHTProtocol, interface: str = "",
                  maxPacketSize: int = 8192) -> _UDPReactor:  # noqa: N803
        self.bound.append((port, interface))
        protocol.transport = _Transport()  # type: ignore[assignment]
        return self

    def stopListening(self) -> None:
        self.stopped = True

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", *self.bound[-1][::-1])


class ProtocolTests(unittest.TestCase):
    def test_demultiplex_by_first_byte(self) -> None:
        """Bencoded dictionaries go to the DHT, anything else to the TCP-over-UDP handler."""
        clock = Clock()
        proto, transport, other, _ = _protocol(clock)
        proto.datagramReceived(b"\x00\x01\x00\x14" + b"\x00" * 16, ("127.0.0.1", 9))
        proto.datagramReceived(krpc.encode(Ping(b"aa", b"\x02" * 20)), ("127.0.0.1", 9))
        assert other == [(b"\x00\x01\x00\x14" + b"\x00" * 16, ("127.0.0.1", 9))]
        kinds = [type(krpc.decode(d)).__name__ for d, _ in transport.written]
        assert kinds == ["Response"]  # the pong; our verifying ping waits until it is paid for

    def test_a_burst_keeps_its_order_and_batches_the_runs_of_others(self) -> None:
        """A burst read at once (``datagramsReceived``): each run of non-DHT datagrams goes to
        the batch handler in one call, a DHT query between them is answered in its place, and
        nothing is lost, added or reordered."""
        node = DHTNode(b"\x01" * 20, rng=random.Random(3))
        log: list = []
        proto = DHTProtocol(node, Clock(), other_handler=lambda d, a: log.append(("one", d)),
                            other_batch_handler=lambda ds, a: log.append(("run", ds, a)))
        transport = _Transport()
        proto.transport = transport  # type: ignore[assignment]
        ping = krpc.encode(Ping(b"aa", b"\x02" * 20))
        tou = [b"\x00\x01\x00\x14" + bytes([i]) * 16 for i in range(3)]
        proto.datagramsReceived([tou[0], tou[1], ping, tou[2]], ("127.0.0.1", 9))
        assert log == [("run", tou[:2], ("127.0.0.1", 9)), ("run", tou[2:], ("127.0.0.1", 9))]
        assert [type(krpc.decode(d)).__name__ for d, _ in transport.written] == ["Response"]

    def test_a_burst_without_a_batch_handler_goes_one_by_one(self) -> None:
        """Without ``other_batch_handler`` a burst is dispatched as single datagrams."""
        proto, _, other, _ = _protocol(Clock())
        burst = [b"\x00\x01\x00\x14" + bytes([i]) * 16 for i in range(3)]
        proto.datagramsReceived(burst, ("127.0.0.1", 9))
        assert other == [(d, ("127.0.0.1", 9)) for d in burst]

    def test_a_burst_from_a_banned_host_is_dropped_whole(self) -> None:
        """The ban list's verdict covers every datagram of a burst: none reaches a handler
        and each is counted as dropped."""
        node = DHTNode(b"\x01" * 20, rng=random.Random(3))
        log: list = []
        proto = DHTProtocol(node, Clock(), other_handler=lambda d, a: log.append(d),
                            other_batch_handler=lambda ds, a: log.append(ds),
                            address_filter=lambda host: host != "127.0.0.9")
        proto.transport = _Transport()  # type: ignore[assignment]
        burst = [b"\x00\x01\x00\x14" + bytes([i]) * 16 for i in range(4)]
        proto.datagramsReceived(burst, ("127.0.0.9", 9))
        assert log == [] and proto.banned_dropped == 4
        proto.datagramsReceived(burst, ("127.0.0.8", 9))
        assert log == [burst]

    def test_unclaimed_datagrams_counted(self) -> None:
        """Without a TOU handler, non-DHT datagrams are counted and dropped."""
        proto = DHTProtocol(DHTNode(b"\x01" * 20, rng=random.Random(1)), Clock())
        proto.transport = _Transport()  # type: ignore[assignment]
        proto.datagramReceived(b"RLY1....", ("127.0.0.1", 9))
        assert proto.unclaimed == 1

    def test_query_timeout_on_clock(self) -> None:
        """A ping nobody answers reports None once the clock passes the query timeout (the
        driver's single timer), and the idle node then leaves no timer behind."""
        clock = Clock()
        proto, transport, _, events = _protocol(clock)
        ticket = proto.driver.feed(proto.node.ping, ("127.0.0.1", 9))
        assert len(transport.written) == 1
        assert len(clock.getDelayedCalls()) == 1
        clock.advance(3.9)
        assert events == []
        clock.advance(0.2)
        assert events == [QueryAnswered(ticket, None)]
        assert proto.node.counters.timeouts == 1

    def test_reply_resolves_ping(self) -> None:
        """The answer to our ping, matched by transaction id, reaches the skin as an event."""
        clock = Clock()
        proto, transport, _, events = _protocol(clock)
        ticket = proto.driver.feed(proto.node.ping, ("127.0.0.1", 9))
        tid = krpc.decode(transport.written[0][0]).transaction_id
        proto.datagramReceived(krpc.encode(Response(tid, b"\x09" * 20)), ("127.0.0.1", 9))
        assert events == [QueryAnswered(ticket, Response(tid, b"\x09" * 20))]


class FileTests(_TempDirs, unittest.TestCase):
    def test_bootstrap_file_round_trip(self) -> None:
        """kad.ini-style ``ip port`` lines; junk and comments skipped, duplicates merged."""
        path = pathlib.Path(self.tmp_path())
        path.write_text("# nodes\n1.2.3.4 7812\nbad line\n::1 7813\n1.2.3.4 7812\n"
                        "5.6.7.8 0\n999.1.1.1 5\n")
        assert read_bootstrap_file(path) == [("1.2.3.4", 7812), ("::1", 7813)]
        write_bootstrap_file(path, [("9.9.9.9", 1)])
        assert path.read_text() == "9.9.9.9 1\n"
        assert read_bootstrap_file(pathlib.Path(self.tmp_path())) == []

    def test_bootstrap_file_rewrite_leaves_no_temp(self) -> None:
        """Rewriting the bootstrap file replaces it whole and leaves no temp file beside it."""
        path = pathlib.Path(self.tmp_path())
        write_bootstrap_file(path, [("9.9.9.9", 1)])
        write_bootstrap_file(path, [("9.9.9.8", 2)])
        assert path.read_text() == "9.9.9.8 2\n"
        assert [p.name for p in path.parent.iterdir()] == [path.name]

    def test_service_binds_and_saves_state(self) -> None:
        """startService binds the configured port; stopService saves state and unbinds."""
        fake = _UDPReactor()
        state = pathlib.Path(self.tmp_path())
        svc = DHTService(fake, 7813, interface="127.0.0.1", ssl_id=b"\x05" * 16,
                         state_file=state, rng=random.Random(1))
        svc.startService()
        assert fake.bound == [(7813, "127.0.0.1")]
        assert svc.node_id == dht_node_id(b"\x05" * 16)
        svc.stopService()
        assert fake.stopped
        saved = json.loads(state.read_text())
        assert saved["node_id"] == dht_node_id(b"\x05" * 16).hex()
        assert saved["version"] == 1


def _service(tmp: str, *, ssl_id: bytes, bootstrap: list | None = None) -> DHTService:
    base = pathlib.Path(tmp)
    base.mkdir(parents=True, exist_ok=True)
    return DHTService(reactor, 0, interface="127.0.0.1", ssl_id=ssl_id,
                      bootstrap=bootstrap or [], state_file=base / "dht.json",
                      bootstrap_file=base / "bdboot.txt", rng=random.Random(ssl_id),
                      config=DHTConfig(query_timeout=1.0, bootstrap_interval=1.0))


@pytest.mark.integration
class LoopbackTests(_TempDirs, unittest.TestCase):
    """Real UDP sockets on 127.0.0.1 and the real reactor."""

    timeout = 30

    def _start(self, svc: DHTService) -> DHTService:
        svc.startService()
        self.addCleanup(lambda: svc.stopService() if svc.running else None)
        return svc

    @pytest.mark.slow
    @defer.inlineCallbacks
    def test_two_nodes_find_each_other_through_a_bootstrap_node(self) -> defer.Deferred[None]:
        """Alice and Bob know only a third node; each finds the other by its derived DHT id."""
        boot = self._start(_service(self.tmp_path(), ssl_id=b"\xbb" * 16))
        entry = [("127.0.0.1", boot.port)]
        alice_ssl = bytes.fromhex("e3d224134f8957af7fa9e65647cb7308")
        bob_ssl = bytes.fromhex("65c312566c89e99e04516702cc795383")
        alice = self._start(_service(self.tmp_path(), ssl_id=alice_ssl, bootstrap=entry))
        bob = self._start(_service(self.tmp_path(), ssl_id=bob_ssl, bootstrap=entry))
        seen: list = []
        bob.friend_found.append(lambda ssl, addr: seen.append((ssl, addr)))
        where = yield bob.find_friend(alice_ssl, retry_interval=0.3, timeout=20.0)
        assert where == ("127.0.0.1", alice.port)
        assert seen == [(alice_ssl, ("127.0.0.1", alice.port))]
        back = yield alice.find_friend(bob_ssl, retry_interval=0.3, timeout=20.0)
        assert back == ("127.0.0.1", bob.port)

    @pytest.mark.slow
    @defer.inlineCallbacks
    def test_friend_not_found_times_out(self) -> defer.Deferred[None]:
        """A friend who is not online fails with FriendNotFoundError after the time limit."""
        boot = self._start(_service(self.tmp_path(), ssl_id=b"\xcc" * 16))
        me = self._start(_service(self.tmp_path(), ssl_id=b"\xcd" * 16,
                                  bootstrap=[("127.0.0.1", boot.port)]))
        yield self.assertFailure(me.find_friend(b"\x77" * 16, retry_interval=0.2, timeout=1.0),
                                 FriendNotFoundError)

    @defer.inlineCallbacks
    def test_restart_keeps_id_and_rewrites_bootstrap_file(self) -> defer.Deferred[None]:
        """On stop the good contacts go to the bootstrap file; a restart reuses the state."""
        boot = self._start(_service(self.tmp_path(), ssl_id=b"\xdd" * 16))
        tmp = self.tmp_path()
        node = self._start(DHTService(reactor, 0, interface="127.0.0.1",
                                      bootstrap=[("127.0.0.1", boot.port)],
                                      state_file=pathlib.Path(tmp) / "dht.json",
                                      bootstrap_file=pathlib.Path(tmp) / "bdboot.txt",
                                      rng=random.Random(5)))
        reply = yield node.ping(("127.0.0.1", boot.port))
        assert isinstance(reply, Response) and reply.sender_id == boot.node_id
        assert reply.version == krpc.RS_VERSION
        first_id = node.node_id
        yield node.stopService()
        assert read_bootstrap_file(pathlib.Path(tmp) / "bdboot.txt") == [
            ("127.0.0.1", boot.port)]
        again = self._start(DHTService(reactor, 0, interface="127.0.0.1",
                                       state_file=pathlib.Path(tmp) / "dht.json",
                                       rng=random.Random(6)))
        assert again.node_id == first_id


class FriendSearchTests(unittest.TestCase):
    """find_friend's retry loop on a fake clock, with nobody to ask."""

    def _service(self) -> tuple[DHTService, _UDPReactor]:
        fake = _UDPReactor()
        svc = DHTService(fake, 7813, ssl_id=b"\x01" * 16, rng=random.Random(2))
        svc.startService()
        return svc, fake

    def test_retries_until_timeout(self) -> None:
        """Lookups repeat every retry_interval; FriendNotFoundError once the time is up."""
        svc, fake = self._service()
        d = svc.find_friend(b"\x02" * 16, retry_interval=5.0, timeout=12.0)
        failures: list = []
        d.addErrback(failures.append)
        fake.advance(5.0)
        fake.advance(5.0)
        assert failures and failures[0].check(FriendNotFoundError)
        assert all(c.func.__name__ != "attempt" for c in fake.getDelayedCalls())
        svc.stopService()

    def test_stop_fails_pending_searches(self) -> None:
        """Stopping the service ends friend searches with DHTNotRunningError, timers cancelled."""
        svc, fake = self._service()
        d = svc.find_friend(b"\x02" * 16, retry_interval=5.0)
        failures: list = []
        d.addErrback(failures.append)
        assert len(fake.getDelayedCalls()) >= 1
        svc.stopService()
        assert failures and failures[0].check(DHTNotRunningError)
        assert all(c.func.__name__ != "attempt" for c in fake.getDelayedCalls())

    def test_cancel_stops_retries(self) -> None:
        """Cancelling the Deferred stops the search."""
        svc, fake = self._service()
        d = svc.find_friend(b"\x02" * 16, retry_interval=5.0)
        d.addErrback(lambda f: None)
        d.cancel()
        assert all(c.func.__name__ != "attempt" for c in fake.getDelayedCalls())
        svc.stopService()
