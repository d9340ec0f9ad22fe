# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsChats/*`` (and the same calls under ``/rsMsgs/*``, the names RetroShare's web
interface uses): private, broadcast and distant chat (GXS tunnels: initiate, status, close,
permission flags), status strings; lobbies answer empty here."""

from __future__ import annotations

from typing import Any, Final

from pqi.identity.friends import UnknownFriendError
from pqi.wire.fields import GxsId, SslId
from services.gxstunnel.distant_chat import DistantChatPermission

from .api import ApiContext, EndpointTable
from .encoding import NULL_GXS_ID, Params, x64
from .node_events import chat_message_json

__all__ = ["ENDPOINTS", "MAX_HISTORY"]

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
_STUB: Final = "no chat lobbies in rsproto yet: empty"


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


@_both("getChatLobbyList", note=_STUB)
def get_chat_lobby_list(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"cl_list": []}


@_both("getListOfNearbyChatLobbies", note=_STUB)
def get_list_of_nearby_chat_lobbies(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"public_lobbies": []}


@_both("getChatLobbyInfo", note=_STUB)
def get_chat_lobby_info(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"info": {"lobby_id": x64(p.int64("id")), "lobby_name": "", "lobby_topic": "",
                     "participating_friends": [], "gxs_id": NULL_GXS_ID, "lobby_flags": 0,
                     "gxs_ids": [], "last_activity": x64(0)}, "retval": False}


@_both("getDefaultIdentityForChatLobby", note=_STUB)
def get_default_identity_for_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"id": NULL_GXS_ID, "retval": False}


@_both("joinVisibleChatLobby", note=_STUB)
def join_visible_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}


@_both("getLobbyAutoSubscribe", note=_STUB)
def get_lobby_auto_subscribe(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}


@_both("unsubscribeChatLobby", note=_STUB)
def unsubscribe_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {}


@_both("setIdentityForChatLobby", note=_STUB)
def set_identity_for_chat_lobby(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}


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
