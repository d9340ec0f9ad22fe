"""RetroShare's ban-list rules on hand-built lists, one test per rule, the bounds, and the
captured ban-list items."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.items.banlist import BanEntry, BanListItem
from pqi.wire.address import NetAddress
from pqi.wire.item import decode, encode
from services.banlist import rules
from services.banlist.rules import BanRules, BanSettings, CheckResult, Origin, Reason

IP = ipaddress.IPv4Address
OWN, F1, F2 = b"own", b"friend-1", b"friend-2"
NOW = 1_000_000.0


def test_captured_ban_list_items_round_trip(captures2) -> None:
    """Every ban-list item the real nodes sent decodes and re-encodes byte for byte."""
    found = []
    for path in sorted(captures2.glob("*.items.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec["service"] == "0x0101":
                raw = bytes.fromhex(rec["hex"])
                item = decode(raw)
                assert isinstance(item, BanListItem) and encode(item) == raw
                found.append(item)
    assert found and all(i.entries == [] for i in found)


def test_user_range_refuses_and_removal_restores() -> None:
    """A user /24 refuses every address in it and nothing outside; lifting it accepts again."""
    r = BanRules(OWN)
    r.add_range(IP("203.0.113.7"), 1, NOW)
    assert r.check(IP("203.0.113.200")) is CheckResult.BLACKLISTED
    assert r.check(IP("203.0.114.1")) is CheckResult.ACCEPTED
    assert r.remove_range(IP("203.0.113.0"), 1, NOW)
    assert r.accepts(IP("203.0.113.200"))


def test_wider_user_range_replaces_the_ranges_inside() -> None:
    """Adding a /16 drops the /32 and /24 user entries it contains (``addIpRange``)."""
    r = BanRules(OWN)
    r.add_range(IP("198.51.100.9"), 0, NOW)
    r.add_range(IP("198.51.100.9"), 1, NOW)
    r.add_range(IP("198.51.100.9"), 2, NOW)
    assert [b.network for b in r.black_ranges()] == [ipaddress.IPv4Network("198.51.0.0/16")]


def test_whitelist_wins_over_every_ban() -> None:
    """A whitelisted address is accepted even inside a banned range, and learned bans of it
    never enter the ban set."""
    r = BanRules(OWN, BanSettings(from_friends=True))
    r.add_range(IP("203.0.113.0"), 1, NOW)
    r.add_range(IP("203.0.113.5"), 0, NOW, white=True)
    r.received_list(F1, [(IP("203.0.113.5"), 1, Reason.DHT, 0)], NOW)
    assert r.check(IP("203.0.113.5")) is CheckResult.ACCEPTED
    assert r.ban_set() == []


def test_friend_entries_apply_only_when_gathering_from_friends() -> None:
    """A friend's DHT entry counts at level 2: ignored by default, applied once
    ``from_friends`` is on."""
    r2 = BanRules(OWN)
    r2.received_list(F1, [(IP("6.6.4.4"), Origin.SELF, Reason.DHT, 10)], NOW)
    assert r2.ban_set()[0].level == Origin.FRIEND
    assert r2.accepts(IP("6.6.4.4"))
    r2.settings.from_friends = True
    assert not r2.accepts(IP("6.6.4.4"))


def test_own_dht_entries_apply_only_when_gathering_from_dht() -> None:
    """Our own DHT findings are shared but refuse only with ``from_dht`` on (level 1)."""
    r = BanRules(OWN)
    r.add_entry(OWN, IP("6.6.6.8"), Origin.SELF, Reason.DHT, NOW, NOW)
    r.condense(NOW)
    assert r.accepts(IP("6.6.6.8"))
    assert [b.addr for b in r.shared_entries()] == [IP("6.6.6.8")]
    r.settings.from_dht = True
    assert not r.accepts(IP("6.6.6.8"))


def test_a_friends_user_entry_applies_at_once() -> None:
    """An entry whose reason is USER refuses whoever reported it (``acceptedBanSet``)."""
    r = BanRules(OWN)
    r.received_list(F1, [(IP("6.6.6.8"), Origin.SELF, Reason.USER, 0)], NOW)
    assert not r.accepts(IP("6.6.6.8"))


def test_only_external_addresses_are_taken_from_sources() -> None:
    """Private, loopback and link-local reports are ignored (``isExternalNet``)."""
    r = BanRules(OWN, BanSettings(from_friends=True))
    for host in ("10.0.0.1", "127.0.0.2", "169.254.1.1", "192.168.1.1"):
        assert not r.add_entry(F1, IP(host), 1, Reason.DHT, NOW, NOW)
    assert r.ban_set() == []


def test_two_banned_addresses_in_a_24_ban_the_range() -> None:
    """Two ban-set addresses of one /24 (here from two friends) make an automatic /24 ban;
    one is not enough; turning ``auto_range`` off lifts it."""
    r = BanRules(OWN)
    r.received_list(F1, [(IP("8.8.8.1"), 1, Reason.DHT, 0)], NOW)
    assert r.accepts(IP("8.8.8.77"))
    r.received_list(F2, [(IP("8.8.8.2"), 1, Reason.DHT, 0)], NOW)
    assert r.check(IP("8.8.8.77")) is CheckResult.BLACKLISTED
    assert [b.reason for b in r.black_ranges()] == [Reason.AUTO_RANGE]
    r.settings.auto_range = False
    r.condense(NOW)
    assert r.accepts(IP("8.8.8.77"))


def test_auto_range_limit_is_a_setting() -> None:
    """With a limit of 3, two addresses in a /24 are not enough."""
    r = BanRules(OWN, BanSettings(auto_range_limit=3))
    r.received_list(F1, [(IP("8.8.8.1"), 1, Reason.DHT, 0), (IP("8.8.8.2"), 1, Reason.DHT, 0)],
                    NOW)
    assert r.accepts(IP("8.8.8.9"))
    r.received_list(F2, [(IP("8.8.8.3"), 1, Reason.DHT, 0)], NOW)
    assert not r.accepts(IP("8.8.8.9"))


def test_manual_range_wins_over_an_automatic_one() -> None:
    """Where the user has a /24, no automatic range replaces it, and lifting the user's range
    leaves the automatic one to be recomputed."""
    r = BanRules(OWN)
    r.add_range(IP("8.8.8.0"), 1, NOW, comment="mine")
    r.received_list(F1, [(IP("8.8.8.1"), 1, Reason.DHT, 0), (IP("8.8.8.2"), 1, Reason.DHT, 0)],
                    NOW)
    (only,) = r.black_ranges()
    assert only.reason == Reason.USER and only.comment == "mine"
    r.remove_range(IP("8.8.8.0"), 1, NOW)
    assert [b.reason for b in r.black_ranges()] == [Reason.AUTO_RANGE]


def test_lowest_level_wins_and_equal_levels_merge_reasons() -> None:
    """Our own entry (level 1) beats a friend's (level 2); two friends' entries of one level
    OR their reasons and keep the newest time."""
    r = BanRules(OWN)
    r.add_entry(OWN, IP("6.6.6.8"), Origin.SELF, Reason.DHT, NOW - 5, NOW)
    r.received_list(F1, [(IP("6.6.6.8"), 1, Reason.USER, 0)], NOW)
    assert r.ban_set()[0].level == Origin.SELF
    r2 = BanRules(OWN)
    r2.received_list(F1, [(IP("9.9.9.9"), 1, Reason.USER, 100)], NOW)
    r2.received_list(F2, [(IP("9.9.9.9"), 1, Reason.DHT, 10)], NOW)
    (entry,) = r2.ban_set()
    assert entry.reason == Reason.USER | Reason.DHT and entry.since == NOW - 10


def test_entries_and_sources_expire_after_a_day() -> None:
    """An entry older than 24 h, or a source silent for 24 h, no longer counts."""
    r = BanRules(OWN, BanSettings(from_friends=True))
    r.received_list(F1, [(IP("6.6.6.8"), 1, Reason.DHT, 0)], NOW)
    r.received_list(F2, [(IP("9.9.9.9"), 1, Reason.DHT, rules.ENTRY_MAX_AGE + 1)], NOW)
    assert [b.addr for b in r.ban_set()] == [IP("6.6.6.8")]
    r.condense(NOW + rules.ENTRY_MAX_AGE + 1)
    assert r.ban_set() == [] and r.accepts(IP("6.6.6.8"))


def test_only_our_own_level_is_shared_without_comments() -> None:
    """Friends' entries (level 2) are not passed on; ours go as single addresses."""
    r = BanRules(OWN)
    r.add_entry(OWN, IP("6.6.6.8"), Origin.SELF, Reason.DHT, NOW, NOW)
    r.received_list(F1, [(IP("9.9.9.9"), 1, Reason.DHT, 0)], NOW)
    r.add_range(IP("7.7.7.7"), 0, NOW, comment="secret")
    shared = r.shared_entries()
    assert [(b.addr, b.masked_bytes, b.comment) for b in shared] == [(IP("6.6.6.8"), 0, "")]


def test_filtering_off_accepts_everything_and_ipv6_is_not_checked() -> None:
    """``filtering`` off: no check; an IPv6 address that is not v4-mapped: no check."""
    r = BanRules(OWN, BanSettings(filtering=False))
    r.add_range(IP("6.6.6.8"), 0, NOW)
    assert r.check(IP("6.6.6.8")) is CheckResult.NOCHECK
    r.settings.filtering = True
    assert r.check(ipaddress.IPv6Address("::ffff:6.6.6.8")) is CheckResult.BLACKLISTED
    assert r.check(ipaddress.IPv6Address("2001:db8::1")) is CheckResult.NOCHECK


def test_refusals_are_counted() -> None:
    """Each refusal counts an attempt on the entry that refused."""
    r = BanRules(OWN)
    r.add_range(IP("6.6.6.8"), 0, NOW)
    for _ in range(3):
        r.check(IP("6.6.6.8"))
    assert r.black_ranges()[0].attempts == 3


def test_bad_masks_are_refused() -> None:
    """Only /32, /24 and /16 exist."""
    with pytest.raises(ValueError):
        rules.range_of(IP("1.2.3.4"), 3)


def test_bounds_hold(monkeypatch) -> None:
    """Sources, entries per source and ranges stay within their named bounds."""
    monkeypatch.setattr(rules, "MAX_SOURCES", 3)
    monkeypatch.setattr(rules, "MAX_ENTRIES_PER_SOURCE", 5)
    monkeypatch.setattr(rules, "MAX_RANGES", 4)
    r = BanRules(OWN, BanSettings(auto_range=False))
    for n in range(10):
        r.add_entry(b"peer%d" % n, IP(f"8.8.{n}.1"), 1, Reason.DHT, NOW, NOW + n)
        r.add_entry(F1, IP(f"9.9.{n}.1"), 1, Reason.DHT, NOW, NOW)
    assert len(r.sources()) == 3
    assert all(len(entries) <= 5 for _, entries in r.sources().values())
    for n in range(4):
        r.add_range(IP(f"7.7.{n}.0"), 1, NOW)
    with pytest.raises(rules.BanListFullError):
        r.add_range(IP("6.6.6.6"), 0, NOW)
    assert len(r.black_ranges()) == 4


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 3), st.integers(0, 3),
                          st.integers(0, 2**32 - 1)), max_size=20))
def test_received_items_round_trip_and_never_crash_the_rules(entries) -> None:
    """Any ban-list item round-trips and feeding it to the rules keeps them consistent."""
    item = BanListItem(entries=[BanEntry(NetAddress(IP(a), 0), level=lv, reason=rs, age=age)
                                for a, lv, rs, age in entries])
    assert decode(encode(item)) == item
    r = BanRules(OWN)
    r.received_list(F1, [(IP(a), lv, rs, age) for a, lv, rs, age in entries], NOW)
    assert all(b.addr.is_global for b in r.ban_set())
