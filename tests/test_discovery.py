"""Gossip discovery: the captured exchange replayed, and the flow between our own services."""

from __future__ import annotations

import base64
import json

import pytest
from twisted.internet.testing import MemoryReactorClock

from pqi.identity.friends import FriendList
from pqi.identity.pgp import PublicKey, decode_length
from pqi.interfaces import PeerIdentity
from pqi.items.discovery import (
    ContactAddresses,
    DiscContactItem,
    DiscIdentityListItem,
    DiscPgpKeyItem,
    DiscPgpListItem,
    PgpListMode,
)
from pqi.wire.fields import PgpId, SslId
from pqi.wire.item import decode, encode
from services.discovery import DiscoveryListener, DiscoveryService
from tests.service_fakes import RecordingSender

ALICE = PeerIdentity(SslId.from_hex("86192d6a6926c8af956f3601f1a77d19"),
                     PgpId.from_hex("CC22FB383D1957C2"), "alice-loc")
BOB = PeerIdentity(SslId.from_hex("4ea22c330cebe3bec367aef3aaf496b6"),
                   PgpId.from_hex("1FF918C2EAD0CCC1"), "bob-loc")
CAROL_PGP = PgpId.from_hex("CDDB2139D3476079")


def cert_key(path) -> bytes:
    """The PGP key packet (tag 0x01) of a RetroShare long certificate."""
    data = base64.b64decode("".join(path.read_text().split()))
    pos = 0
    while pos < len(data):
        tag = data[pos]
        length, pos = decode_length(data, pos + 1, "cert")
        if tag == 0x01:
            return data[pos:pos + length]
        pos += length
    raise AssertionError("no key in certificate")


class Events(DiscoveryListener):
    def __init__(self) -> None:
        self.pending: list[tuple[PgpId, str, SslId]] = []
        self.locations: list[tuple[SslId, PgpId, tuple]] = []

    def pending_friend(self, pgp_id, name, learned_from) -> None:
        self.pending.append((pgp_id, name, learned_from.ssl_id))

    def location_learned(self, ssl_id, pgp_id, addresses) -> None:
        self.locations.append((ssl_id, pgp_id, addresses))

    def identities_announced(self, peer, identities) -> None:
        self.identities = (peer.ssl_id, identities)


def capture_lines(captures, name: str, first: int, last: int):
    with open(captures / f"{name}.items.jsonl") as f:
        for n, line in enumerate(f, 1):
            if first <= n <= last:
                yield n, json.loads(line)


@pytest.fixture
def alice(tmp_path, captures):
    """Our discovery service playing alice of the captures, with bob as her only friend."""
    friends = FriendList(tmp_path / "friends.sqlite", now=lambda: 1795612751)
    bob_key = PublicKey.from_bytes(cert_key(captures / "bob.invite.txt"))
    friends.offer(bob_key)
    friends.approve(bob_key.pgp_id)
    friends.add_location(BOB.pgp_id, BOB.ssl_id, "bob-loc")
    own_contact = next(decode(bytes.fromhex(d["hex"]))
                       for _, d in capture_lines(captures, "alice", 699, 699))
    clock = MemoryReactorClock()
    clock.advance(1795612751)
    sender = RecordingSender()
    events = Events()
    svc = DiscoveryService(sender, clock, own_ssl_id=ALICE.ssl_id, own_pgp_id=ALICE.pgp_id,
                           own_key=cert_key(captures / "alice.invite.txt"),
                           own_contact=lambda: own_contact, friends=friends, listener=events)
    yield svc, sender, events, friends
    friends.close()


def test_replayed_capture_makes_carol_pending(alice, captures) -> None:
    """Bob's side of connection 2 (alice:693-706), replayed into our service playing alice:
    we answer as alice did, byte for byte, ask for carol's key exactly as alice:705, and
    carol ends up pending approval, learned from bob, not accepted."""
    svc, sender, events, friends = alice
    svc.peer_connected(BOB)
    ours_out = [encode(i) for _, i in sender.sent]
    sender.sent.clear()
    alice_out = []
    for _, d in capture_lines(captures, "alice", 693, 706):
        if d["service"] != "0x0011" or d["peer"] != BOB.ssl_id.to_hex():
            continue
        if d["dir"] == "out":
            alice_out.append(bytes.fromhex(d["hex"]))
        else:
            svc.receive(BOB, decode(bytes.fromhex(d["hex"])))
            ours_out += [encode(i) for _, i in sender.sent]
            sender.sent.clear()
    assert ours_out == alice_out
    assert events.pending == [(CAROL_PGP, "carol", BOB.ssl_id)]
    (pending,) = friends.pending()
    assert pending.pgp_id == CAROL_PGP and pending.learned_from == BOB.ssl_id
    assert not friends.is_accepted_profile(CAROL_PGP)


def test_unrequested_key_dropped(alice, captures) -> None:
    """A key we never asked this peer for (and not its own) is ignored."""
    svc, sender, events, friends = alice
    svc.peer_connected(BOB)
    (_, d), = capture_lines(captures, "alice", 706, 706)
    svc.receive(BOB, decode(bytes.fromhex(d["hex"])))
    assert friends.pending() == [] and events.pending == []


def test_key_with_wrong_label_dropped(alice, captures) -> None:
    """A key whose real PGP id differs from the id in the item is refused."""
    svc, sender, events, friends = alice
    svc.peer_connected(BOB)
    svc.receive(BOB, DiscPgpListItem(mode=PgpListMode.FRIENDS,
                                     pgp_ids=frozenset({PgpId(b"\x01" * 8)})))
    svc.receive(BOB, DiscPgpKeyItem(pgp_id=PgpId(b"\x01" * 8),
                                    key_data=cert_key(captures / "carol.invite.txt")))
    assert friends.pending() == []


def test_getcert_answered_for_own_and_friends_only(alice, captures) -> None:
    """GETCERT for our own key and an accepted friend's key is answered; a stranger's is not."""
    svc, sender, _, _ = alice
    svc.peer_connected(BOB)
    sender.sent.clear()
    svc.receive(BOB, DiscPgpListItem(mode=PgpListMode.GETCERT,
                                     pgp_ids=frozenset({ALICE.pgp_id, BOB.pgp_id, CAROL_PGP})))
    got = {i.pgp_id: i.key_data for _, i in sender.sent}
    assert set(got) == {ALICE.pgp_id, BOB.pgp_id}
    assert got[ALICE.pgp_id] == cert_key(captures / "alice.invite.txt")


def test_own_contact_with_wrong_pgp_dropped(alice) -> None:
    """A peer's own CONTACT naming another PGP id is dropped: no PGP list in answer."""
    svc, sender, _, _ = alice
    svc.peer_connected(BOB)
    sender.sent.clear()
    svc.receive(BOB, DiscContactItem(pgp_id=CAROL_PGP, ssl_id=BOB.ssl_id, location="x",
                                     version="", net_mode=2, vs_disc=2, vs_dht=2,
                                     last_contact=0, addresses=ContactAddresses()))
    assert sender.sent == []


def test_contact_about_us_reports_our_address(alice) -> None:
    """A CONTACT about ourselves tells us the address the friend sees us at."""
    import ipaddress

    from pqi.wire.address import NetAddress
    svc, _, _, _ = alice
    svc.peer_connected(BOB)
    seen = NetAddress(ipaddress.ip_address("203.0.113.7"), 4000)
    svc.receive(BOB, DiscContactItem(pgp_id=ALICE.pgp_id, ssl_id=ALICE.ssl_id, location="",
                                     version="", net_mode=2, vs_disc=2, vs_dht=2,
                                     last_contact=0,
                                     addresses=ContactAddresses(current_connect=seen)))
    assert svc.seen_as == {BOB.ssl_id: seen}


def test_connect_sends_contact_and_empty_identity_list(alice) -> None:
    """On enable: our own CONTACT then an empty IDENTITY_LIST, as RetroShare does."""
    svc, sender, _, _ = alice
    svc.peer_connected(BOB)
    kinds = [type(i) for _, i in sender.sent]
    assert kinds == [DiscContactItem, DiscIdentityListItem]
    assert sender.sent[1][1].identities == ()


def test_identity_list_names_our_signed_identities_and_reports_the_friends(alice) -> None:
    """Our IDENTITY_LIST names what ``own_identities`` gives; a friend's is reported."""
    from pqi.wire.fields import GxsId
    svc, sender, events, _ = alice
    ours = (GxsId(b"\x01" * 16), GxsId(b"\x02" * 16))
    svc._own_identities = lambda: ours
    svc.peer_connected(BOB)
    assert sender.sent[1][1].identities == ours
    svc.receive(BOB, DiscIdentityListItem(identities=(GxsId(b"\x03" * 16),)))
    assert events.identities == (BOB.ssl_id, (GxsId(b"\x03" * 16),))


def test_a_location_name_not_utf8_is_learned_and_kept(alice) -> None:
    """Bob tells us of another location of his with a name that is not UTF-8: it is
    recorded with exactly those bytes (the write used to fail) and discovery goes on."""
    svc, _, events, friends = alice
    svc.peer_connected(BOB)
    junk = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    laptop = SslId(b"\x33" * 16)
    item = decode(encode(DiscContactItem(
        pgp_id=BOB.pgp_id, ssl_id=laptop, location=junk, version="", net_mode=2, vs_disc=2,
        vs_dht=2, last_contact=0, addresses=ContactAddresses())))
    svc.receive(BOB, item)
    assert friends.location(laptop).name.encode("utf-8", "surrogateescape") == b"caf\xe9 \xff"
    phone = SslId(b"\x34" * 16)
    svc.receive(BOB, DiscContactItem(
        pgp_id=BOB.pgp_id, ssl_id=phone, location="phone", version="", net_mode=2, vs_disc=2,
        vs_dht=2, last_contact=0, addresses=ContactAddresses()))
    assert [loc[0] for loc in events.locations] == [laptop, phone]
