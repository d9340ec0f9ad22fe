# -*- test-case-name: tests.test_node -*-
"""The Node: one running location with its listeners, links and services.

`Node` is a `MultiService` whose children are the `NetInterface` (listener, dialler, link
manager, one `PQIPerson` per friend location) and, optionally, the local control channel.  It
builds the services its registry lists (`services.registry.NODE_SERVICES`; each module states
what it adds in its `services.spec.ServiceSpec`) and wires them to the links::

    NetInterface --LinkEvent--> Node --link_up/link_down--> ServiceControl --> services
    NetInterface --(peer, item)----------------------------> ServiceControl --> service.receive
    services --send--> ServiceControl (gate) --> NetInterface.send --> PQIPerson --> streamer

and offers applications the `IP3Interface`: friends with their state, friend approval,
status, and typed events (`subscribe`, `next_event`; see `services.events`).  Time comes
from the injected reactor; logs are `twisted.logger` events with fields.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from twisted.application.service import IService as ITwistedService
from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

import pqi.items  # noqa: F401  (registers every item class: a node decodes all it may meet)
from pqi.identity.account import Account
from pqi.identity.certificate import RsCertificate
from pqi.identity.friends import (
    FriendList,
    FriendNameError,
    Profile,
    TrustLevel,
    UnknownFriendError,
)
from pqi.identity.invite import ShortInvite
from pqi.interfaces import DisconnectReason, IP3Interface, LinkEvent, LinkState, PeerIdentity
from pqi.items.status import PeerStatus
from pqi.link.linkmgr import AddressSource, Attempt
from pqi.link.netinterface import NetInterface
from pqi.storage import atomic_write
from pqi.wire.address import NetAddress
from pqi.wire.errors import DecodeError, QueueFullError
from pqi.wire.fields import PgpId, SslId
from pqi.wire.streamer import PQIStreamer
from services.bwctrl import BandwidthService
from services.chat.service import ChatMessage, ChatService, text_to_html
from services.discovery import DiscoveryService
from services.events import (
    EventBus,
    ExternalAddressChanged,
    FriendConnected,
    FriendDisconnected,
    ServicesNegotiated,
)
from services.heartbeat import HeartbeatService
from services.linkup import LINKUP_DELAY
from services.mail.service import Draft, Mail, MailService
from services.nat.udpport import UdpOptions, UdpPort
from services.node.control_channel import ControlServer
from services.node.lock import AccountLock
from services.node.netsettings import NET_FILE, listening_address, recorded_addresses
from services.registry import NODE_SERVICES, event_types, node_options
from services.rtt import RttService, RttStats
from services.service_control import ServiceControl
from services.sharing import FileSharing
from services.spec import Commands, RegistryError, ServiceSpec
from services.status import StatusService
from services.transfer import FileTransferService
from upnp import Protocol as UpnpProtocol
from upnp import UpnpService, UpnpStatus

__all__ = [
    "Node",
    "FriendInfo",
    "COMMANDS",
    "NET_FILE",
    "FRIENDS_FILE",
    "MAX_ROOM_WATCHERS",
    "listening_address",
    "recorded_addresses",
]

#: The friend list's sqlite file in the account directory.
FRIENDS_FILE: Final = "friends.sqlite"
#: Callbacks `Node.link_room_watch` keeps (one per bulk-sending service; the node runs a
#: few dozen services in all).
MAX_ROOM_WATCHERS: Final = 16

#: The node's own control commands (each service brings its own in its spec).
COMMANDS = Commands()

E = TypeVar("E")


@dataclasses.dataclass(frozen=True)
class FriendInfo:
    """One friend location as ``rsnode status`` shows it."""

    ssl_id: SslId
    pgp_id: PgpId
    name: str
    location: str
    online: bool
    status: int
    addresses: tuple[NetAddress, ...]
    connected_address: NetAddress | None
    rtt: RttStats | None
    attempts: tuple[Attempt, ...]
    next_attempt: float | None
    services: frozenset[int]
    #: How the link reaches the friend (`pqi.link.linkmgr.Path`).
    path: str | None = None

    def to_json(self, now: float) -> dict[str, Any]:
        """A JSON-able summary (times relative to ``now``), for the control channel."""
        return {
            "ssl_id": self.ssl_id.to_hex(), "pgp_id": self.pgp_id.to_hex(), "name": self.name,
            "location": self.location, "online": self.online,
            "status": PeerStatus(self.status).name.lower()
            if self.status in PeerStatus._value2member_map_ else str(self.status),
            "addresses": [str(a) for a in self.addresses],
            "connected_address": str(self.connected_address) if self.connected_address else None,
            "rtt_ms": None if self.rtt is None else {
                "last": round(self.rtt.last * 1000, 2), "mean": round(self.rtt.mean * 1000, 2),
                "count": self.rtt.count},
            "attempts": [{"direction": a.direction.value,
                          "address": str(a.address) if a.address else None,
                          "ago": round(now - a.ended, 1), "outcome": a.outcome.value,
                          "detail": a.detail, "path": a.path.value if a.path else None}
                         for a in self.attempts],
            "path": self.path,
            "next_attempt_in": None if self.next_attempt is None
            else round(max(0.0, self.next_attempt - now), 1),
            "services": sorted(self.services),
        }


@COMMANDS.command("status")
def _status(node: Node, args: dict[str, Any]) -> dict[str, Any]:
    return node.status_report()


@COMMANDS.command("approve")
def _approve(node: Node, args: dict[str, Any]) -> str:
    return node.approve(PgpId.from_hex(str(args["pgp_id"]))).name


@COMMANDS.command("deny")
def _deny(node: Node, args: dict[str, Any]) -> str:
    return node.deny(PgpId.from_hex(str(args["pgp_id"])))


@COMMANDS.command("add_friend")
def _add_friend(node: Node, args: dict[str, Any]) -> str:
    trust = TrustLevel[str(args.get("trust", "none")).upper()]
    return node.add_friend(str(args["certificate"]), trust).name


@implementer(IP3Interface)
class Node(MultiService):
    """A running location of ``account`` with its ``friends``.

    ``port``: TCP port to listen on (0: any free one); ``interface``: the address to listen on,
    also announced to friends as our local address (when it is a wildcard, ``advertise_host``
    is announced instead).  ``control`` starts the local control channel for ``rsnode``.
    ``owns_friends``: close the friend list when the node stops.  ``services``: the specs to
    run (default: the registry's); ``options``: the services' options by name
    (``heartbeat_period``, ``rtt_period``, ``max_rate``, ``mail_settle_delay``,
    ``file_sharing``; see each spec's ``options``).  Each built service is reached as the
    attribute its spec names (``node.chat``, ``node.transfers``, ...).
    ``lock``: hold the account directory's lock (`services.node.lock`) while running, so a
    second node on the same directory refuses to start (pass an `AccountLock` already
    acquired to hand it over).  ``linkup_delay``: how long services wait for a friend to
    process our ServiceInfo list before they talk to it (`services.linkup`);
    ``drop_until_started``: behave as RetroShare does (drop a friend's items until our own
    services started with it), for tests.
    """

    log = Logger()
    # The parts the node's own API uses (set from the registry by `_add_part`).
    discovery: DiscoveryService
    heartbeat: HeartbeatService
    bandwidth: BandwidthService
    status: StatusService
    rtt: RttService
    chat: ChatService
    mail: MailService
    transfers: FileTransferService
    sharing: FileSharing | None

    def __init__(self, reactor: Any, account: Account, friends: FriendList, *,
                 port: int = 0, interface: str = "127.0.0.1",
                 advertise_host: str = "127.0.0.1", control: bool = False,
                 owns_friends: bool = False, upnp: bool = False,
                 udp: UdpOptions | None = None, lock: bool | AccountLock = True,
                 services: Sequence[ServiceSpec] = NODE_SERVICES,
                 linkup_delay: float = LINKUP_DELAY, drop_until_started: bool = False,
                 **options: Any) -> None:
        super().__init__()
        self.lock: AccountLock | None = (lock if isinstance(lock, AccountLock)
                                         else AccountLock(account.base_dir) if lock else None)
        self.reactor = reactor
        self.account = account
        self.friends_list = friends
        self.ssl_id: SslId = account.ssl_id
        self.pgp_id: PgpId = account.pgp_id
        self.port_number = port
        self.interface = interface
        self.advertise_host = advertise_host
        self._owns_friends = owns_friends
        self.listening: NetAddress | None = None
        self.external_address: NetAddress | None = None
        self.options = node_options(services, options)
        self.events = EventBus(event_types(services))
        self.net = NetInterface(reactor, account, friends, port=port, interface=interface,
                                handler=self._on_item)
        self.net.setServiceParent(self)
        self.net.add_link_observer(self._on_link)
        self.control = ServiceControl(self._link_send, reactor, linkup_delay=linkup_delay,
                                      drop_until_started=drop_until_started)
        self.control.add_negotiation_observer(
            lambda peer, enabled: self.emit(ServicesNegotiated(peer, enabled)))
        #: ``hop(peer)``: the friend a virtual peer is reached through, or None (`link_room`).
        self.hops: list[Callable[[SslId], SslId | None]] = []
        #: Called with a friend's id when its full link has room again (`link_room_watch`).
        self._room_watchers: list[Callable[[SslId], object]] = []
        #: Spec and built part (None when its options turned it off), by node attribute.
        self.parts: dict[str, tuple[ServiceSpec, Any]] = {}
        for spec in services:
            self._add_part(spec)
        self.control_server: ControlServer | None = (
            ControlServer(reactor, account.base_dir, self.commands()) if control else None)
        self.ready: defer.Deferred[NetAddress | None] = defer.Deferred()
        # UPnP: the port is mapped once it is known (`_started`).
        self.upnp: UpnpService | None = (
            UpnpService(reactor, on_status=self._on_upnp) if upnp else None)
        # One UDP port for the DHT, the stunner, relays and TCP-over-UDP.
        self.udp: UdpPort | None = None
        if udp is not None:
            self.udp = UdpPort(reactor, self.net,
                               lambda: [loc.ssl_id for loc in self.friends_list.locations()],
                               udp)
            self.udp.setServiceParent(self)

    def _add_part(self, spec: ServiceSpec) -> None:
        """Build a spec's part, register its network service, make it reachable."""
        attribute = spec.attribute or spec.name
        if hasattr(self, attribute):
            raise RegistryError(f"service {spec.name}: node attribute {attribute!r} is taken")
        part = spec.build(self) if spec.build is not None else None
        self.parts[attribute] = (spec, part)
        setattr(self, attribute, part)
        if part is None:
            return
        self.control.add_service(spec.network(part) if spec.network is not None else part)
        if ITwistedService.providedBy(part):
            part.setServiceParent(self)

    def commands(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        """The control-channel commands: the node's and those of every part it runs."""
        tables: list[Any] = [COMMANDS]
        tables += [spec.commands for spec, part in self.parts.values() if part is not None]
        found: dict[str, Callable[[dict[str, Any]], Any]] = {}
        for table in tables:
            for name, command in table.items():
                if name in found:
                    raise RegistryError(f"two services define the command {name!r}")
                found[name] = functools.partial(command, self)
        return found

    # --- lifecycle ---------------------------------------------------------------------------

    def startService(self) -> defer.Deferred[NetAddress | None]:  # noqa: N802
        """Listen, start dialling friends and the services' timers; fires with our address
        (fails with `AccountLockedError` when another node runs on the account directory)."""
        if self.lock is not None:
            try:
                self.lock.acquire()
            except Exception:
                defer.fail().chainDeferred(self.ready)
                return self.ready
        Service.startService(self)
        for service in self.control.services():
            service.start()  # type: ignore[attr-defined]
        started = [defer.maybeDeferred(child.startService) for child in self]
        d = defer.gatherResults(started, consumeErrors=True)
        d.addCallback(lambda _: self._started())
        d.addErrback(self._start_failed)
        d.chainDeferred(self.ready)
        return self.ready

    def _started(self) -> NetAddress | None:
        if self.net.listening is not None:
            port = self.net.listening.getHost().port
            host = self.interface
            if ipaddress.ip_address(host).is_unspecified:
                host = self.advertise_host
            self.listening = NetAddress(ipaddress.ip_address(host), port)
            self._record_listening(self.listening)
            if self.upnp is not None:
                self.upnp.set_ports(port)
                self.upnp.setServiceParent(self)
        if self.control_server is not None:
            self.control_server.start()
        self.log.info("node {ssl_id} ({name}/{location}) up, listening on {address}",
                      ssl_id=self.ssl_id.to_hex(), name=self.account.name,
                      location=self.account.location_name, address=str(self.listening))
        return self.listening

    def _start_failed(self, failure: Failure) -> Failure:
        if failure.check(defer.FirstError):
            failure = failure.value.subFailure
        self.log.failure("node failed to start", failure)
        return failure

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802
        """Stop timers, close every link and the listeners; fires when all is closed."""
        for service in self.control.services():
            service.stop()  # type: ignore[attr-defined]
        self.control.stop()
        waits = [super().stopService()]
        if self.control_server is not None:
            waits.append(self.control_server.stop())
        d = defer.gatherResults(waits, consumeErrors=True)

        def done(_: object) -> None:
            if self.lock is not None:
                self.lock.release()
            if self._owns_friends:
                self.friends_list.close()
            for spec, part in self.parts.values():
                if spec.close is not None and part is not None:
                    spec.close(part)
            self.log.info("node {ssl_id} stopped", ssl_id=self.ssl_id.to_hex())

        return d.addCallback(done)

    def _record_listening(self, address: NetAddress) -> None:
        external = str(self.external_address) if self.external_address else None
        atomic_write(Path(self.account.base_dir) / NET_FILE,
                     json.dumps({"host": str(address.host), "port": address.port,
                                 "external": external}).encode())

    def _on_upnp(self, status: UpnpStatus) -> None:
        """Learn (or lose) the external address the gateway maps."""
        port = status.external_port(UpnpProtocol.TCP)
        address = (NetAddress(status.external_ip, port)
                   if status.external_ip is not None and port is not None else None)
        if address != self.external_address:
            self.external_address = address
            self.log.info("external address (UPnP): {address}", address=str(address))
            if self.listening is not None:
                self._record_listening(self.listening)
            self.emit(ExternalAddressChanged(address))

    # --- wiring --------------------------------------------------------------------------------

    def _link_send(self, ssl_id: SslId, item: object) -> Any:
        """The item's `Sent` handle (truthy), or False when it could not be queued."""
        try:
            return self.net.send(ssl_id, item)
        except QueueFullError:
            self.log.warn("queue to {peer} full: item dropped", peer=ssl_id.to_hex())
            return False

    def _on_item(self, peer: PeerIdentity, item: object) -> None:
        self.control.deliver(peer, item)  # type: ignore[arg-type]

    def _on_link(self, event: LinkEvent) -> None:
        if event.state is LinkState.CONNECTED:
            link = self.link_of(event.peer.ssl_id)
            if isinstance(link, PQIStreamer):
                link.on_room = functools.partial(self._link_room_event, event.peer.ssl_id)
            self._remember_location(event.peer)
            self.friends_list.set_last_connected(event.peer.ssl_id,
                                                 int(self.reactor.seconds()))
            self.control.link_up(event.peer)
            self.emit(FriendConnected(event.peer))
        else:
            reason = event.reason or DisconnectReason.CLOSED
            self.control.link_down(event.peer, reason)
            self.emit(FriendDisconnected(event.peer, reason))

    def _remember_location(self, peer: PeerIdentity) -> None:
        """TLS admitted a location we have no record of: a new device of an accepted profile
        (RetroShare records those too)."""
        try:
            self.friends_list.location(peer.ssl_id)
        except UnknownFriendError:
            self.friends_list.add_location(peer.pgp_id, peer.ssl_id, peer.location_name)

    # --- what services use of the node (`services.spec.NodeContext`) -------------------------

    def last_received(self, ssl_id: SslId) -> float | None:
        """Reactor time of the last read on the friend's link (None without a link)."""
        person = self.net.person(ssl_id)
        return None if person is None else person.last_received

    def reset_link(self, ssl_id: SslId, reason: DisconnectReason) -> None:
        """Close the friend's link (heartbeat found it silent)."""
        person = self.net.person(ssl_id)
        if person is not None:
            person.close(reason)

    def link_room(self, ssl_id: SslId) -> int:
        """Bytes the friend's link queue takes now (the upload side fills up to that).  A peer
        that is not a friend but reached through one (a tunnel's virtual peer) gets the room
        of that friend's link, as the first of `hops` to answer names it."""
        for hop in self.hops:
            friend = hop(ssl_id)
            if friend is not None:
                ssl_id = friend
                break
        link = self.link_of(ssl_id)
        if link is None:
            return 0
        return max(0, link.enframer.max_queue_bytes * 3 // 4 - link.queued_bytes)

    def link_room_watch(self, callback: Callable[[SslId], object]) -> None:
        """Call ``callback(ssl_id)`` each time a friend's link, filled above its room mark,
        has drained to it (`PQIStreamer.on_room`): a bulk sender waits for this instead of
        polling `link_room`.  One callback per service that sends in bulk, at most
        `MAX_ROOM_WATCHERS` (`RegistryError` past that)."""
        if len(self._room_watchers) >= MAX_ROOM_WATCHERS:
            raise RegistryError(f"more than {MAX_ROOM_WATCHERS} link room watchers")
        self._room_watchers.append(callback)

    def _link_room_event(self, ssl_id: SslId) -> None:
        for watcher in self._room_watchers:
            try:
                watcher(ssl_id)
            except Exception:
                self.log.failure("link room watcher failed for {peer}", peer=ssl_id.to_hex())

    def link_of(self, ssl_id: SslId) -> Any:
        """The friend's current link (`PQIStreamer`), None when offline."""
        person = self.net.person(ssl_id)
        return None if person is None else person.link

    # --- events --------------------------------------------------------------------------------

    def subscribe(self, event_type: type[E],
                  callback: Callable[[E], object]) -> Callable[[], None]:
        """Call ``callback(event)`` on every event of ``event_type`` (`services.events` and
        the services' own events); returns the unsubscriber."""
        return self.events.subscribe(event_type, callback)

    def next_event(self, event_type: type[E],
                   predicate: Callable[[E], bool] | None = None) -> defer.Deferred[E]:
        """A Deferred of the next ``event_type`` event that passes ``predicate``."""
        return self.events.next_event(event_type, predicate)

    def emit(self, event: object) -> None:
        """Hand an event to its subscribers (services call this; a failing subscriber is
        logged)."""
        self.events.emit(event)

    # --- IP3Interface --------------------------------------------------------------------------

    def friends(self) -> list[FriendInfo]:
        """Every accepted friend location with its live state."""
        out = []
        names = {p.pgp_id: p.name for p in self.friends_list.profiles()}
        for location in self.friends_list.locations():
            person = self.net.person(location.ssl_id)
            online = person is not None and person.connected
            addresses: list[NetAddress] = [a.addr for a in location.addresses
                                           if a.addr is not None]
            attempts: tuple[Attempt, ...] = ()
            next_attempt = None
            path = None
            if self.net.manager.is_friend(location.ssl_id):
                st = self.net.manager.status(location.ssl_id)
                attempts, next_attempt = st.attempts, st.next_attempt
                path = st.path.value if st.path is not None else None
                addresses += [r.address for r in st.addresses if r.address not in addresses]
            # A connected friend that has not announced a status yet is ONLINE (RetroShare
            # shows it so); a disconnected one OFFLINE whatever it said last.
            status = self.status.status_of(location.ssl_id)
            if online and status == PeerStatus.OFFLINE:
                status = PeerStatus.ONLINE
            elif not online:
                status = PeerStatus.OFFLINE
            out.append(FriendInfo(
                ssl_id=location.ssl_id, pgp_id=location.pgp_id,
                name=names.get(location.pgp_id, ""), location=location.name, online=online,
                status=status, addresses=tuple(addresses),
                connected_address=person.address if online else None,
                rtt=self.rtt.stats(location.ssl_id), attempts=attempts,
                next_attempt=next_attempt, services=self.control.enabled(location.ssl_id),
                path=path))
        return out

    def add_friend(self, certificate_text: str,
                   trust: TrustLevel = TrustLevel.NONE) -> Profile:
        """Accept a friend from a long certificate (explicit approval) and dial it now.

        A short invite is accepted too (an SSL-only friend until discovery brings its key).
        """
        text = certificate_text.strip()
        try:
            cert = RsCertificate.decode(text)
        except DecodeError as long_error:
            try:
                invite = ShortInvite.decode(text)
            except DecodeError:
                raise long_error from None
            location = self.friends_list.add_from_invite(invite)
            self._watch_location(location.ssl_id)
            self.discovery.friends_changed()
            return self.friends_list.profile(location.pgp_id)
        profile = self.friends_list.add_from_certificate(cert, trust)
        if cert.ssl_id is not None:
            self._watch_location(cert.ssl_id)
        self.discovery.friends_changed()
        return profile

    def approve(self, pgp_id: PgpId) -> Profile:
        """Accept a pending certificate (e.g. one discovery brought) and dial its locations."""
        profile = self.friends_list.approve(pgp_id)
        for location in self.friends_list.locations(pgp_id):
            self._watch_location(location.ssl_id)
        self.log.info("approved {name} ({pgp_id})", name=profile.name, pgp_id=pgp_id.to_hex())
        self.discovery.friends_changed()
        return profile

    def deny(self, pgp_id: PgpId) -> str:
        """Forget a pending certificate; returns its name."""
        name = next((p.name for p in self.friends_list.pending() if p.pgp_id == pgp_id),
                    pgp_id.to_hex())
        self.friends_list.reject(pgp_id)
        self.log.info("denied {name} ({pgp_id})", name=name, pgp_id=pgp_id.to_hex())
        return name

    def remove_friend(self, pgp_id: PgpId) -> None:
        """Forget a friend profile with its locations and close their links."""
        for location in self.friends_list.locations(pgp_id):
            if self.net.manager.is_friend(location.ssl_id):
                self.net.remove_friend(location.ssl_id)
        self.friends_list.remove_profile(pgp_id)
        self.discovery.friends_changed()

    def pending(self) -> list[Any]:
        """Certificates waiting for approval (`pqi.identity.friends.PendingCertificate`)."""
        return self.friends_list.pending()

    def set_status(self, status: int) -> None:
        self.status.set_status(status)

    def _watch_location(self, ssl_id: SslId) -> None:
        """Dial a friend location the user just added or approved: now, not after a start
        spread or a backoff left from earlier failures."""
        location = self.friends_list.location(ssl_id)
        addresses = [a.addr for a in location.addresses if a.addr is not None
                     and a.addr.port != 0 and not a.addr.host.is_unspecified]
        if self.net.manager.is_friend(ssl_id):
            for address in addresses:
                self.net.add_address(ssl_id, address, AddressSource.MANUAL)
        else:
            self.net.add_friend(ssl_id, addresses)
        if self.running:
            self.net.redial(ssl_id)

    def status_report(self) -> dict[str, Any]:
        """What ``rsnode status`` prints, as JSON data."""
        now = self.reactor.seconds()
        return {
            "ssl_id": self.ssl_id.to_hex(), "pgp_id": self.pgp_id.to_hex(),
            "name": self.account.name, "location": self.account.location_name,
            "listening": str(self.listening) if self.listening else None,
            "status": PeerStatus(self.status.own_status).name.lower(),
            "upnp": None if self.upnp is None else {
                "state": self.upnp.status.state.value, "detail": self.upnp.status.detail,
                "external": str(self.external_address) if self.external_address else None},
            "udp": None if self.udp is None else self.udp.status(),
            "services": {attribute: part.status_section()
                         for attribute, (_, part) in self.parts.items()
                         if callable(getattr(part, "status_section", None))},
            "friends": [f.to_json(now) for f in self.friends()],
            "pending": [{"pgp_id": p.pgp_id.to_hex(), "name": p.name,
                         "learned_from": p.learned_from.to_hex() if p.learned_from else None}
                        for p in self.friends_list.pending()],
        }

    # --- file transfer -------------------------------------------------------------------------

    def send_file(self, peer: SslId | str, path: str) -> int:
        """Offer a file to a friend: it is served by hash and a mail carries it as an
        attachment (RetroShare's way), which the friend's node turns into a `FileOffered`
        event; returns the outbox id of the mail."""
        ssl_id = self.friend_location(peer)
        item = self.transfers.share_file(path)
        return self.mail.send_mail([ssl_id], subject=f"File: {item.name}",
                                   body=f"<p>{item.name} ({item.size} bytes)</p>",
                                   attachments=[item])

    def accept_offer(self, peer: SslId | str, item: Any) -> Any:
        """Download an offered file from the friend who offered it."""
        return self.transfers.download(item.hash, item.size, item.name,
                                       sources=[self.friend_location(peer)])

    # --- chat and mail -------------------------------------------------------------------------

    def friend_location(self, peer: SslId | str) -> SslId:
        """A friend location by SSL id (hex or SslId), or by unique profile/location name."""
        if isinstance(peer, SslId):
            ssl_id = peer
        else:
            text = str(peer).strip()
            try:
                ssl_id = SslId.from_hex(text)
            except ValueError:
                names = {p.pgp_id: p.name for p in self.friends_list.profiles()}
                matches = [loc.ssl_id for loc in self.friends_list.locations()
                           if text in (names.get(loc.pgp_id), loc.name)]
                if not matches:
                    known = sorted({names.get(loc.pgp_id) or loc.name
                                    for loc in self.friends_list.locations()})
                    raise FriendNameError(text, f"no friend called {text!r} (friends: "
                                                f"{', '.join(known) or 'none yet'})") from None
                if len(set(matches)) > 1:
                    raise FriendNameError(text, f"{text!r} names {len(set(matches))} friend "
                                                "locations; give the SSL id (`rsnode friend "
                                                "list --ids`)") from None
                return matches[0]
        self.friends_list.location(ssl_id)  # raises UnknownFriendError for strangers
        return ssl_id

    def send_chat(self, peer: SslId | str, body: str, *,
                  html: bool = True) -> defer.Deferred[ChatMessage]:
        """Send a private message (queued persistently while the friend is offline).

        ``body`` is HTML, as RetroShare shows it; ``html=False`` sends plain text (what a user
        typed: ``<`` and ``&`` escaped, newlines as breaks) that arrives verbatim."""
        body = body if html else text_to_html(body)
        return defer.maybeDeferred(
            lambda: self.chat.send_private(self.friend_location(peer), body))

    def broadcast_chat(self, body: str, *, html: bool = True) -> defer.Deferred[list[SslId]]:
        """Send a broadcast (PUBLIC) message to every connected friend (``html`` as in
        `send_chat`)."""
        return defer.maybeDeferred(self.chat.send_broadcast,
                                   body if html else text_to_html(body))

    def chat_history(self, peer: SslId | str | None = None, limit: int = 50,
                     before: int | None = None) -> list[ChatMessage]:
        """A page of chat history, oldest first (``before``: a history id, to page back)."""
        ssl_id = None if peer is None else self.friend_location(peer)
        return [ChatMessage.from_history(e)
                for e in self.chat.store.history(ssl_id, limit=limit, before=before)]

    def search_chat(self, words: str, peer: SslId | str | None = None,
                    limit: int = 50) -> list[ChatMessage]:
        ssl_id = None if peer is None else self.friend_location(peer)
        return [ChatMessage.from_history(e)
                for e in self.chat.store.search(words, ssl_id, limit=limit)]

    def send_mail(self, to: Any = (), subject: str = "", body: str = "", *, cc: Any = (),
                  bcc: Any = (), attachments: Any = (), html: bool = True) -> defer.Deferred[int]:
        """Send a mail to friends (SslId, hex or names); fires with its outbox id once it is
        on disk.  ``body`` is HTML unless ``html=False`` (plain text, sent escaped)."""
        body = body if html else text_to_html(body)

        def go() -> int:
            return self.mail.send_mail([self.friend_location(p) for p in to], subject, body,
                                  cc=[self.friend_location(p) for p in cc],
                                  bcc=[self.friend_location(p) for p in bcc],
                                  attachments=attachments)
        return defer.maybeDeferred(go)

    def send_draft(self, draft: Draft) -> defer.Deferred[int]:
        return self.send_mail(draft.to, draft.subject, draft.body, cc=draft.cc, bcc=draft.bcc,
                              attachments=draft.attachments)

    def inbox(self, unread_only: bool = False, tag: str | None = None) -> list[Mail]:
        return self.mail.inbox(unread_only=unread_only, tag=tag)

    def read_mail(self, mail_id: int) -> Mail:
        """An inbox mail, marked read."""
        self.mail.mark_read(mail_id)
        return self.mail.mail(mail_id)

    def display_name(self, ssl_id: SslId) -> str:
        """How people call a location: ``profile/location`` (``me`` for ourselves), the SSL
        id for a stranger."""
        if ssl_id == self.ssl_id:
            return "me"
        try:
            location = self.friends_list.location(ssl_id)
            profile = self.friends_list.profile(location.pgp_id)
        except UnknownFriendError:
            return ssl_id.to_hex()
        return f"{profile.name}/{location.name}" if location.name else profile.name

    def named(self, record: dict[str, Any]) -> dict[str, Any]:
        """A chat or mail record with display names beside the SSL ids (``*_name`` keys)."""
        named = dict(record)
        for key in ("peer", "from"):
            if isinstance(record.get(key), str):
                named[f"{key}_name"] = self.display_name(SslId.from_hex(record[key]))
        for key in ("to", "cc"):
            if isinstance(record.get(key), list):
                named[f"{key}_names"] = [self.display_name(SslId.from_hex(x))
                                         for x in record[key]]
        return named
