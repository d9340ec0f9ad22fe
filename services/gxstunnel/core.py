# -*- test-case-name: tests.test_gxstunnel_core -*-
"""GXS tunnels, sans IO: ``p3GxsTunnelService``'s rules over turtle tunnels.

A tunnel joins two GXS identities.  The side that wants to talk asks for one
(`request_tunnel`): we dig turtle tunnels for a hash naming the destination identity
(`MonitorTunnels`); the node owning that identity answers them (`serves`).  On each new turtle
tunnel both ends make a DH key, sign its public value with their identity and send it in
clear; each end checks the other's signature (by the identity's key when we know it, else by
the key in the item, whose id must be the identity), derives the session key, and from then on
every item is encrypted and authenticated (`crypto`).  The first encrypted item is an
"ACK distant connection"; a keep-alive follows every `KEEP_ALIVE_PERIOD` s; a tunnel silent
for `TUNNEL_DOWN_AFTER` s is down (and dug again); a close item ends it at the other side.

Client services (distant chat, ...) own a service id; their data travels in data items,
numbered, acknowledged and resent every `RESEND_PERIOD` s until acknowledged; a copy that
arrives twice is delivered once.  The receiving end asks the service's policy
(`register_client`) before delivering to the answering side; a refusal is reported
(`TunnelDataRefused`) so the service can tell the peer.

Inputs take ``now``; outputs come out of `drain`: `TurtleSend`, `MonitorTunnels`,
`StopMonitoring` (for the turtle router) and the events `TunnelStatusChanged`,
`TunnelDataReceived`, `TunnelDataAcked`, `TunnelDataRefused`.  Every table is bounded.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Callable, Iterable
from typing import Any, Final

from pqi.items.gxstunnel import (
    GxsTunnelDataAckItem,
    GxsTunnelDataItem,
    GxsTunnelDhPublicKeyItem,
    GxsTunnelFlags,
    GxsTunnelStatusItem,
)
from pqi.items.nxs import NxsRsaKey
from pqi.items.turtle import TurtleDirection, TurtleGenericDataItem, TurtleGenericFastDataItem
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, Sha1Hash, SslId
from pqi.wire.item import decode, encode
from services.gxs.security import (
    SignatureError,
    key_id_of,
    load_public,
    public_half,
    sign,
    verify_ok,
)

from . import crypto

__all__ = [
    "TunnelStatus", "GxsTunnelCore", "TurtleSend", "MonitorTunnels", "StopMonitoring",
    "TunnelStatusChanged", "TunnelDataReceived", "TunnelDataAcked", "TunnelDataRefused",
    "TunnelInfo", "TunnelError",
    "KEEP_ALIVE_PERIOD", "TUNNEL_DOWN_AFTER", "CLOSED_KEPT", "RESEND_PERIOD",
    "DATA_PRINT_LIFE", "DH_RESTART_INTERVAL", "MAX_TUNNELS", "MAX_VIRTUAL_PEERS",
    "MAX_PENDING_DATA", "MAX_DATA_PRINTS", "TICK",
]

#: ``GXS_TUNNEL_KEEP_ALIVE_TIMEOUT``: seconds between keep-alives on a working tunnel.
KEEP_ALIVE_PERIOD: Final = 6.0
#: A working tunnel with no item for this long is down (RetroShare's 20 s + keep-alive).
TUNNEL_DOWN_AFTER: Final = 20.0 + KEEP_ALIVE_PERIOD
#: A remotely closed tunnel is forgotten this long after its last item.
CLOSED_KEPT: Final = 20.0
#: ``RS_GXS_TUNNEL_DELAY_BETWEEN_RESEND``: unacknowledged data is sent again this often.
RESEND_PERIOD: Final = 10.0
#: ``RS_GXS_TUNNEL_DATA_PRINT_STORAGE_DELAY``: how long a received counter is remembered.
DATA_PRINT_LIFE: Final = 600.0
#: Bad data on a keyed tunnel restarts the key exchange (as RetroShare), at most this often.
DH_RESTART_INTERVAL: Final = 5.0
#: Housekeeping period (RetroShare's service tick).
TICK: Final = 1.0
#: Bounds.  Tunnels (ours and answered) beyond `MAX_TUNNELS` are refused; turtle virtual
#: peers beyond `MAX_VIRTUAL_PEERS` are ignored; a tunnel holds at most `MAX_PENDING_DATA`
#: unacknowledged data items (`send_data` refuses more); `MAX_DATA_PRINTS` received counters
#: are remembered per tunnel, the oldest forgotten first.
MAX_TUNNELS: Final = 256
MAX_VIRTUAL_PEERS: Final = 1024
MAX_PENDING_DATA: Final = 256
MAX_DATA_PRINTS: Final = 4096


class TunnelStatus(enum.IntEnum):
    """``RS_GXS_TUNNEL_STATUS_*`` (also the distant chat status values)."""

    UNKNOWN = 0
    TUNNEL_DN = 1
    CAN_TALK = 2
    REMOTELY_CLOSED = 3


class TunnelError(Exception):
    """A local request that cannot be served (unknown own identity, full tables...)."""


# --- outputs ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TurtleSend:
    """Send ``item`` (turtle generic data) into the turtle tunnel of ``virtual_peer``."""

    virtual_peer: SslId
    item: Any


@dataclasses.dataclass(frozen=True)
class MonitorTunnels:
    """Ask the turtle router to keep tunnels dug for ``file_hash``."""

    file_hash: Sha1Hash


@dataclasses.dataclass(frozen=True)
class StopMonitoring:
    """Ask the turtle router to stop digging for ``file_hash`` (its tunnels close)."""

    file_hash: Sha1Hash


@dataclasses.dataclass(frozen=True)
class TunnelStatusChanged:
    """Tunnel ``tunnel_id`` (our ``own_id`` to ``peer_id``) is now ``status``."""

    tunnel_id: GxsId
    status: TunnelStatus
    own_id: GxsId
    peer_id: GxsId


@dataclasses.dataclass(frozen=True)
class TunnelDataReceived:
    """``data`` for client ``service_id`` arrived on ``tunnel_id`` from ``peer_id``."""

    tunnel_id: GxsId
    service_id: int
    data: bytes
    peer_id: GxsId
    own_id: GxsId


@dataclasses.dataclass(frozen=True)
class TunnelDataAcked:
    """The other end acknowledged our data item ``counter`` on ``tunnel_id``."""

    tunnel_id: GxsId
    counter: int


@dataclasses.dataclass(frozen=True)
class TunnelDataRefused:
    """Data from ``peer_id`` for ``service_id`` was refused by the service's policy."""

    tunnel_id: GxsId
    service_id: int
    peer_id: GxsId


@dataclasses.dataclass(frozen=True)
class TunnelInfo:
    """What `info` tells about a tunnel (``GxsTunnelInfo``)."""

    tunnel_id: GxsId
    own_id: GxsId
    peer_id: GxsId
    status: TunnelStatus
    client_side: bool
    pending: int
    sent_bytes: int
    received_bytes: int


# --- tables -----------------------------------------------------------------------------

#: Decides whether data from an identity may reach a service: (peer, own id, we asked).
AcceptPolicy = Callable[[GxsId, GxsId, bool], bool]


@dataclasses.dataclass
class _DhSession:
    """One turtle tunnel (virtual peer) and its key exchange (``GxsTunnelDHInfo``)."""

    file_hash: Sha1Hash
    direction: TurtleDirection
    own_id: GxsId
    dh: crypto.DhKey | None = None
    tunnel_id: GxsId | None = None
    last_restart: float | None = None


@dataclasses.dataclass
class _Pending:
    item: GxsTunnelDataItem
    last_sent: float | None = None


@dataclasses.dataclass
class _Tunnel:
    """One tunnel between identities (``GxsTunnelPeerInfo``)."""

    own_id: GxsId
    peer_id: GxsId
    file_hash: Sha1Hash | None
    we_asked: bool  # RetroShare's DIRECTION_SERVER: we dug for it
    status: TunnelStatus
    last_contact: float
    last_keep_alive: float
    key: bytes = b""
    virtual_peer: SslId | None = None
    services: set[int] = dataclasses.field(default_factory=set)
    pending: dict[int, _Pending] = dataclasses.field(default_factory=dict)
    prints: collections.OrderedDict[int, float] = dataclasses.field(
        default_factory=collections.OrderedDict)
    accepts_fast: bool = False
    probed_fast: bool = False
    sent_bytes: int = 0
    received_bytes: int = 0


class GxsTunnelCore:
    """The GXS tunnel service of one node (see the module docstring).

    ``own_key(gxs_id)``: the full (private) key of one of our identities, None if not ours;
    ``peer_key(gxs_id)``: the public key of a known identity, None if unknown.
    """

    def __init__(self, own_key: Callable[[GxsId], NxsRsaKey | None],
                 peer_key: Callable[[GxsId], NxsRsaKey | None], *,
                 own_ids: Callable[[], Iterable[GxsId]] = tuple,
                 counter_start: int = 0, dh_factory: Callable[[], crypto.DhKey] = crypto.DhKey,
                 hash_factory: Callable[[GxsId], Sha1Hash] = crypto.random_hash) -> None:
        self._own_key = own_key
        self._peer_key = peer_key
        self._own_ids = own_ids
        self._dh_factory = dh_factory
        self._hash_factory = hash_factory
        self._counter = counter_start
        self._out: list[Any] = []
        self._clients: dict[int, AcceptPolicy | None] = {}
        self.sessions: dict[SslId, _DhSession] = {}
        self.tunnels: dict[GxsId, _Tunnel] = {}
        self._next_tick: float | None = None
        self.dropped: collections.Counter[str] = collections.Counter()

    # --- core contract --------------------------------------------------------------------

    def drain(self, now: float) -> list[Any]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        return self._next_tick if self.tunnels else None

    def handle_timer(self, now: float) -> None:
        self._next_tick = now + TICK
        for tid, t in list(self.tunnels.items()):
            if t.status is TunnelStatus.REMOTELY_CLOSED and now > t.last_contact + CLOSED_KEPT:
                del self.tunnels[tid]
                continue
            if t.status is TunnelStatus.CAN_TALK and now > t.last_contact + TUNNEL_DOWN_AFTER:
                self._set_status(tid, t, TunnelStatus.TUNNEL_DN)
                t.virtual_peer = None
                if t.we_asked and t.file_hash is not None:
                    self._out.append(MonitorTunnels(t.file_hash))
            if t.status is TunnelStatus.CAN_TALK and now > t.last_keep_alive + KEEP_ALIVE_PERIOD:
                self._send_encrypted(t, GxsTunnelStatusItem(GxsTunnelFlags.KEEP_ALIVE))
                t.last_keep_alive = now
            if t.status is TunnelStatus.CAN_TALK:
                for pending in t.pending.values():
                    if pending.last_sent is None or now >= pending.last_sent + RESEND_PERIOD:
                        if self._send_encrypted(t, pending.item):
                            pending.last_sent = now
            while t.prints and next(iter(t.prints.values())) + DATA_PRINT_LIFE < now:
                t.prints.popitem(last=False)

    # --- local API ------------------------------------------------------------------------

    def register_client(self, service_id: int, accept: AcceptPolicy | None = None) -> None:
        """Serve client ``service_id``; ``accept`` decides on data at the answering side
        (None: accept everything)."""
        self._clients[service_id] = accept

    def request_tunnel(self, to_id: GxsId, from_id: GxsId, service_id: int,
                       now: float) -> GxsId:
        """Open (or join) a tunnel from our identity ``from_id`` to ``to_id``; its id."""
        if self._own_key(from_id) is None:
            raise TunnelError(f"{from_id.hex()} is not one of our identities")
        if service_id not in self._clients:
            raise TunnelError(f"service {service_id:#x} is not registered")
        tid = crypto.tunnel_id(from_id, to_id)
        tunnel = self.tunnels.get(tid)
        if tunnel is not None:
            tunnel.services.add(service_id)
            return tid
        if len(self.tunnels) >= MAX_TUNNELS:
            raise TunnelError(f"already {MAX_TUNNELS} tunnels")
        file_hash = self._hash_factory(to_id)
        self.tunnels[tid] = _Tunnel(from_id, to_id, file_hash, True, TunnelStatus.TUNNEL_DN,
                                    now, now, services={service_id})
        self._arm(now)
        self._out.append(MonitorTunnels(file_hash))
        return tid

    def close_tunnel(self, tid: GxsId, service_id: int, now: float) -> bool:
        """``service_id`` is done with the tunnel; the last service out closes it."""
        tunnel = self.tunnels.get(tid)
        if tunnel is None or service_id not in tunnel.services:
            return False
        tunnel.services.discard(service_id)
        if tunnel.services:
            return True
        self._send_encrypted(tunnel, GxsTunnelStatusItem(
            GxsTunnelFlags.CLOSING_DISTANT_CONNECTION))
        if tunnel.we_asked and tunnel.file_hash is not None:
            self._out.append(StopMonitoring(tunnel.file_hash))
        del self.tunnels[tid]
        return True

    def send_data(self, tid: GxsId, service_id: int, data: bytes, now: float) -> int:
        """Queue ``data`` for the other end's ``service_id``; its counter.  It leaves when
        the tunnel can talk and again every `RESEND_PERIOD` s until acknowledged."""
        tunnel = self.tunnels.get(tid)
        if tunnel is None:
            raise TunnelError(f"no tunnel {tid.hex()}")
        if service_id not in self._clients:
            raise TunnelError(f"service {service_id:#x} is not registered")
        if len(tunnel.pending) >= MAX_PENDING_DATA:
            raise TunnelError(f"{MAX_PENDING_DATA} items already wait on {tid.hex()}")
        counter = self._counter
        self._counter = (self._counter + 1) & 0xFFFFFFFFFFFFFFFF
        tunnel.pending[counter] = _Pending(GxsTunnelDataItem(counter, 0, service_id, data))
        self._next_tick = now  # send at once if it can talk
        return counter

    def info(self, tid: GxsId) -> TunnelInfo | None:
        """The state of tunnel ``tid`` (None: unknown)."""
        t = self.tunnels.get(tid)
        if t is None:
            return None
        return TunnelInfo(tid, t.own_id, t.peer_id, t.status, not t.we_asked, len(t.pending),
                          t.sent_bytes, t.received_bytes)

    # --- turtle side ----------------------------------------------------------------------

    def serves(self, file_hash: Sha1Hash) -> bool:
        """Does a tunnel request for ``file_hash`` name one of our identities?"""
        dest = crypto.destination_of(file_hash)
        return dest in set(self._own_ids()) and self._own_key(dest) is not None

    def virtual_peer_added(self, file_hash: Sha1Hash, virtual_peer: SslId,
                           direction: TurtleDirection, now: float) -> None:
        """A turtle tunnel opened: start a key exchange on it."""
        if virtual_peer not in self.sessions and len(self.sessions) >= MAX_VIRTUAL_PEERS:
            self.dropped["virtual peers full"] += 1
            return
        if direction is TurtleDirection.CLIENT:  # we answered: the hash names our identity
            own_id = crypto.destination_of(file_hash)
        else:
            tunnel = next((t for t in self.tunnels.values() if t.file_hash == file_hash), None)
            if tunnel is None or tunnel.status is TunnelStatus.CAN_TALK:
                return
            own_id = tunnel.own_id
        self.sessions[virtual_peer] = _DhSession(file_hash, direction, own_id)
        self._arm(now)
        self._restart_dh(virtual_peer, now)

    def virtual_peer_removed(self, file_hash: Sha1Hash, virtual_peer: SslId,
                             now: float) -> None:
        """A turtle tunnel closed: its GXS tunnel is down."""
        session = self.sessions.pop(virtual_peer, None)
        if session is None or session.tunnel_id is None:
            return
        tunnel = self.tunnels.get(session.tunnel_id)
        if tunnel is not None and tunnel.virtual_peer == virtual_peer:
            tunnel.virtual_peer = None
            self._set_status(session.tunnel_id, tunnel, TunnelStatus.TUNNEL_DN)

    def turtle_data_received(self, item: Any, file_hash: Sha1Hash, virtual_peer: SslId,
                             now: float) -> None:
        """Turtle generic data from the tunnel of ``virtual_peer``."""
        data: bytes = item.data
        if len(data) < crypto.IV_SIZE:
            self.dropped["short data"] += 1
            return
        if data[:crypto.IV_SIZE] == crypto.CLEAR_PREFIX:
            try:
                dh_item = decode(data[crypto.IV_SIZE:])
            except DecodeError:
                self.dropped["bad clear item"] += 1
                return
            if isinstance(dh_item, GxsTunnelDhPublicKeyItem):
                self._dh_received(virtual_peer, dh_item, now)
            else:
                self.dropped["clear item not a DH key"] += 1
            return
        self._encrypted_received(virtual_peer, data,
                                 isinstance(item, TurtleGenericFastDataItem), now)

    # --- key exchange ---------------------------------------------------------------------

    def _restart_dh(self, virtual_peer: SslId, now: float, *, forced: bool = True) -> None:
        """A new DH key and its signed public value to the other end.  Restarts caused by
        bad data (``forced`` False) come at most once per `DH_RESTART_INTERVAL` s: each costs
        a signature, which garbage must not make us spend at will."""
        session = self.sessions[virtual_peer]
        if not forced and session.last_restart is not None and \
                now < session.last_restart + DH_RESTART_INTERVAL:
            self.dropped["DH restart held back"] += 1
            return
        session.last_restart = now
        key = self._own_key(session.own_id)
        if key is None:
            self.dropped["own identity gone"] += 1
            return
        session.dh = self._dh_factory()
        public = session.dh.public_bytes
        item = GxsTunnelDhPublicKeyItem(public, sign(public, key), public_half(key))
        self._out.append(TurtleSend(virtual_peer, TurtleGenericDataItem(
            0, crypto.CLEAR_PREFIX + encode(item))))

    def _signer_key(self, item: GxsTunnelDhPublicKeyItem) -> NxsRsaKey | None:
        sender = item.signature.key_id
        known = self._peer_key(sender)
        if known is not None:
            return known
        key = item.gxs_key
        if key.key_id != sender:
            return None
        try:
            if key_id_of(load_public(key)) != sender:  # the id must be the key's own
                return None
        except SignatureError:
            return None
        return key

    def _dh_received(self, virtual_peer: SslId, item: GxsTunnelDhPublicKeyItem,
                     now: float) -> None:
        session = self.sessions.get(virtual_peer)
        if session is None or session.dh is None:
            self.dropped["DH key for no session"] += 1
            return
        key = self._signer_key(item)
        if key is None or not verify_ok(item.public_key, key, item.signature):
            self.dropped["DH key badly signed"] += 1
            return
        sender = item.signature.key_id
        if session.direction is TurtleDirection.SERVER:
            tunnel = next((t for t in self.tunnels.values()
                           if t.file_hash == session.file_hash), None)
            if tunnel is None or tunnel.peer_id != sender:
                self.dropped["DH key from the wrong identity"] += 1
                return
        if session.tunnel_id is not None:  # a second key on this turtle tunnel: start over
            self._restart_dh(virtual_peer, now, forced=False)
        try:
            secret = session.dh.shared(item.public_key)  # type: ignore[union-attr]
        except crypto.ShortSecretError:  # chance, not an attack: start over at once
            self.dropped["short DH secret"] += 1
            self._restart_dh(virtual_peer, now)
            return
        except ValueError:
            self.dropped["bad DH value"] += 1
            self._restart_dh(virtual_peer, now, forced=False)
            return
        tid = crypto.tunnel_id(session.own_id, sender)
        tunnel = self.tunnels.get(tid)
        if tunnel is None:
            if len(self.tunnels) >= MAX_TUNNELS:
                self.dropped["tunnels full"] += 1
                return
            tunnel = self.tunnels[tid] = _Tunnel(session.own_id, sender, None, False,
                                                 TunnelStatus.TUNNEL_DN, now, now)
        session.tunnel_id = tid
        tunnel.key = crypto.session_key(secret)
        tunnel.last_contact = tunnel.last_keep_alive = now
        tunnel.virtual_peer = virtual_peer
        tunnel.accepts_fast = tunnel.probed_fast = False
        self._set_status(tid, tunnel, TunnelStatus.CAN_TALK)
        self._send_encrypted(tunnel, GxsTunnelStatusItem(GxsTunnelFlags.ACK_DISTANT_CONNECTION))
        self._next_tick = now  # pending data leaves now

    # --- encrypted traffic ----------------------------------------------------------------

    def _send_encrypted(self, tunnel: _Tunnel, item: Any) -> bool:
        if tunnel.status is not TunnelStatus.CAN_TALK or tunnel.virtual_peer is None:
            return False
        clear = encode(item)
        tunnel.sent_bytes += len(clear)
        frame = crypto.encrypt(tunnel.key, clear)
        # As RetroShare: fast items once the other end showed it takes them; until then the
        # plain generic item, plus one fast copy as a probe.
        if tunnel.accepts_fast or not tunnel.probed_fast:
            self._out.append(TurtleSend(tunnel.virtual_peer, TurtleGenericFastDataItem(0, frame)))
            tunnel.probed_fast = True
        if not tunnel.accepts_fast:
            self._out.append(TurtleSend(tunnel.virtual_peer, TurtleGenericDataItem(0, frame)))
        return True

    def _encrypted_received(self, virtual_peer: SslId, data: bytes, fast: bool,
                            now: float) -> None:
        session = self.sessions.get(virtual_peer)
        tunnel = self.tunnels.get(session.tunnel_id) if session and session.tunnel_id else None
        if session is None or tunnel is None or session.tunnel_id is None:
            self.dropped["encrypted data for no tunnel"] += 1
            return
        tid = session.tunnel_id
        try:
            clear = crypto.decrypt(tunnel.key, data)
        except crypto.TunnelAuthError:
            self.dropped["bad encrypted data"] += 1
            self._restart_dh(virtual_peer, now, forced=False)
            return
        if fast:
            tunnel.accepts_fast = True
        tunnel.last_contact = now
        if tunnel.virtual_peer != virtual_peer or tunnel.status is not TunnelStatus.CAN_TALK:
            tunnel.virtual_peer = virtual_peer
            self._set_status(tid, tunnel, TunnelStatus.CAN_TALK)
        try:
            item = decode(clear)
        except DecodeError:
            self.dropped["bad tunnel item"] += 1
            return
        tunnel.received_bytes += len(clear)
        if isinstance(item, GxsTunnelDataItem):
            self._data_received(tid, tunnel, item, now)
        elif isinstance(item, GxsTunnelDataAckItem):
            if tunnel.pending.pop(item.counter, None) is not None:
                self._out.append(TunnelDataAcked(tid, item.counter))
        elif isinstance(item, GxsTunnelStatusItem):
            if item.status == GxsTunnelFlags.CLOSING_DISTANT_CONNECTION:
                self._set_status(tid, tunnel, TunnelStatus.REMOTELY_CLOSED if not tunnel.we_asked
                                 else TunnelStatus.TUNNEL_DN)
                if not tunnel.we_asked:
                    tunnel.virtual_peer = None
        else:
            self.dropped["unexpected tunnel item"] += 1

    def _data_received(self, tid: GxsId, tunnel: _Tunnel, item: GxsTunnelDataItem,
                       now: float) -> None:
        self._send_encrypted(tunnel, GxsTunnelDataAckItem(item.counter))
        if item.service_id not in self._clients:
            self.dropped["data for an unknown service"] += 1
            return
        if item.counter in tunnel.prints:
            self.dropped["duplicate data"] += 1
            return
        while len(tunnel.prints) >= MAX_DATA_PRINTS:
            tunnel.prints.popitem(last=False)
        tunnel.prints[item.counter] = now
        tunnel.services.add(item.service_id)
        accept = self._clients[item.service_id]
        if accept is not None and not accept(tunnel.peer_id, tunnel.own_id, tunnel.we_asked):
            self._out.append(TunnelDataRefused(tid, item.service_id, tunnel.peer_id))
            return
        self._out.append(TunnelDataReceived(tid, item.service_id, item.data, tunnel.peer_id,
                                            tunnel.own_id))

    # --- helpers --------------------------------------------------------------------------

    def _set_status(self, tid: GxsId, tunnel: _Tunnel, status: TunnelStatus) -> None:
        if tunnel.status is status:
            return
        tunnel.status = status
        self._out.append(TunnelStatusChanged(tid, status, tunnel.own_id, tunnel.peer_id))

    def _arm(self, now: float) -> None:
        if self._next_tick is None or self._next_tick > now + TICK:
            self._next_tick = now + TICK
