"""The ban-list service on recording senders and a Clock: what it sends RetroShare-shaped
friends every 600 s, how it applies what they send, bounds, events and persistence."""

from __future__ import annotations

import ipaddress

from twisted.internet.task import Clock

from pqi.interfaces import DisconnectReason
from pqi.items.banlist import BanEntry, BanListItem
from pqi.wire.address import NetAddress
from pqi.wire.fields import SslId
from pqi.wire.item import decode, encode
from services.banlist import service as service_mod
from services.banlist import store
from services.banlist.rules import Origin, Reason
from services.banlist.service import SEND_PERIOD, BanListService, BlocksChanged
from tests.service_fakes import peer

IP = ipaddress.IPv4Address
OWN = SslId(b"\x07" * 16)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[SslId, object]] = []

    def send(self, to: SslId, item: object) -> bool:
        self.sent.append((to, item))
        return True

    def connected_peers(self) -> list:
        return []


def _service(tmp_path, clock=None):
    clock = clock or Clock()
    if clock.seconds() == 0:
        clock.advance(1_000_000)
    rec, events = Recorder(), []
    s = BanListService(rec, clock, OWN, tmp_path / store.BLOCKS_FILE, emit=events.append)
    return s, rec, events, clock


def test_sends_own_entries_every_600_s_and_nothing_before(tmp_path) -> None:
    """Like RetroShare: the first list goes one period after start, then every 600 s, to
    each peer running the service; it holds our own-level entries only, byte-exact."""
    s, rec, _, clock = _service(tmp_path)
    friend = peer(1)
    s.peer_connected(friend)
    s.report_abuse(IP("6.6.8.8"))
    s.receive(friend, BanListItem(entries=[BanEntry(NetAddress(IP("9.9.9.9"), 0), 1, 2, 0)]))
    s.start()
    clock.advance(SEND_PERIOD - 1)
    assert rec.sent == []
    clock.advance(1)
    clock.advance(SEND_PERIOD)
    s.stop()
    assert [to for to, _ in rec.sent] == [friend.ssl_id, friend.ssl_id]
    item = rec.sent[0][1]
    assert isinstance(item, BanListItem)
    assert [(e.addr.host, e.level, e.reason, e.comment) for e in item.entries] == [
        (IP("6.6.8.8"), Origin.SELF, Reason.DHT, "")]
    assert decode(encode(item)) == item


def test_friends_lists_follow_the_rules_and_emit(tmp_path) -> None:
    """Two friends reporting two addresses of one /24 ban the /24 (automatic range); the
    change is saved and announced."""
    s, _, events, _ = _service(tmp_path)
    for n, host in ((1, "8.8.8.1"), (2, "8.8.8.2")):
        s.receive(peer(n), BanListItem(entries=[BanEntry(NetAddress(IP(host), 0), 1, 2, 5)]))
    assert not s.accepts(IP("8.8.8.200"))
    assert BlocksChanged("ip") in events
    again, *_ = _service(tmp_path, Clock())
    assert not again.accepts(IP("8.8.8.200"))


def test_non_ipv4_and_oversized_items_are_cut(tmp_path, monkeypatch) -> None:
    """IPv6 entries are skipped and no more than MAX_ENTRIES_PER_ITEM are read."""
    monkeypatch.setattr(service_mod, "MAX_ENTRIES_PER_ITEM", 3)
    s, _, _, _ = _service(tmp_path)
    entries = [BanEntry(NetAddress(ipaddress.IPv6Address("2001:db8::1"), 0), 1, 1, 0)]
    entries += [BanEntry(NetAddress(IP(f"8.8.{n}.8"), 0), 1, 1, 0) for n in range(10)]
    s.receive(peer(1), BanListItem(entries=entries))
    assert len(s.rules.ban_set()) == 2


def test_settings_change_what_applies(tmp_path) -> None:
    """Turning ``from_friends`` on applies a friend's DHT entry; filtering off lifts all."""
    s, _, _, _ = _service(tmp_path)
    s.receive(peer(1), BanListItem(entries=[BanEntry(NetAddress(IP("6.6.8.8"), 0), 1, 2, 0)]))
    assert s.accepts(IP("6.6.8.8"))
    s.set_settings(from_friends=True)
    assert not s.accepts(IP("6.6.8.8"))
    s.set_settings(filtering=False)
    assert s.accepts(IP("6.6.8.8"))


def test_friend_going_offline_drops_its_banned_files(tmp_path) -> None:
    """A friend's banned-hashes list is kept only while it is online (RetroShare)."""
    from pqi.items.filelists import FileListsBannedHashesItem
    from pqi.wire.fields import Sha1Hash
    s, _, _, _ = _service(tmp_path)
    friend = peer(1)
    s.peer_connected(friend)
    h = Sha1Hash(b"\x09" * 20)
    s.files.received(friend.ssl_id, FileListsBannedHashesItem(
        session_id=1, encrypted_hashes=frozenset({h})))
    assert s.files.is_banned(h)
    s.peer_disconnected(friend, DisconnectReason.CLOSED)
    assert not s.files.is_banned(h)
