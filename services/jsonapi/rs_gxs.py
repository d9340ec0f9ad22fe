# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsGxsChannels/*``, ``/rsGxsForums/*``, ``/rsPosted/*`` (and the identity changes
rsproto lacks): what RetroShare answers when a GXS service holds no data.  Identities and
reputations are served from the node by `services.jsonapi.rs_identity`.

rsproto has no GXS services yet (other issues build them); these endpoints give the
empty answers RetroShare gives on a fresh node, so clients' pages load instead of logging
the user out.  docs/jsonapi.md lists them as stubs.
"""

from __future__ import annotations

from typing import Any, Final

from .api import ApiContext, EndpointTable
from .encoding import Params

__all__ = ["ENDPOINTS", "STUB_NOTE"]

ENDPOINTS = EndpointTable()
STUB_NOTE: Final = "stub: no GXS in rsproto yet, answers as a node without data"


def _stub(*paths: str) -> Any:
    return ENDPOINTS.add(*paths, note=STUB_NOTE)


@_stub("/rsGxsChannels/getChannelsSummaries")
def get_channels_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"channels": [], "retval": True}


@_stub("/rsGxsForums/getForumsSummaries")
def get_forums_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"forums": [], "retval": True}


@_stub("/rsPosted/getBoardsSummaries")
def get_boards_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"groupInfo": [], "retval": True}


@_stub("/rsGxsCircles/getCirclesSummaries")
def get_circles_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"circles": [], "retval": True}


@_stub("/rsGxsChannels/getChannelsInfo")
def get_channels_info(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"channelsInfo": [], "retval": True}


@_stub("/rsGxsForums/getForumsInfo")
def get_forums_info(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"forumsInfo": [], "retval": True}


@_stub("/rsPosted/getBoardsInfo")
def get_boards_info(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"boardsInfo": [], "retval": True}


@_stub("/rsGxsChannels/getChannelContent", "/rsPosted/getBoardContent")
def get_content(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"posts": [], "comments": [], "votes": [], "retval": False}


@_stub("/rsGxsChannels/getContentSummaries", "/rsPosted/getContentSummaries")
def get_content_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"summaries": [], "retval": False}


@_stub("/rsGxsForums/getForumContent")
def get_forum_content(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"msgs": [], "retval": False}


@_stub("/rsGxsForums/getForumMsgMetaData")
def get_forum_msg_meta_data(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"msgMetas": [], "retval": False}


@_stub("/rsGxsChannels/createChannelV2", "/rsGxsChannels/createPostV2",
       "/rsGxsChannels/createCommentV2", "/rsGxsChannels/voteForComment",
       "/rsGxsChannels/subscribeToChannel", "/rsGxsForums/createForumV2",
       "/rsGxsForums/createPost", "/rsGxsForums/subscribeToForum", "/rsGxsForums/markRead",
       "/rsPosted/createBoardV2", "/rsPosted/subscribeToBoard",
       "/rsIdentity/updateIdentity", "/rsIdentity/deleteIdentity")
def refused(ctx: ApiContext, p: Params) -> dict[str, Any]:
    """What a GXS change answers until the service exists: refused, with the reason."""
    return {"errorMessage": "not available: rsproto has no GXS services yet",
            "retval": False}
