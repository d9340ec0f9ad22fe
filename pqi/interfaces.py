# -*- test-case-name: tests.test_interfaces -*-
"""The contracts between the layers, as zope interfaces (Twisted's way).

Names follow RetroShare's PQI classes so the tradition stays recognisable: a BinInterface moves
bytes (any Twisted ``ITransport``), a PQInterface moves items for one peer, a NetInterface makes
and accepts connections, a service consumes and produces items, and the P3Interface is what an
application holds.
"""

from __future__ import annotations

from twisted.internet.interfaces import ITransport
from zope.interface import Attribute, Interface

from pqi.link.peer import DisconnectReason, LinkEvent, LinkState, PeerIdentity
from pqi.wire.address import NetAddress
from pqi.wire.fields import PgpId, SslId

__all__ = [
    "IBinInterface",
    "IPQInterface",
    "INetInterface",
    "IService",
    "IItemSender",
    "IP3Interface",
    "IAddressFilter",
    "PeerIdentity",
    "LinkState",
    "DisconnectReason",
    "LinkEvent",
]

#: A byte transport: Twisted's ``ITransport`` already is one (TCP, TLS, TCP-over-UDP).
IBinInterface = ITransport


class IPQInterface(Interface):
    """Items to and from one peer over its current link (RetroShare's PQInterface)."""

    peer = Attribute("The `PeerIdentity` of the authenticated peer.")

    def send_item(item: object) -> object:  # noqa: N805
        """Queue an item for the peer (raises `pqi.wire.errors.QueueFullError` when it reads too
        slowly); returns its `pqi.wire.streamer.Sent` handle."""

    def close(reason: DisconnectReason) -> None:  # noqa: N805
        """Drop the link."""


class IAddressFilter(Interface):
    """Which remote IP addresses we talk to at all (the ban list): asked at TCP accept and
    dial, and for every UDP datagram in or out (DHT, stunner, relay, TOU)."""

    def accepts(host: object) -> bool:  # noqa: N805
        """False when ``host`` (an ``ipaddress`` address) is banned; each refusal counts."""

    def report_abuse(host: object, what: str) -> bool:  # noqa: N805
        """Our DHT or relay caught ``host`` abusing it (``what`` says how); True when the
        report was taken (the filter decides what it leads to)."""


class IItemSender(Interface):
    """What a service uses to send: the node routes by SSL id to the peer's current link."""

    def send(peer: SslId, item: object) -> object:  # noqa: N805
        """Queue ``item`` for ``peer``; False when the peer has no link (nothing queued),
        otherwise a true value: the node's senders return the item's
        `pqi.wire.streamer.Sent` handle, which says when it was written."""

    def connected_peers() -> list[PeerIdentity]:  # noqa: N805
        """Peers with a link up now."""


class INetInterface(Interface):
    """Listens, dials, and reports link state changes (RetroShare's NetInterface)."""

    def listen(port: int) -> object:  # noqa: N805
        """Start accepting on ``port`` (0: any); returns a Deferred firing with the port."""

    def connect(ssl_id: SslId, address: NetAddress) -> object:  # noqa: N805
        """Dial ``address`` expecting ``ssl_id``; Deferred firing with an IPQInterface."""

    def add_link_observer(observer: object) -> None:  # noqa: N805
        """Call ``observer(LinkEvent)`` on every connect and disconnect."""


class IService(Interface):
    """A network service: announced in the ServiceInfo list, fed items of its service id.

    The service-control layer enables a service for a peer only when both sides list it
    compatibly; items of a service not enabled for a peer never reach it.
    """

    service_id = Attribute("u16 service type, e.g. 0x0012 for chat.")
    name = Attribute("Name as announced, e.g. 'chat'.")
    version = Attribute("(major, minor) announced version.")
    min_version = Attribute("(major, minor) oldest peer version we work with.")

    def peer_connected(peer: PeerIdentity) -> None:  # noqa: N805
        """The service was enabled for ``peer`` (its link is up, negotiation agreed)."""

    def peer_disconnected(peer: PeerIdentity, reason: DisconnectReason) -> None:  # noqa: N805
        """``peer``'s link went down."""

    def receive(peer: PeerIdentity, item: object) -> None:  # noqa: N805
        """An item of this service arrived from ``peer``."""


class IP3Interface(Interface):
    """The node as an application sees it (RetroShare's P3Interface): friends, status, chat,
    mail, files, events.  Calls that touch the network or the disk return Deferreds."""

    ssl_id = Attribute("Our location's SSL id.")
    pgp_id = Attribute("Our profile's PGP id.")
    sharing = Attribute("Shared folders, friends' file lists, search (None when sharing is "
                        "off).")
    transfers = Attribute("Downloads: start, pause, resume, cancel, priorities, progress.")

    def friends() -> list[object]:  # noqa: N805
        """Accepted friend locations with their online state, addresses and round-trip time."""

    def add_friend(certificate_text: str) -> object:  # noqa: N805
        """Accept a friend from a long certificate or short invite (explicit approval)."""

    def approve(pgp_id: PgpId) -> object:  # noqa: N805
        """Accept a profile that discovery made pending."""

    def pending() -> list[object]:  # noqa: N805
        """Profiles learned from friends and waiting for our approval."""

    def set_status(status: int) -> None:  # noqa: N805
        """Announce our status (online, away, busy, inactive) to connected friends."""

    def subscribe(event_type: type, callback: object) -> object:  # noqa: N805
        """Call ``callback(event)`` on each event of ``event_type`` (a frozen dataclass);
        returns an unsubscribe callable."""

    def next_event(event_type: type, predicate: object = None) -> object:  # noqa: N805
        """A Deferred of the next event of ``event_type`` that passes ``predicate``."""

    def send_chat(peer: object, body: str) -> object:  # noqa: N805
        """Private message to a friend, queued persistently while it is offline."""

    def broadcast_chat(body: str) -> object:  # noqa: N805
        """Message to every connected friend."""

    def chat_history(peer: object = None, limit: int = 50,  # noqa: N805
                     before: object = None) -> list[object]:
        """A page of chat history, oldest first."""

    def send_mail(to: object = (), subject: str = "", body: str = "",  # noqa: N805
                  *, cc: object = (), bcc: object = (), attachments: object = ()) -> object:
        """Mail to friends; fires once the mail is safely in the outbox."""

    def inbox(unread_only: bool = False, tag: object = None) -> list[object]:  # noqa: N805
        """Received mail."""

    def read_mail(mail_id: int) -> object:  # noqa: N805
        """One received mail, marked read."""

    def send_file(peer: object, path: str) -> object:  # noqa: N805
        """Offer a file to a friend (shared with it and announced by mail)."""

    def accept_offer(peer: object, item: object) -> object:  # noqa: N805
        """Download a file a friend offered."""
