# -*- test-case-name: tests.test_upnp -*-
"""`UpnpService`: the Twisted glue around `PortMapper`.

It drives the mapper with a `pqi.driver.CoreDriver` (its one timer), runs each gateway call
the mapper hands out in a thread pool (miniupnpc blocks: SSDP waits, SOAP over HTTP), feeds the
outcome back to the mapper on the reactor thread, and tells its owner (the node) about every
status change through ``on_status``, the hook by which the node learns its external address.
Stopping removes the mappings; the Deferred `stopService` returns fires when they are gone, or
after ``stop_timeout`` seconds if the gateway has stopped answering (a stop never hangs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from pqi.driver import CoreDriver

from .gateway import Gateway
from .mapper import (
    DEFAULT_DISCOVER_TIMEOUT,
    DEFAULT_LEASE,
    DEFAULT_REDISCOVER_INTERVAL,
    Action,
    CallFailed,
    PortMapper,
    PortRequest,
    Protocol,
    UpnpState,
    UpnpStatus,
)

__all__ = ["UpnpService", "DEFAULT_STOP_TIMEOUT"]

#: Longest wait for the gateway to remove our mappings when stopping, seconds.
DEFAULT_STOP_TIMEOUT: Final = 10.0


class UpnpService(Service):
    """Maps ``tcp_port`` and ``udp_port`` (either may be None) on the home gateway.

    ``pool`` is the thread pool for the blocking calls (default: the reactor's);
    ``gateway`` performs them (default: real miniupnpc).  ``on_status`` is called with an
    `UpnpStatus` after every change of state, external address or mappings.
    """

    log = Logger()

    def __init__(self, reactor: Any, *, tcp_port: int | None = None,
                 udp_port: int | None = None, pool: Any = None,
                 gateway: Gateway | None = None, lease: int = DEFAULT_LEASE,
                 discover_timeout_ms: int = DEFAULT_DISCOVER_TIMEOUT,
                 rediscover_interval: float = DEFAULT_REDISCOVER_INTERVAL,
                 stop_timeout: float = DEFAULT_STOP_TIMEOUT,
                 on_status: Callable[[UpnpStatus], object] | None = None) -> None:
        self.reactor = reactor
        self.tcp_port = tcp_port
        self.udp_port = udp_port
        self._pool = pool
        self.gateway = gateway if gateway is not None else Gateway()
        self._options = {"lease": lease, "discover_timeout_ms": discover_timeout_ms,
                         "rediscover_interval": rediscover_interval}
        self.stop_timeout = stop_timeout
        self.on_status = on_status
        self.mapper: PortMapper | None = None
        self._driver: CoreDriver | None = None
        self._stopped: defer.Deferred[None] | None = None
        self._last: UpnpStatus | None = None

    @property
    def status(self) -> UpnpStatus:
        """Where port mapping stands (``idle`` before the service starts)."""
        if self.mapper is None:
            return UpnpStatus(UpnpState.IDLE, None, (), "")
        return self.mapper.status

    def set_ports(self, tcp_port: int | None, udp_port: int | None = None) -> None:
        """The ports to map, once known (e.g. after listening on port 0); before starting."""
        if self.running:
            raise RuntimeError("set_ports after the UPnP service started")
        self.tcp_port, self.udp_port = tcp_port, udp_port

    def startService(self) -> None:  # noqa: N802
        super().startService()
        requests = [PortRequest(proto, port) for proto, port in
                    ((Protocol.TCP, self.tcp_port), (Protocol.UDP, self.udp_port))
                    if port is not None]
        self.mapper = PortMapper(requests, **self._options)  # type: ignore[arg-type]
        self._driver = CoreDriver(self.mapper, self.reactor, self._output, after=self._after)
        self._driver.feed(self.mapper.start)

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802
        """Remove our mappings; fires when done (or after ``stop_timeout``)."""
        super().stopService()
        mapper, driver = self.mapper, self._driver
        if mapper is None or driver is None:
            return defer.succeed(None)
        self._stopped = defer.Deferred()
        done = self._stopped
        give_up = self.reactor.callLater(self.stop_timeout, self._give_up)
        done.addBoth(lambda r: (give_up.cancel() if give_up.active() else None, r)[1])
        driver.feed(mapper.stop)
        return done

    # --- the mapper's outputs -------------------------------------------------------------

    def _output(self, output: Action | UpnpStatus) -> None:
        if isinstance(output, UpnpStatus):
            self._report(output)
            return
        d = deferToThreadPool(self.reactor, self._thread_pool(), self.gateway.perform, output)
        d.addErrback(lambda f: CallFailed(f.getErrorMessage()))
        d.addCallback(self._outcome, output)
        d.addErrback(self._broken)

    def _after(self) -> None:
        if self.mapper is not None and self.mapper.finished:
            self._finish_stop()

    def _thread_pool(self) -> Any:
        if self._pool is None:
            self._pool = self.reactor.getThreadPool()
        return self._pool

    def _outcome(self, outcome: Any, action: Action) -> None:
        mapper, driver = self.mapper, self._driver
        assert mapper is not None and driver is not None
        self.log.debug("upnp {action} -> {outcome}", action=repr(action), outcome=repr(outcome))
        driver.feed(mapper.handle, outcome)

    def _broken(self, failure: Failure) -> None:
        self.log.failure("upnp service glue failed", failure)

    def _report(self, status: UpnpStatus) -> None:
        changed_state = self._last is None or self._last.state is not status.state
        self._last = status
        if changed_state:
            log = self.log.warn if status.state in (UpnpState.NO_GATEWAY,
                                                    UpnpState.FAILED) else self.log.info
            log("upnp: {state} ({detail})", state=status.state.value, detail=status.detail,
                external_ip=str(status.external_ip) if status.external_ip else None)
        if self.on_status is not None:
            try:
                self.on_status(status)
            except Exception:
                self.log.failure("upnp status callback failed")

    def _finish_stop(self) -> None:
        if self._stopped is not None and not self._stopped.called:
            self._stopped.callback(None)

    def _give_up(self) -> None:
        if self._stopped is not None and not self._stopped.called:
            self.log.warn("upnp: gateway did not confirm removal of our mappings within "
                          "{timeout} s; giving up", timeout=self.stop_timeout)
            self._stopped.callback(None)
