# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsGxsCircles/*`` and the identity changes rsproto's identity service does not make yet:
what RetroShare answers when the service holds no data (or cannot make the change).

Identities and reputations are served from the node by `services.jsonapi.rs_identity`;
channels, forums and boards by `services.jsonapi.rs_publish`.  These endpoints give the
answers RetroShare gives on a fresh node, so clients' pages load instead of logging the
user out.  docs/jsonapi.md lists them as stubs.
"""

from __future__ import annotations

from typing import Any, Final

from .api import ApiContext, EndpointTable
from .encoding import Params

__all__ = ["ENDPOINTS", "STUB_NOTE"]

ENDPOINTS = EndpointTable()
STUB_NOTE: Final = "stub: rsproto has no circles and cannot change or delete an identity yet"


def _stub(*paths: str) -> Any:
    return ENDPOINTS.add(*paths, note=STUB_NOTE)


@_stub("/rsGxsCircles/getCirclesSummaries")
def get_circles_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"circles": [], "retval": True}


@_stub("/rsIdentity/updateIdentity", "/rsIdentity/deleteIdentity")
def refused(ctx: ApiContext, p: Params) -> dict[str, Any]:
    """What an identity change answers until the identity service makes it: refused, with
    the reason."""
    return {"errorMessage": "not available: rsproto cannot change or delete an identity yet",
            "retval": False}
