"""services: the network services (one module or package each), the Node and `rsnode`.

Each service module declares what it adds to a node in one `ServiceSpec` (id, name,
versions, items, typed events, control commands, ``rsnode`` subcommands); `registry` lists
them; `Node` builds and wires them and is what applications hold (`IP3Interface`), handing
out the typed events (`events`).  Service control (`ServiceControl`) negotiates which
services run with each peer.

The names below are imported on first use (PEP 562): ``rsnode status`` imports the control
channel's client, not every service.
"""

from pqi.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "services.node.node": ("Node", "FriendInfo"),
    "services.spec": ("ServiceSpec", "Commands", "RegistryError"),
    "services.registry": ("NODE_SERVICES",),
    "services.base": ("Service", "PeriodicService"),
    "services.service_control": ("ServiceControl", "ServiceControlError"),
    # typed events (`Node.subscribe`, `Node.next_event`)
    "services.events": ("EventBus", "UnknownEventError", "TooManySubscribersError",
                        "FriendConnected", "FriendDisconnected", "ServicesNegotiated",
                        "ExternalAddressChanged"),
    "services.status": ("StatusChanged", "StatusService", "StatusValueError"),
    "services.discovery": ("PendingFriend", "LocationLearned", "OwnAddressSeen",
                           "DiscoveryService", "DiscoveryListener"),
    "services.sharing.manager": ("FileListUpdated", "SharesIndexed"),
    "services.transfer.service": ("TransferProgress", "TransferCompleted", "TransferFailed",
                                  "TransferBadSource"),
    "services.heartbeat": ("HeartbeatService",),
    "services.rtt": ("RttService", "RttStats"),
    "services.bwctrl": ("BandwidthService",),
    "services.node.control_channel": ("ControlServer", "ControlClientError",
                                      "NodeNotRunningError"),
    # chat and mail (issue 5)
    "services.chat.service": ("ChatService", "ChatMessage", "ChatStatus", "ChatError",
                              "AvatarTooLargeError", "MessageTooLongError", "MessageReceived",
                              "ChatStatusReceived", "AvatarReceived"),
    "services.chat.store": ("ChatStore",),
    "services.mail.service": ("MailService", "Mail", "Draft", "MailError", "NoRecipientError",
                              "MailTooLargeError", "UnknownMailError", "MailReceived",
                              "MailDelivered", "FileOffered"),
    "services.mail.store": ("MailStore",),
    # channels, forums and boards (issue 18)
    "services.publish.events": ("ChannelStored", "ChannelMessageStored", "ChannelFileWanted",
                                "ForumStored", "ForumMessageStored", "BoardStored",
                                "BoardMessageStored"),
})
