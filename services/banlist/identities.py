# -*- test-case-name: tests.test_banlist_files -*-
"""`IdentityBans`: our own opinions of GXS identities, with a reason and a time.

Our opinion "negative" bans an identity: its lobby messages, GXS messages and distant mail are
refused (``p3GxsReputation::isIdentityBanned``: LOCALLY_NEGATIVE); "positive" and "neutral" do
not.  Friends' votes and the threshold that makes an identity REMOTELY_NEGATIVE are the
reputation service's (`services.reputation`), which the ban service asks too and tells our
opinions to.  No I/O: the block service persists our opinions.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["Opinion", "IdentityBans", "IdentityBansFullError", "MAX_OWN_OPINIONS"]

#: Identities we may hold an opinion on.
MAX_OWN_OPINIONS: Final = 100_000


class IdentityBansFullError(ValueError):
    """`MAX_OWN_OPINIONS` opinions are held already."""


class Opinion(enum.IntEnum):
    """``RsOpinion``: our (or a friend's) opinion of an identity."""

    NEGATIVE = 0
    NEUTRAL = 1
    POSITIVE = 2


class IdentityBans:
    """Our opinions; ``is_banned`` is the question lobbies, GXS and mail ask."""

    def __init__(self) -> None:
        self._own: dict[bytes, tuple[Opinion, str, float]] = {}

    def set_own_opinion(self, gxs_id: bytes, opinion: Opinion, now: float,
                        reason: str = "") -> None:
        """Our opinion (NEUTRAL forgets it)."""
        key = bytes(gxs_id)
        if opinion is Opinion.NEUTRAL:
            self._own.pop(key, None)
            return
        if key not in self._own and len(self._own) >= MAX_OWN_OPINIONS:
            raise IdentityBansFullError(f"{MAX_OWN_OPINIONS} opinions are held already")
        self._own[key] = (opinion, reason, now)

    def own_opinion(self, gxs_id: bytes) -> Opinion:
        found = self._own.get(bytes(gxs_id))
        return Opinion.NEUTRAL if found is None else found[0]

    def is_banned(self, gxs_id: bytes) -> bool:
        """Whether our opinion of the identity is negative."""
        return self.own_opinion(gxs_id) is Opinion.NEGATIVE

    def banned(self) -> list[tuple[bytes, str, float]]:
        """Our own bans: identity, reason, when."""
        return sorted((k, r, t) for k, (o, r, t) in self._own.items() if o is Opinion.NEGATIVE)

    def own_opinions(self) -> dict[bytes, tuple[Opinion, str, float]]:
        return dict(self._own)
