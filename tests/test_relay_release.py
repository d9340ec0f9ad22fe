# -*- test-case-name: tests.test_relay_release -*-
"""A proxy gives back a relay it installed for a RELAY exchange that then fails, and a new
exchange between the same two ends replaces a relay left over, so a retry is never refused
for want of room (found in the network lab: the target refused the first request because it
had not yet added the requester, and every retry then met OVERLOADED for 30 s)."""

from __future__ import annotations

import itertools

from dht import krpc
from dht.krpc import CONNECT_MODE_RELAY, CONNECT_REQUEST, Connect, NodeInfo
from pqi.core import Datagram
from services.nat.punch import (
    CONNECTION_MAX_TIMEOUT,
    START_MAX_RETRY,
    START_RETRY_PERIOD,
    ConnectCoordinator,
    ConnectError,
    Point,
    error_status,
)
from services.nat.relay import RelayPolicy
from tcponudp import RelayForwarder, RelayLimits

A_ID, B_ID, P_ID = b"\xaa" * 20, b"\xbb" * 20, b"\x99" * 20
A, B = ("11.11.0.13", 18276), ("11.11.0.14", 42773)


def proxy(policy: RelayPolicy) -> ConnectCoordinator:
    counter = itertools.count(1)
    return ConnectCoordinator(
        P_ID, locate=lambda nid: B if nid == B_ID else None, authorise=lambda p, m: False,
        install_relay=lambda s, sa, d, da: policy.install(s, sa, d, da, 0.0),
        release_relay=policy.release, new_tid=lambda: next(counter).to_bytes(2, "big"))


def request(p: ConnectCoordinator, now: float) -> None:
    msg = Connect(b"\x00\x01", A_ID, NodeInfo(A_ID, "0.0.0.0", 0), NodeInfo(B_ID, "0.0.0.0", 0),
                  CONNECT_MODE_RELAY, 0, 0, CONNECT_REQUEST, krpc.RS_VERSION)
    p.connect_received(msg, A, now)


def one_slot() -> RelayPolicy:
    return RelayPolicy(is_friend=lambda _: True,
                       forwarder=RelayForwarder(RelayLimits.friends_first(total=1)))


def test_refused_exchange_releases_its_relay() -> None:
    """The target refuses (AUTH_DENIED): the refusal goes back to the requester and the relay
    slot is free again."""
    policy = one_slot()
    p = proxy(policy)
    request(p, 0.0)
    assert len(policy.forwarder) == 1
    refusal = Connect(b"\x00\x02", B_ID, NodeInfo(A_ID, "0.0.0.0", 0),
                      NodeInfo(B_ID, "0.0.0.0", 0), CONNECT_MODE_RELAY, 0,
                      error_status(ConnectError.AUTH_DENIED, Point.END), krpc.CONNECT_REPLY,
                      krpc.RS_VERSION)
    p.drain(0.0)
    p.connect_received(refusal, B, 1.0)
    assert [d.addr for d in p.drain(1.0) if isinstance(d, Datagram)] == [A]
    assert len(policy.forwarder) == 0


def test_unacknowledged_or_silent_exchanges_release_their_relay() -> None:
    """No REPLY within the exchange timeout, or STARTs never ACKed: the relay is released."""
    policy = one_slot()
    p = proxy(policy)
    request(p, 0.0)
    p.handle_timer(CONNECTION_MAX_TIMEOUT)
    assert len(policy.forwarder) == 0
    request(p, 100.0)
    ok = Connect(b"\x00\x03", B_ID, NodeInfo(A_ID, "0.0.0.0", 0), NodeInfo(B_ID, "0.0.0.0", 0),
                 CONNECT_MODE_RELAY, 0, 0, krpc.CONNECT_REPLY, krpc.RS_VERSION)
    p.connect_received(ok, B, 100.0)
    now = 100.0
    for _ in range(START_MAX_RETRY + 1):
        now += START_RETRY_PERIOD
        p.handle_timer(now)
    assert len(policy.forwarder) == 0


def test_a_new_exchange_replaces_a_leftover_relay() -> None:
    """A relay between the same two addresses is still installed (its exchange was lost
    without a trace): a new request replaces it instead of being refused for want of room."""
    policy = one_slot()
    assert policy.install(A_ID, A, B_ID, B, 0.0) is not None
    assert policy.install(A_ID, A, B_ID, B, 1.0) is not None
    assert len(policy.forwarder) == 1
    assert policy.install(A_ID, A, B_ID, ("11.11.0.15", 1), 2.0) is None  # really one slot
