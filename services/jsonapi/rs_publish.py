# -*- test-case-name: tests.test_jsonapi_publish -*-
"""``/rsGxsChannels/*``, ``/rsGxsForums/*`` and ``/rsPosted/*``: channels, forums and boards
of the node (`services.publish`), with RetroShare's parameter and answer names.

The calls and answers the capture's driver made on real nodes (captures2 ``timeline.jsonl``:
``createChannelV2``, ``createPostV2``, ``createForumV2``, ``createPost``, ``createBoardV2``,
``subscribeTo*``, ``createCommentV2``, ``voteForPost``) are answered with the same members;
groups and messages are listed as ``RsGroupMetaData`` / ``RsMsgMetaData`` with the service's
own fields beside them.  A refusal is ``retval: false`` with RetroShare's ``errorMessage``.
"""

from __future__ import annotations

import base64
from typing import Any, Final

from pqi.items.gxs_content import (
    VOTE_DOWN,
    VOTE_UP,
    BoardPost,
    ChannelPost,
    Comment,
    ForumPost,
    Vote,
)
from pqi.wire.fields import GxsId, GxsMessageId, Sha1Hash
from pqi.wire.tlvvalues import FileItem
from services.gxs.security import SignatureError
from services.gxs.store import StoreFullError

from .api import ApiContext, EndpointTable
from .encoding import NULL_GXS_ID, NULL_HASH, Params, x64

__all__ = ["ENDPOINTS", "SUBSCRIBE_ADMIN", "SUBSCRIBE_PUBLISH", "SUBSCRIBE_SUBSCRIBED",
           "SUBSCRIBE_NOT_SUBSCRIBED", "MSG_STATUS_UNREAD"]

ENDPOINTS = EndpointTable()

#: ``GXS_SERV::GROUP_SUBSCRIBE_*``.
SUBSCRIBE_ADMIN: Final = 0x01
SUBSCRIBE_PUBLISH: Final = 0x02
SUBSCRIBE_SUBSCRIBED: Final = 0x04
SUBSCRIBE_NOT_SUBSCRIBED: Final = 0x08
#: ``GXS_SERV::GXS_MSG_STATUS_GUI_UNREAD``.
MSG_STATUS_UNREAD: Final = 0x04


class _RefusedError(Exception):
    """A call the node cannot do; its text is the answer's ``errorMessage``."""


def _service(ctx: ApiContext, attribute: str) -> Any:
    service = getattr(ctx.node, attribute, None)
    if service is None:
        raise _RefusedError(f"this node runs no {attribute} (they need identities)")
    return service


def _gxs(text: str) -> GxsId:
    try:
        return GxsId.from_hex(text)
    except ValueError:
        raise _RefusedError(f"{text!r} is not a group id") from None


def _msg(text: str) -> GxsMessageId | None:
    return None if text == NULL_HASH else GxsMessageId.from_hex(text)


def _author(p: Params, name: str = "authorId") -> GxsId | None:
    text = p.gxs_id(name)
    return None if text == NULL_GXS_ID else GxsId.from_hex(text)


def _guarded(id_name: str, null: str) -> Any:
    """Answer ``{id_name: ..., errorMessage, retval}``; a refusal keeps the null id."""
    def wrap(handler: Any) -> Any:
        def run(ctx: ApiContext, p: Params) -> dict[str, Any]:
            try:
                value = handler(ctx, p)
            except (_RefusedError, ValueError, KeyError, SignatureError, StoreFullError) as e:
                return {id_name: null, "errorMessage": str(e).strip("'\""), "retval": False}
            return {id_name: value.to_hex(), "errorMessage": "", "retval": True}
        return run
    return wrap


def group_meta(service: Any, grp_id: GxsId) -> dict[str, Any]:
    """``RsGroupMetaData`` of a stored group."""
    g = service.store.group(grp_id)
    info = service.group(grp_id)
    meta = g.meta
    flags = SUBSCRIBE_SUBSCRIBED if g.subscribed else SUBSCRIBE_NOT_SUBSCRIBED
    if info is not None and info.admin:
        flags |= SUBSCRIBE_ADMIN
    if info is not None and info.publisher:
        flags |= SUBSCRIBE_PUBLISH
    count = service.store.message_count(grp_id)
    return {"mGroupId": grp_id.to_hex(), "mGroupName": meta.name,
            "mGroupFlags": meta.group_flags, "mSignFlags": meta.sign_flags,
            "mPublishTs": x64(meta.publish_ts), "mAuthorId": meta.author_id.to_hex(),
            "mCircleId": meta.circle_id.to_hex(), "mCircleType": meta.circle_type,
            "mAuthenFlags": meta.authen_flags, "mParentGrpId": meta.parent_grp_id.to_hex(),
            "mSubscribeFlags": flags, "mPop": 0, "mVisibleMsgCount": count,
            "mLastPost": x64(service.store.last_post_ts(grp_id)), "mGroupStatus": 0,
            "mServiceString": "", "mOriginator": "0" * 32,
            "mInternalCircle": NULL_GXS_ID}


def msg_meta(info: Any) -> dict[str, Any]:
    """``RsMsgMetaData`` of a message (`services.publish.MessageInfo`)."""
    return {"mGroupId": info.grp_id.to_hex(), "mMsgId": info.msg_id.to_hex(),
            "mThreadId": info.thread.to_hex(), "mParentId": info.parent.to_hex(),
            "mOrigMsgId": info.original.to_hex(), "mAuthorId": info.author.to_hex(),
            "mMsgName": info.title, "mPublishTs": x64(info.publish_ts), "mMsgFlags": 0,
            "mMsgStatus": 0 if info.read else MSG_STATUS_UNREAD, "mChildTs": x64(0),
            "mServiceString": ""}


def _groups(ctx: ApiContext, attribute: str, ids: list[str] | None) -> list[Any]:
    service = _service(ctx, attribute)
    wanted = None if ids is None else {i.lower() for i in ids}
    return [g for g in service.groups() if wanted is None or g.grp_id.to_hex() in wanted]


def _image(data: bytes) -> dict[str, Any]:
    return {"mData": {"base64": base64.b64encode(data).decode()}}


def _file(f: FileItem) -> dict[str, Any]:
    return {"mName": f.name, "mHash": f.hash.to_hex(), "mSize": x64(f.size)}


def _message_json(info: Any) -> tuple[str, dict[str, Any]]:
    """(which list, the record) of a message in a content answer."""
    c = info.content
    meta = msg_meta(info)
    if isinstance(c, ChannelPost):
        return "posts", {"mMeta": meta, "mOlderVersions": [], "mMsg": c.body,
                         "mFiles": [_file(f) for f in c.files.items],
                         "mCount": len(c.files.items),
                         "mSize": x64(sum(f.size for f in c.files.items)),
                         "mThumbnail": _image(c.thumbnail.data), "mCommentCount": 0,
                         "mUnreadCommentCount": 0, "mHasVoted": 0}
    if isinstance(c, BoardPost):
        return "posts", {"mMeta": meta, "mLink": c.link, "mNotes": c.notes,
                         "mImage": _image(c.image.data if c.image else b""),
                         "mComments": 0, "mUpVotes": 0, "mDownVotes": 0}
    if isinstance(c, ForumPost):
        return "msgs", {"mMeta": meta, "mMsg": c.body}
    if isinstance(c, Comment):
        return "comments", {"mMeta": meta, "mComment": c.text, "mUpVotes": 0,
                            "mDownVotes": 0, "mScore": 0.0, "mOwnVote": 0, "mVotes": []}
    assert isinstance(c, Vote)
    return "votes", {"mMeta": meta, "mVoteType": c.vote_type}


def _content(ctx: ApiContext, attribute: str, grp: str, ids: list[str]) -> dict[str, Any]:
    service = _service(ctx, attribute)
    grp_id = _gxs(grp)
    out: dict[str, Any] = {"posts": [], "comments": [], "votes": [], "msgs": []}
    wanted = {i.lower() for i in ids}
    for info in service.all_messages(grp_id):
        if wanted and info.msg_id.to_hex() not in wanted:
            continue
        kind, record = _message_json(info)
        out[kind].append(record)
    for post in out["posts"]:
        ups, downs = service.votes(grp_id, GxsMessageId.from_hex(post["mMeta"]["mMsgId"]))
        if "mUpVotes" in post:
            post["mUpVotes"], post["mDownVotes"] = ups, downs
        post["mComments" if "mComments" in post else "mCommentCount"] = sum(
            1 for c in out["comments"] if c["mMeta"]["mThreadId"] == post["mMeta"]["mMsgId"])
    return out


def _subscribe(ctx: ApiContext, attribute: str, p: Params, name: str) -> dict[str, Any]:
    try:
        _service(ctx, attribute).subscribe(_gxs(p.gxs_id(name)), p.bool("subscribe", True))
    except (_RefusedError, ValueError):
        return {"retval": False}
    return {"retval": True}


# --- channels ------------------------------------------------------------------------------

@ENDPOINTS.add("/rsGxsChannels/getChannelsSummaries")
def channels_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "channels")
    except _RefusedError:
        return {"channels": [], "retval": False}
    return {"channels": [group_meta(service, g.grp_id) for g in service.groups()],
            "retval": True}


@ENDPOINTS.add("/rsGxsChannels/getChannelsInfo")
def channels_info(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "channels")
        groups = _groups(ctx, "channels", p.strings("chanIds"))
    except _RefusedError:
        return {"channelsInfo": [], "retval": False}
    return {"channelsInfo": [
        {"mMeta": group_meta(service, g.grp_id), "mDescription": g.content.description,
         "mImage": _image(g.content.image.data),
         "mAutoDownload": bool(service.files and service.files.auto_download(g.grp_id))}
        for g in groups], "retval": True}


@ENDPOINTS.add("/rsGxsChannels/getChannelContent")
def channel_content(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        out = _content(ctx, "channels", p.gxs_id("channelId"), p.strings("contentsIds"))
    except _RefusedError:
        return {"posts": [], "comments": [], "votes": [], "retval": False}
    del out["msgs"]
    return {**out, "retval": True}


@ENDPOINTS.add("/rsGxsChannels/getContentSummaries")
def channel_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "channels")
        summaries = [msg_meta(i) for i in service.all_messages(_gxs(p.gxs_id("channelId")))]
    except _RefusedError:
        return {"summaries": [], "retval": False}
    return {"summaries": summaries, "retval": True}


@ENDPOINTS.add("/rsGxsChannels/createChannelV2")
@_guarded("channelId", NULL_GXS_ID)
def create_channel(ctx: ApiContext, p: Params) -> GxsId:
    return _service(ctx, "channels").create(p.str("name"), p.str("description"), _author(p))


def _files(p: Params) -> tuple[FileItem, ...]:
    def one(e: Any) -> FileItem | None:
        f = Params(e)
        name, file_hash = f.str("mName"), f.hash("mHash")
        size = f.int64("mSize")
        if not name or file_hash == NULL_HASH or size <= 0:
            return None
        return FileItem(size, Sha1Hash.from_hex(file_hash), name)
    return tuple(p.list("files", one))


@ENDPOINTS.add("/rsGxsChannels/createPostV2")
@_guarded("postId", NULL_HASH)
def create_channel_post(ctx: ApiContext, p: Params) -> GxsMessageId:
    return _service(ctx, "channels").post(
        _gxs(p.gxs_id("channelId")), p.str("title"), p.str("mBody"), _files(p),
        original=_msg(p.hash("origPostId")))


@ENDPOINTS.add("/rsGxsChannels/createCommentV2")
@_guarded("commentMessageId", NULL_HASH)
def create_channel_comment(ctx: ApiContext, p: Params) -> GxsMessageId:
    thread = _msg(p.hash("threadId"))
    if thread is None:
        raise _RefusedError("supplied threadId is not a thread")
    return _service(ctx, "channels").comment(_gxs(p.gxs_id("channelId")), thread,
                                             p.str("comment"), _author(p),
                                             _msg(p.hash("parentId")))


@ENDPOINTS.add("/rsGxsChannels/voteForComment")
@_guarded("voteId", NULL_HASH)
def vote_for_comment(ctx: ApiContext, p: Params) -> GxsMessageId:
    post, comment = _msg(p.hash("postId")), _msg(p.hash("commentId"))
    if post is None:
        raise _RefusedError("no post given")
    return _service(ctx, "channels").vote(_gxs(p.gxs_id("channelId")), post,
                                          p.int("vote") != VOTE_DOWN, _author(p), comment)


@ENDPOINTS.add("/rsGxsChannels/subscribeToChannel")
def subscribe_channel(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return _subscribe(ctx, "channels", p, "channelId")


@ENDPOINTS.add("/rsGxsChannels/setChannelAutoDownload")
def set_auto_download(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "channels")
        service.files.set_auto_download(_gxs(p.gxs_id("channelId")), p.bool("enable"))
    except (_RefusedError, KeyError, AttributeError):
        return {"retval": False}
    return {"retval": True}


@ENDPOINTS.add("/rsGxsChannels/getChannelAutoDownload")
def get_auto_download(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "channels")
        enabled = service.files.auto_download(_gxs(p.gxs_id("channelId")))
    except (_RefusedError, AttributeError):
        return {"enabled": False, "retval": False}
    return {"enabled": enabled, "retval": True}


# --- forums --------------------------------------------------------------------------------

@ENDPOINTS.add("/rsGxsForums/getForumsSummaries")
def forums_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "forums")
    except _RefusedError:
        return {"forums": [], "retval": False}
    return {"forums": [group_meta(service, g.grp_id) for g in service.groups()],
            "retval": True}


@ENDPOINTS.add("/rsGxsForums/getForumsInfo")
def forums_info(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "forums")
        groups = _groups(ctx, "forums", p.strings("forumIds"))
    except _RefusedError:
        return {"forumsInfo": [], "retval": False}
    return {"forumsInfo": [
        {"mMeta": group_meta(service, g.grp_id), "mDescription": g.content.description,
         "mAdminList": {"ids": sorted(i.to_hex() for i in g.content.admins or ())},
         "mPinnedPosts": {"ids": sorted(i.to_hex() for i in g.content.pinned or ())}}
        for g in groups], "retval": True}


@ENDPOINTS.add("/rsGxsForums/getForumContent")
def forum_content(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        out = _content(ctx, "forums", p.gxs_id("forumId"), p.strings("msgsIds"))
    except _RefusedError:
        return {"msgs": [], "retval": False}
    return {"msgs": out["msgs"], "retval": True}


@ENDPOINTS.add("/rsGxsForums/getForumMsgMetaData")
def forum_metas(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "forums")
        metas = [msg_meta(i) for i in service.all_messages(_gxs(p.gxs_id("forumId")))]
    except _RefusedError:
        return {"msgMetas": [], "retval": False}
    return {"msgMetas": metas, "retval": True}


@ENDPOINTS.add("/rsGxsForums/createForumV2")
@_guarded("forumId", NULL_GXS_ID)
def create_forum(ctx: ApiContext, p: Params) -> GxsId:
    moderators = frozenset(GxsId.from_hex(m) for m in p.list(
        "moderatorsIds", lambda e: e if isinstance(e, str) and len(e) == 32 else None))
    return _service(ctx, "forums").create(p.str("name"), p.str("description"), _author(p),
                                          moderators)


@ENDPOINTS.add("/rsGxsForums/createPost")
@_guarded("postMsgId", NULL_HASH)
def create_forum_post(ctx: ApiContext, p: Params) -> GxsMessageId:
    service = _service(ctx, "forums")
    grp, parent = _gxs(p.gxs_id("forumId")), _msg(p.hash("parentId"))
    if parent is not None and service.message(parent) is None:
        raise _RefusedError(f"Parent post {parent.to_hex()} doesn't exists locally")
    return service.post(grp, p.str("title"), p.str("mBody"), _author(p), parent=parent,
                        original=_msg(p.hash("origPostId")))


@ENDPOINTS.add("/rsGxsForums/subscribeToForum")
def subscribe_forum(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return _subscribe(ctx, "forums", p, "forumId")


@ENDPOINTS.add("/rsGxsForums/markRead")
def mark_read(ctx: ApiContext, p: Params) -> dict[str, Any]:
    pair = p.sub("messageId")
    try:
        msg = _msg(pair.hash("second"))
        if msg is None:
            return {"retval": False}
        _service(ctx, "forums").mark_read(msg, p.bool("read", True))
    except (_RefusedError, ValueError):
        return {"retval": False}
    return {"retval": True}


# --- boards --------------------------------------------------------------------------------

@ENDPOINTS.add("/rsPosted/getBoardsSummaries")
def boards_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "boards")
    except _RefusedError:
        return {"groupInfo": [], "retval": False}
    return {"groupInfo": [group_meta(service, g.grp_id) for g in service.groups()],
            "retval": True}


@ENDPOINTS.add("/rsPosted/getBoardsInfo")
def boards_info(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "boards")
        groups = _groups(ctx, "boards", p.strings("boardsIds"))
    except _RefusedError:
        return {"boardsInfo": [], "retval": False}
    return {"boardsInfo": [
        {"mMeta": group_meta(service, g.grp_id), "mDescription": g.content.description,
         "mGroupImage": _image(g.content.image.data if g.content.image else b"")}
        for g in groups], "retval": True}


@ENDPOINTS.add("/rsPosted/getBoardContent")
def board_content(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        out = _content(ctx, "boards", p.gxs_id("boardId"), p.strings("contentsIds"))
    except _RefusedError:
        return {"posts": [], "comments": [], "votes": [], "retval": False}
    del out["msgs"]
    return {**out, "retval": True}


@ENDPOINTS.add("/rsPosted/getContentSummaries")
def board_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    try:
        service = _service(ctx, "boards")
        summaries = [msg_meta(i) for i in service.all_messages(_gxs(p.gxs_id("boardId")))]
    except _RefusedError:
        return {"summaries": [], "retval": False}
    return {"summaries": summaries, "retval": True}


@ENDPOINTS.add("/rsPosted/createBoardV2")
@_guarded("boardId", NULL_GXS_ID)
def create_board(ctx: ApiContext, p: Params) -> GxsId:
    return _service(ctx, "boards").create(p.str("board_name"), p.str("board_description"),
                                          _author(p))


@ENDPOINTS.add("/rsPosted/createPostV2")
def create_board_post(ctx: ApiContext, p: Params) -> dict[str, Any]:
    # RetroShare names the error member ``error_message`` here.
    answer = _board_post(ctx, p)
    answer["error_message"] = answer.pop("errorMessage")
    return answer


@_guarded("postId", NULL_HASH)
def _board_post(ctx: ApiContext, p: Params) -> GxsMessageId:
    return _service(ctx, "boards").post(_gxs(p.gxs_id("boardId")), p.str("title"),
                                        _url_text(p.sub("link").str("urlString")),
                                        p.str("notes"), _author(p),
                                        original=_msg(p.hash("origPostId")))


def _url_text(url: str) -> str:
    """The link as RetroShare stores it: ``RsUrl`` writes an empty path as nothing
    (captures2: ``https://retroshare.cc/`` was posted as ``https://retroshare.cc``)."""
    scheme, sep, rest = url.partition("://")
    if sep and rest.endswith("/") and rest.count("/") == 1:
        return f"{scheme}://{rest[:-1]}"
    return url


@ENDPOINTS.add("/rsPosted/voteForPost")
@_guarded("voteId", NULL_HASH)
def vote_for_post(ctx: ApiContext, p: Params) -> GxsMessageId:
    post = _msg(p.hash("postMsgId"))
    if post is None:
        raise _RefusedError("Failure to find parent post!")
    return _service(ctx, "boards").vote(_gxs(p.gxs_id("postGrpId")), post,
                                        p.int("vote", VOTE_UP) != VOTE_DOWN, _author(p))


@ENDPOINTS.add("/rsPosted/subscribeToBoard")
def subscribe_board(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return _subscribe(ctx, "boards", p, "boardId")
