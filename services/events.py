# -*- test-case-name: tests.test_events -*-
"""Typed node events and `EventBus`, the one way a node hands them out.

Every event is a frozen dataclass whose fields are documented where it is declared: the
link events below (the node emits them itself) and each service's own events, listed in its
`services.spec.ServiceSpec`.  Applications call ``node.subscribe(FriendConnected, callback)``
(the callback takes the event; the call returns an unsubscriber) or
``node.next_event(MessageReceived, predicate)`` (a Deferred of the next matching event).
A subscriber that raises is logged and the others still run: an application bug never
breaks the node.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from twisted.internet import defer
from twisted.logger import Logger

from pqi.interfaces import DisconnectReason, PeerIdentity
from pqi.wire.address import NetAddress

__all__ = [
    "EventBus",
    "UnknownEventError",
    "TooManySubscribersError",
    "MAX_SUBSCRIBERS",
    "FriendConnected",
    "FriendDisconnected",
    "ServicesNegotiated",
    "ExternalAddressChanged",
    "LINK_EVENTS",
]

#: Subscribers one event type may have at once (pending ``next_event`` calls included).
MAX_SUBSCRIBERS: Final = 1024

E = TypeVar("E")


class UnknownEventError(ValueError):
    """An event type the node never emits (no service of it declares the type)."""


class TooManySubscribersError(RuntimeError):
    """An event type already has `MAX_SUBSCRIBERS` subscribers (some are never removed?)."""


@dataclasses.dataclass(frozen=True)
class FriendConnected:
    """A friend location's link is up (authenticated; services not negotiated yet)."""

    #: Who connected.
    peer: PeerIdentity


@dataclasses.dataclass(frozen=True)
class FriendDisconnected:
    """A friend location's link went down."""

    #: Who went away.
    peer: PeerIdentity
    #: Why the link closed.
    reason: DisconnectReason


@dataclasses.dataclass(frozen=True)
class ServicesNegotiated:
    """Service control agreed with a friend which services run between us."""

    #: The friend location.
    peer: PeerIdentity
    #: Service ids enabled with it (both sides run them, compatible versions).
    services: frozenset[int]


@dataclasses.dataclass(frozen=True)
class ExternalAddressChanged:
    """The gateway (UPnP) mapped our TCP port to a new external address, or lost it."""

    #: Our external TCP address, or None when the mapping is lost.
    address: NetAddress | None


#: The events the node emits itself, from its links and service control.
LINK_EVENTS: Final = (FriendConnected, FriendDisconnected, ServicesNegotiated,
                      ExternalAddressChanged)


def _check_one_argument(event_type: type, callback: Callable[..., object]) -> None:
    """Refuse, at subscription, a callback that cannot be called with the event alone: it
    would otherwise raise inside the node at every event."""
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return  # a builtin or C callable: nothing to check
    try:
        signature.bind(None)
    except TypeError:
        raise TypeError(f"a {event_type.__name__} callback receives one argument (the event); "
                        f"{callback!r} cannot be called with it") from None


class EventBus:
    """Subscribers by event type, for the event types given; a failing subscriber is
    logged and the others still run."""

    log = Logger()

    def __init__(self, event_types: Iterable[type]) -> None:
        #: Subscribers per type, as tuples replaced on each (un)subscription: `emit` iterates
        #: the one it found without copying it (an event per chat message received), and a
        #: subscriber that (un)subscribes meanwhile changes the next emit, not this one.
        self._subscribers: dict[type, tuple[Callable[[Any], object], ...]] = {}
        for event_type in event_types:
            self._subscribers.setdefault(event_type, ())

    def known(self) -> frozenset[type]:
        """The event types that can be subscribed to."""
        return frozenset(self._subscribers)

    def subscribe(self, event_type: type[E],
                  callback: Callable[[E], object]) -> Callable[[], None]:
        """Call ``callback(event)`` on every event of ``event_type``; returns the
        unsubscriber (harmless to call twice)."""
        subscribers = self._subscribers.get(event_type)
        if subscribers is None:
            known = ", ".join(sorted(t.__name__ for t in self._subscribers))
            raise UnknownEventError(f"no service emits {event_type!r}; known: {known}")
        _check_one_argument(event_type, callback)
        if len(subscribers) >= MAX_SUBSCRIBERS:
            raise TooManySubscribersError(
                f"{event_type.__name__} already has {MAX_SUBSCRIBERS} subscribers")
        self._subscribers[event_type] = (*subscribers, callback)

        def unsubscribe() -> None:
            now = self._subscribers[event_type]
            if callback in now:
                at = now.index(callback)
                self._subscribers[event_type] = now[:at] + now[at + 1:]

        return unsubscribe

    def emit(self, event: object) -> None:
        """Hand ``event`` to every subscriber of its type, in subscription order."""
        subscribers = self._subscribers.get(type(event))
        if subscribers is None:
            raise UnknownEventError(f"{type(event).__name__} is not a declared event")
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                self.log.failure("subscriber of {event} failed", event=type(event).__name__)

    def next_event(self, event_type: type[E],
                   predicate: Callable[[E], bool] | None = None) -> defer.Deferred[E]:
        """A Deferred of the next ``event_type`` event passing ``predicate``; cancelling it
        unsubscribes."""
        def cancel(_: defer.Deferred[E]) -> None:
            unsubscribe()

        d: defer.Deferred[E] = defer.Deferred(cancel)

        def seen(event: E) -> None:
            if predicate is None or predicate(event):
                unsubscribe()
                d.callback(event)

        unsubscribe = self.subscribe(event_type, seen)
        return d
