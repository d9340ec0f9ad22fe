# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsIdentity/*``, ``/rsReputations/*`` and ``/rsGxsCircles/*``: what RetroShare answers
when a GXS service holds no data (channels, forums and boards: `rs_publish`).

These endpoints give the empty answers RetroShare gives on a fresh node, so clients' pages
load instead of logging the user out.  docs/jsonapi.md lists them as stubs.
"""

from __future__ import annotations

from typing import Any, Final

from .api import ApiContext, EndpointTable
from .encoding import NULL_GXS_ID, NULL_PGP_ID, Params, x64

__all__ = ["ENDPOINTS", "STUB_NOTE", "id_details"]

ENDPOINTS = EndpointTable()
STUB_NOTE: Final = "stub: no GXS in rsproto yet, answers as a node without data"
#: RetroShare's defaults for the reputation thresholds and the ban-list cleanup (days).
NEGATIVE_THRESHOLD: Final = 1
POSITIVE_THRESHOLD: Final = 1
BANNED_NODES_THRESHOLD: Final = 30


def _stub(*paths: str) -> Any:
    return ENDPOINTS.add(*paths, note=STUB_NOTE)


def id_details(identity: str = NULL_GXS_ID) -> dict[str, Any]:
    """A ``RsIdentityDetails`` record for an identity we know nothing of."""
    return {"mId": identity, "mNickname": "", "mFlags": 0, "mPgpId": NULL_PGP_ID,
            "mReputation": {"mOwnOpinion": 1, "mFriendsPositiveVotes": 0,
                            "mFriendsNegativeVotes": 0, "mFriendAverageScore": 1.0,
                            "mOverallReputationLevel": 2},
            "mAvatar": {"mData": {"base64": ""}}, "mPublishTS": x64(0),
            "mLastUsageTS": x64(0), "mUseCases": []}


@_stub("/rsIdentity/getIdentitiesSummaries")
def get_identities_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"ids": [], "retval": True}


@_stub("/rsIdentity/getOwnSignedIds")
def get_own_signed_ids(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"ids": [], "retval": True}


@_stub("/rsIdentity/getOwnPseudonimousIds")
def get_own_pseudonimous_ids(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"ids": [], "retval": True}


@_stub("/rsIdentity/getIdDetails")
def get_id_details(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"details": id_details(), "retval": False}


@_stub("/rsIdentity/isARegularContact")
def is_a_regular_contact(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}


@_stub("/rsIdentity/isOwnId")
def is_own_id(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}


@_stub("/rsIdentity/createIdentity")
def create_identity(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"id": NULL_GXS_ID, "retval": False}


@_stub("/rsIdentity/autoAddFriendIdsAsContact")
def auto_add_friend_ids_as_contact(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}


@_stub("/rsIdentity/setAutoAddFriendIdsAsContact")
def set_auto_add_friend_ids_as_contact(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {}


@_stub("/rsIdentity/deleteBannedNodesThreshold")
def delete_banned_nodes_threshold(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": BANNED_NODES_THRESHOLD}


@_stub("/rsIdentity/setDeleteBannedNodesThreshold")
def set_delete_banned_nodes_threshold(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {}


@_stub("/rsReputations/autoPositiveOpinionForContacts")
def auto_positive_opinion_for_contacts(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}


@_stub("/rsReputations/thresholdForRemotelyNegativeReputation")
def threshold_negative(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": NEGATIVE_THRESHOLD}


@_stub("/rsReputations/thresholdForRemotelyPositiveReputation")
def threshold_positive(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": POSITIVE_THRESHOLD}


@_stub("/rsGxsCircles/getCirclesSummaries")
def get_circles_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"circles": [], "retval": True}


@_stub("/rsIdentity/updateIdentity", "/rsIdentity/deleteIdentity")
def refused(ctx: ApiContext, p: Params) -> dict[str, Any]:
    """What a GXS change answers until the service exists: refused, with the reason."""
    return {"errorMessage": "not available: rsproto has no GXS services yet",
            "retval": False}


@_stub("/rsReputations/setAutoPositiveOpinionForContacts",
       "/rsReputations/setThresholdForRemotelyNegativeReputation",
       "/rsReputations/setThresholdForRemotelyPositiveReputation")
def reputation_setting(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {}
