# -*- test-case-name: tests.test_discovery -*-
"""Gossip discovery (0x0011): friends tell each other who and where their friends are.

The flow follows RetroShare's ``p3discovery2`` (facts section 5):

1. when the service is enabled for a peer, we send our own CONTACT and our (empty) identity
   list;
2. on the peer's own CONTACT (its PGP id must be the one we accepted for it) we record its
   addresses and send PGP_LIST(FRIENDS): the PGP ids of our accepted profiles;
3. on a PGP_LIST(FRIENDS) we ask, with one PGP_LIST(GETCERT) per id, for every key we do not
   know, remember the peer's friend set, and exchange CONTACTs of *mutual* friends' locations
   (a friend of both the peer and the location's owner) in both directions;
4. a GETCERT is answered with PGP_CERT_BINARY for our own key and our accepted friends' keys;
5. a key arriving in PGP_CERT_BINARY becomes a *pending* certificate in the friend list: the
   user approves it or not, nothing is ever accepted automatically.  We take only keys we
   asked that peer for;
6. a CONTACT about a location of an accepted profile adds that location (and its addresses) so
   the link manager can dial it; a CONTACT about ourselves tells us how the sender sees our
   address;
7. the own CONTACT of a friend we added by short invite (an SSL-only friend: we know its
   profile's fingerprint, not its key) makes us ask that friend for its own key (GETCERT for
   the sender's PGP id), as RetroShare does; the key is taken only if it has that fingerprint
   and signed the location certificate the friend's link presented, and then the friend is a
   full friend (`FriendUpgraded`).

Requests that expect an answer are sent again when none came: a GETCERT after
`REQUEST_RETRY` seconds, our CONTACT when the peer did not answer it with its friend list, at
most `MAX_RETRIES` times each (one lost item costs seconds, not a reconnection).

We re-send PGP_LIST(FRIENDS) to every connected peer when our friend list changes, so the
friend who introduced us can forward the new friend's location as soon as both sides approved.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any, Final

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

from pqi.identity.errors import CertificateError, SignatureError
from pqi.identity.friends import (
    FriendList,
    FriendsError,
    OfferOutcome,
    PendingOrigin,
    UnknownFriendError,
)
from pqi.identity.pgp import PublicKey
from pqi.identity.sslcert import LocationCertificate
from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.discovery import (
    ContactAddresses,
    DiscContactItem,
    DiscIdentityListItem,
    DiscPgpKeyItem,
    DiscPgpListItem,
    PgpListMode,
)
from pqi.items.ids import SERVICE_GOSSIP_DISCOVERY
from pqi.link.linkmgr import AddressSource
from pqi.wire.address import AddressInfo, NetAddress
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, PgpId, SslId
from services.base import Service
from services.spec import ServiceSpec

__all__ = [
    "DiscoveryService",
    "DiscoveryListener",
    "PendingFriend",
    "LocationLearned",
    "OwnAddressSeen",
    "FriendUpgraded",
    "REQUEST_RETRY",
    "MAX_RETRIES",
    "SPEC",
    "SOFTWARE_VERSION",
    "contact_addresses",
    "VS_DISC_OFF",
    "VS_DISC_FULL",
    "NET_MODE_EXT",
    "ADDRESS_SOURCE_DISCOVERY",
]

#: ``RS_VS_DISC_OFF`` / ``RS_VS_DISC_FULL`` (``rspeers.h``); the captures send FULL (2).
VS_DISC_OFF: Final = 0
VS_DISC_FULL: Final = 2
#: ``RS_VS_DHT_FULL``.
VS_DHT_FULL: Final = 2
#: ``RS_NET_MODE_EXT`` as in the captured CONTACTs (2).
NET_MODE_EXT: Final = 2
#: ``AddressInfo.source`` we record for addresses learned through discovery.
ADDRESS_SOURCE_DISCOVERY: Final = 0x02
#: At most this many GETCERT requests outstanding per peer (a hostile friend list is ignored
#: beyond it).
_MAX_REQUESTS: Final = 256
#: What we announce as our version in our CONTACTs.
SOFTWARE_VERSION: Final = "rsproto-0.1"
#: Seconds before an unanswered GETCERT, or a CONTACT the peer did not answer with its friend
#: list, is sent again (checked every half of it).
REQUEST_RETRY: Final = 2.0
#: Times one request is sent again before we wait for the next link.
MAX_RETRIES: Final = 3


@dataclasses.dataclass(frozen=True)
class PendingFriend:
    """A friend sent a key we did not know: it waits for the user's approval."""

    #: The pending profile.
    pgp_id: PgpId
    #: The name in its key.
    name: str
    #: The friend location whose discovery brought it.
    learned_from: PeerIdentity


@dataclasses.dataclass(frozen=True)
class LocationLearned:
    """A location of an accepted friend, or new addresses for one, became known (the link
    manager dials them)."""

    ssl_id: SslId
    pgp_id: PgpId
    #: Its usable addresses, best first (empty when none were given).
    addresses: tuple[NetAddress, ...]


@dataclasses.dataclass(frozen=True)
class FriendUpgraded:
    """A friend added by short invite sent its profile key: it is a full friend now."""

    pgp_id: PgpId
    #: The name in its key.
    name: str
    #: The location whose key request brought it.
    learned_from: SslId


@dataclasses.dataclass(frozen=True)
class OwnAddressSeen:
    """A friend told us the address it sees us at."""

    #: The friend location that reported it.
    reported_by: SslId
    address: NetAddress


def _build(node: Any) -> DiscoveryService:
    service = DiscoveryService(
        node.control, node.reactor, own_ssl_id=node.ssl_id, own_pgp_id=node.pgp_id,
        own_key=node.account.profile.public.to_bytes(),
        own_contact=lambda: _own_contact(node, service.vs_disc), friends=node.friends_list,
        listener=_NodeListener(node),
        connect_address=lambda s: getattr(node.net.person(s), "address", None),
        own_identities=lambda: _own_signed_identities(node),
        peer_certificate=lambda s: getattr(getattr(node.link_of(s), "auth", None),
                                           "certificate", None))
    return service


def _own_signed_identities(node: Any) -> tuple[GxsId, ...]:
    """Our signed identities, when the node runs the identity service (built after us)."""
    ids = getattr(node, "identities", None)
    return () if ids is None else tuple(ids.own_signed_ids())


#: Gossip discovery on a node.
SPEC: Final = ServiceSpec(
    SERVICE_GOSSIP_DISCOVERY, "disc", attribute="discovery",
    items=(DiscContactItem, DiscIdentityListItem, DiscPgpKeyItem, DiscPgpListItem),
    events=(PendingFriend, LocationLearned, OwnAddressSeen, FriendUpgraded), build=_build)


class DiscoveryListener:
    """What discovery tells the node; the default does nothing (override what you need)."""

    def pending_friend(self, pgp_id: PgpId, name: str, learned_from: PeerIdentity) -> None:
        """A key we did not know arrived and now waits for the user's approval."""

    def location_learned(self, ssl_id: SslId, pgp_id: PgpId,
                         addresses: tuple[NetAddress, ...]) -> None:
        """A location of an accepted friend, or new addresses for one, became known."""

    def own_address_seen(self, reported_by: SslId, address: NetAddress) -> None:
        """A friend told us the address it sees us at."""

    def friend_upgraded(self, pgp_id: PgpId, name: str, learned_from: SslId) -> None:
        """An SSL-only friend's key arrived and checked out: it is a full friend now."""

    def identities_announced(self, peer: PeerIdentity, identities: tuple[GxsId, ...]) -> None:
        """A friend named its own signed GXS identities (we may ask it for those we lack)."""


#: Most identities of one friend's IDENTITY_LIST we ask it for.
MAX_ANNOUNCED_IDENTITIES: Final = 32


class _NodeListener(DiscoveryListener):
    """Discovery on a node: learned addresses go to the link manager, all becomes events."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def pending_friend(self, pgp_id: PgpId, name: str, learned_from: PeerIdentity) -> None:
        self.node.emit(PendingFriend(pgp_id, name, learned_from))

    def location_learned(self, ssl_id: SslId, pgp_id: PgpId,
                         addresses: tuple[NetAddress, ...]) -> None:
        for address in addresses:
            self.node.net.add_address(ssl_id, address, AddressSource.DISCOVERY)
        if not addresses and not self.node.net.manager.is_friend(ssl_id):
            self.node.net.add_friend(ssl_id)
        self.node.emit(LocationLearned(ssl_id, pgp_id, addresses))

    def own_address_seen(self, reported_by: SslId, address: NetAddress) -> None:
        self.node.emit(OwnAddressSeen(reported_by, address))

    def identities_announced(self, peer: PeerIdentity, identities: tuple[GxsId, ...]) -> None:
        ids = getattr(self.node, "identities", None)
        if ids is None:
            return
        for gxs_id in identities[:MAX_ANNOUNCED_IDENTITIES]:
            if ids.info(gxs_id) is None:
                ids.request(gxs_id, peer.ssl_id)

    def friend_upgraded(self, pgp_id: PgpId, name: str, learned_from: SslId) -> None:
        self.node.emit(FriendUpgraded(pgp_id, name, learned_from))


def _own_contact(node: Any, vs_disc: int) -> DiscContactItem:
    """Our CONTACT: the address we listen on and the one the gateway maps, if any."""
    zero = NetAddress(ipaddress.IPv4Address(0), 0)
    local = node.listening if node.listening is not None else zero
    return DiscContactItem(
        pgp_id=node.pgp_id, ssl_id=node.ssl_id, location=node.account.location_name,
        version=SOFTWARE_VERSION, net_mode=NET_MODE_EXT, vs_disc=vs_disc,
        vs_dht=VS_DHT_FULL, last_contact=int(node.reactor.seconds()) & 0xFFFFFFFF,
        addresses=ContactAddresses(local_v4=local, ext_v4=node.external_address or zero))


def contact_addresses(item: DiscContactItem) -> tuple[NetAddress, ...]:
    """The usable (non-zero host and port) clear-net addresses a CONTACT names, best first."""
    addrs = item.addresses
    if not isinstance(addrs, ContactAddresses):
        return ()
    found: list[NetAddress] = []
    candidates: list[NetAddress | None] = [addrs.local_v4, addrs.ext_v4, addrs.local_v6,
                                           addrs.ext_v6]
    candidates += [a.addr for a in addrs.local_list + addrs.ext_list]
    for a in candidates:
        if a is not None and a.port != 0 and not a.host.is_unspecified and a not in found:
            found.append(a)
    return tuple(found)


@dataclasses.dataclass
class _Request:
    """One GETCERT waiting for its key: when it was last sent and how often it was re-sent."""

    sent: float
    retries: int = 0


@dataclasses.dataclass
class _PeerDisc:
    #: Our CONTACT: when last sent, re-sends so far, and whether the peer's friend list came.
    contact_sent: float = 0.0
    contact_retries: int = 0
    answered: bool = False
    requested: dict[PgpId, _Request] = dataclasses.field(default_factory=dict)


class DiscoveryService(Service):
    """Gossip discovery for one node.

    ``own_contact()`` builds our CONTACT (the node knows its addresses); ``own_key`` is our
    binary public key; ``friends`` is the account's friend list; ``listener`` hears what was
    learned; ``connect_address(ssl_id)`` gives the address a peer's link comes from (sent back
    to it so it learns how we see it); ``own_identities()`` our signed GXS identities, named
    in the IDENTITY_LIST we send on connect (friends ask us for those they lack);
    ``peer_certificate(ssl_id)`` the location certificate its link presented (an SSL-only
    friend's key must have signed it).
    """

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime, *,
                 own_ssl_id: SslId, own_pgp_id: PgpId, own_key: bytes,
                 own_contact: Callable[[], DiscContactItem], friends: FriendList,
                 listener: DiscoveryListener | None = None,
                 connect_address: Callable[[SslId], NetAddress | None] = lambda s: None,
                 peer_certificate: Callable[[SslId], LocationCertificate | None]
                 = lambda s: None,
                 vs_disc: int = VS_DISC_FULL, retry_period: float = REQUEST_RETRY,
                 own_identities: Callable[[], tuple[GxsId, ...]] = tuple) -> None:
        super().__init__(sender, reactor)
        self.own_ssl_id = own_ssl_id
        self.own_pgp_id = own_pgp_id
        self._own_key = own_key
        self._own_contact = own_contact
        self._own_identities = own_identities
        self.friends = friends
        self.listener = listener or DiscoveryListener()
        self._connect_address = connect_address
        self._peer_certificate = peer_certificate
        self.vs_disc = vs_disc
        self.retry_period = retry_period
        self._loop: task.LoopingCall | None = None
        self._state: dict[SslId, _PeerDisc] = {}
        #: The last own CONTACT of each location that sent us one (what we forward about it).
        self.contacts: dict[SslId, DiscContactItem] = {}
        #: Peer-reported addresses we are seen at, by reporting peer.
        self.seen_as: dict[SslId, NetAddress] = {}
        #: The friend set each friend profile last announced (kept across reconnections).
        self.friend_sets: dict[PgpId, frozenset[PgpId]] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = task.LoopingCall(self.retry)
        self._loop.clock = self.reactor
        self._loop.start(self.retry_period / 2, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def retry(self) -> None:
        """Send again what was not answered within ``retry_period`` (at most `MAX_RETRIES`
        times each): our CONTACT and the key requests."""
        now = self.reactor.seconds()
        for ssl_id, state in list(self._state.items()):
            if (not state.answered and self.vs_disc != VS_DISC_OFF
                    and state.contact_retries < MAX_RETRIES
                    and now - state.contact_sent >= self.retry_period):
                state.contact_retries += 1
                state.contact_sent = now
                self.send(ssl_id, self._own_contact())
            for pgp_id, request in sorted(state.requested.items()):
                if request.retries < MAX_RETRIES and now - request.sent >= self.retry_period:
                    request.retries += 1
                    request.sent = now
                    self._send_getcert(ssl_id, pgp_id)

    # --- link events -------------------------------------------------------------------------

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self._state[peer.ssl_id] = _PeerDisc(contact_sent=self.reactor.seconds())
        self.send(peer.ssl_id, self._own_contact())
        self.send(peer.ssl_id, DiscIdentityListItem(identities=tuple(self._own_identities())))

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self._state.pop(peer.ssl_id, None)

    def forget(self, ssl_ids: Iterable[SslId], pgp_id: PgpId | None = None) -> None:
        """Drop what discovery holds about denied locations (and their profile)."""
        for ssl_id in ssl_ids:
            self.contacts.pop(ssl_id, None)
            self.seen_as.pop(ssl_id, None)
        if pgp_id is not None:
            self.friend_sets.pop(pgp_id, None)

    def friends_changed(self) -> None:
        """Our accepted profiles changed: tell every connected peer our new friend list."""
        for ssl_id in list(self.peers):
            self._send_pgp_list(ssl_id)

    # --- items -------------------------------------------------------------------------------

    def receive(self, peer: PeerIdentity, item: object) -> None:
        state = self._state.get(peer.ssl_id)
        if state is None:
            return
        if isinstance(item, DiscContactItem):
            self._contact(peer, state, item)
        elif isinstance(item, DiscPgpListItem):
            if item.mode == PgpListMode.FRIENDS:
                state.answered = True
                self._friend_list(peer, state, item.pgp_ids)
            elif item.mode == PgpListMode.GETCERT:
                self._cert_request(peer, item.pgp_ids)
        elif isinstance(item, DiscPgpKeyItem):
            self._key(peer, state, item)
        elif isinstance(item, DiscIdentityListItem):
            self.listener.identities_announced(peer, item.identities)

    def _contact(self, peer: PeerIdentity, state: _PeerDisc, item: DiscContactItem) -> None:
        if item.ssl_id == peer.ssl_id:
            if item.pgp_id != peer.pgp_id:
                self.log.warn("{peer} sent its own contact with PGP id {claimed}: dropped",
                              peer=peer.ssl_id.to_hex(), claimed=item.pgp_id.to_hex())
                return
            self.contacts[peer.ssl_id] = item
            self._learn_location(item.ssl_id, item.pgp_id, item)
            if self.vs_disc != VS_DISC_OFF:
                self._send_pgp_list(peer.ssl_id)
            if self._ssl_only(peer.pgp_id) and peer.pgp_id not in state.requested:
                self._request_key(peer.ssl_id, state, peer.pgp_id)
        elif item.ssl_id == self.own_ssl_id:
            addrs = item.addresses
            if isinstance(addrs, ContactAddresses) and addrs.current_connect is not None:
                self.seen_as[peer.ssl_id] = addrs.current_connect
                self.listener.own_address_seen(peer.ssl_id, addrs.current_connect)
        elif self.friends.is_accepted_profile(item.pgp_id):
            self._learn_location(item.ssl_id, item.pgp_id, item)

    def _learn_location(self, ssl_id: SslId, pgp_id: PgpId, item: DiscContactItem) -> None:
        addresses = contact_addresses(item)
        now = int(self.reactor.seconds())
        infos = [AddressInfo(a, now, ADDRESS_SOURCE_DISCOVERY) for a in addresses]
        try:
            location = self.friends.location(ssl_id)
        except UnknownFriendError:
            location = None
        if location is None:
            if not self.friends.is_accepted_profile(pgp_id) or \
                    self.friends.denial(ssl_id, pgp_id) is not None:
                return
            self.friends.add_location(pgp_id, ssl_id, item.location, infos)
        elif location.pgp_id != pgp_id:
            return
        else:
            for info in infos:
                self.friends.record_address(ssl_id, info)
        self.listener.location_learned(ssl_id, pgp_id, addresses)

    def _ssl_only(self, pgp_id: PgpId) -> bool:
        try:
            return self.friends.profile(pgp_id).ssl_only
        except UnknownFriendError:
            return False

    def _request_key(self, ssl_id: SslId, state: _PeerDisc, pgp_id: PgpId) -> None:
        state.requested[pgp_id] = _Request(self.reactor.seconds())
        self._send_getcert(ssl_id, pgp_id)

    def _send_getcert(self, ssl_id: SslId, pgp_id: PgpId) -> None:
        self.send(ssl_id, DiscPgpListItem(mode=PgpListMode.GETCERT,
                                          pgp_ids=frozenset({pgp_id})))

    def _accepted_ids(self) -> frozenset[PgpId]:
        return frozenset(p.pgp_id for p in self.friends.profiles() if not p.ssl_only)

    def _send_pgp_list(self, ssl_id: SslId) -> None:
        self.send(ssl_id, DiscPgpListItem(mode=PgpListMode.FRIENDS,
                                          pgp_ids=self._accepted_ids()))

    def _friend_list(self, peer: PeerIdentity, state: _PeerDisc,
                     pgp_ids: frozenset[PgpId]) -> None:
        if self.vs_disc == VS_DISC_FULL:
            known = self._accepted_ids() | {p.pgp_id for p in self.friends.pending()}
            for pgp_id in sorted(pgp_ids):
                if (pgp_id == self.own_pgp_id or pgp_id in known or pgp_id in state.requested
                        or len(state.requested) >= _MAX_REQUESTS):
                    continue
                self._request_key(peer.ssl_id, state, pgp_id)
        self.friend_sets[peer.pgp_id] = pgp_ids
        self._update_peers(peer)

    def _update_peers(self, about: PeerIdentity) -> None:
        """Exchange CONTACTs between ``about`` and the locations of mutual friends: profiles
        that are friends of ours, listed by ``about`` and listing ``about`` in turn."""
        accepted = self._accepted_ids()
        for pgp_id in sorted(self.friend_sets.get(about.pgp_id, frozenset()) & accepted):
            if pgp_id == about.pgp_id or about.pgp_id not in self.friend_sets.get(pgp_id, ()):
                continue
            for location in self.friends.locations(pgp_id):
                self._send_contact_about(location.ssl_id, about.ssl_id)
            for ssl_id, p in list(self.peers.items()):
                if p.pgp_id == pgp_id:
                    for location in self.friends.locations(about.pgp_id):
                        self._send_contact_about(location.ssl_id, ssl_id)

    def _send_contact_about(self, about: SslId, to: SslId) -> None:
        known = self.contacts.get(about)
        if known is None or known.vs_disc == VS_DISC_OFF or about == self.own_ssl_id:
            return
        current = self._connect_address(about) if about == to else None
        addrs = known.addresses
        if isinstance(addrs, ContactAddresses):
            addrs = dataclasses.replace(addrs, current_connect=current)
        self.send(to, dataclasses.replace(known, addresses=addrs))

    def _cert_request(self, peer: PeerIdentity, pgp_ids: Iterable[PgpId]) -> None:
        if self.vs_disc == VS_DISC_OFF:
            return
        for pgp_id in sorted(pgp_ids):
            if pgp_id == self.own_pgp_id:
                key = self._own_key
            elif self.friends.is_accepted_profile(pgp_id):
                key = self.friends.public_key(pgp_id).to_bytes()
            else:
                continue
            self.send(peer.ssl_id, DiscPgpKeyItem(pgp_id=pgp_id, key_data=key))

    def _key(self, peer: PeerIdentity, state: _PeerDisc, item: DiscPgpKeyItem) -> None:
        if item.pgp_id not in state.requested and item.pgp_id != peer.pgp_id:
            self.log.warn("{peer} sent a key we did not ask for ({pgp}): dropped",
                          peer=peer.ssl_id.to_hex(), pgp=item.pgp_id.to_hex())
            return
        state.requested.pop(item.pgp_id, None)
        try:
            key = PublicKey.from_bytes(item.key_data)
        except (DecodeError, ValueError) as e:
            self.log.warn("unusable key {pgp} from {peer}: {error}", pgp=item.pgp_id.to_hex(),
                          peer=peer.ssl_id.to_hex(), error=str(e))
            return
        if key.pgp_id != item.pgp_id:
            self.log.warn("{peer} sent key {real} labelled {claimed}: dropped",
                          peer=peer.ssl_id.to_hex(), real=key.pgp_id.to_hex(),
                          claimed=item.pgp_id.to_hex())
            return
        if self._ssl_only(key.pgp_id) and not self._signed_link(peer, key):
            return
        try:
            outcome = self.friends.offer(key, origin=PendingOrigin.DISCOVERY,
                                         learned_from=peer.ssl_id)
        except FriendsError as e:
            self.log.warn("key {pgp} from {peer} refused: {error}", pgp=key.pgp_id.to_hex(),
                          peer=peer.ssl_id.to_hex(), error=str(e))
            return
        if outcome == OfferOutcome.KEY_COMPLETED:
            self.log.info("{name} ({pgp}) sent its key: a full friend now", name=key.name,
                          pgp=key.pgp_id.to_hex())
            self.listener.friend_upgraded(key.pgp_id, key.name, peer.ssl_id)
            self.friends_changed()
        elif outcome == OfferOutcome.PENDING:
            self.log.info("learned {name} ({pgp}) through {peer}: pending approval",
                          name=key.name, pgp=key.pgp_id.to_hex(), peer=peer.ssl_id.to_hex())
            self.listener.pending_friend(key.pgp_id, key.name, peer)

    def _signed_link(self, peer: PeerIdentity, key: PublicKey) -> bool:
        """Whether ``key`` signed the location certificate of the SSL-only friend's link (the
        only proof that the key is that friend's, beyond its fingerprint)."""
        if key.pgp_id != peer.pgp_id:
            # A key of another SSL-only profile: the location it signed is not on this link.
            self.log.warn("{peer} sent the key of SSL-only friend {pgp}: kept for its own "
                          "link", peer=peer.ssl_id.to_hex(), pgp=key.pgp_id.to_hex())
            return False
        certificate = self._peer_certificate(peer.ssl_id)
        if certificate is None:
            self.log.warn("no certificate of {peer}'s link to check its key against",
                          peer=peer.ssl_id.to_hex())
            return False
        try:
            certificate.verify(key)
        except (CertificateError, SignatureError) as e:
            self.log.warn("{peer}'s key did not sign its location certificate: {error}",
                          peer=peer.ssl_id.to_hex(), error=str(e))
            return False
        return True
