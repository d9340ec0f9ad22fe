"""Typed events: delivery, the subscriber bound, failing subscribers, unknown types,
``next_event``."""

from __future__ import annotations

import dataclasses

import pytest
from twisted.internet import defer
from twisted.logger import capturedLogs

from pqi.interfaces import DisconnectReason
from services.events import (
    MAX_SUBSCRIBERS,
    EventBus,
    FriendConnected,
    FriendDisconnected,
    TooManySubscribersError,
    UnknownEventError,
)
from tests.service_fakes import peer


@dataclasses.dataclass(frozen=True)
class Undeclared:
    """An event type no bus here declares."""


def bus() -> EventBus:
    return EventBus([FriendConnected, FriendDisconnected])


def test_subscribers_get_their_type_in_order_until_unsubscribed() -> None:
    """Each subscriber gets the event object of its type, in subscription order, and
    nothing after it unsubscribed (unsubscribing twice is harmless)."""
    b, seen = bus(), []
    first = b.subscribe(FriendConnected, lambda e: seen.append(("first", e)))
    b.subscribe(FriendConnected, lambda e: seen.append(("second", e)))
    b.subscribe(FriendDisconnected, lambda e: seen.append(("down", e)))
    up = FriendConnected(peer(1))
    b.emit(up)
    first()
    first()
    b.emit(up)
    down = FriendDisconnected(peer(1), DisconnectReason.CLOSED)
    b.emit(down)
    assert seen == [("first", up), ("second", up), ("second", up), ("down", down)]


def test_subscribing_during_an_emit_changes_the_next_one() -> None:
    """A subscriber that subscribes another and unsubscribes a third while an event is
    handed out: this event still reaches the subscribers it found, the next one the new
    set; the same callback subscribed twice is called twice and leaves one at a time."""
    b, seen = bus(), []
    late = lambda e: seen.append("late")  # noqa: E731
    drop_third: list = []

    def first(e: object) -> None:
        seen.append("first")
        if not drop_third[1:]:
            b.subscribe(FriendConnected, late)
            drop_third[0]()
            drop_third.append(True)

    b.subscribe(FriendConnected, first)
    b.subscribe(FriendConnected, lambda e: seen.append("second"))
    drop_third.append(b.subscribe(FriendConnected, lambda e: seen.append("third")))
    up = FriendConnected(peer(1))
    b.emit(up)
    assert seen == ["first", "second", "third"]
    seen.clear()
    b.emit(up)
    assert seen == ["first", "second", "late"]
    again = b.subscribe(FriendConnected, late)
    seen.clear()
    b.emit(up)
    assert seen == ["first", "second", "late", "late"]
    again()
    seen.clear()
    b.emit(up)
    assert seen == ["first", "second", "late"]


def test_failing_subscriber_is_logged_and_others_still_run() -> None:
    """A subscriber that raises is logged with the event's name; the next one still runs
    and emit returns normally."""
    b, seen = bus(), []
    b.subscribe(FriendConnected, lambda e: 1 / 0)
    b.subscribe(FriendConnected, seen.append)
    with capturedLogs() as logged:
        b.emit(FriendConnected(peer(2)))
    assert seen == [FriendConnected(peer(2))]
    (failure,) = [e for e in logged if "log_failure" in e]
    assert failure["event"] == "FriendConnected"
    assert failure["log_failure"].check(ZeroDivisionError)


def test_unknown_types_refused() -> None:
    """Subscribing to, or emitting, a type the bus was not given raises UnknownEventError
    (naming the known types)."""
    b = bus()
    with pytest.raises(UnknownEventError, match="FriendConnected"):
        b.subscribe(Undeclared, print)
    with pytest.raises(UnknownEventError):
        b.emit(Undeclared())


def test_subscribers_per_type_are_bounded() -> None:
    """A type takes `MAX_SUBSCRIBERS` subscribers; one more is refused until one leaves;
    other types are not affected."""
    b = bus()
    unsubscribers = [b.subscribe(FriendConnected, lambda e: None)
                     for _ in range(MAX_SUBSCRIBERS)]
    with pytest.raises(TooManySubscribersError):
        b.subscribe(FriendConnected, lambda e: None)
    with pytest.raises(TooManySubscribersError):
        b.next_event(FriendConnected)
    b.subscribe(FriendDisconnected, lambda e: None)
    unsubscribers[0]()
    b.subscribe(FriendConnected, lambda e: None)


def test_next_event_waits_for_predicate_then_unsubscribes() -> None:
    """next_event fires once, with the first event passing the predicate, and leaves no
    subscriber behind; cancelling a pending one unsubscribes it too."""
    b = bus()
    d = b.next_event(FriendConnected, lambda e: e.peer == peer(3))
    b.emit(FriendConnected(peer(1)))
    assert not d.called
    b.emit(FriendConnected(peer(3)))
    assert d.result == FriendConnected(peer(3))
    pending, failures = b.next_event(FriendConnected), []
    pending.addErrback(failures.append)
    pending.cancel()
    assert failures[0].check(defer.CancelledError)
    for _ in range(MAX_SUBSCRIBERS):  # nothing left over from the two above
        b.subscribe(FriendConnected, lambda e: None)
