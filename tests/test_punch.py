# -*- test-case-name: tests.test_punch -*-
"""BitDHT ``connect`` exchanges (services.nat.punch): the bytes we emit and the three roles."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dht import krpc
from dht.krpc import (
    CONNECT_ACK,
    CONNECT_MODE_DIRECT,
    CONNECT_MODE_PROXY,
    CONNECT_MODE_RELAY,
    CONNECT_REPLY,
    CONNECT_REQUEST,
    CONNECT_START,
    Connect,
    NodeInfo,
)
from pqi.core import Datagram, is_core
from services.nat.punch import (
    CONNECTION_MAX_TIMEOUT,
    START_MAX_RETRY,
    START_RETRY_PERIOD,
    ConnectCoordinator,
    ConnectError,
    Failed,
    Point,
    RelayRequest,
    Started,
    error_code,
    error_status,
)

A_ID = b"\xaa" * 20
B_ID = b"\xbb" * 20
P_ID = b"\x99" * 20
A = ("11.11.0.11", 7813)     # A's mapped address (as the proxy sees it)
B = ("11.11.0.12", 40000)    # B's mapped address
P = ("11.11.0.1", 7813)


class Coordinator:
    """A `ConnectCoordinator` as these tests drive it: every input returns the datagrams it
    produced, as ``(bytes, address)``; the events drained with them wait in `events`."""

    def __init__(self, core: ConnectCoordinator, installed: list[tuple]) -> None:
        self.core = core
        self.installed = installed
        self._events: list[object] = []

    def _out(self, now: float) -> list[tuple[bytes, tuple]]:
        out = []
        for o in self.core.drain(now):
            if isinstance(o, Datagram):
                out.append((o.data, o.addr))
            else:
                self._events.append(o)
        return out

    def request(self, dest_id: bytes, proxy: tuple, mode: int, now: float, **kw: object
                ) -> list[tuple[bytes, tuple]]:
        self.core.request(dest_id, proxy, mode, now, **kw)  # type: ignore[arg-type]
        return self._out(now)

    def connect_received(self, msg: Connect, addr: tuple, now: float
                         ) -> list[tuple[bytes, tuple]]:
        self.core.connect_received(msg, addr, now)
        return self._out(now)

    def handle_timer(self, now: float) -> list[tuple[bytes, tuple]]:
        self.core.handle_timer(now)
        return self._out(now)

    def next_deadline(self) -> float | None:
        return self.core.next_deadline()

    @property
    def ignored(self) -> int:
        return self.core.ignored

    def events(self) -> list[object]:
        self._out(0.0)
        events, self._events = self._events, []
        return events


def coordinator(own: bytes, *, friends: tuple[bytes, ...] = (), known: dict | None = None,
                relay_room: bool = True) -> Coordinator:
    counter = itertools.count(1)
    installed: list[tuple] = []

    def install(src_id: bytes, src: tuple, dest_id: bytes, dest: tuple) -> int | None:
        installed.append((src, dest))
        return 1024 * 1024 if relay_room else None

    c = ConnectCoordinator(own, locate=lambda nid: (known or {}).get(nid),
                           authorise=lambda peer, mode: peer in friends,
                           install_relay=install,
                           new_tid=lambda: next(counter).to_bytes(2, "big"))
    return Coordinator(c, installed)


def deliver(datagrams: list, to: Coordinator, sender: tuple, now: float) -> list:
    out = []
    for data, _dest in datagrams:
        msg = krpc.decode(data)
        assert isinstance(msg, Connect)
        out += to.connect_received(msg, sender, now)
    return out


def test_coordinator_keeps_the_core_contract() -> None:
    """The coordinator is a `pqi.core.Core`: one drain gives datagrams and events in the
    order they arose (a duplicate request fails at once, without a datagram)."""
    c = coordinator(A_ID).core
    assert is_core(c)
    c.request(B_ID, P, CONNECT_MODE_PROXY, 0.0)
    c.request(B_ID, P, CONNECT_MODE_PROXY, 0.1)
    first, second = c.drain(0.1)
    assert isinstance(first, Datagram) and first.addr == P
    assert second == Failed(B_ID, P, CONNECT_MODE_PROXY, ConnectError.DUPLICATE, Point.START)
    assert c.drain(0.2) == []


def test_request_bytes_exact() -> None:
    """Our REQUEST is a canonical KRPC query with BitDHT's argument names and values."""
    a = coordinator(A_ID)
    [(data, dest)] = a.request(B_ID, P, CONNECT_MODE_PROXY, 0.0, max_delay=1)
    assert dest == P
    zero = b"\x00" * 6
    assert data == (b"d1:ad4:dest26:" + B_ID + zero + b"2:id20:" + A_ID
                    + b"4:modei2e5:parami1e3:src26:" + A_ID + zero
                    + b"6:statusi0e4:typei101ee1:q7:connect1:t2:\x00\x011:v8:BD02RS511:y1:qe")


def test_request_with_own_address_bytes() -> None:
    """A known external address goes into ``src`` as a 26-byte compact node (network order)."""
    a = coordinator(A_ID)
    [(data, _)] = a.request(B_ID, P, CONNECT_MODE_RELAY, 0.0, own=("11.11.0.11", 7813))
    assert b"3:src26:" + A_ID + bytes([11, 11, 0, 11]) + (7813).to_bytes(2, "big") in data
    assert b"4:modei4e" in data


def test_full_proxy_exchange_bytes_and_events() -> None:
    """REQUEST, forwarded REQUEST, REPLY, START to both, ACK from both: each message as we
    emit it, and both ends told the other's mapped address."""
    a = coordinator(A_ID)
    p = coordinator(P_ID, known={B_ID: B})
    b = coordinator(B_ID, friends=(A_ID,))
    req = a.request(B_ID, P, CONNECT_MODE_PROXY, 0.0, max_delay=2)
    fwd = deliver(req, p, A, 0.1)
    [(data, dest)] = fwd
    assert dest == B
    zero = b"\x00" * 6
    assert data == (b"d1:ad4:dest26:" + B_ID + zero + b"2:id20:" + P_ID
                    + b"4:modei2e5:parami0e3:src26:" + A_ID + zero
                    + b"6:statusi0e4:typei101ee1:q7:connect1:t2:\x00\x011:v8:BD02RS511:y1:qe")
    reply = deliver(fwd, b, P, 0.2)
    [(data, dest)] = reply
    assert dest == P
    assert data == (b"d1:ad4:dest26:" + B_ID + zero + b"2:id20:" + B_ID
                    + b"4:modei2e5:parami0e3:src26:" + A_ID + zero
                    + b"6:statusi0e4:typei102ee1:q7:connect1:t2:\x00\x011:v8:BD02RS511:y1:qe")
    starts = deliver(reply, p, B, 0.3)
    assert [d for _, d in starts] == [A, B]
    a_addr = bytes([11, 11, 0, 11]) + (7813).to_bytes(2, "big")
    b_addr = bytes([11, 11, 0, 12]) + (40000).to_bytes(2, "big")
    assert starts[0][0] == (b"d1:ad4:dest26:" + B_ID + b_addr + b"2:id20:" + P_ID
                            + b"4:modei2e5:parami1e3:src26:" + A_ID + a_addr
                            + b"6:statusi0e4:typei103ee1:q7:connect1:t2:\x00\x021:v8:BD02RS51"
                            b"1:y1:qe")
    ack_a = deliver(starts[:1], a, P, 0.4)
    ack_b = deliver(starts[1:], b, P, 0.4)
    assert krpc.decode(ack_a[0][0]).type == CONNECT_ACK  # type: ignore[union-attr]
    assert ack_b[0][0] == (b"d1:ad4:dest26:" + B_ID + zero + b"2:id20:" + B_ID
                           + b"4:modei2e5:parami0e3:src26:" + A_ID + zero
                           + b"6:statusi0e4:typei104ee1:q7:connect1:t2:\x00\x021:v8:BD02RS51"
                           b"1:y1:qe")
    assert a.events() == [Started(B_ID, B, A, P, CONNECT_MODE_PROXY, 1.0, 0, True)]
    assert b.events() == [Started(A_ID, A, B, P, CONNECT_MODE_PROXY, 1.0, 0, False)]
    assert deliver(ack_a + ack_b, p, A, 0.5) == []
    assert p.events() == []


def test_acks_from_the_right_senders_complete_the_proxy() -> None:
    """The proxy counts an ACK only from the end it belongs to, then forgets the exchange;
    in RELAY mode it reports the agreed pair and START carries the bandwidth."""
    a = coordinator(A_ID)
    p = coordinator(P_ID, known={B_ID: B})
    b = coordinator(B_ID, friends=(A_ID,))
    starts = deliver(deliver(deliver(a.request(B_ID, P, CONNECT_MODE_RELAY, 0.0), p, A, 0),
                             b, P, 0), p, B, 0)
    assert p.installed == [(A, B)]  # type: ignore[attr-defined]
    assert krpc.decode(starts[0][0]).param == 1024 * 1024  # type: ignore[union-attr]
    ack_a = deliver(starts[:1], a, P, 1)
    ack_b = deliver(starts[1:], b, P, 1)
    assert deliver(ack_a, p, B, 1) == [] and p.ignored == 1  # A's ACK from B's address
    deliver(ack_a, p, A, 1)
    deliver(ack_b, p, B, 1)
    assert p.events() == [RelayRequest(A, B, 1024 * 1024)]
    assert p.next_deadline() is None
    [started] = a.events()
    assert isinstance(started, Started) and started.bandwidth == 1024 * 1024
    assert started.delay == 0.0 and started.peer == B and started.own == A


def test_start_repeated_until_acked_then_dropped() -> None:
    """An end that never ACKs gets START every 3 s, at most 3 more times."""
    a = coordinator(A_ID)
    p = coordinator(P_ID, known={B_ID: B})
    b = coordinator(B_ID, friends=(A_ID,))
    deliver(deliver(deliver(a.request(B_ID, P, CONNECT_MODE_PROXY, 0.0), p, A, 0), b, P, 0),
            p, B, 0)
    now = 0.0
    repeats = 0
    for _ in range(10):
        deadline = p.next_deadline()
        if deadline is None:
            break
        now = deadline
        repeats += len([d for d in p.handle_timer(now)
                        if krpc.decode(d[0]).type == CONNECT_START])  # type: ignore[union-attr]
    assert repeats == 2 * START_MAX_RETRY
    assert now == START_RETRY_PERIOD * (START_MAX_RETRY + 1)
    assert p.next_deadline() is None


def test_repeated_start_is_acked_again_but_reported_once() -> None:
    """A lost ACK: the end answers the repeated START, without a second Started event."""
    a = coordinator(A_ID)
    p = coordinator(P_ID, known={B_ID: B})
    b = coordinator(B_ID, friends=(A_ID,))
    starts = deliver(deliver(deliver(a.request(B_ID, P, CONNECT_MODE_PROXY, 0.0), p, A, 0),
                             b, P, 0), p, B, 0)
    assert len(deliver(starts[:1], a, P, 0)) == 1
    assert len(deliver(starts[:1], a, P, 3)) == 1
    assert len(a.events()) == 1


def test_proxy_without_the_target_answers_noaddress() -> None:
    """A proxy that does not know B refuses with NOADDRESS from the mid point."""
    a = coordinator(A_ID)
    p = coordinator(P_ID)
    [(data, dest)] = deliver(a.request(B_ID, P, CONNECT_MODE_PROXY, 0.0), p, A, 0)
    msg = krpc.decode(data)
    assert dest == A and msg.type == CONNECT_REPLY  # type: ignore[union-attr]
    assert msg.status == 0x00020005  # type: ignore[union-attr]
    deliver([(data, dest)], a, P, 0)
    assert a.events() == [Failed(B_ID, P, CONNECT_MODE_PROXY, ConnectError.NOADDRESS,
                                 Point.MID)]


def test_end_refusal_travels_back_through_the_proxy() -> None:
    """B does not accept A: AUTH_DENIED from the end point reaches A via the proxy."""
    a = coordinator(A_ID)
    p = coordinator(P_ID, known={B_ID: B})
    b = coordinator(B_ID)  # A is no friend of B
    back = deliver(deliver(deliver(a.request(B_ID, P, CONNECT_MODE_PROXY, 0.0), p, A, 0),
                           b, P, 0), p, B, 0)
    assert [d for _, d in back] == [A]
    deliver(back, a, P, 0)
    assert a.events() == [Failed(B_ID, P, CONNECT_MODE_PROXY, ConnectError.AUTH_DENIED,
                                 Point.END)]


def test_full_relay_is_overloaded() -> None:
    """A proxy with no relay room refuses a RELAY request with OVERLOADED."""
    a = coordinator(A_ID)
    p = coordinator(P_ID, known={B_ID: B}, relay_room=False)
    deliver(deliver(a.request(B_ID, P, CONNECT_MODE_RELAY, 0.0), p, A, 0), a, P, 0)
    [failed] = a.events()
    assert isinstance(failed, Failed) and failed.error is ConnectError.OVERLOADED


def test_direct_mode_unsupported_and_duplicates_refused() -> None:
    """DIRECT is answered UNSUPPORTED; a second exchange for the same pair DUPLICATE."""
    p = coordinator(P_ID, known={B_ID: B})
    direct = Connect(b"\x00\x01", A_ID, NodeInfo(A_ID, "0.0.0.0", 0), NodeInfo(B_ID, "0.0.0.0", 0),
                     CONNECT_MODE_DIRECT, 0, 0, CONNECT_REQUEST)
    [(data, _)] = p.connect_received(direct, A, 0)
    assert krpc.decode(data).status == error_status(  # type: ignore[union-attr]
        ConnectError.UNSUPPORTED, Point.MID)
    a = coordinator(A_ID)
    req = a.request(B_ID, P, CONNECT_MODE_PROXY, 0.0)
    deliver(req, p, A, 0)
    [(data, _)] = deliver(req, p, A, 0)
    assert error_code(krpc.decode(data).status) is ConnectError.DUPLICATE  # type: ignore[union-attr]


def test_unanswered_request_times_out() -> None:
    """A requester whose proxy stays silent learns TIMEOUT after 20 s."""
    a = coordinator(A_ID)
    a.request(B_ID, P, CONNECT_MODE_PROXY, 0.0)
    assert a.next_deadline() == CONNECTION_MAX_TIMEOUT
    a.handle_timer(CONNECTION_MAX_TIMEOUT)
    assert a.events() == [Failed(B_ID, P, CONNECT_MODE_PROXY, ConnectError.TIMEOUT, None)]


def test_messages_from_strangers_are_ignored() -> None:
    """START and REPLY that match no exchange (or come from elsewhere) change nothing."""
    a = coordinator(A_ID)
    a.request(B_ID, P, CONNECT_MODE_PROXY, 0.0)
    start = Connect(b"\x00\x09", P_ID, NodeInfo(A_ID, *A), NodeInfo(B_ID, *B),
                    CONNECT_MODE_PROXY, 0, 0, CONNECT_START)
    assert a.connect_received(start, ("6.6.6.6", 1), 0) == []
    assert a.ignored == 1 and a.events() == []


@given(st.sampled_from(list(ConnectError)), st.sampled_from(list(Point)))
def test_error_status_round_trip(error: ConnectError, point: Point) -> None:
    """Every error code survives being tagged with its source point."""
    assert error_code(error_status(error, point)) is error


@pytest.mark.slow
@given(st.binary(min_size=20, max_size=20), st.binary(min_size=20, max_size=20),
       st.sampled_from([CONNECT_REQUEST, CONNECT_REPLY, CONNECT_START, CONNECT_ACK]),
       st.sampled_from([CONNECT_MODE_PROXY, CONNECT_MODE_RELAY]),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_coordinator_never_raises_on_connect_queries(src: bytes, dest: bytes, ctype: int,
                                                     mode: int, param: int, status: int
                                                     ) -> None:
    """Any well-formed connect query is handled without an exception."""
    p = coordinator(P_ID, known={dest: B}, friends=(src,))
    msg = Connect(b"\x01", src, NodeInfo(src, *A), NodeInfo(dest, *B), mode, param, status,
                  ctype)
    for data, _ in p.connect_received(msg, A, 0.0):
        assert isinstance(krpc.decode(data), Connect)
