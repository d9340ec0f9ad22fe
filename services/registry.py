# -*- test-case-name: tests.test_registry -*-
"""The services a node runs, in the order it builds and starts them.

Each entry is the `services.spec.ServiceSpec` its module declares.  The `Node` builds and
wires them by iterating `NODE_SERVICES` (an application may pass its own sequence), and
``rsnode`` adds their subcommands from it.  Order matters only where a build uses a part
built before it: file sharing hands its index to file transfer; turtle routing carries file
transfers through tunnels and answers searches from the shares; mail receipts attach to
the mail service built before them; chat builds its lobbies on the identities and
reputation built before it; channels, forums and boards too, channels also on file transfer
and turtle routing for their files; GXS tunnels (distant chat) on turtle routing and the
identities, distant mail on the identities and mail; the ban list (last) filters files in
all of them and hides banned identities' lobby messages, posts and mail.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from services import bwctrl, discovery, heartbeat, rtt, status
from services.banlist import service as banlist
from services.chat import service as chat
from services.distant_mail import grouter
from services.distant_mail import service as distant_mail
from services.events import LINK_EVENTS
from services.gxsid import service as gxsid
from services.gxstunnel import service as gxstunnel
from services.mail import receipt as mail_receipt
from services.mail import service as mail
from services.publish import specs as publish
from services.reputation import service as reputation
from services.sharing import manager as sharing
from services.spec import RegistryError, ServiceSpec
from services.transfer import service as transfer
from services.turtle import service as turtle

__all__ = ["NODE_SERVICES", "event_types", "node_options", "cli_registrars", "names"]

#: What a node runs (RetroShare's ServiceInfo list is sorted by id whatever the order here).
NODE_SERVICES: Final[tuple[ServiceSpec, ...]] = (
    discovery.SPEC,
    heartbeat.SPEC,
    bwctrl.SPEC,
    status.SPEC,
    rtt.SPEC,
    gxsid.SPEC,
    reputation.SPEC,
    chat.SPEC,
    mail.SPEC,
    mail_receipt.RECEIPT_SPEC,
    transfer.SPEC,
    sharing.SPEC,
    turtle.SPEC,
    publish.CHANNELS_SPEC,
    publish.FORUMS_SPEC,
    publish.BOARDS_SPEC,
    gxstunnel.SPEC,
    distant_mail.SPEC,
    grouter.SPEC,
    banlist.SPEC,
)


def _unique(specs: Iterable[ServiceSpec]) -> tuple[ServiceSpec, ...]:
    specs = tuple(specs)
    for what, key in (("service id", lambda s: s.service_id),
                      ("attribute", lambda s: s.attribute or s.name)):
        seen: set[object] = set()
        for spec in specs:
            if key(spec) in seen:
                raise RegistryError(f"two services with {what} {key(spec)!r}")
            seen.add(key(spec))
    return specs


def event_types(specs: Iterable[ServiceSpec]) -> tuple[type, ...]:
    """The node's link events and every event the services declare (each once)."""
    found: list[type] = list(LINK_EVENTS)
    for spec in _unique(specs):
        for event in spec.events:
            if event in found:
                raise RegistryError(f"event {event.__name__} declared twice")
            found.append(event)
    return tuple(found)


def node_options(specs: Iterable[ServiceSpec], given: Mapping[str, Any]) -> dict[str, Any]:
    """The services' options: their defaults overridden by ``given``; a name no service
    takes is a TypeError, as for any unexpected keyword argument."""
    options: dict[str, Any] = {}
    for spec in _unique(specs):
        for name, default in spec.options.items():
            if name in options:
                raise RegistryError(f"option {name!r} claimed by two services")
            options[name] = default
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise TypeError(f"Node() got unexpected keyword arguments: {', '.join(unknown)}")
    return {**options, **given}


def cli_registrars(specs: Iterable[ServiceSpec] = NODE_SERVICES) -> list[Callable[[Any], None]]:
    """The services' ``register(subparsers)`` functions, imported when given as paths."""
    found: list[Callable[[Any], None]] = []
    for spec in _unique(specs):
        cli = spec.cli
        if isinstance(cli, str):
            module, _, function = cli.partition(":")
            cli = getattr(importlib.import_module(module), function)
        if cli is not None and cli not in found:
            found.append(cli)
    return found


def names(specs: Iterable[ServiceSpec] = NODE_SERVICES) -> dict[int, str]:
    """Service id -> announced name (how ``rsnode status`` names a friend's services)."""
    return {spec.service_id: spec.name for spec in _unique(specs)}
