"""RetroShare's JSON API and event stream, served by ``rsnode`` (twisted.web).

Existing RetroShare clients (its web interface, scripts, bots) work unchanged: the same
paths (case-insensitive), parameter names, JSON shapes and encodings, HTTP Basic auth and
``data:`` event frames as ``retroshare-service`` 0.6.7.  `JsonApiService` serves a node;
`JsonApiClient` is a small Python client whose event stream is an async iterator.
"""

from .api import ApiContext, Endpoint, EndpointTable
from .client import ApiError, JsonApiClient
from .credentials import CREDENTIALS_FILE, ApiCredentials, AuthThrottle
from .encoding import Params, x64
from .events import EventStreams, EventType
from .service import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    JsonApiService,
    NonLoopbackError,
    all_endpoints,
    parse_address,
)

__all__ = [
    "ApiContext", "Endpoint", "EndpointTable",
    "ApiError", "JsonApiClient",
    "CREDENTIALS_FILE", "ApiCredentials", "AuthThrottle",
    "Params", "x64",
    "EventStreams", "EventType",
    "DEFAULT_HOST", "DEFAULT_PORT", "JsonApiService", "NonLoopbackError", "all_endpoints",
    "parse_address",
]
