"""services: the network services (one module or package each), the Node and `rsnode`.

Service control (`ServiceControl`) negotiates which services run with each peer; the small
services (heartbeat, status, RTT, bandwidth control) and gossip discovery are `Service`
subclasses; `Node` wires them to the links and is what applications hold (`IP3Interface`).
"""

from services.chat.service import (  # chat and mail (issue 5)
    AvatarTooLargeError,
    ChatError,
    ChatMessage,
    ChatService,
    ChatStatus,
    MessageTooLongError,
)
from services.chat.store import ChatStore  # chat and mail (issue 5)
from services.mail.service import (  # chat and mail (issue 5)
    Draft,
    Mail,
    MailError,
    MailService,
    MailTooLargeError,
    NoRecipientError,
    UnknownMailError,
)
from services.mail.store import MailStore  # chat and mail (issue 5)
from services.node.control_channel import ControlClientError, ControlServer, NodeNotRunningError
from services.node.node import FriendInfo, Node, UnknownEventError
from services.service_control import Service, ServiceControl, ServiceControlError

from .bwctrl import BandwidthService
from .discovery import DiscoveryListener, DiscoveryService
from .heartbeat import HeartbeatService
from .rtt import RttService, RttStats
from .status import StatusService, StatusValueError

__all__ = [
    "Node", "FriendInfo", "UnknownEventError",
    "Service", "ServiceControl", "ServiceControlError",
    "HeartbeatService", "StatusService", "StatusValueError", "RttService", "RttStats",
    "BandwidthService", "DiscoveryService", "DiscoveryListener",
    "ControlServer", "ControlClientError", "NodeNotRunningError",
    # chat and mail (issue 5)
    "ChatService", "ChatMessage", "ChatStatus", "ChatStore", "ChatError",
    "AvatarTooLargeError", "MessageTooLongError",
    "MailService", "Mail", "Draft", "MailStore", "MailError", "NoRecipientError",
    "MailTooLargeError", "UnknownMailError",
]
