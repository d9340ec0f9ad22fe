# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsChats/*`` (and the same calls under ``/rsMsgs/*``, the names RetroShare's web
interface uses): private and broadcast chat, status strings; lobbies answer empty until
rsproto has chat lobbies."""

from __future__ import annotations

from typing import Any, Final

from pqi.identity.friends import UnknownFriendError
from pqi.wire.fields import SslId

from .api import ApiContext, EndpointTable
from .encoding import NULL_GXS_ID, Params, x64
from .node_events import chat_message_json

__all__ = ["ENDPOINTS", "MAX_HISTORY"]

ENDPOINTS = EndpointTable()

#: ChatId types.
TYPE_PRIVATE: Final = 1
TYPE_LOBBY: Final = 3
TYPE_BROADCAST: Final = 4
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


@_both("initiateDistantChatConnexion", note="no distant chat yet: refused")
def initiate_distant_chat_connexion(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"pid": NULL_GXS_ID, "error_code": 1, "retval": False}
