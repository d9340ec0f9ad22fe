"""publish: channels (0x0217), forums (0x0215) and boards (0x0216), RetroShare's GXS
publishing services: signed groups and messages synced friend to friend by NXS.

`services.publish.making` makes signed groups and messages (sans-IO); `services.publish.service`
holds the three node services (``node.channels``, ``node.forums``, ``node.boards``);
`services.publish.files` serves and fetches channel files; `services.publish.specs` their
node specs and control commands; `services.publish.events` their typed events.
"""

from services.publish.events import (
    BoardMessageStored,
    BoardStored,
    ChannelFileWanted,
    ChannelMessageStored,
    ChannelStored,
    ForumMessageStored,
    ForumStored,
)
from services.publish.making import NewGroup, make_group, make_message, update_group
from services.publish.service import (
    BoardService,
    ChannelService,
    ForumService,
    GroupInfo,
    MessageInfo,
    PublishError,
)

__all__ = ["BoardMessageStored", "BoardService", "BoardStored", "ChannelFileWanted",
           "ChannelMessageStored", "ChannelService", "ChannelStored", "ForumMessageStored",
           "ForumService", "ForumStored", "GroupInfo", "MessageInfo", "NewGroup",
           "PublishError", "make_group", "make_message", "update_group"]
