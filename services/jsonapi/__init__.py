"""RetroShare's JSON API and event stream, served by ``rsnode`` (twisted.web).

Existing RetroShare clients (its web interface, scripts, bots) work unchanged: the same
paths (case-insensitive), parameter names, JSON shapes and encodings, HTTP Basic auth and
``data:`` event frames as ``retroshare-service`` 0.6.7.  `JsonApiService` serves a node;
`JsonApiClient` is a small Python client whose event stream is an async iterator.
"""

from pqi.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "services.jsonapi.api": ("ApiContext", "Endpoint", "EndpointTable"),
    "services.jsonapi.client": ("ApiError", "JsonApiClient"),
    "services.jsonapi.credentials": ("CREDENTIALS_FILE", "ApiCredentials", "AuthThrottle"),
    "services.jsonapi.encoding": ("Params", "x64"),
    "services.jsonapi.events": ("EventStreams", "EventType"),
    "services.jsonapi.address": ("DEFAULT_HOST", "DEFAULT_PORT", "NonLoopbackError",
                                 "parse_address"),
    "services.jsonapi.service": ("JsonApiService", "all_endpoints"),
})
