# -*- test-case-name: tests.test_publish_service -*-
"""Channels (0x0217), forums (0x0215) and boards (0x0216) on a node: one skin each.

Each is a `GxsNetService` (NXS sync with friends, every group and message checked before it
is stored) over its own sqlite file, plus what its users do: create groups, post, edit,
comment, vote, subscribe, mark read.  Identities sign (``identities``: our private keys,
everyone's public keys, and asking friends for authors we lack); reputation hides banned
authors (``is_banned``).

What we show follows RetroShare: of the versions of a post (same original id) the newest
whose author may edit it is shown (a channel's versions are all signed by its publish key; a
forum post's by its author or one of the forum's moderators); votes and comments name their
post as thread.  New messages from friends are also kept, numbered, in a bounded list
(`MAX_NEWS`) for ``follow``.

Distant groups (with `attach_tunnels`, RetroShare's distant sync): `search_distant` asks the
network over turtle for groups by name, `search_groups` answers such searches from the groups
we follow, and `follow_distant` digs tunnels to a group's holders and subscribes to it once
they gave it to us (at most `MAX_FOLLOWING` such groups at once).
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any, ClassVar, Final, Protocol

from twisted.internet.interfaces import IReactorTime

from pqi.interfaces import IItemSender
from pqi.items.gxs import KEY_DISTRIB_ADMIN, KEY_DISTRIB_PUBLISH, KEY_TYPE_FULL, GrpMeta
from pqi.items.gxs_content import (
    VOTE_DOWN,
    VOTE_UP,
    BoardGroup,
    BoardPost,
    ChannelGroup,
    ChannelPost,
    Comment,
    Content,
    ForumGroup,
    ForumPost,
    Image,
    Vote,
    decode_content,
)
from pqi.items.gxs_net_tunnel import GxsGroupSummary
from pqi.items.ids import SERVICE_CHANNELS, SERVICE_FORUMS, SERVICE_POSTED
from pqi.items.nxs import NxsRsaKey
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, GxsMessageId, SslId
from pqi.wire.tlvvalues import FileItem, FileSet
from services.gxs.nxs_core import SYNC_PERIOD, GroupStored, MessageStored, NxsCore, Rejected
from services.gxs.service import GxsNetService
from services.gxs.store import GxsStore
from services.publish.events import (
    BoardMessageStored,
    BoardStored,
    ChannelMessageStored,
    ChannelStored,
    ForumMessageStored,
    ForumStored,
    GroupEvent,
    MessageEvent,
)
from services.publish.local import LocalState
from services.publish.making import make_group, make_message, update_group
from services.spec import ServiceSpec

__all__ = ["PublishService", "ChannelService", "ForumService", "BoardService", "GroupInfo",
           "MessageInfo", "IdentityKeys", "MAX_NEWS", "MAX_REFUSED", "MAX_FOLLOWING",
           "PublishError", "summary_json"]

#: Most new messages kept for ``follow`` (the oldest are forgotten first).
MAX_NEWS: Final = 1_000
#: Most refusals kept (why a friend's group or message was not stored), newest last.
MAX_REFUSED: Final = 100
#: Distant groups we wait to receive through tunnels, to subscribe to them.
MAX_FOLLOWING: Final = 64


class PublishError(ValueError):
    """A request the service cannot do (unknown group, not ours to post in, no identity)."""


class IdentityKeys(Protocol):
    """What the services need of the identity service."""

    def public_key(self, gxs_id: GxsId) -> NxsRsaKey | None: ...

    def private_key(self, gxs_id: GxsId) -> NxsRsaKey | None: ...

    def own_ids(self) -> list[GxsId]: ...

    def request(self, gxs_id: GxsId, peer: SslId) -> None: ...


@dataclasses.dataclass(frozen=True)
class GroupInfo:
    """A channel, forum or board as the user sees it."""

    grp_id: GxsId
    name: str
    author: GxsId
    publish_ts: int
    subscribed: bool
    #: We hold its admin key (we made it); its publish key (we may post, channels).
    admin: bool
    publisher: bool
    content: Content
    messages: int

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.grp_id.to_hex(), "name": self.name, "author": _hex_or_none(self.author),
            "publish_ts": self.publish_ts, "subscribed": self.subscribed, "admin": self.admin,
            "publisher": self.publisher, "messages": self.messages,
            "description": getattr(self.content, "description", "")}
        if isinstance(self.content, ForumGroup):
            out["moderators"] = sorted(g.to_hex() for g in self.content.admins or ())
            out["pinned"] = sorted(m.to_hex() for m in self.content.pinned or ())
        return out


@dataclasses.dataclass(frozen=True)
class MessageInfo:
    """A post, reply, comment or vote; ``versions`` counts the edits of a post."""

    msg_id: GxsMessageId
    grp_id: GxsId
    title: str
    author: GxsId
    publish_ts: int
    parent: GxsMessageId
    thread: GxsMessageId
    original: GxsMessageId
    content: Content
    read: bool
    versions: int = 1

    @property
    def kind(self) -> str:
        return {Comment: "comment", Vote: "vote"}.get(type(self.content), "post")

    def to_json(self) -> dict[str, Any]:
        c = self.content
        out: dict[str, Any] = {
            "id": self.msg_id.to_hex(), "group": self.grp_id.to_hex(), "kind": self.kind,
            "title": self.title, "author": _hex_or_none(self.author),
            "publish_ts": self.publish_ts, "parent": _hex_or_none(self.parent),
            "thread": _hex_or_none(self.thread), "original": self.original.to_hex(),
            "read": self.read, "versions": self.versions}
        if isinstance(c, ChannelPost):
            out["body"] = c.body
            out["files"] = [{"name": f.name, "size": f.size, "hash": f.hash.to_hex()}
                            for f in c.files.items]
        elif isinstance(c, ForumPost):
            out["body"] = c.body
        elif isinstance(c, BoardPost):
            out.update(link=c.link, notes=c.notes)
        elif isinstance(c, Comment):
            out["text"] = c.text
        elif isinstance(c, Vote):
            out["vote"] = "up" if c.vote_type == VOTE_UP else "down"
        return out


def summary_json(s: GxsGroupSummary) -> dict[str, Any]:
    """A distant search hit as the control channel and the JSON API show it."""
    return {"id": s.group_id.to_hex(), "name": s.name, "author": _hex_or_none(s.author_id),
            "publish_ts": s.publish_ts, "messages": s.message_count,
            "last_message_ts": s.last_message_ts}


def _hex_or_none(value: Any) -> str | None:
    return None if value == type(value).null() else value.to_hex()


class PublishService(GxsNetService):
    """The common part of channels, forums and boards (see the module docstring)."""

    SERVICE: ClassVar[int]
    KIND: ClassVar[str]
    FILE: ClassVar[str]
    GROUP_EVENT: ClassVar[type[GroupEvent]]
    MESSAGE_EVENT: ClassVar[type[MessageEvent]]

    def __init__(self, sender: IItemSender, reactor: IReactorTime,
                 base_dir: pathlib.Path | None, identities: IdentityKeys, spec: ServiceSpec,
                 *, is_banned: Callable[[GxsId], bool] = lambda _g: False,
                 on_event: Callable[[Any], object] = lambda e: None,
                 sync_period: float = SYNC_PERIOD) -> None:
        self.store = GxsStore(None if base_dir is None else pathlib.Path(base_dir) / self.FILE,
                              self.SERVICE)
        self.local = LocalState(self.store)
        self.identities = identities
        self.emit = on_event
        core = NxsCore(self.SERVICE, self.store, author_lookup=identities.public_key,
                       is_banned=is_banned, sync_period=sync_period)
        super().__init__(sender, reactor, core, spec, self._event,
                         request_identity=identities.request)
        self.news: collections.deque[tuple[int, GxsId, GxsMessageId]] = \
            collections.deque(maxlen=MAX_NEWS)
        self._seq = 0
        #: Why friends' groups and messages were refused, newest last (for status, tests).
        self.refused: collections.deque[str] = collections.deque(maxlen=MAX_REFUSED)
        #: Distant groups asked for (`follow_distant`) that have not reached us yet.
        self.following: set[GxsId] = set()

    def close(self) -> None:
        self.store.close()

    def _now(self) -> int:
        return int(self.reactor.seconds())

    def _event(self, event: Any) -> None:
        if isinstance(event, Rejected):
            self.refused.append(event.reason)
        elif isinstance(event, GroupStored):
            if event.grp_id in self.following:
                self.following.discard(event.grp_id)
                self.driver.feed(self.core.subscribe, event.grp_id, True)
            self.emit(self.GROUP_EVENT(event.grp_id, event.peer))
        elif isinstance(event, MessageStored):
            if event.peer is not None:
                self._seq += 1
                self.news.append((self._seq, event.grp_id, event.msg_id))
            self.emit(self.MESSAGE_EVENT(event.grp_id, event.msg_id, event.peer))
            self._message_stored(event)

    def _message_stored(self, event: MessageStored) -> None:
        """A checked message is stored (channels fetch its files)."""

    # --- keys ------------------------------------------------------------------------------

    def _group(self, grp_id: GxsId) -> GrpMeta:
        meta = self.store.group_meta(grp_id)
        if meta is None:
            raise PublishError(f"no {self.KIND} {grp_id}")
        return meta

    def _private(self, grp_id: GxsId, distrib: int) -> NxsRsaKey | None:
        """Our private admin or publish key of a group (None: not ours)."""
        meta = self.store.group_meta(grp_id)
        if meta is None:
            return None
        for pub in meta.keys.public_keys():
            if pub.key_flags & distrib:
                return next((k for k in self.store.private_keys(pub.key_id)
                             if k.key_flags & KEY_TYPE_FULL), None)
        return None

    def _author(self, author: GxsId | None) -> NxsRsaKey:
        """The private key of our identity ``author`` (default: our first identity)."""
        own = self.identities.own_ids()
        if author is None:
            if not own:
                raise PublishError("no identity yet: create one (rsnode id create NAME)")
            author = own[0]
        key = self.identities.private_key(author)
        if key is None:
            raise PublishError(f"{author} is not one of our identities")
        return key

    # --- acting --------------------------------------------------------------------------

    def _create(self, name: str, content: Content, author: GxsId | None) -> GxsId:
        new = make_group(self.SERVICE, name, content, self._now(), self._author(author))
        self.driver.feed(self.core.publish_group, new.grp, new.meta,
                         private_keys=new.private_keys())
        return new.grp_id

    def _update(self, grp_id: GxsId, content: Content) -> None:
        old = self._group(grp_id)
        admin = self._private(grp_id, KEY_DISTRIB_ADMIN)
        if admin is None:
            raise PublishError(f"we are not the admin of {self.KIND} {grp_id}")
        author = self._author(old.author_id) if old.author_id != GxsId.null() else None
        grp, meta = update_group(self.SERVICE, old, content, admin, self._now(), author)
        self.driver.feed(self.core.publish_group, grp, meta)

    def _publish(self, grp_id: GxsId, content: Content, *, title: str = "",
                 author: GxsId | None = None, anonymous: bool = False,
                 parent: GxsMessageId | None = None, thread: GxsMessageId | None = None,
                 original: GxsMessageId | None = None) -> GxsMessageId:
        group = self._group(grp_id)
        if not self.store.subscribed(grp_id):
            raise PublishError(f"subscribe to {self.KIND} {grp_id} first")
        msg, meta = make_message(
            self.SERVICE, group, content, self._now(), title=title,
            author=None if anonymous else self._author(author),
            publish=self._private(grp_id, KEY_DISTRIB_PUBLISH), parent=parent, thread=thread,
            original=original)
        self.driver.feed(self.core.publish_message, msg, meta)
        self.local.set_read(meta.msg_id, True)
        return meta.msg_id

    def subscribe(self, grp_id: GxsId, subscribed: bool = True) -> None:
        """Follow a group friends showed us (its messages sync), or stop."""
        self._group(grp_id)
        self.driver.feed(self.core.subscribe, grp_id, subscribed)

    # --- distant groups -------------------------------------------------------------------

    def served_groups(self) -> list[GxsId]:
        """The groups distant peers may sync from us: those we follow."""
        return [g for g, _, _ in self.store.groups(subscribed_only=True)]

    def search_groups(self, text: str, limit: int) -> list[GxsGroupSummary]:
        """Summaries of the groups we follow whose name holds every word of ``text``
        (case-insensitive), at most ``limit``: our answer to a distant search."""
        words = text.casefold().split()
        found: list[GxsGroupSummary] = []
        for grp_id, _, _ in self.store.groups(subscribed_only=True):
            meta = self.store.group_meta(grp_id)
            if meta is None or not words or \
                    not all(w in meta.name.casefold() for w in words):
                continue
            found.append(GxsGroupSummary(
                group_id=grp_id, name=meta.name, author_id=meta.author_id,
                publish_ts=meta.publish_ts, message_count=self.store.message_count(grp_id),
                last_message_ts=self.store.last_post_ts(grp_id), sign_flags=meta.sign_flags,
                popularity=0, search_context=meta.name))
            if len(found) >= limit:
                break
        return found

    def _tunnels(self) -> Any:
        if self.tunnels is None:
            raise PublishError("distant groups need turtle routing (it is off)")
        return self.tunnels

    def search_distant(self, text: str) -> int:
        """Search the network for groups of this kind by name; returns the search id."""
        if not text.strip():
            raise PublishError("search for some text")
        return int(self._tunnels().search(self.SERVICE, text))

    def search_results(self, request_id: int) -> list[GxsGroupSummary]:
        """The groups a distant search found so far (none for a forgotten search)."""
        found = self._tunnels().searches.get(request_id)
        return [] if found is None else list(found.results.values())

    def follow_distant(self, grp_id: GxsId) -> None:
        """Find ``grp_id``'s holders through tunnels, fetch it and subscribe to it."""
        tunnels = self._tunnels()
        if self.store.has_group(grp_id):
            self.subscribe(grp_id)
        elif grp_id not in self.following:
            if len(self.following) >= MAX_FOLLOWING:
                raise PublishError(f"already waiting for {MAX_FOLLOWING} distant groups")
            self.following.add(grp_id)
        try:
            tunnels.follow(self.SERVICE, grp_id)
        except OverflowError as e:
            self.following.discard(grp_id)
            raise PublishError(str(e)) from e

    def mark_read(self, msg_id: GxsMessageId, read: bool = True) -> None:
        try:
            self.local.set_read(msg_id, read)
        except KeyError as e:
            raise PublishError(f"no message {msg_id}") from e

    # --- reading -------------------------------------------------------------------------

    def group(self, grp_id: GxsId) -> GroupInfo | None:
        g = self.store.group(grp_id)
        if g is None:
            return None
        try:
            content = decode_content(self.SERVICE, g.grp)
        except DecodeError:
            return None
        return GroupInfo(grp_id, g.meta.name, g.meta.author_id, g.meta.publish_ts,
                         g.subscribed, self._private(grp_id, KEY_DISTRIB_ADMIN) is not None,
                         self._private(grp_id, KEY_DISTRIB_PUBLISH) is not None, content,
                         self.store.message_count(grp_id))

    def groups(self) -> list[GroupInfo]:
        """Every group we know: those we follow and those friends showed us."""
        return [i for g, _, _ in self.store.groups() if (i := self.group(g)) is not None]

    def message(self, msg_id: GxsMessageId) -> MessageInfo | None:
        m = self.store.message(msg_id)
        if m is None:
            return None
        try:
            content = decode_content(self.SERVICE, m.msg)
        except DecodeError:
            return None
        meta = m.meta
        return MessageInfo(msg_id, meta.group_id, meta.name, meta.author_id, meta.publish_ts,
                           meta.parent_id, meta.thread_id, meta.orig_msg_id, content,
                           self.local.is_read(msg_id))

    def all_messages(self, grp_id: GxsId) -> list[MessageInfo]:
        """Every stored message of the group, every version, oldest first."""
        found = [i for mid, _ in self.store.message_ids(grp_id)
                 if (i := self.message(mid)) is not None]
        return sorted(found, key=lambda i: (i.publish_ts, i.msg_id))

    def messages(self, grp_id: GxsId) -> list[MessageInfo]:
        """The group's messages as shown: the newest allowed version of each, oldest first."""
        everything = self.all_messages(grp_id)
        by_id = {m.msg_id: m for m in everything}
        shown: dict[GxsMessageId, MessageInfo] = {}
        counts: collections.Counter[GxsMessageId] = collections.Counter()
        for m in everything:
            first = m.original if m.original in by_id and m.original != m.msg_id else m.msg_id
            if first != m.msg_id and not self._may_edit(grp_id, by_id[first], m):
                continue
            counts[first] += 1
            if first not in shown or (m.publish_ts, m.msg_id) > (shown[first].publish_ts,
                                                                   shown[first].msg_id):
                shown[first] = m
        return sorted((dataclasses.replace(m, versions=counts[first])
                       for first, m in shown.items()),
                      key=lambda i: (i.publish_ts, i.msg_id))

    def _may_edit(self, grp_id: GxsId, first: MessageInfo, edit: MessageInfo) -> bool:
        """Whether ``edit`` may replace ``first`` (its author's own edit by default)."""
        return edit.author == first.author and type(edit.content) is type(first.content)

    def news_after(self, seq: int) -> list[tuple[int, MessageInfo]]:
        """New messages from friends numbered after ``seq`` (``follow``)."""
        return [(n, i) for n, _, mid in self.news if n > seq
                and (i := self.message(mid)) is not None]

    def last_seq(self) -> int:
        return self._seq

    def _comment(self, grp_id: GxsId, post: GxsMessageId, text: str,
                 author: GxsId | None, parent: GxsMessageId | None) -> GxsMessageId:
        self._post_of(grp_id, post)
        return self._publish(grp_id, Comment(text), author=author, thread=post,
                             parent=parent or post)

    def _vote(self, grp_id: GxsId, post: GxsMessageId, up: bool, author: GxsId | None,
              parent: GxsMessageId | None) -> GxsMessageId:
        self._post_of(grp_id, post)
        return self._publish(grp_id, Vote(VOTE_UP if up else VOTE_DOWN), author=author,
                             thread=post, parent=parent or post)

    def _post_of(self, grp_id: GxsId, msg_id: GxsMessageId) -> MessageInfo:
        info = self.message(msg_id)
        if info is None or info.grp_id != grp_id:
            raise PublishError(f"no message {msg_id} in {self.KIND} {grp_id}")
        return info

    def votes(self, grp_id: GxsId, about: GxsMessageId) -> tuple[int, int]:
        """(up, down) votes on a post or comment, one per author (the newest counts)."""
        latest: dict[GxsId, MessageInfo] = {}
        for m in self.all_messages(grp_id):
            if isinstance(m.content, Vote) and m.parent == about:
                latest[m.author] = m
        ups = sum(1 for m in latest.values() if m.content.vote_type == VOTE_UP)  # type: ignore
        return ups, len(latest) - ups


class ChannelService(PublishService):
    """Channels: only the publish key's holder posts; friends comment and vote."""

    SERVICE = SERVICE_CHANNELS
    KIND = "channel"
    GROUP_EVENT = ChannelStored
    MESSAGE_EVENT = ChannelMessageStored
    FILE = "gxs-0217.sqlite"

    def create(self, name: str, description: str = "", author: GxsId | None = None,
               image: bytes = b"") -> GxsId:
        return self._create(name, ChannelGroup(description, Image(0, image)), author)

    def post(self, grp_id: GxsId, title: str, body: str = "",
             files: tuple[FileItem, ...] = (), thumbnail: bytes = b"",
             original: GxsMessageId | None = None) -> GxsMessageId:
        """A post (or, with ``original``, a new version of one) signed by the publish key."""
        if self._private(grp_id, KEY_DISTRIB_PUBLISH) is None:
            raise PublishError(f"we do not hold the publish key of channel {grp_id}")
        first = None
        if original is not None:
            prev = self._post_of(grp_id, original)
            first = prev.original if prev.original != GxsMessageId.null() else original
        return self._publish(grp_id, ChannelPost(body, FileSet(tuple(files)),
                                                 Image(0, thumbnail)),
                             title=title, anonymous=True, original=first)

    def comment(self, grp_id: GxsId, post: GxsMessageId, text: str,
                author: GxsId | None = None, parent: GxsMessageId | None = None
                ) -> GxsMessageId:
        return self._comment(grp_id, post, text, author, parent)

    def vote(self, grp_id: GxsId, post: GxsMessageId, up: bool = True,
             author: GxsId | None = None, parent: GxsMessageId | None = None) -> GxsMessageId:
        return self._vote(grp_id, post, up, author, parent)

    #: Serving and fetching post files (`services.publish.files.ChannelFiles`), when the
    #: node transfers files.
    files: Any = None

    def _message_stored(self, event: MessageStored) -> None:
        if self.files is not None and event.peer is not None:
            self.files.post_arrived(event.grp_id, event.msg_id, self.reactor.seconds())

    def _may_edit(self, grp_id: GxsId, first: MessageInfo, edit: MessageInfo) -> bool:
        # Every version carries the publish signature (checked before it was stored).
        return isinstance(edit.content, ChannelPost) and isinstance(first.content, ChannelPost)


class ForumService(PublishService):
    """Forums: threads and replies signed by their authors; moderators, pinned posts."""

    SERVICE = SERVICE_FORUMS
    KIND = "forum"
    GROUP_EVENT = ForumStored
    MESSAGE_EVENT = ForumMessageStored
    FILE = "gxs-0215.sqlite"

    def create(self, name: str, description: str = "", author: GxsId | None = None,
               moderators: frozenset[GxsId] = frozenset()) -> GxsId:
        return self._create(name, ForumGroup(description, frozenset(moderators), frozenset()),
                            author)

    def post(self, grp_id: GxsId, title: str, body: str, author: GxsId | None = None,
             parent: GxsMessageId | None = None, original: GxsMessageId | None = None
             ) -> GxsMessageId:
        """A thread (no ``parent``), a reply, or (``original``) a new version of a post."""
        thread = None
        if parent is not None:
            thread = self._post_of(grp_id, parent).thread
        if original is not None:
            prev = self._post_of(grp_id, original)
            parent = prev.parent if prev.parent != GxsMessageId.null() else None
            thread = prev.thread if prev.thread != GxsMessageId.null() else None
            original = prev.original if prev.original != GxsMessageId.null() else original
        return self._publish(grp_id, ForumPost(body), title=title, author=author,
                             parent=parent, thread=thread, original=original)

    def _content(self, grp_id: GxsId) -> ForumGroup:
        info = self.group(grp_id)
        if info is None or not isinstance(info.content, ForumGroup):
            raise PublishError(f"no forum {grp_id}")
        return info.content

    def set_moderators(self, grp_id: GxsId, moderators: frozenset[GxsId]) -> None:
        old = self._content(grp_id)
        self._update(grp_id, ForumGroup(old.description, frozenset(moderators),
                                        old.pinned or frozenset()))

    def pin(self, grp_id: GxsId, msg_id: GxsMessageId, pinned: bool = True) -> None:
        old = self._content(grp_id)
        pins = set(old.pinned or ())
        (pins.add if pinned else pins.discard)(msg_id)
        self._update(grp_id, ForumGroup(old.description, old.admins or frozenset(),
                                        frozenset(pins)))

    def _may_edit(self, grp_id: GxsId, first: MessageInfo, edit: MessageInfo) -> bool:
        if not isinstance(edit.content, ForumPost):
            return False
        content = self._content(grp_id)
        return edit.author == first.author or edit.author in (content.admins or ())


class BoardService(PublishService):
    """Boards ("Posted"): link and text posts, comments and votes, signed by authors."""

    SERVICE = SERVICE_POSTED
    KIND = "board"
    GROUP_EVENT = BoardStored
    MESSAGE_EVENT = BoardMessageStored
    FILE = "gxs-0216.sqlite"

    def create(self, name: str, description: str = "", author: GxsId | None = None) -> GxsId:
        return self._create(name, BoardGroup(description, None), author)

    def post(self, grp_id: GxsId, title: str, link: str = "", notes: str = "",
             author: GxsId | None = None, original: GxsMessageId | None = None
             ) -> GxsMessageId:
        if original is not None:
            prev = self._post_of(grp_id, original)
            original = prev.original if prev.original != GxsMessageId.null() else original
        return self._publish(grp_id, BoardPost(link, notes, None), title=title, author=author,
                             original=original)

    def comment(self, grp_id: GxsId, post: GxsMessageId, text: str,
                author: GxsId | None = None, parent: GxsMessageId | None = None
                ) -> GxsMessageId:
        return self._comment(grp_id, post, text, author, parent)

    def vote(self, grp_id: GxsId, post: GxsMessageId, up: bool = True,
             author: GxsId | None = None, parent: GxsMessageId | None = None) -> GxsMessageId:
        return self._vote(grp_id, post, up, author, parent)
