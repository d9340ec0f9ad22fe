# -*- test-case-name: tests.test_upnp -*-
"""Blocking execution of one `PortMapper` action against miniupnpc.

This is the only module that touches miniupnpc.  Every call blocks (SSDP waits, SOAP over
HTTP), so `upnp.service` runs `perform` in a thread pool.  miniupnpc reports every failure as a
bare ``Exception`` carrying the IGD's error text; those become outcome values here, so nothing
raises past this boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never
from typing import Protocol as TypingProtocol

from .mapper import (
    Action,
    AddMapping,
    CallFailed,
    Discover,
    ExternalAddress,
    GatewayFound,
    MappingAdded,
    MappingFailed,
    MappingRemoved,
    NoGateway,
    Outcome,
    QueryExternalAddress,
    RemoveMapping,
)

__all__ = ["UpnpClient", "Gateway", "miniupnpc_factory"]


class UpnpClient(TypingProtocol):
    """The part of ``miniupnpc.UPnP`` we use (so a recording fake can stand in for it)."""

    discoverdelay: int
    lanaddr: str

    def discover(self) -> int: ...
    def selectigd(self) -> Any: ...
    def externalipaddress(self) -> str: ...
    def addportmapping(self, eport: int, proto: str, host: str, iport: int, desc: str,
                       remote_host: str, lease: int = 0) -> bool: ...
    def deleteportmapping(self, eport: int, proto: str) -> bool: ...


def miniupnpc_factory() -> UpnpClient:
    """A fresh real miniupnpc handle."""
    import miniupnpc
    return miniupnpc.UPnP()  # type: ignore[no-any-return]


class Gateway:
    """One miniupnpc handle, used by one thread at a time (the mapper never overlaps calls)."""

    def __init__(self, factory: Callable[[], UpnpClient] = miniupnpc_factory) -> None:
        self._factory = factory
        self._client: UpnpClient | None = None

    def perform(self, action: Action) -> Outcome:
        """Make the call ``action`` names; never raises (failures are outcomes)."""
        try:
            return self._perform(action)
        except Exception as e:  # miniupnpc raises bare Exception with the IGD's text
            reason = str(e) or type(e).__name__
            if isinstance(action, Discover):
                return NoGateway(reason)
            if isinstance(action, AddMapping):
                return MappingFailed(reason)
            return CallFailed(reason)

    def _perform(self, action: Action) -> Outcome:
        if isinstance(action, Discover):
            client = self._factory()
            client.discoverdelay = action.timeout_ms
            found = client.discover()
            if not found:
                return NoGateway("no UPnP device answered (SSDP wait "
                                 f"{action.timeout_ms} ms per device type)")
            client.selectigd()
            self._client = client
            try:
                external = client.externalipaddress() or ""
            except Exception:
                external = ""
            return GatewayFound(external, client.lanaddr)
        client = self._client
        if client is None:
            raise RuntimeError("no gateway selected")
        if isinstance(action, AddMapping):
            ok = client.addportmapping(action.external_port, action.protocol.value,
                                       client.lanaddr, action.internal_port,
                                       action.description, "", action.lease)
            return MappingAdded() if ok else MappingFailed("refused")
        if isinstance(action, RemoveMapping):
            client.deleteportmapping(action.external_port, action.protocol.value)
            return MappingRemoved()
        if isinstance(action, QueryExternalAddress):
            return ExternalAddress(client.externalipaddress() or "")
        assert_never(action)
