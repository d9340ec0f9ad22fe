"""Banned files, banned identities, the UDP filter and the block file's crash safety."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from twisted.internet.task import Clock

from dht.node import DHTNode
from dht.protocol import DHTProtocol
from pqi.items.filelists import FileListsBannedHashesItem
from pqi.wire.fields import Sha1Hash, SslId
from services.banlist import files as files_mod
from services.banlist import identities as ids_mod
from services.banlist import store
from services.banlist.files import BannedFiles, hash_of_hash
from services.banlist.identities import IdentityBans, Opinion
from services.banlist.rules import BanRules
from services.banlist.service import BanListService, parse_range

H = Sha1Hash(bytes(range(20)))
OWN = SslId(b"\x01" * 16)


def test_hash_of_hash_is_sha1_of_the_hash() -> None:
    """H(H) is the SHA-1 of the 20 hash bytes (``ftServer::encryptHash``)."""
    assert hash_of_hash(H) == hashlib.sha1(bytes(H)).digest()


def test_banned_file_is_banned_by_hash_and_by_hash_of_hash() -> None:
    """Our ban covers the hash and its H(H); unbanning lifts both."""
    f = BannedFiles()
    f.ban(H, 1.0, "x", 3)
    assert f.is_banned(H) and f.is_banned(hash_of_hash(H))
    assert f.unban(H, 2.0) and not f.is_banned(H)


def test_friends_lists_replace_per_session_and_count_only_when_trusted() -> None:
    """A friend's H(H) bans the file while trusted; a new session replaces the list; the
    list goes when the friend goes offline."""
    f = BannedFiles()
    f.received("p", FileListsBannedHashesItem(session_id=1,
                                              encrypted_hashes=frozenset({hash_of_hash(H)})))
    assert f.is_banned(H)
    f.trust_friends = False
    assert not f.is_banned(H)
    f.trust_friends = True
    f.received("p", FileListsBannedHashesItem(session_id=2, encrypted_hashes=frozenset()))
    assert not f.is_banned(H)
    f.received("p", FileListsBannedHashesItem(session_id=2,
                                              encrypted_hashes=frozenset({hash_of_hash(H)})))
    f.peer_gone("p")
    assert not f.is_banned(H)


def test_items_carry_200_hashes_under_one_session() -> None:
    """450 banned files go as 3 items (200, 200, 50) of one session, each H(H)."""
    f = BannedFiles()
    hashes = [Sha1Hash(hashlib.sha1(b"%d" % n).digest()) for n in range(450)]
    for h in hashes:
        f.ban(h, 1.0)
    items = f.items_for("p", 2.0)
    assert [len(i.encrypted_hashes) for i in items] == [200, 200, 50]
    assert len({i.session_id for i in items}) == 1
    assert set().union(*(i.encrypted_hashes for i in items)) == {hash_of_hash(h) for h in hashes}
    assert not f.needs_sending("p")


def test_file_bounds_hold(monkeypatch) -> None:
    """The primary list and each friend's list stay within their bounds."""
    monkeypatch.setattr(files_mod, "MAX_BANNED_FILES", 2)
    monkeypatch.setattr(files_mod, "MAX_PEER_HASHES", 3)
    f = BannedFiles()
    f.ban(Sha1Hash(b"\x01" * 20), 0)
    f.ban(Sha1Hash(b"\x02" * 20), 0)
    with pytest.raises(files_mod.BannedFilesFullError):
        f.ban(Sha1Hash(b"\x03" * 20), 0)
    f.received("p", FileListsBannedHashesItem(session_id=1, encrypted_hashes=frozenset(
        Sha1Hash(bytes([n]) * 20) for n in range(10))))
    assert len(f.peer_hashes("p")) == 3


def test_identity_bans_are_our_own_opinions() -> None:
    """Our negative opinion bans (with its reason and time); positive or neutral does not;
    neutral forgets the opinion."""
    ids = IdentityBans()
    gid = b"\xaa" * 16
    assert not ids.is_banned(gid)
    ids.set_own_opinion(gid, Opinion.NEGATIVE, 1.0, "troll")
    assert ids.is_banned(gid) and ids.banned() == [(gid, "troll", 1.0)]
    ids.set_own_opinion(gid, Opinion.POSITIVE, 2.0)
    assert not ids.is_banned(gid) and ids.own_opinion(gid) is Opinion.POSITIVE
    ids.set_own_opinion(gid, Opinion.NEUTRAL, 3.0)
    assert ids.own_opinions() == {}


def test_identity_bounds_hold(monkeypatch) -> None:
    """Own opinions stay within their bound; a full table still changes known ones."""
    monkeypatch.setattr(ids_mod, "MAX_OWN_OPINIONS", 2)
    ids = IdentityBans()
    ids.set_own_opinion(b"a", Opinion.NEGATIVE, 0)
    ids.set_own_opinion(b"b", Opinion.NEGATIVE, 0)
    with pytest.raises(ids_mod.IdentityBansFullError):
        ids.set_own_opinion(b"c", Opinion.NEGATIVE, 0)
    ids.set_own_opinion(b"b", Opinion.POSITIVE, 1)
    assert not ids.is_banned(b"b") and not ids.is_banned(b"c")


def test_parse_range() -> None:
    """Addresses, /24 and /16 parse; other prefixes and IPv6 are refused."""
    assert parse_range("1.2.3.4") == (ipaddress.IPv4Address("1.2.3.4"), 0)
    assert parse_range("1.2.3.9/24") == (ipaddress.IPv4Address("1.2.3.0"), 1)
    for bad in ("1.2.3.0/20", "::1", "nonsense"):
        with pytest.raises(ValueError):
            parse_range(bad)


class _Transport:
    def __init__(self) -> None:
        self.written: list[tuple[bytes, tuple]] = []

    def write(self, data: bytes, addr: tuple) -> None:
        self.written.append((data, addr))


def test_udp_datagrams_from_and_to_banned_hosts_are_dropped() -> None:
    """The one UDP port drops a banned host's DHT queries and TOU/relay datagrams, and
    sends it nothing; others are answered."""
    clock = Clock()
    other: list[bytes] = []
    banned = {"203.0.113.9"}
    proto = DHTProtocol(DHTNode(b"\x00" * 20, now=0.0), clock,
                        other_handler=lambda d, a: other.append(d),
                        address_filter=lambda host: host not in banned)
    proto.transport = _Transport()
    ping = b"d1:ad2:id20:" + b"\x01" * 20 + b"e1:q4:ping1:t2:aa1:y1:qe"
    proto.datagramReceived(ping, ("203.0.113.9", 7000))
    proto.datagramReceived(b"\x00tou", ("203.0.113.9", 7000))
    assert proto.transport.written == [] and other == [] and proto.banned_dropped == 2
    proto.datagramReceived(ping, ("198.51.100.1", 7000))
    proto.datagramReceived(b"\x00tou", ("198.51.100.1", 7000))
    assert {a for _, a in proto.transport.written} == {("198.51.100.1", 7000)}
    assert other == [b"\x00tou"]
    proto.stopProtocol()


def test_block_file_round_trips_and_a_bad_file_is_an_error(tmp_path) -> None:
    """What the service saves loads back the same; a corrupt file is a BlockFileError."""
    clock = Clock()
    clock.advance(1000)
    path = tmp_path / store.BLOCKS_FILE
    s = BanListService(_Sender(), clock, OWN, path)
    s.block_ip("8.8.8.0/24", "c")
    s.block_ip("9.9.9.9", white=True)
    s.report_abuse(ipaddress.IPv4Address("7.7.7.7"))
    s.block_file(H, "f", 1)
    s.block_id(b"\xbb" * 16, "r")
    s2 = BanListService(_Sender(), clock, OWN, path)
    assert s2.listing() == s.listing()
    path.write_text("{not json")
    with pytest.raises(store.BlockFileError):
        store.load(path, BanRules(OWN), BannedFiles(), IdentityBans(), SslId.from_hex, 0)


class _Sender:
    def send(self, peer, item) -> bool:
        return True

    def connected_peers(self) -> list:
        return []


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from twisted.internet.task import Clock
    from pqi.wire.fields import SslId
    from services.banlist.service import BanListService

    class S:
        def send(self, p, i): return True
        def connected_peers(self): return []

    s = BanListService(S(), Clock(), SslId(b"\\x01" * 16), Path(sys.argv[1]))
    n = 0
    while n < 1_000_000:
        s.block_ip(f"8.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}", "x")
        s.unblock_ip(f"8.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}")
        n += 1
        if n == 20:
            print("ready", flush=True)  # rewriting the file over and over from here on
""")


@pytest.mark.timeout(60)
def test_block_file_survives_kill_9(tmp_path) -> None:
    """A process killed with SIGKILL while it rewrites the block file leaves a file that
    loads (the old list or the new one, never half)."""
    path = tmp_path / store.BLOCKS_FILE
    clock = Clock()
    BanListService(_Sender(), clock, OWN, path).block_ip("7.7.7.1", "kept")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE,
                            env=os.environ.copy())
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    s = BanListService(_Sender(), clock, OWN, path)
    assert "7.7.7.1/32" in [b["range"] for b in s.listing()["ips"]]
