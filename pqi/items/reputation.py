# -*- test-case-name: tests.test_items_gxs -*-
"""Reputation (service 0x0219): friends exchange their opinions of GXS identities.

Not an NXS service: every 600 s a node asks each friend for the opinions changed since the
friend's last update it saw (`ReputationRequestItem`), and the friend answers with its
non-neutral opinions (`ReputationUpdateItem`, a ``std::map`` written in id order).
"""

from __future__ import annotations

import dataclasses
import enum

import construct as c

from pqi.wire.compound import DataclassStruct, TupleArray
from pqi.wire.fields import GxsId, IdField, u32
from pqi.wire.item import PQItem

from .ids import SERVICE_REPUTATION

__all__ = ["Opinion", "IdOpinion", "ReputationUpdateItem", "ReputationRequestItem"]


class Opinion(enum.IntEnum):
    """``RsOpinion``: what a node thinks of an identity."""

    NEGATIVE = 0
    NEUTRAL = 1
    POSITIVE = 2


@dataclasses.dataclass(frozen=True)
class IdOpinion:
    """One entry of the opinion map: an identity and the sender's opinion of it (raw u32)."""

    gxs_id: GxsId
    opinion: int


class ReputationUpdateItem(PQItem):
    """``RsGxsReputationUpdateItem``: the sender's latest update time and its opinions."""

    SERVICE = SERVICE_REPUTATION
    SUBTYPE = 0x03
    PRIORITY = 3
    BODY = c.Struct("latest_update" / u32, "opinions" / TupleArray(
        DataclassStruct(IdOpinion, "gxs_id" / IdField(GxsId), "opinion" / u32), min_size=20))
    latest_update: int
    opinions: tuple[IdOpinion, ...]


class ReputationRequestItem(PQItem):
    """``RsGxsReputationRequestItem``: send me what changed since ``last_update``."""

    SERVICE = SERVICE_REPUTATION
    SUBTYPE = 0x04
    PRIORITY = 3
    BODY = c.Struct("last_update" / u32)
    last_update: int
