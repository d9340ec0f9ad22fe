"""Reputation: levels from own and friends' opinions, the exchange, and its bounds."""

from __future__ import annotations

import pqi
from pqi.items.reputation import IdOpinion, Opinion, ReputationRequestItem, ReputationUpdateItem
from pqi.wire.fields import GxsId, SslId
from services.reputation.core import MAX_SET_SIZE, REQUEST_PERIOD, Level, ReputationCore
from tests.captures2_items import nodes, raw

A, B = SslId(b"\1" * 16), SslId(b"\2" * 16)
X = GxsId(b"\x0a" * 16)
T0 = 1_800_000_000


def test_own_opinion_wins_and_negative_hides() -> None:
    """Our negative opinion bans (LOCALLY_NEGATIVE, hidden) whatever friends say."""
    core = ReputationCore()
    core.item_received(A, ReputationUpdateItem(latest_update=5, opinions=(IdOpinion(X, 2),)),
                       T0)
    assert core.level(X) == Level.REMOTELY_POSITIVE and not core.hides(X)
    core.set_opinion(X, Opinion.NEGATIVE, T0)
    assert core.level(X) == Level.LOCALLY_NEGATIVE and core.hides(X)


def test_friends_votes_and_the_threshold() -> None:
    """Two friends negative: REMOTELY_NEGATIVE; hidden only when that threshold is chosen."""
    core = ReputationCore(hide_remotely_negative=True)
    for peer in (A, B):
        core.item_received(peer, ReputationUpdateItem(latest_update=1,
                                                      opinions=(IdOpinion(X, 0),)), T0)
    assert core.level(X) == Level.REMOTELY_NEGATIVE and core.hides(X)
    core.hide_remotely_negative = False
    assert not core.hides(X)


def test_exchange_between_two_cores() -> None:
    """A's request carries B's last update time; B's answer lists what changed since."""
    a, b = ReputationCore(), ReputationCore()
    b.set_opinion(X, Opinion.NEGATIVE, T0 - 10)
    a.peer_connected(B, T0)
    (req,) = a.drain(T0)
    assert req.item == ReputationRequestItem(last_update=0)
    b.item_received(A, req.item, T0)
    (upd,) = b.drain(T0)
    a.item_received(B, upd.item, T0)
    assert a.level(X) == Level.REMOTELY_NEGATIVE
    assert a.latest[B] == T0 - 10
    a.handle_timer(T0 + REQUEST_PERIOD)
    (again,) = a.drain(T0)
    b.item_received(A, again.item, T0 + REQUEST_PERIOD)
    assert b.drain(T0) == []  # nothing changed since


def test_updates_are_cut_in_sets() -> None:
    """More than MAX_SET_SIZE opinions go out in several update items, each decodable."""
    b = ReputationCore()
    for i in range(2 * MAX_SET_SIZE + 5):
        b.set_opinion(GxsId(i.to_bytes(16, "big")), Opinion.POSITIVE, T0 - 100 + i % 50)
    b.item_received(A, ReputationRequestItem(last_update=0), T0)
    items = [o.item for o in b.drain(T0)]
    assert len(items) == -(-(2 * MAX_SET_SIZE + 5) // (MAX_SET_SIZE + 1))
    assert sum(len(i.opinions) for i in items) == 2 * MAX_SET_SIZE + 5
    for it in items:
        assert pqi.decode(pqi.encode(it)) == it


def test_captured_update_applies() -> None:
    """carol:1251 (her negative opinion of alice's id, sent to bob) makes it remotely negative."""
    item = pqi.decode(raw("carol", 1251))
    core = ReputationCore()
    core.item_received(A, item, T0)
    alice = GxsId.from_hex(nodes()["alice"]["gxs_id_signed"])
    assert core.level(alice) == Level.REMOTELY_NEGATIVE
