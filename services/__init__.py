"""services: the network services (one module or package each), the Node and `rsnode`.

Each service module declares what it adds to a node in one `ServiceSpec` (id, name,
versions, items, typed events, control commands, ``rsnode`` subcommands); `registry` lists
them; `Node` builds and wires them and is what applications hold (`IP3Interface`), handing
out the typed events (`events`).  Service control (`ServiceControl`) negotiates which
services run with each peer.
"""

from services.base import PeriodicService, Service
from services.chat.service import (  # chat and mail (issue 5)
    AvatarReceived,
    AvatarTooLargeError,
    ChatError,
    ChatMessage,
    ChatService,
    ChatStatus,
    ChatStatusReceived,
    MessageReceived,
    MessageTooLongError,
)
from services.chat.store import ChatStore  # chat and mail (issue 5)
from services.events import (
    EventBus,
    ExternalAddressChanged,
    FriendConnected,
    FriendDisconnected,
    ServicesNegotiated,
    TooManySubscribersError,
    UnknownEventError,
)
from services.mail.service import (  # chat and mail (issue 5)
    Draft,
    FileOffered,
    Mail,
    MailDelivered,
    MailError,
    MailReceived,
    MailService,
    MailTooLargeError,
    NoRecipientError,
    UnknownMailError,
)
from services.mail.store import MailStore  # chat and mail (issue 5)
from services.node.control_channel import ControlClientError, ControlServer, NodeNotRunningError
from services.node.node import FriendInfo, Node
from services.publish.events import (  # channels, forums and boards (issue 18)
    BoardMessageStored,
    BoardStored,
    ChannelFileWanted,
    ChannelMessageStored,
    ChannelStored,
    ForumMessageStored,
    ForumStored,
)
from services.registry import NODE_SERVICES
from services.service_control import ServiceControl, ServiceControlError
from services.sharing.manager import FileListUpdated, SharesIndexed
from services.spec import Commands, RegistryError, ServiceSpec
from services.transfer.service import (
    TransferBadSource,
    TransferCompleted,
    TransferFailed,
    TransferProgress,
)

from .bwctrl import BandwidthService
from .discovery import (
    DiscoveryListener,
    DiscoveryService,
    LocationLearned,
    OwnAddressSeen,
    PendingFriend,
)
from .heartbeat import HeartbeatService
from .rtt import RttService, RttStats
from .status import StatusChanged, StatusService, StatusValueError

__all__ = [
    "Node", "FriendInfo",
    "ServiceSpec", "Commands", "RegistryError", "NODE_SERVICES",
    "Service", "PeriodicService", "ServiceControl", "ServiceControlError",
    # typed events (`Node.subscribe`, `Node.next_event`)
    "EventBus", "UnknownEventError", "TooManySubscribersError",
    "FriendConnected", "FriendDisconnected", "ServicesNegotiated", "ExternalAddressChanged",
    "StatusChanged", "PendingFriend", "LocationLearned", "OwnAddressSeen",
    "MessageReceived", "ChatStatusReceived", "AvatarReceived",
    "MailReceived", "MailDelivered", "FileOffered", "FileListUpdated", "SharesIndexed",
    "TransferProgress", "TransferCompleted", "TransferFailed", "TransferBadSource",
    "HeartbeatService", "StatusService", "StatusValueError", "RttService", "RttStats",
    "BandwidthService", "DiscoveryService", "DiscoveryListener",
    "ControlServer", "ControlClientError", "NodeNotRunningError",
    # chat and mail (issue 5)
    "ChatService", "ChatMessage", "ChatStatus", "ChatStore", "ChatError",
    "AvatarTooLargeError", "MessageTooLongError",
    "MailService", "Mail", "Draft", "MailStore", "MailError", "NoRecipientError",
    "MailTooLargeError", "UnknownMailError",
    # channels, forums and boards (issue 18)
    "ChannelStored", "ChannelMessageStored", "ChannelFileWanted", "ForumStored",
    "ForumMessageStored", "BoardStored", "BoardMessageStored",
]
