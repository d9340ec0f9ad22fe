# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsChats/*`` (and the same calls under ``/rsMsgs/*``, the names RetroShare's web
interface uses): private, broadcast and distant chat (GXS tunnels: initiate, status, close,
permission flags), status strings, and chat lobbies (``node.chat.lobby``,
`services.chat.lobby_service`): list, nearby, join, leave, invite, invitations, send,
identities, history.  Lobby ids are 64-bit values (``{"xint64", "xstr64"}``; the text form
keeps every digit for JavaScript)."""

from __future__ import annotations

from typing import Any, Final

from pqi.identity.friends import UnknownFriendError
from pqi.items.chat import ChatLobbyFlags
from pqi.wire.fields import GxsId, SslId
from services.chat.lobby import MAX_PARTICIPANTS
from services.gxstunnel.distant_chat import DistantChatPermission

from .api import ApiContext, EndpointTable
from .encoding import NULL_GXS_ID, Params, x64
from .node_events import chat_message_json, lobby_message_json

__all__ = ["ENDPOINTS", "MAX_HISTORY", "MAX_INVITED", "MAX_LOBBY_MEMBERS"]

ENDPOINTS = EndpointTable()

#: ChatId types.
TYPE_PRIVATE: Final = 1
TYPE_DISTANT: Final = 2
TYPE_LOBBY: Final = 3
TYPE_BROADCAST: Final = 4
#: ``RS_GXS_TUNNEL_ERROR_UNKNOWN_GXS_ID``: what ``initiateDistantChatConnexion`` answers for
#: a "from" identity that is not ours.
ERROR_UNKNOWN_GXS_ID: Final = 0x01
#: Messages one history call returns at most.
MAX_HISTORY: Final = 500
#: Friends one ``createChatLobby`` invites at most.
MAX_INVITED: Final = 256
#: Members one ``getChatLobbyInfo`` lists (the lobby core keeps at most as many).
MAX_LOBBY_MEMBERS: Final = MAX_PARTICIPANTS


def _both(name: str, **kwargs: Any) -> Any:
    return ENDPOINTS.add(f"/rsChats/{name}", f"/rsMsgs/{name}", **kwargs)


def _friend(ctx: ApiContext, peer: str) -> SslId | None:
    try:
        ssl_id = SslId.from_hex(peer)
        ctx.node.friends_list.location(ssl_id)
    except (ValueError, UnknownFriendError):
        return None
    return ssl_id


@_both("sendChat")
def send_chat(ctx: ApiContext, p: Params) -> Any:
    cid = p.sub("id")
    text = p.str("msg")
    kind = cid.int("type")
    if kind == TYPE_DISTANT and text:
        distant, chat_id = _distant(ctx), _gxs(cid.str("distant_chat_id"))
        if distant is None or chat_id is None or distant.core.info(chat_id) is None:
            return {"retval": False}
        distant.send_chat(chat_id, text)
        return {"retval": True}
    if kind == TYPE_BROADCAST and text:
        return ctx.node.broadcast_chat(text).addCallback(lambda _: {"retval": True})
    if kind == TYPE_LOBBY and text:
        lobbies = _lobbies(ctx)
        if lobbies is None:
            return {"retval": False}
        try:
            lobbies.say(cid.int64("lobby_id"), text)
        except (KeyError, ValueError):
            return {"retval": False}
        return {"retval": True}
    if kind != TYPE_PRIVATE or not text:
        return {"retval": False}
    peer = _friend(ctx, cid.ssl_id("peer_id"))
    if peer is None:
        return {"retval": False}
    d = ctx.node.send_chat(peer, text)
    d.addCallbacks(lambda _: {"retval": True}, lambda f: {"retval": False})
    return d


@_both("sendStatusString")
def send_status_string(ctx: ApiContext, p: Params) -> dict[str, Any]:
    cid = p.sub("id")
    peer = _friend(ctx, cid.ssl_id("peer_id"))
    if peer is not None and cid.int("type") == TYPE_PRIVATE:
        ctx.node.chat.send_typing(peer, p.str("status_string"))
    return {}


@_both("getCustomStateString")
def get_custom_state_string(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": ""}


@_both("getChatHistory", note="rsproto extension: private chat history, oldest first")
def get_chat_history(ctx: ApiContext, p: Params) -> dict[str, Any]:
    peer = _friend(ctx, p.ssl_id("peerId"))
    count = p.int("count", 50, lo=1, hi=MAX_HISTORY)
    if peer is None:
        return {"msgs": [], "retval": False}
    now = ctx.now()
    return {"msgs": [chat_message_json(m, now)[1]
                     for m in ctx.node.chat_history(peer, limit=count)], "retval": True}


# --- lobbies (node.chat.lobby: services.chat.lobby_service) ------------------------------------

def _lobbies(ctx: ApiContext) -> Any | None:
    chat = getattr(ctx.node, "chat", None)
    return getattr(chat, "lobby", None)


def _own_identity(ctx: ApiContext, text: str) -> GxsId | None:
    """One of our identities: ``text`` when it is one; for the null id the default lobby
    identity while it is ours, else our first identity; None when there is none."""
    ids = getattr(ctx.node, "identities", None)
    if ids is None:
        return None
    own = ids.own_ids()
    if text != NULL_GXS_ID:
        gid = GxsId.from_hex(text)
        return gid if gid in own else None
    default = ctx.settings.default_lobby_identity
    if default is not None and GxsId.from_hex(default) in own:
        return GxsId.from_hex(default)
    return own[0] if own else None


def _lobby_info(lobby: Any) -> dict[str, Any]:
    members = sorted(lobby.members.items(), key=lambda kv: bytes(kv[0]))[:MAX_LOBBY_MEMBERS]
    last = max([lobby.last_keep_alive, *(t for _, t in members)])
    return {"lobby_id": x64(lobby.lobby_id), "lobby_name": lobby.name,
            "lobby_topic": lobby.topic,
            "participating_friends": sorted(p.to_hex() for p in lobby.participating),
            "gxs_id": lobby.gxs_id.to_hex(), "lobby_flags": int(lobby.flags),
            "gxs_ids": [{"key": g.to_hex(), "value": x64(int(t))} for g, t in members],
            "last_activity": x64(int(last))}


@_both("getChatLobbyList")
def get_chat_lobby_list(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    ids = [] if lobbies is None else sorted(lobbies.core.lobbies)
    return {"cl_list": [x64(i) for i in ids]}


@_both("getListOfNearbyChatLobbies", note="asks friends for their lists again (at most every "
                                           "20 s); the answer shows what they listed so far")
def get_list_of_nearby_chat_lobbies(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    if lobbies is None:
        return {"public_lobbies": []}
    lobbies.refresh()
    return {"public_lobbies": [
        {"lobby_id": x64(v.lobby_id), "lobby_name": v.name, "lobby_topic": v.topic,
         "participating_friends": sorted(f.to_hex() for f in v.friends),
         "total_number_of_peers": v.count, "last_report_time": x64(int(v.last_seen)),
         "lobby_flags": int(v.flags)}
        for v in sorted(lobbies.core.visible.values(), key=lambda v: v.lobby_id)]}


@_both("getChatLobbyInfo")
def get_chat_lobby_info(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    lobby_id = p.int64("id")
    lobby = None if lobbies is None else lobbies.core.lobbies.get(lobby_id)
    if lobby is None:
        return {"info": {"lobby_id": x64(lobby_id), "lobby_name": "", "lobby_topic": "",
                         "participating_friends": [], "gxs_id": NULL_GXS_ID, "lobby_flags": 0,
                         "gxs_ids": [], "last_activity": x64(0)}, "retval": False}
    return {"info": _lobby_info(lobby), "retval": True}


@_both("joinVisibleChatLobby")
def join_visible_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    gid = _own_identity(ctx, p.gxs_id("own_id"))
    if lobbies is None or gid is None:
        return {"retval": False}
    try:
        lobbies.join(p.int64("lobby_id"), gid)
    except (KeyError, ValueError):
        return {"retval": False}
    return {"retval": True}


@_both("acceptLobbyInvite")
def accept_lobby_invite(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    gid = _own_identity(ctx, p.gxs_id("identity"))
    lobby_id = p.int64("id")
    if lobbies is None or gid is None or lobby_id not in lobbies.core.invites:
        return {"retval": False}
    try:
        lobbies.join(lobby_id, gid)
    except (KeyError, ValueError):
        return {"retval": False}
    return {"retval": True}


@_both("denyLobbyInvite")
def deny_lobby_invite(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    return {"retval": lobbies is not None and lobbies.deny_invite(p.int64("id"))}


@_both("getPendingChatLobbyInvites")
def get_pending_chat_lobby_invites(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    invites = [] if lobbies is None else sorted(lobbies.core.invites.values(),
                                                key=lambda i: i.lobby_id)
    return {"invites": [{"lobby_id": x64(i.lobby_id), "peer_id": i.peer.to_hex(),
                         "lobby_name": i.name, "lobby_topic": i.topic,
                         "lobby_flags": int(i.flags)} for i in invites]}


@_both("invitePeerToLobby")
def invite_peer_to_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    peer = _friend(ctx, p.ssl_id("peer_id"))
    if lobbies is not None and peer is not None:
        try:
            lobbies.invite(p.int64("lobby_id"), peer)
        except KeyError:
            pass
    return {}


@_both("createChatLobby", note="the flags taken are PUBLIC (else private); rsproto's own "
                                "identities only")
def create_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    gid = _own_identity(ctx, p.gxs_id("lobby_identity"))
    name = p.str("lobby_name")
    if lobbies is None or gid is None or not name:
        return {"retval": x64(0)}
    public = bool(p.int("lobby_privacy_type") & ChatLobbyFlags.PUBLIC)
    try:
        lobby_id = lobbies.create(name, p.str("lobby_topic"), gid, public)
    except (KeyError, ValueError):
        return {"retval": x64(0)}
    for peer_hex in p.ssl_ids("invited_friends")[:MAX_INVITED]:
        peer = _friend(ctx, peer_hex)
        if peer is not None:
            lobbies.invite(lobby_id, peer)
    return {"retval": x64(lobby_id)}


@_both("unsubscribeChatLobby")
def unsubscribe_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    if lobbies is not None:
        try:
            lobbies.leave(p.int64("lobby_id"))
        except KeyError:
            pass
    return {}


@_both("getDefaultIdentityForChatLobby")
def get_default_identity_for_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    gid = _own_identity(ctx, NULL_GXS_ID)
    return {"id": NULL_GXS_ID if gid is None else gid.to_hex()}


@_both("setDefaultIdentityForChatLobby")
def set_default_identity_for_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    text = p.gxs_id("nick")
    if text == NULL_GXS_ID or _own_identity(ctx, text) is None:
        return {"retval": False}
    ctx.settings.default_lobby_identity = text
    return {"retval": True}


@_both("getIdentityForChatLobby")
def get_identity_for_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    lobby = None if lobbies is None else lobbies.core.lobbies.get(p.int64("lobby_id"))
    if lobby is None:
        return {"nick": NULL_GXS_ID, "retval": False}
    return {"nick": lobby.gxs_id.to_hex(), "retval": True}


@_both("setIdentityForChatLobby", note="changing the identity of a joined lobby is refused "
                                        "(leave and join again)")
def set_identity_for_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    lobby = None if lobbies is None else lobbies.core.lobbies.get(p.int64("lobby_id"))
    return {"retval": lobby is not None and lobby.gxs_id.to_hex() == p.gxs_id("nick")}


@_both("getLobbyAutoSubscribe", note="joined lobbies are always joined again at start")
def get_lobby_auto_subscribe(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    return {"retval": lobbies is not None and p.int64("lobby_id") in lobbies.core.lobbies}


@_both("setLobbyAutoSubscribe", note="joined lobbies are always joined again at start: "
                                      "ignored")
def set_lobby_auto_subscribe(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {}


@_both("getChatLobbyHistory", note="rsproto extension: a joined lobby's last messages "
                                    "(lobbyId, count), oldest first")
def get_chat_lobby_history(ctx: ApiContext, p: Params) -> dict[str, Any]:
    lobbies = _lobbies(ctx)
    lobby_id = p.int64("lobbyId")
    if lobbies is None or lobby_id not in lobbies.core.lobbies:
        return {"msgs": [], "retval": False}
    count = p.int("count", 50, lo=1, hi=MAX_HISTORY)
    return {"msgs": [lobby_message_json(m)[1] for m in lobbies.history(lobby_id, count)],
            "retval": True}


def _distant(ctx: ApiContext) -> Any:
    return getattr(ctx.node, "distant", None)


def _gxs(text: str) -> GxsId | None:
    try:
        return GxsId.from_hex(text)
    except ValueError:
        return None


@_both("initiateDistantChatConnexion")
def initiate_distant_chat_connexion(ctx: ApiContext, p: Params) -> dict[str, Any]:
    distant = _distant(ctx)
    to_id, from_id = _gxs(p.str("to_pid")), _gxs(p.str("from_pid"))
    if distant is None or to_id is None or from_id is None or \
            from_id not in ctx.node.identities.own_ids():
        return {"pid": NULL_GXS_ID, "error_code": ERROR_UNKNOWN_GXS_ID, "retval": False}
    chat_id = distant.open_chat(to_id, from_id)
    return {"pid": chat_id.to_hex(), "error_code": 0, "retval": True}


@_both("closeDistantChatConnexion")
def close_distant_chat_connexion(ctx: ApiContext, p: Params) -> dict[str, Any]:
    distant, chat_id = _distant(ctx), _gxs(p.str("pid"))
    return {"retval": bool(distant is not None and chat_id is not None
                           and distant.close_chat(chat_id))}


@_both("getDistantChatStatus")
def get_distant_chat_status(ctx: ApiContext, p: Params) -> dict[str, Any]:
    distant, chat_id = _distant(ctx), _gxs(p.str("pid"))
    info = None if distant is None or chat_id is None else distant.core.info(chat_id)
    if info is None:
        return {"info": {"to_id": NULL_GXS_ID, "own_id": NULL_GXS_ID, "peer_id": NULL_GXS_ID,
                         "status": 0, "pending_items": 0}, "retval": False}
    return {"info": {"to_id": info.peer_id.to_hex(), "own_id": info.own_id.to_hex(),
                     "peer_id": chat_id.to_hex(), "status": int(info.status),  # type: ignore
                     "pending_items": info.pending}, "retval": True}


@_both("getDistantChatPermissionFlags")
def get_distant_chat_permission_flags(ctx: ApiContext, p: Params) -> dict[str, Any]:
    distant = _distant(ctx)
    return {"retval": 0 if distant is None else int(distant.permissions.chat)}


@_both("setDistantChatPermissionFlags")
def set_distant_chat_permission_flags(ctx: ApiContext, p: Params) -> dict[str, Any]:
    distant, flags = _distant(ctx), p.int("flags")
    if distant is None or flags not in tuple(DistantChatPermission):
        return {"retval": False}
    distant.set_permissions(chat=DistantChatPermission(flags))
    return {"retval": True}
