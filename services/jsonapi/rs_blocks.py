# -*- test-case-name: tests.test_jsonapi_blocks -*-
"""Blocking through the JSON API: ``/rsBanList/*``, the banned-file calls of ``/rsFiles/*``
and the own-opinion calls of ``/rsReputations/*``, all on the node's ban list
(`services.banlist.service.BanListService`).

RetroShare 0.6.7 publishes ``rsBanList`` ``enableIPFiltering`` / ``ipFilteringEnabled``,
``rsFiles`` ``banFile`` / ``unbanFile`` / ``getPrimaryBannedFilesList`` / ``isHashBanned`` and
the ``rsReputations`` opinion calls; those keep RetroShare's names, parameters and answers.
The rest of ``RsBanList`` (ranges, whitelist, the automatic-range and gathering options) is
not published by 0.6.7: rsproto serves it under RetroShare's C++ method names, with an
address as ``"a.b.c.d"`` text (a port after a colon is ignored, as RetroShare ignores it).
Denying a friend has no RetroShare call: ``denyFriend`` / ``allowFriend`` /
``getDeniedFriends`` are rsproto's own.  A node without the ban list answers ``retval``
false (or empty lists).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Final

from pqi.identity.friends import UnknownFriendError
from pqi.wire.fields import GxsId, Sha1Hash
from services.banlist.identities import Opinion

from .api import ApiContext, EndpointTable
from .encoding import NULL_GXS_ID, NULL_HASH, Params, x64

__all__ = ["ENDPOINTS", "LIST_TYPE_BLACKLIST", "LIST_TYPE_WHITELIST"]

ENDPOINTS = EndpointTable()

#: ``RSBANLIST_TYPE_*``: which list ``addIpRange`` / ``removeIpRange`` change.
LIST_TYPE_BLACKLIST: Final = 2
LIST_TYPE_WHITELIST: Final = 3
#: ``RSBANLIST_CHECKING_FLAGS_*`` and ``RSBANLIST_CHECK_RESULT_*`` (see `rules.CheckResult`).
_CHECK_BLACKLIST: Final = 0x01
_CHECK_WHITELIST: Final = 0x02

_UNPUBLISHED: Final = ("rsproto extension: RetroShare 0.6.7 has this method in its C++ API "
                       "but not in its JSON API")
_EXTENSION: Final = "rsproto extension: RetroShare has no call to deny a friend"


def _ban(ctx: ApiContext) -> Any:
    return getattr(ctx.node, "banlist", None)


def _addr(p: Params) -> ipaddress.IPv4Address | None:
    """``addr`` as an IPv4 address ("a.b.c.d" or "a.b.c.d:port"), None when it is not one."""
    text = p.str("addr").strip()
    host = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        return None


def _peer(b: Any) -> dict[str, Any]:
    """A ``BanListPeer`` as rsproto shows it (RetroShare's member names)."""
    return {"addr": str(b.addr), "masked_bytes": b.masked_bytes, "reason": int(b.reason),
            "level": int(b.level), "state": True, "connect_attempts": b.attempts,
            "mTs": x64(int(b.since)), "comment": b.comment}


def _setting(name: str, path_get: str, path_set: str, param: str, *, note: str = "") -> None:
    """A boolean ban-list option read by ``path_get`` and set by ``path_set``."""
    @ENDPOINTS.add(path_get, note=note)
    def get(ctx: ApiContext, p: Params) -> dict[str, Any]:
        ban = _ban(ctx)
        return {"retval": ban is not None and bool(getattr(ban.rules.settings, name))}

    @ENDPOINTS.add(path_set, note=note)
    def put(ctx: ApiContext, p: Params) -> dict[str, Any]:
        ban = _ban(ctx)
        if ban is not None and param in p:
            ban.set_settings(**{name: p.bool(param)})
        return {}


_setting("filtering", "/rsBanList/ipFilteringEnabled", "/rsBanList/enableIPFiltering", "enable")
_setting("auto_range", "/rsBanList/autoRangeEnabled", "/rsBanList/enableAutoRange", "b",
         note=_UNPUBLISHED)
_setting("from_friends", "/rsBanList/IPsFromFriendsEnabled", "/rsBanList/enableIPsFromFriends",
         "b", note=_UNPUBLISHED)
_setting("from_dht", "/rsBanList/iPsFromDHTEnabled", "/rsBanList/enableIPsFromDHT", "b",
         note=_UNPUBLISHED)


@ENDPOINTS.add("/rsBanList/autoRangeLimit", note=_UNPUBLISHED)
def auto_range_limit(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban = _ban(ctx)
    return {"retval": 0 if ban is None else ban.rules.settings.auto_range_limit}


@ENDPOINTS.add("/rsBanList/setAutoRangeLimit", note=_UNPUBLISHED)
def set_auto_range_limit(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban = _ban(ctx)
    n = p.int("n", 0, lo=1, hi=256)
    if ban is not None and n:
        ban.set_settings(auto_range_limit=n)
    return {}


@ENDPOINTS.add("/rsBanList/addIpRange", note=_UNPUBLISHED)
def add_ip_range(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban, addr = _ban(ctx), _addr(p)
    masked = p.int("masked_bytes", -1, lo=0, hi=2)
    list_type = p.int("list_type", LIST_TYPE_BLACKLIST)
    if ban is None or addr is None or masked < 0 or list_type not in (LIST_TYPE_BLACKLIST,
                                                                      LIST_TYPE_WHITELIST):
        return {"retval": False}
    network = ipaddress.IPv4Network((int(addr), 32 - 8 * masked), strict=False)
    try:
        ban.block_ip(str(network), p.str("comment"), white=list_type == LIST_TYPE_WHITELIST)
    except ValueError:  # the range table is full
        return {"retval": False}
    return {"retval": True}


@ENDPOINTS.add("/rsBanList/removeIpRange", note=_UNPUBLISHED)
def remove_ip_range(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban, addr = _ban(ctx), _addr(p)
    masked = p.int("masked_bytes", -1, lo=0, hi=2)
    list_type = p.int("list_type", LIST_TYPE_BLACKLIST)
    if ban is None or addr is None or masked < 0 or list_type not in (LIST_TYPE_BLACKLIST,
                                                                      LIST_TYPE_WHITELIST):
        return {"retval": False}
    network = ipaddress.IPv4Network((int(addr), 32 - 8 * masked), strict=False)
    return {"retval": bool(ban.unblock_ip(str(network),
                                          white=list_type == LIST_TYPE_WHITELIST))}


@ENDPOINTS.add("/rsBanList/isAddressAccepted", note=_UNPUBLISHED)
def is_address_accepted(ctx: ApiContext, p: Params) -> dict[str, Any]:
    """RetroShare's answer: with no checking flag (or filtering off) NOCHECK and accepted;
    else the rules' verdict (a whitelist-only check is not made: blacklist rules apply)."""
    ban, addr = _ban(ctx), _addr(p)
    flags = p.int("checking_flags", 0)
    if ban is None or addr is None or not flags & (_CHECK_BLACKLIST | _CHECK_WHITELIST):
        return {"check_result": 0x01, "retval": True}
    result = ban.rules.check(addr)
    return {"check_result": int(result), "retval": result != 0x02}


@ENDPOINTS.add("/rsBanList/getBannedIps", note=_UNPUBLISHED)
def get_banned_ips(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban = _ban(ctx)
    return {"list": [] if ban is None else [_peer(b) for b in ban.rules.banned()]}


@ENDPOINTS.add("/rsBanList/getWhiteListedIps", note=_UNPUBLISHED)
def get_white_listed_ips(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban = _ban(ctx)
    return {"list": [] if ban is None else [_peer(b) for b in ban.rules.whitelist()]}


# --- people ------------------------------------------------------------------------------------

@ENDPOINTS.add("/rsBanList/denyFriend", note=_EXTENSION)
def deny_friend(ctx: ApiContext, p: Params) -> dict[str, Any]:
    """``id``: an SSL id (the location) or a PGP id (the profile); ``wholeProfile`` denies
    the location's profile; ``reason`` is kept and logged."""
    ban = _ban(ctx)
    if ban is None:
        return {"retval": False}
    try:
        ban.deny(p.str("id"), p.str("reason"), profile=p.bool("wholeProfile"))
    except (ValueError, UnknownFriendError):
        return {"retval": False}
    return {"retval": True}


@ENDPOINTS.add("/rsBanList/allowFriend", note=_EXTENSION)
def allow_friend(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban = _ban(ctx)
    if ban is None:
        return {"retval": False}
    try:
        return {"retval": bool(ban.allow(p.str("id")))}
    except ValueError:
        return {"retval": False}


@ENDPOINTS.add("/rsBanList/getDeniedFriends", note=_EXTENSION)
def get_denied_friends(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban = _ban(ctx)
    denied = [] if ban is None else ban.listing()["friends"]
    return {"list": [{"id": d["id"], "kind": d["kind"], "reason": d["reason"],
                      "since": x64(int(d["since"]))} for d in denied]}


# --- files -------------------------------------------------------------------------------------

def _hash(p: Params, name: str) -> Sha1Hash | None:
    text = p.hash(name)
    return None if text == NULL_HASH else Sha1Hash.from_hex(text)


@ENDPOINTS.add("/rsFiles/banFile")
def ban_file(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban, h = _ban(ctx), _hash(p, "realFileHash")
    if ban is None or h is None:
        return {"retval": 0}
    try:
        ban.block_file(h, p.str("filename"), p.int64("fileSize"))
    except ValueError:  # the list is full
        return {"retval": 0}
    return {"retval": 1}


@ENDPOINTS.add("/rsFiles/unbanFile")
def unban_file(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban, h = _ban(ctx), _hash(p, "realFileHash")
    return {"retval": int(ban is not None and h is not None and ban.unblock_file(h))}


@ENDPOINTS.add("/rsFiles/getPrimaryBannedFilesList")
def get_primary_banned_files_list(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban = _ban(ctx)
    files = [] if ban is None else ban.files.primary()
    return {"bannedFiles": [{"key": f.hash.to_hex(), "value": {
        "mFilename": f.name, "mSize": x64(f.size), "mBanTimeStamp": x64(int(f.since))}}
        for f in files], "retval": ban is not None}


@ENDPOINTS.add("/rsFiles/isHashBanned")
def is_hash_banned(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban, h = _ban(ctx), _hash(p, "hash")
    return {"retval": ban is not None and h is not None and ban.files.is_banned(h)}


@ENDPOINTS.add("/rsFiles/trustFriendNodesWithBannedFiles", note=_UNPUBLISHED)
def trust_friend_nodes_with_banned_files(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban = _ban(ctx)
    return {"retval": ban is not None and ban.files.trust_friends}


@ENDPOINTS.add("/rsFiles/setTrustFriendNodesWithBannedFiles", note=_UNPUBLISHED)
def set_trust_friend_nodes_with_banned_files(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban = _ban(ctx)
    if ban is not None and "b" in p:
        ban.set_trust_friends_files(p.bool("b"))
    return {}


# --- identities --------------------------------------------------------------------------------

def _gxs(p: Params) -> GxsId | None:
    text = p.gxs_id("id")
    return None if text == NULL_GXS_ID else GxsId.from_hex(text)


@ENDPOINTS.add("/rsReputations/setOwnOpinion")
def set_own_opinion(ctx: ApiContext, p: Params) -> dict[str, Any]:
    """``op`` 0 negative (banned), 1 neutral, 2 positive (``RsOpinion``)."""
    ban, gxs_id = _ban(ctx), _gxs(p)
    op = p.int("op", -1, lo=0, hi=2)
    if ban is None or gxs_id is None or op < 0:
        return {"retval": False}
    ban.set_identity_opinion(bytes(gxs_id), Opinion(op))
    return {"retval": True}


@ENDPOINTS.add("/rsReputations/getOwnOpinion")
def get_own_opinion(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban, gxs_id = _ban(ctx), _gxs(p)
    if ban is None or gxs_id is None:
        return {"op": int(Opinion.NEUTRAL), "retval": False}
    return {"op": int(ban.identity_opinion(bytes(gxs_id))), "retval": True}


@ENDPOINTS.add("/rsReputations/isIdentityBanned")
def is_identity_banned(ctx: ApiContext, p: Params) -> dict[str, Any]:
    ban, gxs_id = _ban(ctx), _gxs(p)
    return {"retval": ban is not None and gxs_id is not None
            and ban.is_identity_banned(bytes(gxs_id))}
