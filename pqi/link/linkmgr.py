# -*- test-case-name: tests.test_linkmgr -*-
"""The link manager, sans IO: which friend to dial, where, when, and which link survives.

`LinkManager` is a plain state machine keeping the `pqi.core.Core` contract.  The Twisted glue
(`pqi.link.netinterface`, through a `pqi.driver.CoreDriver`) feeds it what happened (a
connection came in, a dial reached TCP, TLS authenticated a peer, the first item arrived, a
connection ended) together with ``now``, and drains the resulting actions (`Dial`, `DialUdp`,
`Close`, `LinkUp`, `LinkDown`) with `LinkManager.drain`.  It never reads a clock:
`LinkManager.next_deadline` says when `LinkManager.handle_timer` must be called next.

Every link goes through these stages (the diagram is in ``docs/links.md``)::

    outgoing: TCP ──(TCP up)──> TLS ──(authenticated)──> FIRST_ITEM ──(item)──> ESTABLISHED
    incoming:                   TLS ──(authenticated)──> FIRST_ITEM ──(item)──> ESTABLISHED

with a deadline at each stage but the last (`TCP_CONNECT_TIMEOUT`, `TLS_HANDSHAKE_TIMEOUT`,
`FIRST_ITEM_TIMEOUT`).  A link becomes its friend's *active* link as soon as TLS has
authenticated the peer.  It is *reported* (`LinkUp`) at once when the peer dialled us, but only
with the peer's first item when we dialled: with TLS 1.3 the client finishes its handshake
before the server has even looked at the client's certificate, so a dialler cannot know that
the peer accepts it as a friend until the peer says something.  The side that accepted reports
first and its layer above sends the first items (ServiceInfo lists), so this never deadlocks,
and a location that does not accept us never shows up as connected (its attempt is recorded as
`Outcome.PEER_CLOSED`, the most frequent question of a RetroShare user: "why does my friend
not connect?").

Incoming connections that have not yet delivered their first item are *half-open*; at most
`HALF_OPEN_PER_IP` of them per source address and `HALF_OPEN_TOTAL` in all are kept.  Above the
per-address cap a new connection is refused (closed at once).  Above the total cap, one
connection still in its TLS handshake is evicted to make room (and the new one refused when
there is none), chosen in this order: first those that have sent fewer than `HELLO_MIN_BYTES`
(less than any TLS ClientHello: idle or trickling sockets), then those from the address holding
the most half-open slots, then the oldest.  Refusing the newest instead would let anyone who
keeps 64 idle sockets open lock every friend out; with this order a real friend (one connection
from its address, its ClientHello in its first packet) is only evicted by an attacker that
spreads over more addresses than we have slots *and* sends complete ClientHellos faster than
handshakes finish.

Dialling: each friend location's known addresses are tried one after the other (in
`AddressSource` order: local, external, discovered, manual, UPnP, DHT-guessed; most recently
seen first); when a whole round fails the next round waits `backoff_delay(failures)`:
``BACKOFF_BASE * 2**(failures-1)`` capped at `BACKOFF_CAP`, shortened by a random factor of up
to `BACKOFF_JITTER` (seeded RNG, injectable) so that friends that went down together do not
come back in lockstep.  The backoff is reset when a link has delivered its first item.
RetroShare retries every 140-230 s; we retry sooner after a drop (5 s, 10 s, 20 s ...) and
settle at 4-5 minutes for a friend that stays away.

Simultaneous connects: when a second authenticated link to the same friend appears while one
is active, the newest wins (a peer that dials again believes the old link is dead, as
RetroShare's ``pqiperson`` assumes) - except when the two links were dialled from opposite
ends within `SIMULTANEOUS_WINDOW` of each other: then the link dialled by the location with the
larger SSL id (compared as bytes) survives on both sides, whatever the order of arrival, and
the other is closed with `DisconnectReason.REPLACED`.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import heapq
import itertools
import random
from collections.abc import Iterable
from typing import Final, Union

from pqi.link.peer import DisconnectReason
from pqi.wire.address import NetAddress
from pqi.wire.fields import SslId

__all__ = [
    "TCP_CONNECT_TIMEOUT",
    "TLS_HANDSHAKE_TIMEOUT",
    "FIRST_ITEM_TIMEOUT",
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "BACKOFF_JITTER",
    "HALF_OPEN_PER_IP",
    "HALF_OPEN_TOTAL",
    "HELLO_MIN_BYTES",
    "SIMULTANEOUS_WINDOW",
    "ATTEMPT_HISTORY",
    "MAX_ADDRESSES_PER_FRIEND",
    "UDP_CONNECT_TIMEOUT",
    "UPGRADE_INTERVAL",
    "Path",
    "path_of",
    "DialUdp",
    "LinkLimits",
    "AddressSource",
    "AddressRecord",
    "Direction",
    "Stage",
    "Outcome",
    "Attempt",
    "Dial",
    "Close",
    "LinkUp",
    "LinkDown",
    "Action",
    "FriendStatus",
    "UnknownFriendError",
    "LinkManager",
    "backoff_delay",
]

#: Seconds a TCP connect may take (RetroShare's ``P3CONNMGR_TCP_DEFAULT_DELAY``).
TCP_CONNECT_TIMEOUT: Final = 5.0
#: Seconds from TCP up to an authenticated peer.
TLS_HANDSHAKE_TIMEOUT: Final = 10.0
#: Seconds from authentication to the first item from the peer.
FIRST_ITEM_TIMEOUT: Final = 30.0
#: First reconnect delay, and the factor each failed round doubles.
BACKOFF_BASE: Final = 5.0
#: Longest wait between two rounds of dialling one friend.
BACKOFF_CAP: Final = 300.0
#: Delays are shortened by a uniformly random fraction in ``[0, BACKOFF_JITTER)``.
BACKOFF_JITTER: Final = 0.2
#: Half-open incoming connections kept per source IP address.
HALF_OPEN_PER_IP: Final = 8
#: Half-open incoming connections kept in total.
HALF_OPEN_TOTAL: Final = 64
#: An incoming connection that has sent fewer bytes than this cannot have sent a TLS
#: ClientHello yet; such connections are evicted first when the total cap is reached.
HELLO_MIN_BYTES: Final = 64
#: Two links dialled from opposite ends this close together are "simultaneous".
SIMULTANEOUS_WINDOW: Final = 10.0
#: Connection attempts remembered per friend (for ``rsnode status``).
ATTEMPT_HISTORY: Final = 16
#: Addresses remembered per friend; the least recently seen is forgotten first.
MAX_ADDRESSES_PER_FRIEND: Final = 16
#: Seconds a UDP path (DHT signalling, hole punch or relay set-up, TOU handshake) may take to
#: bring the transport up.  RetroShare allows 80 s; the exchange itself gives up after 20 s.
UDP_CONNECT_TIMEOUT: Final = 30.0
#: While a friend is linked by a worse path than one it might have, a better one is tried
#: this often (and at once when a new address of a better kind appears).
UPGRADE_INTERVAL: Final = 300.0
#: Spread of the very first dial to each friend after `LinkManager.start`, so that a node with
#: hundreds of friends does not open every socket in the same millisecond.
_START_SPREAD: Final = 1.0


@dataclasses.dataclass(frozen=True)
class LinkLimits:
    """The timeouts and caps above, bundled so tests and benches can change them."""

    tcp_connect_timeout: float = TCP_CONNECT_TIMEOUT
    tls_handshake_timeout: float = TLS_HANDSHAKE_TIMEOUT
    first_item_timeout: float = FIRST_ITEM_TIMEOUT
    backoff_base: float = BACKOFF_BASE
    backoff_cap: float = BACKOFF_CAP
    backoff_jitter: float = BACKOFF_JITTER
    half_open_per_ip: int = HALF_OPEN_PER_IP
    half_open_total: int = HALF_OPEN_TOTAL
    simultaneous_window: float = SIMULTANEOUS_WINDOW
    attempt_history: int = ATTEMPT_HISTORY
    max_addresses: int = MAX_ADDRESSES_PER_FRIEND
    udp_connect_timeout: float = UDP_CONNECT_TIMEOUT
    upgrade_interval: float = UPGRADE_INTERVAL


def backoff_delay(failures: int, rng: random.Random, limits: LinkLimits = LinkLimits()) -> float:
    """Seconds to wait after ``failures`` (>= 1) consecutive failed rounds."""
    exponent = min(max(failures, 1) - 1, 32)  # 2**32 * 5 s is far beyond any cap
    nominal = min(limits.backoff_cap, limits.backoff_base * 2 ** exponent)
    return nominal * (1.0 - limits.backoff_jitter * rng.random())


class AddressSource(enum.IntEnum):
    """Where an address came from; lower values are dialled first."""

    LOCAL = 1        #: the friend's LAN address (certificate or discovery)
    EXTERNAL = 2     #: the friend's address as the Internet sees it
    DISCOVERY = 3    #: learned from a mutual friend's CONTACT item
    MANUAL = 4       #: typed in by the user
    UPNP = 5         #: a port the friend's router maps for it (UPnP)
    DHT = 6          #: guessed from where the friend answers in the DHT (`services.nat.udpport`)


class Path(enum.Enum):
    """The ways to reach a friend, best first: the order of a dialling round.

    TCP paths come from the friend's addresses (`path_of` its source); the UDP paths need
    no address: the DHT finds a proxy (hole punching) or a friend relays (relay)."""

    LAN_TCP = "LAN TCP"
    WAN_TCP = "WAN TCP"
    UPNP_TCP = "UPnP-mapped TCP"
    TOU_PUNCHED = "hole-punched TOU"
    RELAY = "relay"

    @property
    def rank(self) -> int:
        return _PATH_RANK[self]

    @property
    def is_udp(self) -> bool:
        return self in (Path.TOU_PUNCHED, Path.RELAY)


_PATH_RANK: Final = {p: i for i, p in enumerate(Path)}


def path_of(source: AddressSource) -> Path:
    """The TCP path an address of this source is dialled by."""
    if source is AddressSource.LOCAL:
        return Path.LAN_TCP
    if source is AddressSource.UPNP:
        return Path.UPNP_TCP
    return Path.WAN_TCP


@dataclasses.dataclass(frozen=True)
class AddressRecord:
    address: NetAddress
    source: AddressSource
    seen: float


class Direction(enum.Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


class Stage(enum.Enum):
    TCP = "TCP connect"
    TLS = "TLS handshake"
    FIRST_ITEM = "waiting for the first item"
    ESTABLISHED = "established"


class Outcome(enum.Enum):
    """How a connection attempt ended; the values are what ``rsnode status`` prints."""

    CONNECTED = "connected"
    REFUSED = "connection refused"
    TCP_TIMEOUT = "TCP connect timed out"
    TLS_TIMEOUT = "TLS handshake timed out"
    TLS_REFUSED = "TLS refused"
    WRONG_PEER = "wrong peer answered"
    NO_ITEM = "no item after authentication"
    PEER_CLOSED = "peer closed before its first item (does it accept us as a friend?)"
    REPLACED = "lost the simultaneous-connect tie-break"
    ERROR = "network error"
    CANCELLED = "cancelled"
    UDP_TIMEOUT = "UDP connect timed out"
    NAT_TYPE = "the NAT type does not allow it"
    NO_PROXY = "no proxy available"


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One connection attempt to or from a friend, with how it ended."""

    direction: Direction
    address: NetAddress | None
    started: float
    ended: float
    outcome: Outcome
    detail: str = ""
    path: Path | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass(frozen=True)
class Dial:
    """Open a TCP connection to ``address`` for ``link``, then TLS expecting ``ssl_id``."""

    link: int
    ssl_id: SslId
    address: NetAddress
    timeout: float


@dataclasses.dataclass(frozen=True)
class DialUdp:
    """Bring up a UDP path (``path``: hole punching or relay) to ``ssl_id`` for ``link``; the
    glue reports TOU up with `LinkManager.tcp_connected`, failure with `dial_failed`."""

    link: int
    ssl_id: SslId
    path: Path
    timeout: float


@dataclasses.dataclass(frozen=True)
class Close:
    """Drop ``link`` (cancel the dial, or abort the connection) at once."""

    link: int
    reason: DisconnectReason
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class LinkUp:
    """``link`` is now the active link of ``ssl_id``."""

    link: int
    ssl_id: SslId
    direction: Direction
    address: NetAddress | None
    #: Informational (not compared): which kind of path the link took.
    path: Path | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass(frozen=True)
class LinkDown:
    """``link``, the active link of ``ssl_id``, is gone."""

    link: int
    ssl_id: SslId
    reason: DisconnectReason
    detail: str = ""


Action = Union[Dial, DialUdp, Close, LinkUp, LinkDown]


@dataclasses.dataclass(frozen=True)
class FriendStatus:
    """A snapshot of one friend location for status displays."""

    ssl_id: SslId
    connected: bool
    link: int | None
    failures: int
    next_attempt: float | None
    addresses: tuple[AddressRecord, ...]
    attempts: tuple[Attempt, ...]
    #: How the active link reaches the friend (None: not connected, or not known).
    path: Path | None = None


class UnknownFriendError(KeyError):
    """The SSL id given is not a friend location known to the link manager."""


@dataclasses.dataclass
class _Link:
    id: int
    direction: Direction
    address: NetAddress | None
    started: float
    stage: Stage
    deadline: float | None
    expected: SslId | None = None   # whom we dialled (outgoing only)
    peer: SslId | None = None       # who authenticated
    up_at: float = 0.0
    half_open: bool = False         # counted against the incoming caps
    host: str = ""                  # the address's host as the half-open counts key it
    reported: bool = False          # LinkUp was emitted
    bytes_in: int = 0               # received before authentication
    path: Path | None = None        # how it reaches the peer


@dataclasses.dataclass
class _Friend:
    ssl_id: SslId
    addresses: dict[NetAddress, AddressRecord]
    attempts: collections.deque[Attempt]
    failures: int = 0
    next_round: float | None = None
    round: list[NetAddress | Path] = dataclasses.field(default_factory=list)
    dialling: int | None = None
    active: int | None = None
    upgrading: bool = False         # this round only tries paths better than the active one


_FRIEND = 0
_LINK = 1


class LinkManager:
    """Per friend location: addresses, dialling with backoff, link stages and the tie-break.

    ``own_id`` is our location's SSL id (needed for the tie-break).  ``rng`` makes jitter
    reproducible.  Call `start` before anything is dialled; everything else may be called
    before.
    """

    def __init__(self, own_id: SslId, *, rng: random.Random | None = None,
                 limits: LinkLimits = LinkLimits()) -> None:
        self.own_id = own_id
        self.rng = rng if rng is not None else random.Random()
        self.limits = limits
        self.running = False
        self._friends: dict[SslId, _Friend] = {}
        self._links: dict[int, _Link] = {}
        self._half_open_by_ip: collections.Counter[str] = collections.Counter()
        self._half_open_total = 0
        self._half_open_links: dict[int, _Link] = {}
        self._ids = itertools.count(1)
        self._actions: list[Action] = []
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = itertools.count()
        #: Incoming connections that never reached a friend: (when, address, outcome, detail).
        self.rejected: collections.deque[tuple[float, NetAddress | None, Outcome, str]] = (
            collections.deque(maxlen=limits.attempt_history * 4))
        #: Counters for status and benchmarks.
        self.counters: collections.Counter[str] = collections.Counter()
        #: The UDP paths the glue can bring up (none until a UDP port runs).
        self.udp_paths: frozenset[Path] = frozenset()

    def set_udp_paths(self, paths: Iterable[Path]) -> None:
        """Which UDP paths (`Path.TOU_PUNCHED`, `Path.RELAY`) rounds may try from now on."""
        self.udp_paths = frozenset(p for p in paths if p.is_udp)

    # -- output ----------------------------------------------------------------------------

    def drain(self, now: float) -> list[Action]:
        """The actions produced since the last call, in the order they must be carried out."""
        actions, self._actions = self._actions, []
        return actions

    def next_deadline(self) -> float | None:
        """When `handle_timer` must next be called (None: nothing is scheduled)."""
        while self._heap:
            when, _, kind, key = self._heap[0]
            if self._deadline_of(kind, key) == when:
                return when
            heapq.heappop(self._heap)
        return None

    # -- friends and addresses -------------------------------------------------------------

    def add_friend(self, ssl_id: SslId, now: float,
                   addresses: Iterable[tuple[NetAddress, AddressSource]] = ()) -> None:
        """Start looking after a friend location (idempotent)."""
        friend = self._friends.get(ssl_id)
        if friend is None:
            friend = _Friend(ssl_id, {}, collections.deque(maxlen=self.limits.attempt_history))
            self._friends[ssl_id] = friend
            if self.running:
                self._schedule_round(friend, now + self.rng.random() * _START_SPREAD)
        for address, source in addresses:
            self.add_address(ssl_id, address, source, now)

    def remove_friend(self, ssl_id: SslId, now: float) -> None:
        """Forget a friend location and close its links (it is no longer accepted)."""
        friend = self._friends.pop(ssl_id, None)
        if friend is None:
            return
        for link in [x for x in self._links.values()
                     if x.peer == ssl_id or x.expected == ssl_id]:
            self._drop(link, now, DisconnectReason.LOCAL, "friend removed", Outcome.CANCELLED,
                       friend=friend)

    def is_friend(self, ssl_id: SslId) -> bool:
        return ssl_id in self._friends

    def friends(self) -> list[SslId]:
        return list(self._friends)

    def add_address(self, ssl_id: SslId, address: NetAddress, source: AddressSource,
                    now: float, seen: float | None = None) -> None:
        """Learn (or refresh) an address of a friend; a new address is dialled at once.

        ``seen`` is when the address was last known good (default ``now``); it orders the
        addresses of one source and decides which one is forgotten when there are too many.
        """
        friend = self._friend(ssl_id)
        seen = now if seen is None else seen
        old = friend.addresses.get(address)
        if old is not None:
            friend.addresses[address] = AddressRecord(address, min(old.source, source),
                                                      max(old.seen, seen))
            return
        friend.addresses[address] = AddressRecord(address, source, seen)
        if len(friend.addresses) > self.limits.max_addresses:
            stalest = min(friend.addresses.values(), key=lambda r: r.seen)
            del friend.addresses[stalest.address]
        active = self._links.get(friend.active) if friend.active is not None else None
        if (self.running and active is not None and friend.dialling is None
                and address in friend.addresses and self._better(path_of(source), active)):
            self._schedule_round(friend, now)  # a better path appeared: upgrade now
            return
        if (self.running and friend.active is None and friend.dialling is None
                and address in friend.addresses
                and (friend.next_round is None or friend.next_round > now)):
            self._schedule_round(friend, now)

    def needs_address(self, ssl_id: SslId, now: float, within: float) -> bool:
        """True when the friend has no link and none of our dials reached it in the last
        ``within`` seconds: the addresses we know may be stale, so the glue looks for a fresh
        one (the DHT friend lookup of `services.nat.udpport`)."""
        friend = self._friend(ssl_id)
        if friend.active is not None:
            return False
        return not any(a.outcome is Outcome.CONNECTED and a.direction is Direction.OUTGOING
                       and a.ended >= now - within for a in friend.attempts)

    def redial(self, ssl_id: SslId, now: float) -> None:
        """Start a round now (the user asked), unless the friend is connected or being dialled;
        the backoff counter is kept."""
        friend = self._friend(ssl_id)
        if self.running and friend.active is None and friend.dialling is None:
            self._schedule_round(friend, now)

    def addresses(self, ssl_id: SslId) -> list[AddressRecord]:
        """The friend's addresses in dialling order."""
        friend = self._friend(ssl_id)
        return sorted(friend.addresses.values(), key=lambda r: (r.source, -r.seen))

    def status(self, ssl_id: SslId) -> FriendStatus:
        friend = self._friend(ssl_id)
        active = self._links.get(friend.active) if friend.active is not None else None
        return FriendStatus(ssl_id, friend.active is not None, friend.active, friend.failures,
                            friend.next_round, tuple(self.addresses(ssl_id)),
                            tuple(friend.attempts), active.path if active else None)

    def active_link(self, ssl_id: SslId) -> int | None:
        return self._friend(ssl_id).active

    def half_open(self, host: str | None = None) -> int:
        """Half-open incoming connections from ``host``, or in total."""
        return self._half_open_total if host is None else self._half_open_by_ip[host]

    def link_count(self) -> int:
        return len(self._links)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin dialling every friend (spread over the first second)."""
        if self.running:
            return
        self.running = True
        for friend in self._friends.values():
            if friend.active is None and friend.dialling is None:
                self._schedule_round(friend, now + self.rng.random() * _START_SPREAD)

    def stop(self, now: float) -> None:
        """Close every link and dial nothing more."""
        self.running = False
        for link in list(self._links.values()):
            self._drop(link, now, DisconnectReason.LOCAL, "node stopping", Outcome.CANCELLED)
        for friend in self._friends.values():
            friend.next_round = None
            friend.round.clear()

    def handle_timer(self, now: float) -> None:
        """Handle every deadline that is due."""
        while self._heap and self._heap[0][0] <= now:
            when, _, kind, key = heapq.heappop(self._heap)
            if self._deadline_of(kind, key) != when:
                continue
            if kind == _LINK:
                self._link_timeout(self._links[key], now)  # type: ignore[index]
            else:
                friend = self._friends[key]  # type: ignore[index]
                friend.next_round = None
                self._start_round(friend, now)

    # -- events from the glue --------------------------------------------------------------

    def incoming(self, source: NetAddress, now: float, path: Path | None = None) -> int | None:
        """A connection arrived from ``source`` (by ``path`` when the glue knows it): its link
        id, or None to close it now."""
        host = str(source.host)
        if self._half_open_by_ip[host] >= self.limits.half_open_per_ip:
            self._reject(now, source, Outcome.REFUSED, "too many half-open from this address",
                         "refused_per_ip")
            return None
        if self._half_open_total >= self.limits.half_open_total:
            victim = self._eviction_victim()
            if victim is None:
                self._reject(now, source, Outcome.REFUSED, "too many half-open connections",
                             "refused_total")
                return None
            self.counters["evicted"] += 1
            self._drop(victim, now, DisconnectReason.LOCAL, "evicted: too many half-open",
                       Outcome.CANCELLED)
        link = self._new_link(Direction.INCOMING, source, now, Stage.TLS,
                              now + self.limits.tls_handshake_timeout)
        # The glue names UDP paths; a connection on the TCP listener is LAN or WAN TCP by where
        # it comes from (so status shows it, and the side that accepted it also upgrades).
        link.path = path if path is not None else path_of(
            AddressSource.LOCAL if source.host.is_private or source.host.is_loopback
            else AddressSource.EXTERNAL)
        link.half_open = True
        link.host = host
        self._half_open_links[link.id] = link
        self._half_open_by_ip[host] += 1
        self._half_open_total += 1
        self.counters["accepted"] += 1
        return link.id

    def data_received(self, link_id: int, size: int) -> None:
        """``size`` bytes arrived on a link that is not authenticated yet."""
        link = self._links.get(link_id)
        if link is not None and link.stage is Stage.TLS:
            link.bytes_in += size

    def tcp_connected(self, link_id: int, now: float) -> None:
        """Our dial reached TCP; TLS starts."""
        link = self._links.get(link_id)
        if link is None or link.stage is not Stage.TCP:
            return
        link.stage = Stage.TLS
        self._set_deadline(link, now + self.limits.tls_handshake_timeout)

    def authenticated(self, link_id: int, peer: SslId, now: float) -> bool:
        """TLS authenticated ``peer`` on ``link_id``; True if the link is now active."""
        link = self._links.get(link_id)
        if link is None or link.stage is not Stage.TLS:
            return False
        if link.direction is Direction.OUTGOING and peer != link.expected:
            self._drop(link, now, DisconnectReason.TLS, f"expected {link.expected}, got {peer}",
                       Outcome.WRONG_PEER)
            return False
        friend = self._friends.get(peer)
        if friend is None:
            self._drop(link, now, DisconnectReason.TLS, f"{peer} is not a friend",
                       Outcome.TLS_REFUSED)
            return False
        link.peer = peer
        link.up_at = now
        link.stage = Stage.FIRST_ITEM
        self._set_deadline(link, now + self.limits.first_item_timeout)
        if friend.dialling == link.id:
            friend.dialling = None
        friend.round.clear()
        friend.next_round = None
        friend.upgrading = False
        old = self._links.get(friend.active) if friend.active is not None else None
        if old is not None and not self._new_wins(old, link):
            self._drop(link, now, DisconnectReason.REPLACED, "kept the other link",
                       Outcome.REPLACED)
            return False
        if old is not None:
            self._drop(old, now, DisconnectReason.REPLACED, f"replaced by link {link.id}",
                       Outcome.REPLACED)
        friend.active = link.id
        if link.direction is Direction.INCOMING:
            self._report(friend, link, now)
        return True

    def item_received(self, link_id: int, now: float) -> bool:
        """An item arrived on ``link_id`` (only the first one matters here).

        Returns whether it changed anything: a link's later items (every item of a chat
        flood) neither output nor move a deadline, so the driver need not be serviced."""
        link = self._links.get(link_id)
        if link is None or link.stage is not Stage.FIRST_ITEM:
            return False
        link.stage = Stage.ESTABLISHED
        self._set_deadline(link, None)
        self._release_half_open(link)
        friend = self._friends.get(link.peer) if link.peer is not None else None
        if friend is not None:
            friend.failures = 0
            if friend.active == link.id and not link.reported:
                self._report(friend, link, now)
        return True

    def dial_failed(self, link_id: int, outcome: Outcome, detail: str, now: float) -> None:
        """Our dial failed before TCP was up (refused, unreachable, timed out)."""
        link = self._links.get(link_id)
        if link is None:
            return
        self._drop(link, now, DisconnectReason.ERROR, detail, outcome, emit_close=False)

    def closed(self, link_id: int, reason: DisconnectReason, detail: str, now: float,
               outcome: Outcome | None = None) -> None:
        """The connection of ``link_id`` ended (by the peer, an error, or our own `Close`)."""
        link = self._links.get(link_id)
        if link is None:
            return
        if outcome is None and link.stage is Stage.TLS:
            outcome = Outcome.TLS_REFUSED
        elif outcome is None and link.stage is Stage.TCP:
            outcome = Outcome.ERROR
        self._drop(link, now, reason, detail, outcome, emit_close=False)

    # -- internals -------------------------------------------------------------------------

    def _friend(self, ssl_id: SslId) -> _Friend:
        try:
            return self._friends[ssl_id]
        except KeyError:
            raise UnknownFriendError(ssl_id) from None

    def _eviction_victim(self) -> _Link | None:
        """Silent before talking, crowded address before lone one, old before new."""
        by_ip = self._half_open_by_ip
        candidates = [x for x in self._half_open_links.values() if x.stage is Stage.TLS]
        if not candidates:
            return None
        return min(candidates, key=lambda x: (x.bytes_in >= HELLO_MIN_BYTES, -by_ip[x.host],
                                              x.id))

    def _new_wins(self, old: _Link, new: _Link) -> bool:
        simultaneous = (old.direction is not new.direction
                        and new.up_at - old.up_at <= self.limits.simultaneous_window)
        if not simultaneous:
            return True
        we_are_larger = bytes(self.own_id) > bytes(new.peer or b"")
        winner = Direction.OUTGOING if we_are_larger else Direction.INCOMING
        return new.direction is winner

    def _new_link(self, direction: Direction, address: NetAddress | None, now: float,
                  stage: Stage, deadline: float) -> _Link:
        link = _Link(next(self._ids), direction, address, now, stage, None)
        self._links[link.id] = link
        self._set_deadline(link, deadline)
        return link

    def _deadline_of(self, kind: int, key: object) -> float | None:
        if kind == _LINK:
            link = self._links.get(key)  # type: ignore[call-overload]
            return None if link is None else link.deadline
        friend = self._friends.get(key)  # type: ignore[call-overload]
        return None if friend is None else friend.next_round

    def _set_deadline(self, link: _Link, deadline: float | None) -> None:
        link.deadline = deadline
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._seq), _LINK, link.id))

    def _schedule_round(self, friend: _Friend, when: float) -> None:
        friend.next_round = when
        heapq.heappush(self._heap, (when, next(self._seq), _FRIEND, friend.ssl_id))

    def _better(self, path: Path, active: _Link) -> bool:
        return active.path is not None and path.rank < active.path.rank

    def _udp_round(self, friend: _Friend) -> list[NetAddress | Path]:
        """The UDP paths to try.  Only the location with the larger SSL id starts them (the
        same rule as the tie-break): two requests crossing at the proxy would both be
        refused as duplicates."""
        if bytes(self.own_id) <= bytes(friend.ssl_id):
            return []
        return [p for p in (Path.TOU_PUNCHED, Path.RELAY) if p in self.udp_paths]

    def _start_round(self, friend: _Friend, now: float) -> None:
        if not self.running or friend.dialling is not None:
            return
        steps: list[NetAddress | Path] = [r.address for r in self.addresses(friend.ssl_id)]
        steps += self._udp_round(friend)
        active = self._links.get(friend.active) if friend.active is not None else None
        if active is not None:
            steps = [s for s in steps if self._better(
                s if isinstance(s, Path) else path_of(friend.addresses[s].source), active)]
            if not steps:
                return
            friend.upgrading = True
        friend.round = steps
        self._dial_next(friend, now)

    def _dial_next(self, friend: _Friend, now: float) -> None:
        """Dial the next address of the round, or schedule the next round after a backoff."""
        if not self.running or (friend.active is not None and not friend.upgrading):
            friend.round.clear()
            return
        if friend.round:
            step = friend.round.pop(0)
            if isinstance(step, Path):
                link = self._new_link(Direction.OUTGOING, None, now, Stage.TCP,
                                      now + self.limits.udp_connect_timeout)
                link.path = step
                action: Action = DialUdp(link.id, friend.ssl_id, step,
                                         self.limits.udp_connect_timeout)
            else:
                record = friend.addresses.get(step)
                link = self._new_link(Direction.OUTGOING, step, now, Stage.TCP,
                                      now + self.limits.tcp_connect_timeout)
                link.path = path_of(record.source) if record else Path.WAN_TCP
                action = Dial(link.id, friend.ssl_id, step, self.limits.tcp_connect_timeout)
            link.expected = friend.ssl_id
            friend.dialling = link.id
            self.counters["dials"] += 1
            self._actions.append(action)
            return
        if friend.upgrading:
            friend.upgrading = False
            self._schedule_round(friend, now + self.limits.upgrade_interval)
            return
        if friend.addresses or self._udp_round(friend):
            friend.failures += 1
            self._schedule_round(friend, now + backoff_delay(friend.failures, self.rng,
                                                             self.limits))

    def _link_timeout(self, link: _Link, now: float) -> None:
        udp = link.path is not None and link.path.is_udp
        outcome = {Stage.TCP: Outcome.UDP_TIMEOUT if udp else Outcome.TCP_TIMEOUT,
                   Stage.TLS: Outcome.TLS_TIMEOUT, Stage.FIRST_ITEM: Outcome.NO_ITEM}[link.stage]
        seconds = {Stage.TCP: self.limits.udp_connect_timeout if udp
                   else self.limits.tcp_connect_timeout,
                   Stage.TLS: self.limits.tls_handshake_timeout,
                   Stage.FIRST_ITEM: self.limits.first_item_timeout}[link.stage]
        self.counters[outcome.name.lower()] += 1
        self._drop(link, now, DisconnectReason.TIMEOUT, f"{link.stage.value} took over "
                   f"{seconds:g} s", outcome)

    def _release_half_open(self, link: _Link) -> None:
        if not link.half_open or link.address is None:
            return
        link.half_open = False
        del self._half_open_links[link.id]
        host = link.host
        self._half_open_by_ip[host] -= 1
        if self._half_open_by_ip[host] <= 0:
            del self._half_open_by_ip[host]
        self._half_open_total -= 1

    def _reject(self, now: float, address: NetAddress | None, outcome: Outcome, detail: str,
                counter: str) -> None:
        self.counters[counter] += 1
        self.rejected.append((now, address, outcome, detail))

    def _report(self, friend: _Friend, link: _Link, now: float) -> None:
        link.reported = True
        self._record(friend, link, now, Outcome.CONNECTED)
        self._actions.append(LinkUp(link.id, friend.ssl_id, link.direction, link.address,
                                    link.path))
        if (link.path is not None and link.path.rank > Path.LAN_TCP.rank
                and friend.next_round is None):
            self._schedule_round(friend, now + self.limits.upgrade_interval)

    def _record(self, friend: _Friend, link: _Link, now: float, outcome: Outcome,
                detail: str = "") -> None:
        friend.attempts.append(Attempt(link.direction, link.address, link.started, now,
                                       outcome, detail, link.path))

    def _drop(self, link: _Link, now: float, reason: DisconnectReason, detail: str,
              outcome: Outcome | None, *, emit_close: bool = True,
              friend: _Friend | None = None) -> None:
        """Forget ``link``; record the attempt if it never got up; report the active one down;
        carry on dialling its friend."""
        del self._links[link.id]
        link.deadline = None
        self._release_half_open(link)
        if emit_close:
            self._actions.append(Close(link.id, reason, detail))
        owner_id = link.peer if link.peer is not None else link.expected
        if friend is None and owner_id is not None:
            friend = self._friends.get(owner_id)
        if friend is None:
            if outcome is not None and link.direction is Direction.INCOMING:
                self._reject(now, link.address, outcome, detail, "rejected_incoming")
            return
        if not link.reported:
            if (outcome is None and link.peer is not None and reason in (
                    DisconnectReason.CLOSED, DisconnectReason.ERROR, DisconnectReason.TLS)):
                outcome = Outcome.PEER_CLOSED
            if outcome is not None:
                self._record(friend, link, now, outcome, detail)
        elif outcome is Outcome.NO_ITEM:
            self._record(friend, link, now, outcome, detail)
        if friend.active == link.id:
            friend.active = None
            friend.upgrading = False
            if link.reported:
                self._actions.append(LinkDown(link.id, friend.ssl_id, reason, detail))
            if reason is not DisconnectReason.REPLACED and friend.ssl_id in self._friends:
                friend.failures += 1
                if self.running:
                    self._schedule_round(friend, now + backoff_delay(
                        friend.failures, self.rng, self.limits))
        if friend.dialling == link.id:
            friend.dialling = None
            if friend.ssl_id in self._friends:
                self._dial_next(friend, now)
