# -*- test-case-name: tests.test_banlist_files -*-
"""`IdentityBans`: whether a GXS identity's lobby messages, posts and distant mail are hidden.

The hook the GXS work calls (``is_banned(gxs_id)``), with RetroShare's reputation rules
(``p3GxsReputation``): our own opinion wins (negative: banned; positive: never banned); a
neutral own opinion leaves it to friends' votes, and the identity counts as remotely negative
when friends' negative votes reach the positive ones plus ``min_votes_negative`` (default 1).
Both locally and remotely negative identities are hidden, as the issue asks.  Until the GXS
reputation service feeds friends' votes (`set_friend_opinion`), only our own opinions count.
No I/O: the block service persists our opinions.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["Opinion", "IdentityBans", "IdentityBansFullError", "MAX_OWN_OPINIONS",
           "MAX_VOTED_IDENTITIES", "MAX_VOTERS", "DEFAULT_MIN_VOTES_NEGATIVE"]

#: Identities we may hold an opinion on.
MAX_OWN_OPINIONS: Final = 100_000
#: Identities friends' votes are kept for (further ones are ignored).
MAX_VOTED_IDENTITIES: Final = 100_000
#: Friends whose votes count per identity.
MAX_VOTERS: Final = 1024
#: ``REPUTATION_DEFAULT_MIN_VOTES_FOR_REMOTELY_NEGATIVE``.
DEFAULT_MIN_VOTES_NEGATIVE: Final = 1


class IdentityBansFullError(ValueError):
    """`MAX_OWN_OPINIONS` opinions are held already."""


class Opinion(enum.IntEnum):
    """``RsOpinion``: our (or a friend's) opinion of an identity."""

    NEGATIVE = 0
    NEUTRAL = 1
    POSITIVE = 2


class IdentityBans:
    """Our opinions and friends' votes; ``is_banned`` is the question the GXS code asks."""

    def __init__(self, min_votes_negative: int = DEFAULT_MIN_VOTES_NEGATIVE) -> None:
        self.min_votes_negative = min_votes_negative
        self._own: dict[bytes, tuple[Opinion, str, float]] = {}
        self._votes: dict[bytes, dict[object, Opinion]] = {}

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

    def set_friend_opinion(self, friend: object, gxs_id: bytes, opinion: Opinion) -> None:
        """A friend's vote (from the reputation service); NEUTRAL withdraws it."""
        key = bytes(gxs_id)
        votes = self._votes.get(key)
        if opinion is Opinion.NEUTRAL:
            if votes is not None:
                votes.pop(friend, None)
                if not votes:
                    del self._votes[key]
            return
        if votes is None:
            if len(self._votes) >= MAX_VOTED_IDENTITIES:
                return
            votes = self._votes[key] = {}
        if friend not in votes and len(votes) >= MAX_VOTERS:
            return
        votes[friend] = opinion

    def is_banned(self, gxs_id: bytes) -> bool:
        """Whether the identity's messages, posts and mail are to be hidden."""
        own = self.own_opinion(gxs_id)
        if own is not Opinion.NEUTRAL:
            return own is Opinion.NEGATIVE
        votes = self._votes.get(bytes(gxs_id), {})
        negative = sum(1 for v in votes.values() if v is Opinion.NEGATIVE)
        positive = len(votes) - negative
        return negative > 0 and positive + self.min_votes_negative <= negative

    def banned(self) -> list[tuple[bytes, str, float]]:
        """Our own bans: identity, reason, when."""
        return sorted((k, r, t) for k, (o, r, t) in self._own.items() if o is Opinion.NEGATIVE)

    def own_opinions(self) -> dict[bytes, tuple[Opinion, str, float]]:
        return dict(self._own)
