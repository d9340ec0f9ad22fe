# -*- test-case-name: tests.test_jsonapi_identity -*-
"""``/rsIdentity/*`` and ``/rsReputations/*``: the node's GXS identities
(`services.gxsid`, ``node.identities``) and the opinions held of them
(`services.reputation`, ``node.reputation``), in RetroShare's records.

As ``p3IdService`` and ``p3GxsReputation``: an identity signed by a friend's profile is a
regular contact while ``autoAddFriendIdsAsContact`` holds (the default), a contact whose own
opinion is neutral counts as positive while ``autoPositiveOpinionForContacts`` holds (the
default), and the overall level follows `services.reputation.core.ReputationCore`.  The
preferences and the contact list are kept with the API's settings (saved in the account).
A node built without identities answers as RetroShare does when it has none.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Final

from pqi.items.reputation import Opinion
from pqi.wire.fields import GxsId
from services.gxsid.identity import MAX_NICKNAME
from services.gxsid.service import IdentityStored
from services.reputation.core import Level

from .api import ApiContext, EndpointTable
from .encoding import NULL_GXS_ID, NULL_PGP_ID, Params, x64
from .events import identity_event
from .settings import MAX_CONTACTS

__all__ = ["ENDPOINTS", "attach", "id_details", "group_meta", "identity_stored_event",
           "MAX_LISTED_IDENTITIES", "IdentityFlags", "IdentityEventCode"]

ENDPOINTS = EndpointTable()

#: Identities one ``getIdentitiesSummaries`` lists at most (the store may hold more).
MAX_LISTED_IDENTITIES: Final = 10_000
#: ``mSubscribeFlags``: admin, publish, subscribed.
SUBSCRIBE_ADMIN: Final = 0x1
SUBSCRIBE_PUBLISH: Final = 0x2
SUBSCRIBE_SUBSCRIBED: Final = 0x4
#: ``mGroupStatus`` of a group received from a friend (new, unread), as recorded.
STATUS_RECEIVED: Final = 0x300
#: ``RS_REPUTATION_THRESHOLD_DEFAULT``: the friends' average with no votes.
AVERAGE_DEFAULT: Final = 1.0
#: ``p3GxsReputation``'s friend factors (how fast votes move the average).
FRIEND_FACTOR_ANON: Final = 2.0
FRIEND_FACTOR_PGP_LINKED: Final = 5.0
FRIEND_FACTOR_PGP_KNOWN: Final = 10.0


class IdentityFlags:
    """``RS_IDENTITY_FLAGS_*``."""

    IS_A_CONTACT: Final = 0x1
    PGP_LINKED: Final = 0x2
    PGP_KNOWN: Final = 0x4
    IS_OWN_ID: Final = 0x8


class IdentityEventCode:
    """``RsGxsIdentityEventCode``: a friend's identity arrived (NEW), one of ours was made
    (RetroShare 0.6.7 reports that as UPDATED, as recorded)."""

    NEW_IDENTITY: Final = 1
    UPDATED_IDENTITY: Final = 3


def _identities(ctx: ApiContext) -> Any | None:
    return getattr(ctx.node, "identities", None)


def _reputation(ctx: ApiContext) -> Any | None:
    return getattr(ctx.node, "reputation", None)


def _gxs_id(p: Params, name: str = "id") -> GxsId | None:
    text = p.gxs_id(name)
    return None if text == NULL_GXS_ID else GxsId.from_hex(text)


def attach(ctx: ApiContext) -> None:
    """Apply the saved reputation thresholds to the node's reputation service."""
    rep = _reputation(ctx)
    if rep is not None:
        rep.core.min_positive = ctx.settings.threshold_remotely_positive
        rep.core.min_negative = ctx.settings.threshold_remotely_negative


def identity_stored_event(now: int, event: IdentityStored) -> dict[str, Any]:
    """The GXS_IDENTITY record of an identity made here (UPDATED, as recorded) or arrived
    from a friend (NEW)."""
    code = (IdentityEventCode.UPDATED_IDENTITY if event.peer is None
            else IdentityEventCode.NEW_IDENTITY)
    return identity_event(now, event.gxs_id.to_hex(), code)


# --- records -----------------------------------------------------------------------------------

def reputation_info(own: int = int(Opinion.NEUTRAL), positive: int = 0, negative: int = 0,
                    average: float = AVERAGE_DEFAULT,
                    level: int = int(Level.NEUTRAL)) -> dict[str, Any]:
    """A ``RsReputationInfo`` record."""
    return {"mOwnOpinion": own, "mFriendsPositiveVotes": positive,
            "mFriendsNegativeVotes": negative, "mFriendAverageScore": average,
            "mOverallReputationLevel": level}


def id_details(identity: str = NULL_GXS_ID, *, nickname: str = "", flags: int = 0,
               pgp_id: str = NULL_PGP_ID, reputation: dict[str, Any] | None = None,
               publish_ts: int = 0) -> dict[str, Any]:
    """A ``RsIdentityDetails`` record (defaults: an identity we know nothing of).  rsproto
    keeps no avatars and no usage statistics: ``mAvatar`` is empty, ``mUseCases`` too."""
    return {"mId": identity, "mNickname": nickname, "mFlags": flags, "mPgpId": pgp_id,
            "mReputation": reputation or reputation_info(),
            "mAvatar": {"mData": {"base64": ""}}, "mPublishTS": x64(publish_ts),
            "mLastUsageTS": x64(0), "mUseCases": []}


def group_meta(meta: Any, *, own: bool) -> dict[str, Any]:
    """A ``RsGroupMetaData`` record of a stored identity (`pqi.items.gxs.GrpMeta`)."""
    subscribe = SUBSCRIBE_SUBSCRIBED | (SUBSCRIBE_ADMIN | SUBSCRIBE_PUBLISH if own else 0)
    return {"mGroupId": meta.group_id.to_hex(), "mGroupName": meta.name,
            "mGroupFlags": meta.group_flags, "mSignFlags": meta.sign_flags,
            "mPublishTs": x64(meta.publish_ts), "mAuthorId": meta.author_id.to_hex(),
            "mCircleId": meta.circle_id.to_hex(), "mCircleType": meta.circle_type,
            "mAuthenFlags": meta.authen_flags, "mParentGrpId": meta.parent_grp_id.to_hex(),
            "mSubscribeFlags": subscribe, "mPop": 0, "mVisibleMsgCount": 0,
            "mLastPost": x64(0), "mGroupStatus": 0 if own else STATUS_RECEIVED,
            "mServiceString": "", "mOriginator": NULL_GXS_ID,
            "mInternalCircle": NULL_GXS_ID}


def _friend_signed(ctx: ApiContext, gxs_id: GxsId) -> bool:
    """Is the identity signed by a friend's profile (checked, not just claimed)?"""
    ids = _identities(ctx)
    pgp = ids.pgp_id_of(gxs_id) if ids is not None else None
    if pgp is None:
        return False
    return any(p.pgp_id == pgp for p in ctx.node.friends_list.profiles())


def _is_contact(ctx: ApiContext, gxs_id: GxsId) -> bool:
    return gxs_id.to_hex() in ctx.settings.contacts or (
        ctx.settings.auto_add_friend_ids_as_contact and _friend_signed(ctx, gxs_id))


def _friend_average(positive: int, negative: int, bias: float) -> float:
    """``p3GxsReputation``'s friends' average: 1.0 without votes, towards 2 (or 0) as
    positive (or negative) votes add up."""
    total = positive - negative
    if positive + negative == 0:
        return AVERAGE_DEFAULT
    return 2.0 - math.exp(-total / bias) if total > 0 else math.exp(total / bias)


def _reputation_of(ctx: ApiContext, gxs_id: GxsId, flags: int) -> dict[str, Any]:
    rep = _reputation(ctx)
    if rep is None:
        return reputation_info()
    core = rep.core
    own = core.own_opinion(gxs_id)
    level = core.level(gxs_id)
    entry = core.entries.get(gxs_id)
    votes = list(entry.friends.values()) if entry is not None else []
    positive = sum(1 for v in votes if v == Opinion.POSITIVE)
    negative = sum(1 for v in votes if v == Opinion.NEGATIVE)
    if (own == Opinion.NEUTRAL and ctx.settings.auto_positive_opinion_for_contacts
            and _is_contact(ctx, gxs_id)):
        own, level = Opinion.POSITIVE, Level.LOCALLY_POSITIVE
    bias = (FRIEND_FACTOR_PGP_KNOWN if flags & IdentityFlags.PGP_KNOWN else
            FRIEND_FACTOR_PGP_LINKED if flags & IdentityFlags.PGP_LINKED else
            FRIEND_FACTOR_ANON)
    return reputation_info(int(own), positive, negative,
                           _friend_average(positive, negative, bias), int(level))


def _details(ctx: ApiContext, gxs_id: GxsId) -> dict[str, Any] | None:
    ids = _identities(ctx)
    info = ids.info(gxs_id) if ids is not None else None
    if info is None:
        return None
    flags = ((IdentityFlags.PGP_LINKED if info.pgp_linked else 0)
             | (IdentityFlags.PGP_KNOWN if info.pgp_id is not None else 0)
             | (IdentityFlags.IS_OWN_ID if info.own else 0)
             | (IdentityFlags.IS_A_CONTACT if gxs_id.to_hex() in ctx.settings.contacts
                else 0))
    return id_details(gxs_id.to_hex(), nickname=info.name, flags=flags,
                      pgp_id=info.pgp_id.to_hex() if info.pgp_id is not None else NULL_PGP_ID,
                      reputation=_reputation_of(ctx, gxs_id, flags),
                      publish_ts=info.publish_ts)


# --- /rsIdentity -------------------------------------------------------------------------------

@ENDPOINTS.add("/rsIdentity/getIdentitiesSummaries",
               note="mServiceString and mOriginator are not kept (empty, null)")
def get_identities_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ids = _identities(ctx)
    if ids is None:
        return {"ids": [], "retval": True}
    own = set(ids.own_ids())
    out = []
    for gid, _, _ in itertools.islice(ids.store.groups(), MAX_LISTED_IDENTITIES):
        meta = ids.store.group_meta(gid)
        if meta is not None:
            out.append(group_meta(meta, own=gid in own))
    return {"ids": out, "retval": True}


@ENDPOINTS.add("/rsIdentity/getOwnSignedIds")
def get_own_signed_ids(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ids = _identities(ctx)
    return {"ids": [] if ids is None else [g.to_hex() for g in ids.own_signed_ids()],
            "retval": True}


@ENDPOINTS.add("/rsIdentity/getOwnPseudonimousIds")
def get_own_pseudonimous_ids(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ids = _identities(ctx)
    if ids is None:
        return {"ids": [], "retval": True}
    signed = set(ids.own_signed_ids())
    return {"ids": [g.to_hex() for g in ids.own_ids() if g not in signed], "retval": True}


@ENDPOINTS.add("/rsIdentity/getIdDetails",
               note="no avatars and no usage statistics (mUseCases empty, mLastUsageTS 0)")
def get_id_details(ctx: ApiContext, p: Params) -> dict[str, Any]:
    gid = _gxs_id(p)
    details = _details(ctx, gid) if gid is not None else None
    if details is None:
        return {"details": id_details(), "retval": False}
    return {"details": details, "retval": True}


@ENDPOINTS.add("/rsIdentity/isOwnId")
def is_own_id(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ids, gid = _identities(ctx), _gxs_id(p)
    return {"retval": ids is not None and gid is not None and gid in ids.own_ids()}


@ENDPOINTS.add("/rsIdentity/isKnownId")
def is_known_id(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ids, gid = _identities(ctx), _gxs_id(p)
    return {"retval": ids is not None and gid is not None
            and ids.store.group_meta(gid) is not None}


@ENDPOINTS.add("/rsIdentity/createIdentity",
               note="the profile key is unlocked while the node runs: pgpPassword is not "
                    "needed; avatars are not kept")
def create_identity(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ids = _identities(ctx)
    name = p.str("name")
    if ids is None or not name or len(name.encode("utf-8")) > MAX_NICKNAME:
        return {"id": NULL_GXS_ID, "retval": False}
    try:
        info = ids.create(name, signed=not p.bool("pseudonimous", True))
    except ValueError:
        return {"id": NULL_GXS_ID, "retval": False}
    return {"id": info.gxs_id.to_hex(), "retval": True}


@ENDPOINTS.add("/rsIdentity/isARegularContact")
def is_a_regular_contact(ctx: ApiContext, p: Params) -> dict[str, Any]:
    gid = _gxs_id(p)
    return {"retval": gid is not None and _is_contact(ctx, gid)}


@ENDPOINTS.add("/rsIdentity/setAsRegularContact")
def set_as_regular_contact(ctx: ApiContext, p: Params) -> dict[str, Any]:
    gid = _gxs_id(p)
    contacts = ctx.settings.contacts
    if gid is None:
        return {"retval": False}
    hexid = gid.to_hex()
    if not p.bool("isContact"):
        if hexid in contacts:
            contacts.remove(hexid)
        return {"retval": True}
    if hexid not in contacts:
        if len(contacts) >= MAX_CONTACTS:
            return {"retval": False}
        contacts.append(hexid)
    return {"retval": True}


@ENDPOINTS.add("/rsIdentity/autoAddFriendIdsAsContact")
def auto_add_friend_ids_as_contact(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.settings.auto_add_friend_ids_as_contact}


@ENDPOINTS.add("/rsIdentity/setAutoAddFriendIdsAsContact")
def set_auto_add_friend_ids_as_contact(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ctx.settings.auto_add_friend_ids_as_contact = p.bool(
        "enabled", ctx.settings.auto_add_friend_ids_as_contact)
    return {}


@ENDPOINTS.add("/rsIdentity/deleteBannedNodesThreshold")
def delete_banned_nodes_threshold(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.settings.delete_banned_nodes_threshold}


@ENDPOINTS.add("/rsIdentity/setDeleteBannedNodesThreshold",
               note="remembered; rsproto keeps banned identities until unbanned")
def set_delete_banned_nodes_threshold(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ctx.settings.delete_banned_nodes_threshold = p.int(
        "days", ctx.settings.delete_banned_nodes_threshold, lo=0)
    return {}


# --- /rsReputations ----------------------------------------------------------------------------

@ENDPOINTS.add("/rsReputations/getReputationInfo")
def get_reputation_info(ctx: ApiContext, p: Params) -> dict[str, Any]:
    gid = _gxs_id(p)
    if gid is None or _reputation(ctx) is None:
        return {"info": reputation_info(), "retval": False}
    details = _details(ctx, gid)
    flags = details["mFlags"] if details is not None else 0
    return {"info": _reputation_of(ctx, gid, flags), "retval": True}


@ENDPOINTS.add("/rsReputations/overallReputationLevel")
def overall_reputation_level(ctx: ApiContext, p: Params) -> dict[str, Any]:
    gid = _gxs_id(p)
    if gid is None:
        return {"retval": int(Level.NEUTRAL)}
    details = _details(ctx, gid)
    flags = details["mFlags"] if details is not None else 0
    return {"retval": _reputation_of(ctx, gid, flags)["mOverallReputationLevel"]}


@ENDPOINTS.add("/rsReputations/autoPositiveOpinionForContacts")
def auto_positive_opinion_for_contacts(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.settings.auto_positive_opinion_for_contacts}


@ENDPOINTS.add("/rsReputations/setAutoPositiveOpinionForContacts")
def set_auto_positive_opinion_for_contacts(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ctx.settings.auto_positive_opinion_for_contacts = p.bool(
        "b", ctx.settings.auto_positive_opinion_for_contacts)
    return {}


def _threshold(ctx: ApiContext, attr: str, core_attr: str, value: int) -> None:
    setattr(ctx.settings, attr, value)
    rep = _reputation(ctx)
    if rep is not None:
        setattr(rep.core, core_attr, value)


@ENDPOINTS.add("/rsReputations/thresholdForRemotelyNegativeReputation")
def threshold_negative(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.settings.threshold_remotely_negative}


@ENDPOINTS.add("/rsReputations/setThresholdForRemotelyNegativeReputation")
def set_threshold_negative(ctx: ApiContext, p: Params) -> dict[str, Any]:
    value = p.int("thresh", 0, lo=1, hi=1 << 16)
    if value:
        _threshold(ctx, "threshold_remotely_negative", "min_negative", value)
    return {}


@ENDPOINTS.add("/rsReputations/thresholdForRemotelyPositiveReputation")
def threshold_positive(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ctx.settings.threshold_remotely_positive}


@ENDPOINTS.add("/rsReputations/setThresholdForRemotelyPositiveReputation")
def set_threshold_positive(ctx: ApiContext, p: Params) -> dict[str, Any]:
    value = p.int("thresh", 0, lo=1, hi=1 << 16)
    if value:
        _threshold(ctx, "threshold_remotely_positive", "min_positive", value)
    return {}
