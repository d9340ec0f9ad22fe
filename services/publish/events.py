# -*- test-case-name: tests.test_publish_service -*-
"""Typed events of channels, forums and boards (``node.subscribe(ChannelMessageStored, f)``).

A group or message is reported once it passed every check and is stored: ``peer`` is the
friend it came from, None when we made it.
"""

from __future__ import annotations

import dataclasses

from pqi.wire.fields import GxsId, GxsMessageId, SslId

__all__ = ["GroupEvent", "MessageEvent", "ChannelStored", "ChannelMessageStored",
           "ForumStored", "ForumMessageStored", "BoardStored", "BoardMessageStored",
           "ChannelFileWanted", "PUBLISH_EVENTS"]


@dataclasses.dataclass(frozen=True)
class GroupEvent:
    """A group (new, or a newer version) is stored."""

    grp_id: GxsId
    peer: SslId | None


@dataclasses.dataclass(frozen=True)
class MessageEvent:
    """A message (post, reply, comment, vote) is stored."""

    grp_id: GxsId
    msg_id: GxsMessageId
    peer: SslId | None


class ChannelStored(GroupEvent):
    """A channel is stored."""


class ChannelMessageStored(MessageEvent):
    """A channel post, comment or vote is stored."""


class ForumStored(GroupEvent):
    """A forum is stored."""


class ForumMessageStored(MessageEvent):
    """A forum thread or reply is stored."""


class BoardStored(GroupEvent):
    """A board is stored."""


class BoardMessageStored(MessageEvent):
    """A board post, comment or vote is stored."""


@dataclasses.dataclass(frozen=True)
class ChannelFileWanted:
    """A file of a channel post is being downloaded (auto-download, or asked for)."""

    grp_id: GxsId
    msg_id: GxsMessageId
    name: str
    size: int
    file_hash: str


PUBLISH_EVENTS = (ChannelStored, ChannelMessageStored, ForumStored, ForumMessageStored,
                  BoardStored, BoardMessageStored, ChannelFileWanted)
