# -*- test-case-name: tests.test_jsonapi_server -*-
"""Endpoints and what they run against: the endpoint table each API class module fills, and
the context handlers receive (the node, the API's own settings, the clock).

A handler is ``handler(ctx, params) -> dict`` (or a Deferred of one): the output parameters
first, then ``retval``, exactly as RetroShare orders them; the server adds ``caller_data``
and encodes.  Paths are matched case-insensitively like RetroShare's restbed routes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from .encoding import Params

__all__ = [
    "Endpoint",
    "EndpointTable",
    "ApiContext",
    "ApiSettings",
    "Handler",
    "route_key",
    "MAX_PATH_SEGMENTS",
]

Handler = Callable[["ApiContext", Params], Any]
#: Path segments looked at when routing (RetroShare paths have two).
MAX_PATH_SEGMENTS: Final = 8


def route_key(path: str) -> str:
    """The table key of a request path: segments lower-cased, empty ones (double or trailing
    slashes) dropped, like RetroShare's router."""
    parts = [p for p in path.split("/", MAX_PATH_SEGMENTS + 1) if p]
    return "/".join(parts[:MAX_PATH_SEGMENTS + 1]).lower()


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One API method: its canonical ``path``, its handler, and whether it needs the
    credentials (``auth``) and a logged-in node (``login``)."""

    path: str
    handler: Handler
    auth: bool = True
    login: bool = True
    #: What rsproto does differently from RetroShare 0.6.7 (shown in docs/jsonapi.md).
    note: str = ""


class EndpointTable:
    """Endpoints by route key; each API class module owns one and the server merges them."""

    def __init__(self) -> None:
        self._by_key: dict[str, Endpoint] = {}

    def add(self, *paths: str, auth: bool = True, login: bool = True,
            note: str = "") -> Callable[[Handler], Handler]:
        """Decorator: register the handler under every path given (aliases such as the
        ``/rsMsgs/*`` names RetroShare's web interface calls)."""
        def register(handler: Handler) -> Handler:
            for path in paths:
                key = route_key(path)
                if key in self._by_key:
                    raise ValueError(f"{path} registered twice")
                self._by_key[key] = Endpoint(path, handler, auth, login, note)
            return handler
        return register

    def merge(self, others: Iterable[EndpointTable]) -> EndpointTable:
        for other in others:
            for key, endpoint in other._by_key.items():
                if key in self._by_key:
                    raise ValueError(f"{endpoint.path} registered twice")
                self._by_key[key] = endpoint
        return self

    def get(self, path: str) -> Endpoint | None:
        return self._by_key.get(route_key(path))

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)


@dataclasses.dataclass
class ApiSettings:
    """Settings the API's callers read and set, with RetroShare's defaults: some the node
    does not use (yet) and only reads back, the identity and reputation preferences, the
    tokens authorised with ``/rsJsonApi/authorizeUser`` and the address the API listens on
    next (``setBindingAddress`` / ``setListeningPort``).  `services.jsonapi.settings` keeps
    them in the account (every field but `chunk_strategies`, which is per download)."""

    queue_size: int = 5
    default_chunk_strategy: int = 2
    free_disk_space_limit: int = 100
    file_perm_direct_dl: int = 3
    max_upload_slots_per_friend: int = 0
    operating_mode: int = 1
    max_in_kb: int = 10000
    max_out_kb: int = 10000
    default_encryption_policy: int = 1
    auto_add_friend_ids_as_contact: bool = True
    delete_banned_nodes_threshold: int = 2
    auto_positive_opinion_for_contacts: bool = True
    threshold_remotely_positive: int = 1
    threshold_remotely_negative: int = 1
    #: The identity (hex) lobbies are joined with when none is named.
    default_lobby_identity: str | None = None
    #: GXS ids (hex) set as regular contacts.
    contacts: list[str] = dataclasses.field(default_factory=list)
    #: user → password of the tokens authorised besides the account's credentials.
    authorized: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Where the API listens at the next start (None: the command line's choice).
    listen_host: str | None = None
    listen_port: int | None = None
    chunk_strategies: dict[str, int] = dataclasses.field(default_factory=dict)


class ApiContext:
    """What handlers see: the ``node`` (None before login: authenticated calls get 409),
    the reactor's clock, the API settings and where the API listens."""

    def __init__(self, node: Any | None, reactor: Any, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.node = node
        self.reactor = reactor
        self.settings = ApiSettings()
        self.host = host
        self.port = port
        #: The API's credentials (`isAuthTokenValid` checks tokens against them).
        self.credentials: Any = None
        #: Whether the API may listen beyond loopback (``setBindingAddress`` checks it).
        self.allow_remote = False
        #: State API modules keep between calls (each module owns its keys).
        self.extras: dict[str, Any] = {}
        #: Set by the event streams: lets handlers publish API-level events (e.g. turtle
        #: search results) to the open streams.
        self.publish: Callable[[dict[str, Any]], None] = lambda event: None
        #: Set by the service: writes `settings` to the account (no-op without a node).
        self.save_settings: Callable[[ApiSettings], None] = lambda settings: None
        self._saved = self._snapshot()

    def now(self) -> int:
        return int(self.reactor.seconds())

    def _snapshot(self) -> dict[str, Any]:
        """What is saved of the settings (not the per-download chunk strategies)."""
        data = dataclasses.asdict(self.settings)
        del data["chunk_strategies"]
        return data

    def settings_loaded(self) -> None:
        """The settings now held are the saved ones."""
        self._saved = self._snapshot()

    def call_done(self) -> None:
        """After each call: save the settings when the call changed them, so a handler
        cannot forget to (they are small; the comparison is cheap)."""
        now = self._snapshot()
        if now != self._saved:
            self.save_settings(self.settings)
            self._saved = now
