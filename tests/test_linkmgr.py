"""The sans-IO link manager: dialling order, timeouts, backoff, tie-break, half-open caps."""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.interfaces import DisconnectReason
from pqi.link.linkmgr import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    BACKOFF_JITTER,
    AddressSource,
    Close,
    Dial,
    Direction,
    LinkDown,
    LinkLimits,
    LinkManager,
    LinkUp,
    Outcome,
    UnknownFriendError,
    backoff_delay,
)
from pqi.wire.address import NetAddress
from pqi.wire.fields import SslId

SMALL = SslId(b"\x01" * 16)
LARGE = SslId(b"\xf0" * 16)
OTHER = SslId(b"\x77" * 16)


def addr(text: str, port: int = 7812) -> NetAddress:
    return NetAddress(ipaddress.ip_address(text), port)


def manager(own: SslId = SMALL, seed: int = 1, **limits: float) -> LinkManager:
    return LinkManager(own, rng=random.Random(seed), limits=LinkLimits(**limits))


def run_until_dial(mgr: LinkManager, now: float, horizon: float = 10_000.0) -> tuple[float, Dial]:
    """Step the clock from deadline to deadline until a Dial comes out (bounded)."""
    for _ in range(100):
        deadline = mgr.next_deadline()
        assert deadline is not None and deadline <= now + horizon
        now = max(now, deadline)
        mgr.handle_timer(now)
        dials = [a for a in mgr.drain(0.0) if isinstance(a, Dial)]
        if dials:
            assert len(dials) == 1
            return now, dials[0]
    raise AssertionError("no dial within 100 deadlines")


def dialling_other() -> tuple[LinkManager, float, Dial]:
    """A manager whose one friend is OTHER, at its first dial of OTHER: (manager, when, dial)."""
    mgr = manager()
    mgr.add_friend(OTHER, 0.0, [(addr("172.16.0.2"), AddressSource.EXTERNAL)])
    mgr.start(0.0)
    now, dial = run_until_dial(mgr, 0.0)
    return mgr, now, dial


# -- backoff ---------------------------------------------------------------------------------

def test_backoff_delay_bounds_and_cap() -> None:
    """Delays double from the base, never exceed the cap and are shortened by at most the
    jitter fraction."""
    rng = random.Random(7)
    for failures in range(1, 40):
        nominal = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1))
        for _ in range(20):
            d = backoff_delay(failures, rng)
            assert nominal * (1 - BACKOFF_JITTER) <= d <= nominal
    assert backoff_delay(10**6, rng) <= BACKOFF_CAP


def test_backoff_is_reproducible_with_a_seed() -> None:
    """The same seed gives the same jittered schedule (tests and simulations replay)."""
    a = [backoff_delay(n, random.Random(3)) for n in range(1, 10)]
    b = [backoff_delay(n, random.Random(3)) for n in range(1, 10)]
    assert a == b


def test_refused_friend_is_redialled_with_growing_backoff_up_to_the_cap() -> None:
    """Each failed round waits about twice as long as the previous one, up to the cap."""
    mgr, now, dial = dialling_other()
    assert now <= 1.0  # the start spread
    gaps = []
    for _ in range(12):
        mgr.dial_failed(dial.link, Outcome.REFUSED, "connection refused", now)
        assert mgr.drain(0.0) == []
        before = now
        now, dial = run_until_dial(mgr, now)
        gaps.append(now - before)
    for n, gap in enumerate(gaps, start=1):
        nominal = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (n - 1))
        assert nominal * (1 - BACKOFF_JITTER) <= gap <= nominal
    assert gaps[-1] > BACKOFF_CAP * (1 - BACKOFF_JITTER) - 1e-9
    status = mgr.status(OTHER)
    assert status.failures == 12
    assert [a.outcome for a in status.attempts] == [Outcome.REFUSED] * 12


def test_backoff_resets_after_the_first_item() -> None:
    """After a link delivered an item, a drop is followed by a quick (base) reconnect."""
    mgr, now, dial = dialling_other()
    for _ in range(5):
        mgr.dial_failed(dial.link, Outcome.REFUSED, "refused", now)
        now, dial = run_until_dial(mgr, now)
    assert mgr.status(OTHER).failures == 5
    mgr.tcp_connected(dial.link, now)
    assert mgr.authenticated(dial.link, OTHER, now)
    assert mgr.drain(0.0) == []  # we dialled: up only once the peer says something
    assert mgr.item_received(dial.link, now + 1)
    assert mgr.drain(0.0) == [LinkUp(dial.link, OTHER, Direction.OUTGOING, dial.address)]
    assert mgr.status(OTHER).failures == 0
    mgr.closed(dial.link, DisconnectReason.CLOSED, "peer closed", now + 100)
    assert mgr.drain(0.0) == [LinkDown(dial.link, OTHER, DisconnectReason.CLOSED,
                                          "peer closed")]
    again, _ = run_until_dial(mgr, now + 100)
    assert BACKOFF_BASE * (1 - BACKOFF_JITTER) <= again - (now + 100) <= BACKOFF_BASE


def test_later_items_change_nothing() -> None:
    """Only a link's first item moves its state: later ones (and items of an unknown link)
    report no change and output nothing, so the net interface need not service the driver
    for each item of a flood."""
    mgr, now, dial = dialling_other()
    mgr.tcp_connected(dial.link, now)
    assert mgr.authenticated(dial.link, OTHER, now)
    assert mgr.item_received(dial.link, now + 1)
    mgr.drain(now + 1)
    deadline = mgr.next_deadline()
    for n in range(3):
        assert not mgr.item_received(dial.link, now + 2 + n)
        assert mgr.drain(now + 2 + n) == []
        assert mgr.next_deadline() == deadline
    assert not mgr.item_received(dial.link + 1000, now + 5)


# -- dialling order and timeouts -------------------------------------------------------------

def test_round_tries_addresses_in_order_and_records_each_outcome() -> None:
    """Local addresses go first, then external, then discovered; within a source the most
    recently seen first; each failure moves to the next address at once."""
    mgr = manager()
    mgr.add_friend(OTHER, 0.0)
    mgr.add_address(OTHER, addr("192.0.2.1"), AddressSource.DISCOVERY, 0.0, seen=5.0)
    mgr.add_address(OTHER, addr("198.51.100.1"), AddressSource.EXTERNAL, 0.0, seen=1.0)
    mgr.add_address(OTHER, addr("198.51.100.2"), AddressSource.EXTERNAL, 0.0, seen=2.0)
    mgr.add_address(OTHER, addr("172.31.1.5"), AddressSource.LOCAL, 0.0, seen=0.0)
    mgr.start(0.0)
    now, dial = run_until_dial(mgr, 0.0)
    order = [dial.address]
    assert dial.timeout == 5.0 and dial.ssl_id == OTHER
    # 1: refused; 2: TCP timeout (the manager's own deadline); 3: TLS timeout; 4: wrong peer.
    mgr.dial_failed(dial.link, Outcome.REFUSED, "connection refused", now)
    (dial,) = mgr.drain(0.0)
    order.append(dial.address)
    now += 5.0
    mgr.handle_timer(now)
    close, dial = mgr.drain(0.0)
    assert isinstance(close, Close) and close.reason is DisconnectReason.TIMEOUT
    order.append(dial.address)
    mgr.tcp_connected(dial.link, now)
    assert mgr.next_deadline() == now + 10.0
    now += 10.0
    mgr.handle_timer(now)
    close, dial = mgr.drain(0.0)
    assert close.reason is DisconnectReason.TIMEOUT
    order.append(dial.address)
    mgr.tcp_connected(dial.link, now)
    assert not mgr.authenticated(dial.link, LARGE, now)
    close, = mgr.drain(0.0)
    assert close.reason is DisconnectReason.TLS
    assert order == [addr("172.31.1.5"), addr("198.51.100.2"), addr("198.51.100.1"),
                     addr("192.0.2.1")]
    attempts = mgr.status(OTHER).attempts
    assert [a.outcome for a in attempts] == [Outcome.REFUSED, Outcome.TCP_TIMEOUT,
                                            Outcome.TLS_TIMEOUT, Outcome.WRONG_PEER]
    assert attempts[3].detail == f"expected {OTHER}, got {LARGE}"
    assert all(a.direction is Direction.OUTGOING for a in attempts)
    assert mgr.status(OTHER).failures == 1  # one whole round failed


def test_first_item_timeout_closes_and_counts_as_failure() -> None:
    """An authenticated link that sends nothing for 30 s is closed and reported down."""
    mgr = manager()
    mgr.add_friend(OTHER, 0.0)
    mgr.start(0.0)
    link = mgr.incoming(addr("127.0.0.1", 40000), 0.0)
    assert link is not None
    assert mgr.authenticated(link, OTHER, 1.0)
    mgr.drain(0.0)
    assert mgr.next_deadline() == 31.0
    mgr.handle_timer(31.0)
    assert mgr.drain(0.0) == [
        Close(link, DisconnectReason.TIMEOUT, "waiting for the first item took over 30 s"),
        LinkDown(link, OTHER, DisconnectReason.TIMEOUT,
                 "waiting for the first item took over 30 s")]
    assert mgr.status(OTHER).attempts[-1].outcome is Outcome.NO_ITEM
    assert mgr.half_open() == 0


def test_dial_refused_by_peer_after_tls_is_never_reported_up() -> None:
    """With TLS 1.3 the dialler authenticates the peer before the peer has judged us; a peer
    that does not accept us closes at once: no LinkUp, and the attempt says why."""
    mgr, now, dial = dialling_other()
    mgr.tcp_connected(dial.link, now)
    assert mgr.authenticated(dial.link, OTHER, now)
    mgr.closed(dial.link, DisconnectReason.CLOSED, "connection was closed cleanly", now)
    assert mgr.drain(0.0) == []
    (attempt,) = mgr.status(OTHER).attempts
    assert attempt.outcome is Outcome.PEER_CLOSED
    assert mgr.status(OTHER).failures == 1 and mgr.next_deadline() > now


def test_incoming_link_is_reported_at_authentication() -> None:
    """The accepting side reports the link at once, so its services speak first."""
    mgr = manager()
    mgr.add_friend(OTHER, 0.0)
    link = mgr.incoming(addr("127.0.0.1", 4000), 0.0)
    assert mgr.authenticated(link, OTHER, 0.1)
    assert mgr.drain(0.0) == [LinkUp(link, OTHER, Direction.INCOMING, addr("127.0.0.1", 4000))]
    assert mgr.status(OTHER).attempts[-1].outcome is Outcome.CONNECTED


def test_new_address_during_backoff_is_dialled_at_once() -> None:
    """Discovery telling us a new address cuts a long backoff short."""
    mgr, now, dial = dialling_other()
    for _ in range(6):
        mgr.dial_failed(dial.link, Outcome.REFUSED, "refused", now)
        now, dial = run_until_dial(mgr, now)
    mgr.dial_failed(dial.link, Outcome.REFUSED, "refused", now)
    assert mgr.next_deadline() > now + 100
    mgr.add_address(OTHER, addr("172.16.0.3"), AddressSource.DISCOVERY, now)
    assert mgr.next_deadline() == now
    mgr.add_address(OTHER, addr("172.16.0.3"), AddressSource.DISCOVERY, now)  # known: no-op
    _, dial = run_until_dial(mgr, now, horizon=0.0)
    assert dial.address == addr("172.16.0.2")  # a new round, in address order


def test_redial_starts_a_round_now_but_not_twice() -> None:
    """redial() cuts a backoff short; it does nothing while a dial is in flight."""
    mgr, now, dial = dialling_other()
    mgr.redial(OTHER, now)
    assert mgr.drain(0.0) == [] and mgr.next_deadline() == now + 5.0  # the TCP deadline
    mgr.dial_failed(dial.link, Outcome.REFUSED, "refused", now)
    assert mgr.next_deadline() > now + 3.0
    mgr.redial(OTHER, now + 1)
    assert mgr.next_deadline() == now + 1
    assert mgr.status(OTHER).failures == 1


def test_addresses_per_friend_are_bounded() -> None:
    """The least recently seen address is forgotten beyond the cap."""
    mgr = manager(max_addresses=3)
    mgr.add_friend(OTHER, 0.0)
    for i in range(5):
        mgr.add_address(OTHER, addr(f"172.16.0.{i + 1}"), AddressSource.DISCOVERY, 0.0,
                        seen=float(i))
    assert [r.address for r in mgr.addresses(OTHER)] == [
        addr("172.16.0.5"), addr("172.16.0.4"), addr("172.16.0.3")]


def test_attempt_history_is_bounded() -> None:
    """Only the last N attempts per friend are kept."""
    mgr = manager(attempt_history=4)
    mgr.add_friend(OTHER, 0.0, [(addr("172.16.0.2"), AddressSource.EXTERNAL)])
    mgr.start(0.0)
    now, dial = run_until_dial(mgr, 0.0)
    for i in range(10):
        mgr.dial_failed(dial.link, Outcome.REFUSED, f"refused {i}", now)
        now, dial = run_until_dial(mgr, now)
    assert [a.detail for a in mgr.status(OTHER).attempts] == [f"refused {i}" for i in range(6, 10)]


def test_unknown_friend_is_a_named_error() -> None:
    """Asking about a location that is not a friend raises UnknownFriendError."""
    with pytest.raises(UnknownFriendError):
        manager().status(OTHER)
    with pytest.raises(UnknownFriendError):
        manager().add_address(OTHER, addr("172.16.0.1"), AddressSource.LOCAL, 0.0)


def test_non_friend_incoming_is_closed_and_remembered() -> None:
    """TLS authenticating someone who is not a friend closes the link; no LinkUp."""
    mgr = manager()
    link = mgr.incoming(addr("127.0.0.5", 1234), 0.0)
    assert link is not None
    assert not mgr.authenticated(link, OTHER, 0.5)
    assert mgr.drain(0.0) == [Close(link, DisconnectReason.TLS, f"{OTHER} is not a friend")]
    (when, where, outcome, _), = mgr.rejected
    assert (when, where, outcome) == (0.5, addr("127.0.0.5", 1234), Outcome.TLS_REFUSED)
    assert mgr.half_open() == 0


def test_stop_closes_everything_and_dials_no_more() -> None:
    """stop() closes active links and dials in progress, and nothing is dialled afterwards."""
    mgr = manager()
    mgr.add_friend(OTHER, 0.0, [(addr("172.16.0.2"), AddressSource.EXTERNAL)])
    mgr.add_friend(LARGE, 0.0, [(addr("172.16.0.3"), AddressSource.EXTERNAL)])
    mgr.start(0.0)
    mgr.handle_timer(2.0)
    dials = {a.ssl_id: a for a in mgr.drain(0.0)}
    mgr.tcp_connected(dials[OTHER].link, 2.0)
    mgr.authenticated(dials[OTHER].link, OTHER, 2.0)
    mgr.item_received(dials[OTHER].link, 2.0)
    mgr.drain(0.0)
    mgr.stop(3.0)
    actions = mgr.drain(0.0)
    assert Close(dials[OTHER].link, DisconnectReason.LOCAL, "node stopping") in actions
    assert Close(dials[LARGE].link, DisconnectReason.LOCAL, "node stopping") in actions
    assert LinkDown(dials[OTHER].link, OTHER, DisconnectReason.LOCAL, "node stopping") in actions
    assert mgr.next_deadline() is None
    assert mgr.link_count() == 0


def test_remove_friend_closes_its_link() -> None:
    """A friend removed while connected loses its link at once."""
    mgr = manager()
    mgr.add_friend(OTHER, 0.0)
    link = mgr.incoming(addr("127.0.0.1", 5555), 0.0)
    mgr.authenticated(link, OTHER, 0.0)
    mgr.drain(0.0)
    mgr.remove_friend(OTHER, 1.0)
    assert mgr.drain(0.0) == [Close(link, DisconnectReason.LOCAL, "friend removed"),
                                 LinkDown(link, OTHER, DisconnectReason.LOCAL, "friend removed")]
    assert not mgr.is_friend(OTHER)


# -- simultaneous connects -------------------------------------------------------------------

def _simultaneous(a_id: SslId, b_id: SslId, a_order: tuple[str, str],
                  b_order: tuple[str, str]) -> tuple[str | None, str | None]:
    """Both sides dial each other; each side authenticates the two connections in the given
    order ("ab" is the connection A dialled, "ba" the one B dialled).  Returns the connection
    each side kept."""
    sides = {}
    for me, peer, peer_port in ((a_id, b_id, 2), (b_id, a_id, 1)):
        mgr = manager(me)
        mgr.add_friend(peer, 0.0, [(addr("127.0.0.1", peer_port), AddressSource.LOCAL)])
        mgr.start(0.0)
        _, dial = run_until_dial(mgr, 0.0)
        mgr.tcp_connected(dial.link, 1.0)
        incoming = mgr.incoming(addr("127.0.0.1", 50000), 1.0)
        sides[me] = (mgr, peer, dial.link, incoming)
    kept: dict[SslId, str | None] = {}
    for me, order in ((a_id, a_order), (b_id, b_order)):
        mgr, peer, out_link, in_link = sides[me]
        names = {"ab": out_link if me == a_id else in_link,
                 "ba": out_link if me == b_id else in_link}
        t = 1.0
        for name in order:
            t += 0.25
            mgr.authenticated(names[name], peer, t)
        active = mgr.active_link(peer)
        kept[me] = next((n for n, link in names.items() if link == active), None)
        closes = [a for a in mgr.drain(0.0) if isinstance(a, Close)]
        assert [c.reason for c in closes] == [DisconnectReason.REPLACED]
        replaced = [a for a in mgr.status(peer).attempts if a.outcome is Outcome.REPLACED]
        loser = next(n for n in names if n != kept[me])
        loser_was_reported = loser == order[0] and names[loser] == in_link
        assert len(replaced) == (0 if loser_was_reported else 1)
    return kept[a_id], kept[b_id]


@pytest.mark.parametrize("a_order", [("ab", "ba"), ("ba", "ab")])
@pytest.mark.parametrize("b_order", [("ab", "ba"), ("ba", "ab")])
@pytest.mark.parametrize("larger", ["a", "b"])
def test_simultaneous_connects_leave_the_same_single_link_on_both_sides(
        a_order: tuple[str, str], b_order: tuple[str, str], larger: str) -> None:
    """Whatever the order in which each side sees the two connections, both keep the one
    dialled by the larger SSL id and close the other with REPLACED."""
    a_id, b_id = (LARGE, SMALL) if larger == "a" else (SMALL, LARGE)
    kept_a, kept_b = _simultaneous(a_id, b_id, a_order, b_order)
    winner = "ab" if larger == "a" else "ba"
    assert kept_a == kept_b == winner


def test_late_second_link_replaces_the_old_one() -> None:
    """A peer dialling in long after our link came up thinks that link is dead: newest wins,
    even if the tie-break would have kept the old one."""
    mgr = manager(LARGE)
    mgr.add_friend(SMALL, 0.0, [(addr("127.0.0.1", 2), AddressSource.LOCAL)])
    mgr.start(0.0)
    now, dial = run_until_dial(mgr, 0.0)
    mgr.tcp_connected(dial.link, now)
    mgr.authenticated(dial.link, SMALL, now)
    mgr.item_received(dial.link, now)
    mgr.drain(0.0)
    later = now + 60.0
    incoming = mgr.incoming(addr("127.0.0.1", 40000), later)
    assert mgr.authenticated(incoming, SMALL, later)
    assert mgr.drain(0.0) == [
        Close(dial.link, DisconnectReason.REPLACED, f"replaced by link {incoming}"),
        LinkDown(dial.link, SMALL, DisconnectReason.REPLACED, f"replaced by link {incoming}"),
        LinkUp(incoming, SMALL, Direction.INCOMING, addr("127.0.0.1", 40000))]
    assert mgr.active_link(SMALL) == incoming
    assert mgr.next_deadline() == later + 30.0  # only the new link's first-item deadline


# -- half-open caps --------------------------------------------------------------------------

def test_per_address_cap_refuses_new_connections() -> None:
    """Above the per-IP cap new connections from that address are refused; others still
    get in."""
    mgr = manager(half_open_per_ip=3, half_open_total=10)
    links = [mgr.incoming(addr("127.0.0.9", 1000 + i), 0.0) for i in range(3)]
    assert None not in links
    assert mgr.incoming(addr("127.0.0.9", 2000), 0.0) is None
    assert mgr.counters["refused_per_ip"] == 1
    assert mgr.incoming(addr("127.0.0.10", 2000), 0.0) is not None
    assert mgr.half_open("127.0.0.9") == 3 and mgr.half_open() == 4
    mgr.closed(links[0], DisconnectReason.CLOSED, "gone", 1.0)
    assert mgr.incoming(addr("127.0.0.9", 2001), 1.0) is not None


def test_total_cap_evicts_the_oldest_handshake() -> None:
    """When all slots are taken, the oldest connection still in TLS makes room; a friend
    waiting for its first item is never evicted."""
    mgr = manager(half_open_per_ip=10, half_open_total=3)
    mgr.add_friend(OTHER, 0.0)
    first = mgr.incoming(addr("127.0.0.1", 1), 0.0)
    mgr.authenticated(first, OTHER, 0.0)
    second = mgr.incoming(addr("127.0.0.2", 2), 1.0)
    third = mgr.incoming(addr("127.0.0.3", 3), 2.0)
    mgr.drain(0.0)
    fourth = mgr.incoming(addr("127.0.0.4", 4), 3.0)
    assert fourth is not None
    assert mgr.drain(0.0) == [Close(second, DisconnectReason.LOCAL,
                                       "evicted: too many half-open")]
    assert mgr.counters["evicted"] == 1
    assert mgr.half_open() == 3 and mgr.half_open("127.0.0.2") == 0
    assert mgr.active_link(OTHER) == first and third is not None


def test_total_cap_evicts_silent_connections_before_talking_ones() -> None:
    """A connection that has sent a ClientHello's worth of bytes outlives older silent or
    trickling ones: idle sockets cannot push a real friend's handshake out."""
    mgr = manager(half_open_per_ip=10, half_open_total=3)
    talking = mgr.incoming(addr("127.0.0.1", 1), 0.0)
    mgr.data_received(talking, 300)
    trickler = mgr.incoming(addr("127.0.0.2", 2), 1.0)
    mgr.data_received(trickler, 5)
    silent = mgr.incoming(addr("127.0.0.3", 3), 2.0)
    assert mgr.incoming(addr("127.0.0.4", 4), 3.0) is not None
    assert mgr.incoming(addr("127.0.0.5", 5), 3.0) is not None
    assert [a.link for a in mgr.drain(0.0)] == [trickler, silent]
    assert mgr.incoming(addr("127.0.0.6", 6), 3.0) is not None
    (victim,) = mgr.drain(0.0)
    assert victim.link != talking  # the newer silent one goes before the talking one
    mgr.data_received(999, 10)  # an unknown link: ignored


def test_total_cap_evicts_from_the_most_crowded_address_first() -> None:
    """Among equally silent handshakes, the address holding most slots loses one first, even
    if a lone connection from another address is older."""
    mgr = manager(half_open_per_ip=8, half_open_total=4)
    lone = mgr.incoming(addr("127.0.0.1", 1), 0.0)
    crowd = [mgr.incoming(addr("127.0.0.2", 10 + n), 1.0) for n in range(3)]
    assert mgr.incoming(addr("127.0.0.3", 20), 2.0) is not None
    assert [a.link for a in mgr.drain(0.0)] == [crowd[0]]
    assert mgr.half_open("127.0.0.1") == 1 and lone is not None


def test_total_cap_refuses_when_nothing_can_be_evicted() -> None:
    """If every slot holds an authenticated friend, a newcomer is refused."""
    mgr = manager(half_open_total=2)
    friends = [SslId(bytes([i]) * 16) for i in (3, 4)]
    for i, f in enumerate(friends):
        mgr.add_friend(f, 0.0)
        link = mgr.incoming(addr(f"127.0.0.{i + 1}", 1), 0.0)
        mgr.authenticated(link, f, 0.0)
    assert mgr.incoming(addr("127.0.0.9", 1), 0.0) is None
    assert mgr.counters["refused_total"] == 1


def test_handshake_timeout_frees_the_slot() -> None:
    """A slowloris connection is closed after the TLS timeout and its slot reused."""
    mgr = manager(half_open_per_ip=1)
    link = mgr.incoming(addr("127.0.0.1", 1), 0.0)
    assert mgr.incoming(addr("127.0.0.1", 2), 5.0) is None
    mgr.handle_timer(10.0)
    assert mgr.drain(0.0) == [Close(link, DisconnectReason.TIMEOUT,
                                       "TLS handshake took over 10 s")]
    assert mgr.rejected[-1][2] is Outcome.TLS_TIMEOUT
    assert mgr.incoming(addr("127.0.0.1", 3), 10.0) is not None


# -- invariants under arbitrary event sequences ----------------------------------------------

_PEERS = [SslId(bytes([i]) * 16) for i in (0x10, 0x20, 0x30)]
_events = st.lists(st.tuples(
    st.sampled_from(["incoming", "tcp", "auth", "item", "fail", "close", "tick", "addr"]),
    st.integers(0, 40), st.sampled_from(_PEERS), st.integers(1, 4)), max_size=80)


@pytest.mark.slow
@given(_events)
def test_invariants_hold_for_any_event_sequence(events: list[tuple[str, int, SslId, int]]) -> None:
    """Whatever happens, each friend has at most one active link, LinkUp/LinkDown alternate
    per friend, half-open counts stay within the caps, and after a tick nothing is overdue."""
    mgr = manager(SslId(b"\x20" * 16), half_open_per_ip=2, half_open_total=5)
    for p in _PEERS[:2]:
        mgr.add_friend(p, 0.0, [(addr("172.16.0.1", 1 + _PEERS.index(p)), AddressSource.LOCAL)])
    mgr.start(0.0)
    now = 0.0
    up: dict[SslId, int] = {}
    counter = itertools.count()
    for kind, link, peer, step in events:
        now += step
        if kind == "incoming":
            mgr.incoming(addr(f"127.0.0.{step}", next(counter)), now)
        elif kind == "tcp":
            mgr.tcp_connected(link, now)
        elif kind == "auth":
            mgr.authenticated(link, peer, now)
        elif kind == "item":
            mgr.item_received(link, now)
        elif kind == "fail":
            mgr.dial_failed(link, Outcome.REFUSED, "refused", now)
        elif kind == "close":
            mgr.closed(link, DisconnectReason.CLOSED, "closed", now)
        elif kind == "addr":
            mgr.add_address(_PEERS[0], addr("172.16.1.1", step), AddressSource.DISCOVERY, now)
        else:
            deadline = mgr.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
            mgr.handle_timer(now)
            after = mgr.next_deadline()
            assert after is None or after > now
        for action in mgr.drain(0.0):
            if isinstance(action, LinkUp):
                assert action.ssl_id not in up
                up[action.ssl_id] = action.link
            elif isinstance(action, LinkDown):
                assert up.pop(action.ssl_id) == action.link
        for p in _PEERS[:2]:
            assert mgr.active_link(p) == up.get(p)
        assert 0 <= mgr.half_open() <= 5
        assert mgr.half_open() <= mgr.link_count()
