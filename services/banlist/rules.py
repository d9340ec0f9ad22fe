# -*- test-case-name: tests.test_banlist_rules -*-
"""`BanRules`: which IP addresses we refuse, by RetroShare's ban-list rules (``p3banlist``).

No I/O and no clock: every input takes ``now`` (seconds), so tests replay any history.
RetroShare keeps three tables and this module keeps the same three, with the same rules:

* **ban sources**: per peer (our own SSL id included), the single addresses it reports banned,
  each with a level (``Origin``: 1 ours, 2 a friend's, 3 a friend of a friend's), a reason
  (``Reason``: user, DHT, automatic range) and the time it was banned.  Only external
  addresses are taken; a source silent for 24 h and entries older than 24 h are ignored;
* **ban set**: the sources condensed: one entry per address at the lowest level found (a
  friend's entry counts one level further than the friend said), reasons of equal level
  merged; whitelisted addresses never enter it;
* **ranges**: addresses and /24 or /16 ranges, black or white.  The user's ranges
  (``Reason.USER``) and automatic /24 ranges: when ``auto_range_limit`` (default 2) banned
  addresses of the ban set share a /24, the whole /24 is banned (``Reason.AUTO_RANGE``),
  unless the user already has a range there (manual entries win).

`BanRules.check` answers for one address: whitelisted ranges accept; black ranges refuse
(automatic ones only while ``auto_range`` is on); a ban-set entry refuses when it is the
user's, or comes from friends and ``from_friends`` is on, or is our own DHT finding and
``from_dht`` is on.  We share with friends the ban-set entries of our own level, without
comment, as single addresses (`BanRules.shared_entries`), every 10 minutes.

One difference from RetroShare, on purpose: RetroShare never refuses a loopback address; here
a loopback address is refused when a range the *user* entered covers it (learned entries
never hold loopback addresses, as only external ones are taken).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections.abc import Iterable
from typing import Final

__all__ = [
    "Origin", "Reason", "CheckResult", "BanSettings", "Ban", "BanRules", "BanListFullError",
    "ENTRY_MAX_AGE", "MAX_SOURCES", "MAX_ENTRIES_PER_SOURCE", "MAX_RANGES",
    "DEFAULT_AUTO_RANGE_LIMIT", "range_of", "is_external",
]

#: A source's list, and each entry, count for 24 h (``RSBANLIST_ENTRY_MAX_AGE``).
ENTRY_MAX_AGE: Final = 24 * 3600
#: Peers whose ban lists we keep (our own included); the stalest is forgotten past it.
MAX_SOURCES: Final = 256
#: Addresses kept per source; further ones from a peer are ignored.
MAX_ENTRIES_PER_SOURCE: Final = 4096
#: Black plus white ranges (user and automatic).
MAX_RANGES: Final = 4096
#: Banned addresses in one /24 that ban the whole /24 (RetroShare's ``mAutoRangeLimit``).
DEFAULT_AUTO_RANGE_LIMIT: Final = 2

IPv4 = ipaddress.IPv4Address


class Origin(enum.IntEnum):
    """``RSBANLIST_ORIGIN_*``: how far from us a ban was decided."""

    UNKNOWN = 0
    SELF = 1
    FRIEND = 2
    FOF = 3


class Reason(enum.IntEnum):
    """``RSBANLIST_REASON_*`` (entries of equal level OR their reasons together, as
    RetroShare does, so a stored reason is a plain int)."""

    UNKNOWN = 0
    USER = 1
    DHT = 2
    AUTO_RANGE = 3


class CheckResult(enum.IntEnum):
    """``RSBANLIST_CHECK_RESULT_*``."""

    UNKNOWN = 0x00
    NOCHECK = 0x01
    BLACKLISTED = 0x02
    NOT_WHITELISTED = 0x03
    ACCEPTED = 0x04


class BanListFullError(ValueError):
    """A user range was refused: `MAX_RANGES` ranges are kept already."""


@dataclasses.dataclass
class BanSettings:
    """RetroShare's ban-list options with its defaults (``p3BanList`` constructor)."""

    filtering: bool = True
    auto_range: bool = True
    auto_range_limit: int = DEFAULT_AUTO_RANGE_LIMIT
    from_friends: bool = False
    from_dht: bool = False


@dataclasses.dataclass
class Ban:
    """One banned address or range (``BanListPeer``).

    ``masked_bytes``: 0 a single address, 1 its /24, 2 its /16.  ``since``: when it was
    banned (RetroShare's ``mTs``); ``attempts``: connections refused because of it.
    """

    addr: IPv4
    masked_bytes: int = 0
    reason: int = Reason.UNKNOWN
    level: int = Origin.UNKNOWN
    since: float = 0.0
    comment: str = ""
    attempts: int = 0

    @property
    def network(self) -> ipaddress.IPv4Network:
        return range_of(self.addr, self.masked_bytes)


def range_of(addr: IPv4, masked_bytes: int) -> ipaddress.IPv4Network:
    """The /32, /24 or /16 around ``addr`` (``masked_bytes`` 0, 1, 2); ValueError otherwise."""
    if masked_bytes not in (0, 1, 2):
        raise ValueError(f"masked_bytes must be 0, 1 or 2, not {masked_bytes}")
    return ipaddress.IPv4Network((int(addr), 32 - 8 * masked_bytes), strict=False)


#: A range as the tables key it: (network address as an int, masked bytes).
_Key = tuple[int, int]
_MASKS: Final = {0: 0xFFFFFFFF, 1: 0xFFFFFF00, 2: 0xFFFF0000}


def _key(addr: IPv4, masked_bytes: int) -> _Key:
    return int(addr) & _MASKS[masked_bytes], masked_bytes


def is_external(addr: IPv4) -> bool:
    """Whether a peer's report about ``addr`` is worth taking (``sockaddr_storage_isExternalNet``:
    not private, loopback, link-local, multicast, reserved or unspecified)."""
    return addr.is_global


def _v4(host: ipaddress.IPv4Address | ipaddress.IPv6Address) -> IPv4 | None:
    if isinstance(host, IPv4):
        return host
    return host.ipv4_mapped


@dataclasses.dataclass
class _Source:
    last_update: float
    entries: dict[IPv4, Ban]


class BanRules:
    """Our ban list: ``own`` is our SSL id as the key of our own source (any hashable)."""

    def __init__(self, own: object, settings: BanSettings | None = None) -> None:
        self.own = own
        self.settings = settings or BanSettings()
        self._sources: dict[object, _Source] = {}
        self._ban_set: dict[IPv4, Ban] = {}
        self._black: dict[_Key, Ban] = {}
        self._white: dict[_Key, Ban] = {}

    # --- inputs --------------------------------------------------------------------------

    def add_range(self, addr: IPv4, masked_bytes: int, now: float, *, comment: str = "",
                  white: bool = False) -> Ban:
        """The user bans (or whitelists) an address or range; ranges inside it are dropped."""
        table = self._white if white else self._black
        network = range_of(addr, masked_bytes)
        key = _key(addr, masked_bytes)
        if key not in table and len(self._black) + len(self._white) >= MAX_RANGES:
            raise BanListFullError(f"{MAX_RANGES} ranges are kept already")
        for smaller in range(masked_bytes):
            table.pop(_key(addr, smaller), None)
        ban = Ban(network.network_address, masked_bytes, Reason.USER, Origin.SELF, now, comment)
        table[key] = ban
        self._condense(now)
        return ban

    def remove_range(self, addr: IPv4, masked_bytes: int, now: float, *,
                     white: bool = False) -> bool:
        """Lift a range (or address) of the black or white list; False if there was none."""
        range_of(addr, masked_bytes)  # ValueError for a bad mask
        table = self._white if white else self._black
        removed = table.pop(_key(addr, masked_bytes), None) is not None
        self._condense(now)
        return removed

    def add_entry(self, source: object, addr: IPv4, level: int, reason: int, since: float,
                  now: float) -> bool:
        """``source`` (a friend, or ``own`` for our DHT's findings) reports ``addr`` banned.

        Returns whether anything changed; call `condense` after a batch (the service does).
        """
        if not is_external(addr):
            return False
        src = self._sources.get(source)
        changed = False
        if src is None:
            if len(self._sources) >= MAX_SOURCES:
                stalest = min((k for k in self._sources if k != self.own),
                              key=lambda k: self._sources[k].last_update, default=None)
                if stalest is None:
                    return False
                del self._sources[stalest]
            src = self._sources[source] = _Source(now, {})
            changed = True
        old = src.entries.get(addr)
        if old is None:
            if len(src.entries) >= MAX_ENTRIES_PER_SOURCE:
                return changed
            src.entries[addr] = Ban(addr, 0, reason, level, since)
        elif old.reason != reason or old.level != level or old.since < since:
            src.entries[addr] = Ban(addr, 0, reason, level, since)
        else:
            return changed
        src.last_update = now
        return True

    def received_list(self, source: object, entries: Iterable[tuple[IPv4, int, int, int]],
                      now: float) -> bool:
        """A friend's ban-list item: ``(addr, level, reason, age)`` per entry."""
        changed = False
        for addr, level, reason, age in entries:
            changed = self.add_entry(source, addr, level, reason, now - age, now) or changed
        if changed:
            self.condense(now)
        return changed

    def forget_source(self, source: object, now: float) -> None:
        """Drop what a peer told us (it is no longer a friend)."""
        if self._sources.pop(source, None) is not None:
            self.condense(now)

    def condense(self, now: float) -> None:
        """Rebuild the ban set and the automatic ranges from the sources."""
        self._condense(now)

    # --- the rules -----------------------------------------------------------------------

    def _condense(self, now: float) -> None:
        ban_set: dict[IPv4, Ban] = {}
        for key, src in self._sources.items():
            if now - src.last_update > ENTRY_MAX_AGE:
                continue
            for ban in src.entries.values():
                if now > ENTRY_MAX_AGE + ban.since:
                    continue
                level = ban.level if key == self.own else ban.level + 1
                if self._whitelisted(ban.addr):
                    continue
                found = ban_set.get(ban.addr)
                if found is None or level < found.level:
                    ban_set[ban.addr] = Ban(ban.addr, 0, ban.reason, level, ban.since,
                                            ban.comment)
                elif level == found.level:
                    found.reason |= ban.reason
                    found.since = max(found.since, ban.since)
        self._ban_set = ban_set
        self._auto_ranges(now)

    def _auto_ranges(self, now: float) -> None:
        for key in [k for k, b in self._black.items() if b.reason == Reason.AUTO_RANGE]:
            del self._black[key]
        if not self.settings.auto_range:
            return
        counts: dict[_Key, int] = {}
        for addr in self._ban_set:
            key = _key(addr, 1)
            counts[key] = counts.get(key, 0) + 1
        for key, n in sorted(counts.items()):
            if n < self.settings.auto_range_limit or key in self._black:
                continue  # a user range there wins
            if len(self._black) + len(self._white) >= MAX_RANGES:
                break
            self._black[key] = Ban(IPv4(key[0]), 1, Reason.AUTO_RANGE, Origin.SELF, now)

    def _whitelisted(self, addr: IPv4) -> bool:
        return bool(self._white) and any(_key(addr, m) in self._white for m in (0, 1, 2))

    def _range_applies(self, ban: Ban) -> bool:
        if ban.reason == Reason.USER:
            return True
        return ban.reason == Reason.AUTO_RANGE and self.settings.auto_range

    def _set_entry_applies(self, ban: Ban) -> bool:
        if ban.level > Origin.SELF and self.settings.from_friends:
            return True
        if ban.reason == Reason.USER:
            return True
        return ban.reason == Reason.DHT and self.settings.from_dht and ban.level == Origin.SELF

    def check(self, host: ipaddress.IPv4Address | ipaddress.IPv6Address) -> CheckResult:
        """Whether a connection from or to ``host`` is refused (counts the refusal)."""
        addr = _v4(host)
        if addr is None or not self.settings.filtering:
            return CheckResult.NOCHECK
        if self._whitelisted(addr):
            return CheckResult.ACCEPTED
        for masked in (2, 1, 0):
            ban = self._black.get(_key(addr, masked))
            if ban is not None and self._range_applies(ban):
                ban.attempts += 1
                return CheckResult.BLACKLISTED
        entry = self._ban_set.get(addr)
        if entry is not None and self._set_entry_applies(entry):
            entry.attempts += 1
            return CheckResult.BLACKLISTED
        return CheckResult.ACCEPTED

    def accepts(self, host: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """`check` as a yes or no."""
        return self.check(host) is not CheckResult.BLACKLISTED

    # --- outputs -------------------------------------------------------------------------

    def shared_entries(self) -> list[Ban]:
        """What we send friends: our own-level ban-set entries, single addresses, no comment."""
        return [dataclasses.replace(b, masked_bytes=0, comment="")
                for _, b in sorted(self._ban_set.items()) if b.level < Origin.FRIEND]

    def banned(self) -> list[Ban]:
        """What applies now (``getBannedIps``): ban-set entries not inside an applied range,
        then the applied black ranges."""
        out = []
        for addr, ban in sorted(self._ban_set.items()):
            if not self._set_entry_applies(ban):
                continue
            if any((r := self._black.get(_key(addr, m))) is not None
                   and self._range_applies(r) for m in (1, 2)):
                continue
            out.append(ban)
        out += [b for _, b in sorted(self._black.items()) if self._range_applies(b)]
        return out

    def whitelist(self) -> list[Ban]:
        return [b for _, b in sorted(self._white.items())]

    def black_ranges(self) -> list[Ban]:
        """Every black range, applied or not (the user's and the automatic ones)."""
        return [b for _, b in sorted(self._black.items())]

    def ban_set(self) -> list[Ban]:
        return [b for _, b in sorted(self._ban_set.items())]

    def sources(self) -> dict[object, tuple[float, list[Ban]]]:
        """Per source: when it last changed and its entries (for persistence)."""
        return {k: (s.last_update, list(s.entries.values())) for k, s in self._sources.items()}

    def load_source(self, source: object, last_update: float, entries: Iterable[Ban]) -> None:
        """Restore a persisted source (bounded like live input)."""
        if source not in self._sources and len(self._sources) >= MAX_SOURCES:
            return
        kept = {}
        for ban in entries:
            if len(kept) >= MAX_ENTRIES_PER_SOURCE:
                break
            if is_external(ban.addr):
                kept[ban.addr] = ban
        self._sources[source] = _Source(last_update, kept)

    def load_range(self, ban: Ban, *, white: bool) -> None:
        """Restore a persisted user range (automatic ones are recomputed by `condense`)."""
        if len(self._black) + len(self._white) >= MAX_RANGES:
            return
        (self._white if white else self._black)[_key(ban.addr, ban.masked_bytes)] = ban
