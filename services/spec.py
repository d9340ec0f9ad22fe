# -*- test-case-name: tests.test_registry -*-
"""`ServiceSpec`: everything a service adds to a node, stated once in the service's module.

A spec names the service as RetroShare announces it (id, name, version, minimum version),
the item classes it speaks (importing them registers their codecs), the typed events it
emits, its control-channel commands (what ``rsnode`` sends to a running node), its ``rsnode``
subcommands, the node options it takes and how to build it on a node.  The `Node` and
``rsnode`` iterate `services.registry.NODE_SERVICES` and never name a service themselves,
so adding a service is a module, its items and a line in the registry.

Commands are collected with `Commands.command`, the one way to register one: a function
``(node, args) -> result`` (a Deferred for slow ones) filed under the name clients send.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from pqi.wire.item import PQItem

__all__ = [
    "ServiceSpec",
    "Commands",
    "Command",
    "NodeContext",
    "RegistryError",
    "RETROSHARE_VERSION",
]

#: The (major, minor) version and minimum version RetroShare 0.6.7 announces for most services.
RETROSHARE_VERSION: Final = (1, 0)

#: A control command: ``(node, args)`` to a JSON-able result or a Deferred of one.
Command = Callable[[Any, dict[str, Any]], Any]


class RegistryError(ValueError):
    """Two services claim the same id, command name, event class, option or node attribute."""


class Commands(dict[str, Command]):
    """A service's control commands by name; fill it with the `command` decorator."""

    def command(self, name: str) -> Callable[[Command], Command]:
        """File the decorated ``(node, args)`` function under ``name``."""
        def add(function: Command) -> Command:
            if name in self:
                raise RegistryError(f"command {name!r} defined twice")
            self[name] = function
            return function
        return add


class NodeContext(Protocol):
    """What a spec's ``build`` may use of the node it is built on (the `Node` provides it);
    the parts built before it are attributes too (file sharing hands its index to
    ``node.transfers``)."""

    reactor: Any
    account: Any
    friends_list: Any
    ssl_id: Any
    pgp_id: Any
    #: Service control: the `pqi.interfaces.IItemSender` a service sends through.
    control: Any
    net: Any
    #: The address we listen on, and the one the gateway maps (None until known).
    listening: Any
    external_address: Any
    #: The services' options by name (each spec's defaults, overridden by the node's caller).
    options: Mapping[str, Any]

    def emit(self, event: object) -> None:
        """Hand a typed event to the node's subscribers."""

    def last_received(self, ssl_id: Any) -> float | None:
        """Reactor time of the last read on the peer's link (None without a link)."""

    def reset_link(self, ssl_id: Any, reason: Any) -> None:
        """Close the peer's link."""

    def link_of(self, ssl_id: Any) -> Any:
        """The peer's `pqi.link` link, or None."""

    def link_room(self, ssl_id: Any) -> int:
        """Bytes the peer's link queue takes now."""

    def link_room_watch(self, callback: Any) -> None:
        """Have ``callback(ssl_id)`` called when a peer's full link has room again."""

    def friend_location(self, peer: Any) -> Any:
        """A friend location's SslId from its hex id or a unique profile or location name."""


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    """One network service as a node runs it.

    ``attribute``: the `Node` attribute the built part is reached as (``node.chat``).
    ``build(node)`` returns the part (None when its options turn it off); ``network(part)``
    picks the `pqi.interfaces.IService` inside it (default: the part itself); a part that is a
    Twisted service becomes a child of the node.  ``options``: node keyword arguments the
    service takes, with their defaults (``build`` reads them in ``node.options``).
    ``close(part)`` runs once the node has stopped (to close the part's files).  ``cli``:
    ``register(subparsers)`` adding its ``rsnode`` subcommands, or its ``"module:function"``
    path when it lives in `services.cli` (so that a service never imports the CLI).
    """

    service_id: int
    name: str
    attribute: str = ""
    version: tuple[int, int] = RETROSHARE_VERSION
    min_version: tuple[int, int] = RETROSHARE_VERSION
    items: tuple[type[PQItem], ...] = ()
    events: tuple[type, ...] = ()
    commands: Mapping[str, Command] = dataclasses.field(default_factory=dict)
    cli: Callable[[Any], None] | str | None = None
    options: Mapping[str, object] = dataclasses.field(default_factory=dict)
    build: Callable[[Any], Any] | None = None
    network: Callable[[Any], Any] | None = None
    close: Callable[[Any], None] | None = None

    def __post_init__(self) -> None:
        wrong = [cls.__name__ for cls in self.items if cls.SERVICE != self.service_id]
        if wrong:
            raise RegistryError(f"{self.name}: items of another service: {', '.join(wrong)}")
        for event in self.events:
            params = getattr(event, "__dataclass_params__", None)
            if params is None or not params.frozen:
                raise RegistryError(f"{self.name}: event {event.__name__} is not a frozen "
                                    "dataclass")
