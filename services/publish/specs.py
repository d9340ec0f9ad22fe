# -*- test-case-name: tests.test_publish_commands -*-
"""Channels, forums and boards on a node: their specs and control commands.

Each is built on the node's identities (which sign and check) and reputation (which hides
banned authors), both built before them; channels also on file transfer and turtle routing
for their files.  Commands are ``channel_*``, ``forum_*`` and ``board_*`` (``rsnode channel
...``), answering JSON data.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any, Final

from pqi.items.ids import SERVICE_CHANNELS, SERVICE_FORUMS, SERVICE_POSTED
from pqi.items.nxs import NXS_ITEM_BASES, nxs_item_class
from pqi.wire.fields import GxsId, GxsMessageId
from services.publish.events import (
    BoardMessageStored,
    BoardStored,
    ChannelFileWanted,
    ChannelMessageStored,
    ChannelStored,
    ForumMessageStored,
    ForumStored,
)
from services.publish.files import ChannelFiles
from services.publish.service import (
    BoardService,
    ChannelService,
    ForumService,
    PublishError,
    PublishService,
    summary_json,
)
from services.spec import Commands, ServiceSpec

__all__ = ["CHANNELS_SPEC", "FORUMS_SPEC", "BOARDS_SPEC", "COMMANDS"]

#: The control commands of each service, by kind.
COMMANDS: Final = {"channel": Commands(), "forum": Commands(), "board": Commands()}


def _builder(cls: type[PublishService], spec: Callable[[], ServiceSpec]
             ) -> Callable[[Any], PublishService | None]:
    def build(node: Any) -> PublishService | None:
        identities = getattr(node, "identities", None)
        if identities is None:
            return None
        reputation = getattr(node, "reputation", None)
        service = cls(node.control, node.reactor, pathlib.Path(node.account.base_dir),
                      identities, spec(),
                      is_banned=reputation.hides if reputation is not None else
                      (lambda _g: False),
                      on_event=node.emit, sync_period=node.options["gxs_sync_period"])
        turtle = getattr(node, "turtle", None)
        if turtle is not None and turtle.gxs is not None:
            service.attach_tunnels(turtle.gxs)  # distant groups
        transfers = getattr(node, "transfers", None)
        if isinstance(service, ChannelService) and transfers is not None:
            service.files = ChannelFiles(service, transfers, getattr(node, "turtle", None),
                                         node.options["channel_auto_download"], node.emit)
        return service
    return build


def _items(service: int) -> tuple[type, ...]:
    return tuple(nxs_item_class(service, base) for base in NXS_ITEM_BASES)


def _close(service: PublishService) -> None:
    service.close()


CHANNELS_SPEC: Final = ServiceSpec(
    SERVICE_CHANNELS, "gxschannels", attribute="channels", items=_items(SERVICE_CHANNELS),
    events=(ChannelStored, ChannelMessageStored, ChannelFileWanted), commands=COMMANDS["channel"],
    cli="services.cli.publish:register", options={"channel_auto_download": False},
    build=_builder(ChannelService, lambda: CHANNELS_SPEC), close=_close)
FORUMS_SPEC: Final = ServiceSpec(
    SERVICE_FORUMS, "gxsforums", attribute="forums", items=_items(SERVICE_FORUMS),
    events=(ForumStored, ForumMessageStored), commands=COMMANDS["forum"],
    build=_builder(ForumService, lambda: FORUMS_SPEC),
    close=_close)
BOARDS_SPEC: Final = ServiceSpec(
    SERVICE_POSTED, "gxsposted", attribute="boards", items=_items(SERVICE_POSTED),
    events=(BoardStored, BoardMessageStored), commands=COMMANDS["board"],
    build=_builder(BoardService, lambda: BOARDS_SPEC),
    close=_close)


# --- commands --------------------------------------------------------------------------------

_ATTRIBUTES: Final = {"channel": "channels", "forum": "forums", "board": "boards"}


def _service(node: Any, kind: str) -> Any:
    service = getattr(node, _ATTRIBUTES[kind], None)
    if service is None:
        raise ValueError(f"this node runs no {kind}s (they need identities)")
    return service


def _grp(args: dict[str, Any], name: str = "group") -> GxsId:
    try:
        return GxsId.from_hex(str(args[name]))
    except ValueError:
        raise PublishError(f"{args[name]!r} is not a group id (32 hex digits)") from None


def _msg(args: dict[str, Any], name: str) -> GxsMessageId | None:
    value = args.get(name)
    if value in (None, ""):
        return None
    try:
        return GxsMessageId.from_hex(str(value))
    except ValueError:
        raise PublishError(f"{value!r} is not a message id (40 hex digits)") from None


def _author(args: dict[str, Any]) -> GxsId | None:
    value = args.get("identity")
    return None if value in (None, "") else GxsId.from_hex(str(value))


def _register(kind: str) -> None:
    table = COMMANDS[kind]

    @table.command(f"{kind}_list")
    def _list(node: Any, args: dict[str, Any]) -> Any:
        return [g.to_json() for g in _service(node, kind).groups()]

    @table.command(f"{kind}_create")
    def _create(node: Any, args: dict[str, Any]) -> Any:
        service = _service(node, kind)
        extra: dict[str, Any] = {}
        if kind == "forum" and args.get("moderators"):
            extra["moderators"] = frozenset(GxsId.from_hex(m) for m in args["moderators"])
        return service.create(str(args["name"]), str(args.get("description", "")),
                              _author(args), **extra).to_hex()

    @table.command(f"{kind}_subscribe")
    def _subscribe(node: Any, args: dict[str, Any]) -> Any:
        service = _service(node, kind)
        grp = _grp(args)
        subscribe = bool(args.get("subscribe", True))
        distant = subscribe and (bool(args.get("distant")) or service.group(grp) is None)
        if distant:  # a group no friend showed us: find its holders through tunnels
            service.follow_distant(grp)
        else:
            service.subscribe(grp, subscribe)
        if kind == "channel" and "auto_download" in args and service.files is not None:
            service.files.set_auto_download(grp, bool(args["auto_download"]))

    @table.command(f"{kind}_search")
    def _search(node: Any, args: dict[str, Any]) -> Any:
        return {"id": _service(node, kind).search_distant(str(args.get("text", "")))}

    @table.command(f"{kind}_search_results")
    def _results(node: Any, args: dict[str, Any]) -> Any:
        return [summary_json(s) for s in
                _service(node, kind).search_results(int(args.get("id", 0)))]

    @table.command(f"{kind}_read")
    def _read(node: Any, args: dict[str, Any]) -> Any:
        service = _service(node, kind)
        grp = _grp(args)
        info = service.group(grp)
        if info is None:
            raise PublishError(f"no {kind} {grp}")
        out = info.to_json()
        out["posts"] = [m.to_json() for m in service.messages(grp)]
        if args.get("mark_read"):
            for m in service.all_messages(grp):
                service.mark_read(m.msg_id)
        return out

    @table.command(f"{kind}_mark_read")
    def _mark(node: Any, args: dict[str, Any]) -> Any:
        msg = _msg(args, "message")
        if msg is None:
            raise PublishError("which message?")
        _service(node, kind).mark_read(msg, bool(args.get("read", True)))

    @table.command(f"{kind}_news")
    def _news(node: Any, args: dict[str, Any]) -> Any:
        service = _service(node, kind)
        after = int(args.get("after", service.last_seq()))
        return {"last": service.last_seq(),
                "messages": [{"seq": n, **m.to_json()} for n, m in service.news_after(after)]}

    @table.command(f"{kind}_post")
    def _post(node: Any, args: dict[str, Any]) -> Any:
        service = _service(node, kind)
        grp = _grp(args)
        title = str(args.get("title", ""))
        original = _msg(args, "original")
        if kind == "channel":
            files = tuple(service.files.attach(grp, p) for p in args.get("files", ())
                          ) if service.files is not None else ()
            if args.get("files") and service.files is None:
                raise PublishError("this node transfers no files")
            return service.post(grp, title, str(args.get("body", "")), files,
                                original=original).to_hex()
        if kind == "forum":
            return service.post(grp, title, str(args.get("body", "")), _author(args),
                                parent=_msg(args, "parent"), original=original).to_hex()
        return service.post(grp, title, str(args.get("link", "")), str(args.get("body", "")),
                            _author(args), original=original).to_hex()

    if kind == "forum":
        @table.command("forum_pin")
        def _pin(node: Any, args: dict[str, Any]) -> Any:
            msg = _msg(args, "message")
            if msg is None:
                raise PublishError("which message?")
            _service(node, kind).pin(_grp(args), msg, bool(args.get("pinned", True)))
        return

    @table.command(f"{kind}_comment")
    def _comment(node: Any, args: dict[str, Any]) -> Any:
        post = _msg(args, "post")
        if post is None:
            raise PublishError("which post?")
        return _service(node, kind).comment(_grp(args), post, str(args["text"]), _author(args),
                                            _msg(args, "parent")).to_hex()

    @table.command(f"{kind}_vote")
    def _vote(node: Any, args: dict[str, Any]) -> Any:
        post = _msg(args, "post")
        if post is None:
            raise PublishError("which post?")
        return _service(node, kind).vote(_grp(args), post, bool(args.get("up", True)),
                                         _author(args), _msg(args, "parent")).to_hex()


for _kind in _ATTRIBUTES:
    _register(_kind)


@COMMANDS["channel"].command("channel_download")
def _channel_download(node: Any, args: dict[str, Any]) -> Any:
    service = _service(node, "channel")
    post = _msg(args, "post")
    if service.files is None or post is None:
        raise PublishError("this node transfers no files" if post else "which post?")
    return [{"name": f.name, "size": f.size, "hash": f.hash.to_hex()}
            for f in service.files.download(_grp(args), post)]
