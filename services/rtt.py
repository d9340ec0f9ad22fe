# -*- test-case-name: tests.test_service_rtt -*-
"""RTT (0x1011): a ping to each peer every 10 s, answered by a pong; round-trip times kept.

Timestamps are RetroShare's fixed point: whole seconds in the high 32 bits, microseconds in the
low 32 bits (``p3rtt.cc``).  A pong echoes the ping's sequence number and timestamp and adds
the ponger's own.  We accept a pong only for a ping we sent and have not yet matched, so a
peer cannot feed us made-up round-trip times.
"""

from __future__ import annotations

import collections
import dataclasses
import statistics
from typing import Final

from twisted.internet.interfaces import IReactorTime

from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.ids import SERVICE_RTT
from pqi.items.rtt import RttPingItem, RttPongItem
from pqi.wire.fields import SslId
from services.base import PeriodicService
from services.spec import ServiceSpec

__all__ = ["RttService", "RttStats", "SPEC", "RTT_PERIOD", "RTT_WINDOW", "to_rs_time",
           "from_rs_time"]

#: Seconds between pings (``RTT_PING_PERIOD``; the captures show 10 s).
RTT_PERIOD: Final = 10.0
#: Measurements kept per peer for the mean.
RTT_WINDOW: Final = 20
#: Pings awaiting their pong, per peer; older ones are forgotten.
_OUTSTANDING: Final = 8

#: RTT on a node (``rtt_period``: seconds between pings).
SPEC: Final = ServiceSpec(
    SERVICE_RTT, "rtt", attribute="rtt", items=(RttPingItem, RttPongItem),
    options={"rtt_period": RTT_PERIOD},
    build=lambda node: RttService(node.control, node.reactor,
                                  period=node.options["rtt_period"]))


def to_rs_time(seconds: float) -> int:
    """Seconds as RetroShare's 64-bit ``secs << 32 | usecs``."""
    whole = int(seconds)
    usecs = int(round((seconds - whole) * 1_000_000))
    if usecs >= 1_000_000:
        whole, usecs = whole + 1, usecs - 1_000_000
    return (whole & 0xFFFFFFFF) << 32 | usecs


def from_rs_time(value: int) -> float:
    """RetroShare's 64-bit timestamp as seconds."""
    return (value >> 32) + (value & 0xFFFFFFFF) / 1_000_000


@dataclasses.dataclass(frozen=True)
class RttStats:
    """Round-trip times to one peer, in seconds."""

    last: float
    mean: float
    count: int


@dataclasses.dataclass
class _PeerRtt:
    seq: int = 0
    outstanding: dict[int, int] = dataclasses.field(default_factory=dict)
    samples: collections.deque[float] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=RTT_WINDOW))


class RttService(PeriodicService):
    """Pings every peer that enabled RTT and answers their pings."""

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime,
                 period: float = RTT_PERIOD) -> None:
        super().__init__(sender, reactor)
        self.period = period
        self._state: dict[SslId, _PeerRtt] = {}

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self._state[peer.ssl_id] = _PeerRtt()

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self._state.pop(peer.ssl_id, None)

    def tick(self) -> None:
        """Ping every peer once."""
        now = to_rs_time(self.reactor.seconds())
        for ssl_id, state in list(self._state.items()):
            state.seq = (state.seq + 1) & 0xFFFFFFFF
            state.outstanding[state.seq] = now
            while len(state.outstanding) > _OUTSTANDING:
                del state.outstanding[next(iter(state.outstanding))]
            self.send(ssl_id, RttPingItem(seq=state.seq, ping_ts=now))

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, RttPingItem):
            self.send(peer.ssl_id, RttPongItem(seq=item.seq, ping_ts=item.ping_ts,
                                               pong_ts=to_rs_time(self.reactor.seconds())))
        elif isinstance(item, RttPongItem):
            state = self._state.get(peer.ssl_id)
            if state is None or state.outstanding.get(item.seq) != item.ping_ts:
                return
            del state.outstanding[item.seq]
            rtt = max(0.0, self.reactor.seconds() - from_rs_time(item.ping_ts))
            state.samples.append(rtt)

    def stats(self, ssl_id: SslId) -> RttStats | None:
        """Measured round trips to ``ssl_id``, or None before the first pong."""
        state = self._state.get(ssl_id)
        if state is None or not state.samples:
            return None
        return RttStats(last=state.samples[-1], mean=statistics.fmean(state.samples),
                        count=len(state.samples))
