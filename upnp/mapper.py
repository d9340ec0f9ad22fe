# -*- test-case-name: tests.test_upnp -*-
"""The port-mapping state machine, free of I/O and of miniupnpc.

`PortMapper` decides which gateway call to make next; something else makes it (off the reactor
thread, see `upnp.service`) and feeds the outcome back.  Exactly one call is outstanding at a
time, because a miniupnpc handle is not safe to share between threads and an IGD copes badly
with overlapping SOAP requests.  It keeps the `pqi.core.Core` contract: time comes in as
``now`` and goes out as `PortMapper.next_deadline`; `PortMapper.drain` hands over the call to
make (an `Action`) and every new `UpnpStatus`, in order::

    idle --start--> discovering --GatewayFound--> mapping --all tried--> mapped
                        |                                                  | renew before the
                        +--NoGateway--> no gateway --rediscover timer--+   | lease runs out
                                                                       v   v
                                                                    discovering / mapping
    any --stop--> stopping (remove each mapping we hold) --> stopped

A gateway that answers but maps nothing (every request refused, or it reports no external
address) leaves the state at ``failed``, retried like ``no gateway``.  See docs/upnp.md.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections.abc import Sequence
from typing import Final

__all__ = [
    "UpnpState",
    "Protocol",
    "PortRequest",
    "Mapping",
    "UpnpStatus",
    "Discover",
    "AddMapping",
    "RemoveMapping",
    "QueryExternalAddress",
    "Action",
    "GatewayFound",
    "NoGateway",
    "MappingAdded",
    "MappingFailed",
    "MappingRemoved",
    "ExternalAddress",
    "CallFailed",
    "Outcome",
    "PortMapper",
    "MapperMisuseError",
    "DEFAULT_LEASE",
    "DEFAULT_DISCOVER_TIMEOUT",
    "DEFAULT_REDISCOVER_INTERVAL",
    "PORT_ATTEMPTS",
]

#: Lease asked for each mapping, seconds (an hour, as most home routers accept).
DEFAULT_LEASE: Final = 3600
#: How long discovery waits for SSDP answers, milliseconds.
DEFAULT_DISCOVER_TIMEOUT: Final = 2000
#: After "no gateway" or "failed", how long until we look again (routers reboot), seconds.
DEFAULT_REDISCOVER_INTERVAL: Final = 300.0
#: External ports tried per mapping (the wanted one, then the next ones up) before giving up.
PORT_ATTEMPTS: Final = 3
#: A lease is renewed when this fraction of it has run.
RENEW_FRACTION: Final = 0.5


class UpnpState(enum.Enum):
    """Where the mapper is; the value is what ``rsnode status`` prints."""

    IDLE = "idle"
    DISCOVERING = "discovering"
    MAPPING = "mapping"
    MAPPED = "mapped"
    NO_GATEWAY = "no gateway"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Protocol(enum.Enum):
    TCP = "TCP"
    UDP = "UDP"


class MapperMisuseError(RuntimeError):
    """The caller drove `PortMapper` out of order (a bug in the glue, not the gateway's fault):
    an outcome with no call outstanding, or a second call asked for while one is running."""


@dataclasses.dataclass(frozen=True)
class PortRequest:
    """A local port we want reachable from outside (external port = the same, if free)."""

    protocol: Protocol
    port: int

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range 1..65535")


@dataclasses.dataclass(frozen=True)
class Mapping:
    """A mapping the gateway accepted: ``external_port`` on its WAN side reaches
    ``internal_host:internal_port``; ``expires`` is None for a permanent one."""

    protocol: Protocol
    external_port: int
    internal_host: str
    internal_port: int
    lease: int
    expires: float | None


@dataclasses.dataclass(frozen=True)
class UpnpStatus:
    """What the node learns (through the status callback) and shows."""

    state: UpnpState
    external_ip: ipaddress.IPv4Address | None
    mappings: tuple[Mapping, ...]
    detail: str

    def external_port(self, protocol: Protocol) -> int | None:
        """The WAN-side port mapped for ``protocol``, if any."""
        for m in self.mappings:
            if m.protocol is protocol:
                return m.external_port
        return None


# --- calls to make (actions) ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Discover:
    """Find an IGD (SSDP, waiting at most ``timeout_ms``), select it, read its external IP."""

    timeout_ms: int


@dataclasses.dataclass(frozen=True)
class AddMapping:
    protocol: Protocol
    external_port: int
    internal_port: int
    lease: int
    description: str


@dataclasses.dataclass(frozen=True)
class RemoveMapping:
    protocol: Protocol
    external_port: int


@dataclasses.dataclass(frozen=True)
class QueryExternalAddress:
    """Re-read the external address (it may change when the ISP renews the router's lease)."""


Action = Discover | AddMapping | RemoveMapping | QueryExternalAddress


# --- their outcomes -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GatewayFound:
    """``external_ip`` is what the IGD reports ('' if nothing); ``lan_address`` is our address
    on the link towards it (the internal host of our mappings)."""

    external_ip: str
    lan_address: str


@dataclasses.dataclass(frozen=True)
class NoGateway:
    reason: str


@dataclasses.dataclass(frozen=True)
class MappingAdded:
    pass


@dataclasses.dataclass(frozen=True)
class MappingFailed:
    reason: str


@dataclasses.dataclass(frozen=True)
class MappingRemoved:
    pass


@dataclasses.dataclass(frozen=True)
class ExternalAddress:
    external_ip: str


@dataclasses.dataclass(frozen=True)
class CallFailed:
    """Any other call that raised (a removal or an address query)."""

    reason: str


Outcome = (GatewayFound | NoGateway | MappingAdded | MappingFailed | MappingRemoved
           | ExternalAddress | CallFailed)

#: Error text IGDs use when they accept only permanent leases (UPnP error 725).
_PERMANENT_ONLY: Final = "OnlyPermanentLeasesSupported"


def _public_ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address) and address.is_global:
        return address
    return None


class PortMapper:
    """Keeps ``requests`` mapped on whatever gateway answers, renewing leases, until stopped.

    Drive it with `start`, `handle` (the outcome of the call `drain` gave), `handle_timer`
    (at `next_deadline`) and `stop`; `drain` gives the next call and the status changes.
    ``status`` says where it stands.
    """

    def __init__(self, requests: Sequence[PortRequest], *, lease: int = DEFAULT_LEASE,
                 discover_timeout_ms: int = DEFAULT_DISCOVER_TIMEOUT,
                 rediscover_interval: float = DEFAULT_REDISCOVER_INTERVAL,
                 description: str = "rsproto") -> None:
        if lease < 0:
            raise ValueError("lease must be >= 0 (0: permanent)")
        self.requests = tuple(requests)
        self.lease = lease
        self.discover_timeout_ms = discover_timeout_ms
        self.rediscover_interval = rediscover_interval
        self.description = description
        self.state = UpnpState.IDLE
        self.detail = ""
        self.external_ip: ipaddress.IPv4Address | None = None
        self.lan_address = ""
        self.mappings: dict[Protocol, Mapping] = {}
        self._deadline: float | None = None
        self._out: list[Action | UpnpStatus] = []
        self._reported: UpnpStatus | None = None
        self._queue: list[Action] = []
        self._in_flight: Action | None = None
        self._attempt = 0
        self._renewing = False
        # Every (protocol, external port) the gateway granted us and we have not removed:
        # a refused renewal may leave the old lease running, so a stop removes these.
        self._granted: set[tuple[Protocol, int]] = set()

    # --- driving ------------------------------------------------------------------------------

    @property
    def status(self) -> UpnpStatus:
        return UpnpStatus(self.state, self.external_ip, tuple(self.mappings.values()),
                          self.detail)

    @property
    def busy(self) -> bool:
        """A call is outstanding (its outcome has not been handled yet)."""
        return self._in_flight is not None

    def start(self, now: float) -> None:
        """Begin: look for a gateway."""
        if self.state is not UpnpState.IDLE:
            raise MapperMisuseError(f"start in state {self.state.value}")
        self._discover()
        self._advance()

    def stop(self, now: float) -> None:
        """Give back every mapping we hold; `finished` turns true when that is done."""
        if self.state in (UpnpState.STOPPING, UpnpState.STOPPED):
            return
        self._deadline = None
        self._queue = [RemoveMapping(protocol, port) for protocol, port in sorted(
            self._granted, key=lambda g: (g[0].value, g[1]))]
        self._set(UpnpState.STOPPING, "removing mappings")
        self._maybe_stopped()
        self._advance()

    @property
    def finished(self) -> bool:
        return self.state is UpnpState.STOPPED

    def drain(self, now: float) -> list[Action | UpnpStatus]:
        """The call to make (outstanding until `handle`) and the status changes, in order."""
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When leases need renewing or the gateway looking for again (None: never)."""
        return self._deadline

    def _advance(self) -> None:
        """After every input: report a changed status, hand out the next call if none is
        outstanding."""
        status = self.status
        if status != self._reported:
            self._reported = status
            self._out.append(status)
        if self._in_flight is None and self._queue:
            self._in_flight = self._queue.pop(0)
            self._out.append(self._in_flight)

    def handle_timer(self, now: float) -> None:
        """The deadline has come: renew leases, or look for a gateway again."""
        if self._deadline is None or now < self._deadline:
            return
        self._deadline = None
        if self.state in (UpnpState.NO_GATEWAY, UpnpState.FAILED):
            self._discover()
        elif self.state is UpnpState.MAPPED:
            self._renewing = True
            self._set(UpnpState.MAPPING, "renewing leases")
            self._queue = [self._add_for(m.protocol, m.external_port, m.internal_port)
                           for m in self.mappings.values()]
            self._queue.append(QueryExternalAddress())
        self._advance()

    def handle(self, outcome: Outcome, now: float) -> None:
        """Feed the outcome of the outstanding call."""
        action = self._in_flight
        if action is None:
            raise MapperMisuseError(f"outcome {outcome!r} with no call outstanding")
        self._in_flight = None
        if self.state is UpnpState.STOPPING:
            if isinstance(action, RemoveMapping):
                self.mappings.pop(action.protocol, None)
                self._granted.discard((action.protocol, action.external_port))
            elif isinstance(action, AddMapping) and isinstance(outcome, MappingAdded):
                # Granted while we were being stopped: give it back too.
                self._queue.append(RemoveMapping(action.protocol, action.external_port))
            self._maybe_stopped()
            self._advance()
            return
        if isinstance(action, Discover):
            self._on_discovered(outcome, now)
        elif isinstance(action, AddMapping):
            self._on_added(action, outcome, now)
        elif isinstance(action, QueryExternalAddress):
            if isinstance(outcome, ExternalAddress):
                self.external_ip = _public_ipv4(outcome.external_ip)
        if not self._queue and self._in_flight is None and self.state is UpnpState.MAPPING:
            self._settle(now)
        self._advance()

    # --- transitions --------------------------------------------------------------------------

    def _set(self, state: UpnpState, detail: str) -> None:
        self.state = state
        self.detail = detail

    def _discover(self) -> None:
        self._renewing = False
        self._set(UpnpState.DISCOVERING, "looking for a gateway")
        self._queue = [Discover(self.discover_timeout_ms)]

    def _add_for(self, protocol: Protocol, external_port: int, internal_port: int
                 ) -> AddMapping:
        return AddMapping(protocol, external_port, internal_port, self.lease, self.description)

    def _on_discovered(self, outcome: Outcome, now: float) -> None:
        if not isinstance(outcome, GatewayFound):
            reason = outcome.reason if isinstance(outcome, NoGateway | CallFailed) else "?"
            self._set(UpnpState.NO_GATEWAY, reason)
            self._deadline = now + self.rediscover_interval
            return
        self.lan_address = outcome.lan_address
        self.external_ip = _public_ipv4(outcome.external_ip)
        if self.external_ip is None:
            self._fail(now, "the gateway reports no public external address "
                            f"({outcome.external_ip or 'none'})")
            return
        self._set(UpnpState.MAPPING, f"gateway found, external address {self.external_ip}")
        self._attempt = 0
        self._queue = [self._add_for(r.protocol, r.port, r.port) for r in self.requests]

    def _on_added(self, action: AddMapping, outcome: Outcome, now: float) -> None:
        if isinstance(outcome, MappingAdded):
            self._granted.add((action.protocol, action.external_port))
            self.mappings[action.protocol] = Mapping(
                action.protocol, action.external_port, self.lan_address, action.internal_port,
                action.lease, None if action.lease == 0 else now + action.lease)
            self._attempt = 0
            return
        reason = outcome.reason if isinstance(outcome, MappingFailed | CallFailed) else "?"
        if _PERMANENT_ONLY in reason and action.lease != 0:
            self._queue.insert(0, dataclasses.replace(action, lease=0))
            return
        self.mappings.pop(action.protocol, None)
        self._attempt += 1
        if self._attempt < PORT_ATTEMPTS and not self._renewing:
            port = action.external_port + 1 if action.external_port < 65535 else 1024
            self._queue.insert(0, dataclasses.replace(action, external_port=port))
        else:
            self._attempt = 0
            self.detail = f"{action.protocol.value} {action.internal_port}: {reason}"

    def _settle(self, now: float) -> None:
        self._renewing = False
        if not self.mappings:
            self._fail(now, f"the gateway mapped nothing ({self.detail})")
            return
        if self.external_ip is None:
            self._fail(now, "the gateway no longer reports a public external address")
            return
        held = ", ".join(f"{m.protocol.value} {self.external_ip}:{m.external_port}"
                         f"->{m.internal_host}:{m.internal_port}"
                         for m in self.mappings.values())
        self._set(UpnpState.MAPPED, held)
        leases = [m.lease for m in self.mappings.values() if m.lease > 0]
        self._deadline = now + min(leases) * RENEW_FRACTION if leases else None

    def _fail(self, now: float, detail: str) -> None:
        self._set(UpnpState.FAILED, detail)
        self._deadline = now + self.rediscover_interval

    def _maybe_stopped(self) -> None:
        if self._in_flight is None and not self._queue:
            self.mappings.clear()
            self._granted.clear()
            self._set(UpnpState.STOPPED, "stopped")
