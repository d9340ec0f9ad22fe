# -*- test-case-name: tests.test_jsonapi_server -*-
"""`JsonApiService`: the JSON API of a running `Node`, as a Twisted `Service`.

It listens on 127.0.0.1:9092 by default (RetroShare's port); a non-loopback address is
refused unless ``allow_remote`` is given, since the API controls the whole node and speaks
plain HTTP.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from . import (
    rs_blocks,
    rs_chats,
    rs_config,
    rs_files,
    rs_gxs,
    rs_identity,
    rs_mail,
    rs_peers,
    rs_publish,
    rs_service_control,
    rs_session,
)
from .address import DEFAULT_HOST, DEFAULT_PORT, NonLoopbackError, parse_address
from .api import ApiContext, EndpointTable
from .credentials import ApiCredentials
from .events import KEEPALIVE_PERIOD, EventStreams
from .node_events import NodeEvents
from .server import JsonApiResource, JsonApiSite
from .settings import SettingsStore

__all__ = ["JsonApiService", "NonLoopbackError", "DEFAULT_PORT", "DEFAULT_HOST",
           "parse_address", "all_endpoints"]


def all_endpoints() -> EndpointTable:
    """Every endpoint rsproto serves (the event stream included)."""
    from .server import EVENTS_PATH
    table = EndpointTable().merge([rs_session.ENDPOINTS, rs_peers.ENDPOINTS,
                                   rs_config.ENDPOINTS, rs_service_control.ENDPOINTS,
                                   rs_files.ENDPOINTS, rs_chats.ENDPOINTS, rs_mail.ENDPOINTS,
                                   rs_gxs.ENDPOINTS, rs_identity.ENDPOINTS, rs_blocks.ENDPOINTS,
                                   rs_publish.ENDPOINTS])
    events = EndpointTable()
    events.add(EVENTS_PATH)(lambda ctx, p: {})
    return table.merge([events])


class JsonApiService(Service):
    """Serve ``node``'s JSON API with ``credentials`` (``node`` None: before login, every
    authenticated call answers 409)."""

    log = Logger()

    def __init__(self, reactor: Any, node: Any | None, credentials: ApiCredentials, *,
                 host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 webui: str | os.PathLike[str] | None = None, allow_remote: bool = False,
                 keepalive: float = KEEPALIVE_PERIOD) -> None:
        if not ipaddress.ip_address(host).is_loopback and not allow_remote:
            raise NonLoopbackError(
                f"the JSON API would listen on {host}, beyond this machine; "
                "pass allow_remote (--jsonapi-remote) if that is really wanted")
        self.reactor = reactor
        self.node = node
        self.credentials = credentials
        self.host = host
        self.port_number = port
        self.ctx = ApiContext(node, reactor, host=host, port=port)
        self.ctx.credentials = credentials
        self.ctx.allow_remote = allow_remote
        if node is not None:
            store = SettingsStore(node.account.base_dir)
            self.ctx.settings = store.load()
            self.ctx.save_settings = store.save
            self.ctx.settings_loaded()
        credentials.authorized = self.ctx.settings.authorized
        self.streams = EventStreams(reactor, keepalive=keepalive)
        self.ctx.publish = self.streams.publish
        self.resource = JsonApiResource(self.ctx, credentials, all_endpoints(), self.streams,
                                        webui=webui)
        self.site = JsonApiSite(self.resource, reactor)
        self.listening: Any = None
        self._events: NodeEvents | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where the API listens (the real port once started)."""
        return self.host, self.ctx.port

    def startService(self) -> None:  # noqa: N802
        super().startService()
        self.listening = self.reactor.listenTCP(self.port_number, self.site,
                                                interface=self.host)
        self.ctx.port = self.listening.getHost().port
        self.streams.start()
        if self.node is not None:
            self._events = NodeEvents(self.node, self.streams.publish, self.ctx.now)
            self._events.attach()
            rs_files.attach(self.ctx)
            rs_identity.attach(self.ctx)
            rs_config.attach(self.ctx)
        self.log.info("JSON API on http://{host}:{port}/", host=self.host, port=self.ctx.port)

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802
        super().stopService()
        if self._events is not None:
            self._events.detach()
            self._events = None
        self.streams.stop()
        listening, self.listening = self.listening, None
        if listening is None:
            return defer.succeed(None)
        return defer.maybeDeferred(listening.stopListening)
