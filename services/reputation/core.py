# -*- test-case-name: tests.test_reputation -*-
"""Reputation (service 0x0219), sans-IO: our opinions of identities, and our friends'.

As ``p3GxsReputation``: every `REQUEST_PERIOD` seconds (and when a friend connects) we ask each
friend for the opinions it changed since the friend's last update time we saw; a friend's
answer lists its own non-neutral-or-changed opinions (at most `MAX_SET_SIZE` + 1 per item) with
its latest update time (one second less when that is "now", so nothing set in the same second
is missed).  The overall level of an identity:

- LOCALLY_NEGATIVE when our own opinion is negative (we banned it),
- LOCALLY_POSITIVE when it is positive,
- else from friends' votes: REMOTELY_POSITIVE when positives >= negatives + `min_positive`,
  REMOTELY_NEGATIVE when positives + `min_negative` <= negatives, NEUTRAL otherwise.

`hides` says whether an identity's content is hidden: LOCALLY_NEGATIVE always, and
REMOTELY_NEGATIVE too when ``hide_remotely_negative`` is set (RetroShare's "banned" threshold).
Tables are bounded: `MAX_OPINIONS` identities.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Final

from pqi.items.reputation import IdOpinion, Opinion, ReputationRequestItem, ReputationUpdateItem
from pqi.wire.fields import GxsId, SslId
from pqi.wire.item import PQItem

__all__ = [
    "ReputationCore", "Level", "SendItem", "REQUEST_PERIOD", "MAX_SET_SIZE", "MAX_OPINIONS",
]

#: Seconds between two requests to a friend (``kReputationRequestPeriod``).
REQUEST_PERIOD: Final = 600
#: Opinions per update item (RetroShare sends a packet once it holds more than this).
MAX_SET_SIZE: Final = 100
#: Most identities we keep opinions about.
MAX_OPINIONS: Final = 50_000


class Level(enum.IntEnum):
    """``RsReputationLevel``."""

    LOCALLY_NEGATIVE = 0
    REMOTELY_NEGATIVE = 1
    NEUTRAL = 2
    REMOTELY_POSITIVE = 3
    LOCALLY_POSITIVE = 4


@dataclasses.dataclass(frozen=True)
class SendItem:
    peer: SslId
    item: PQItem


@dataclasses.dataclass
class _Entry:
    own: Opinion = Opinion.NEUTRAL
    own_ts: int = 0
    friends: dict[SslId, Opinion] = dataclasses.field(default_factory=dict)


class ReputationCore:
    """Opinions and their exchange (see the module docstring)."""

    def __init__(self, *, min_positive: int = 1, min_negative: int = 1,
                 hide_remotely_negative: bool = False) -> None:
        self.min_positive = min_positive
        self.min_negative = min_negative
        self.hide_remotely_negative = hide_remotely_negative
        self.entries: dict[GxsId, _Entry] = {}
        #: Per friend: the friend's latest update time we hold, and when we next ask.
        self.latest: dict[SslId, int] = {}
        self.next_request: dict[SslId, float] = {}
        self._out: list[Any] = []

    # --- the core contract -----------------------------------------------------------------

    def drain(self, now: float) -> list[Any]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        return min(self.next_request.values()) if self.next_request else None

    def handle_timer(self, now: float) -> None:
        for peer, due in list(self.next_request.items()):
            if due <= now:
                self._request(peer, now)

    # --- inputs ----------------------------------------------------------------------------

    def peer_connected(self, peer: SslId, now: float) -> None:
        self._request(peer, now)

    def peer_disconnected(self, peer: SslId, now: float) -> None:
        self.next_request.pop(peer, None)

    def set_opinion(self, gxs_id: GxsId, opinion: Opinion, now: float) -> None:
        entry = self._entry(gxs_id)
        if entry is None:
            raise ValueError(f"MAX_OPINIONS ({MAX_OPINIONS}) identities already rated")
        entry.own, entry.own_ts = Opinion(opinion), int(now)

    def item_received(self, peer: SslId, item: PQItem, now: float) -> None:
        if isinstance(item, ReputationRequestItem):
            self._answer(peer, item.last_update, now)
        elif isinstance(item, ReputationUpdateItem):
            for op in item.opinions:
                value = Opinion(op.opinion) if op.opinion <= Opinion.POSITIVE else None
                entry = self._entry(op.gxs_id)
                if value is None or entry is None:
                    continue
                if value == Opinion.NEUTRAL:
                    entry.friends.pop(peer, None)
                else:
                    entry.friends[peer] = value
            self.latest[peer] = max(self.latest.get(peer, 0), item.latest_update)

    # --- queries ---------------------------------------------------------------------------

    def own_opinion(self, gxs_id: GxsId) -> Opinion:
        entry = self.entries.get(gxs_id)
        return Opinion.NEUTRAL if entry is None else entry.own

    def level(self, gxs_id: GxsId) -> Level:
        entry = self.entries.get(gxs_id)
        if entry is None:
            return Level.NEUTRAL
        if entry.own == Opinion.NEGATIVE:
            return Level.LOCALLY_NEGATIVE
        if entry.own == Opinion.POSITIVE:
            return Level.LOCALLY_POSITIVE
        pos = sum(1 for v in entry.friends.values() if v == Opinion.POSITIVE)
        neg = sum(1 for v in entry.friends.values() if v == Opinion.NEGATIVE)
        if pos >= neg + self.min_positive:
            return Level.REMOTELY_POSITIVE
        if pos + self.min_negative <= neg:
            return Level.REMOTELY_NEGATIVE
        return Level.NEUTRAL

    def hides(self, gxs_id: GxsId) -> bool:
        """Is this identity's content hidden (dropped from lobbies, not accepted in GXS)?"""
        lvl = self.level(gxs_id)
        return lvl == Level.LOCALLY_NEGATIVE or (
            self.hide_remotely_negative and lvl == Level.REMOTELY_NEGATIVE)

    # --- helpers ---------------------------------------------------------------------------

    def _entry(self, gxs_id: GxsId) -> _Entry | None:
        entry = self.entries.get(gxs_id)
        if entry is None:
            if len(self.entries) >= MAX_OPINIONS:
                return None
            entry = self.entries[gxs_id] = _Entry()
        return entry

    def _request(self, peer: SslId, now: float) -> None:
        self.next_request[peer] = now + REQUEST_PERIOD
        self._out.append(SendItem(peer, ReputationRequestItem(
            last_update=self.latest.get(peer, 0))))

    def _answer(self, peer: SslId, since: int, now: float) -> None:
        changed = sorted((e.own_ts, gid) for gid, e in self.entries.items()
                         if e.own_ts > since)
        batch: dict[GxsId, int] = {}
        latest = 0
        for ts, gid in changed:
            batch[gid] = int(self.entries[gid].own)
            latest = ts - 1 if ts == int(now) else ts
            if len(batch) > MAX_SET_SIZE:
                self._send_update(peer, batch, latest)
                batch = {}
        if batch:
            self._send_update(peer, batch, latest)

    def _send_update(self, peer: SslId, batch: dict[GxsId, int], latest: int) -> None:
        opinions = tuple(IdOpinion(g, batch[g]) for g in sorted(batch, key=bytes))
        self._out.append(SendItem(peer, ReputationUpdateItem(latest_update=latest,
                                                             opinions=opinions)))
