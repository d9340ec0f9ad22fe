# -*- test-case-name: tests.test_friends -*-
"""The friend list on real sqlite files: explicit approval, SSL-only friends, transactions."""

from __future__ import annotations

import ipaddress
import pathlib
import sqlite3
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pqi.identity.certificate import RsCertificate
from pqi.identity.friends import (
    MAX_STORED_TIME,
    FingerprintMismatchError,
    FriendList,
    IncompleteInviteError,
    LocationConflictError,
    NotPendingError,
    OfferOutcome,
    PendingOrigin,
    TrustLevel,
    UnknownFriendError,
)
from pqi.identity.invite import DnsLocator, Ext4Locator, Loc4Locator, ShortInvite
from pqi.identity.pgp import ProfileKey
from pqi.identity.sslcert import LocationCertificate
from pqi.wire.address import AddressInfo, NetAddress
from pqi.wire.fields import PgpFingerprint, PgpId, SslId
from tests.identity_fixtures import *  # noqa: F403
from tests.strategies import address_infos


def addr(text: str, port: int) -> NetAddress:
    return NetAddress(ipaddress.ip_address(text), port)


def clock(start: int = 1_800_000_000) -> list[int]:
    """A settable time source: ``t[0]`` is now."""
    return [start]


@pytest.fixture
def db_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "friends.sqlite"


def bob_certificate(profile_key2: ProfileKey, location_cert2: LocationCertificate
                    ) -> RsCertificate:
    return RsCertificate(public_key=profile_key2.public, ssl_id=location_cert2.ssl_id,
                         location="bob-desktop", local_addr=addr("172.31.1.20", 7812),
                         ext_addr=addr("0.0.0.0", 0))


def dump(path: pathlib.Path) -> list[tuple]:
    """Every row of every table, to compare database states."""
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return [(t, *row) for t in tables
                for row in con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()]
    finally:
        con.close()


@pytest.mark.slow
def test_add_from_certificate_accepts_profile_and_location(
        db_path: pathlib.Path, profile_key2: ProfileKey,
        location_cert2: LocationCertificate) -> None:
    """A long certificate accepted by the user makes its profile and location known."""
    t = clock()
    with FriendList(db_path, now=lambda: t[0]) as friends:
        profile = friends.add_from_certificate(bob_certificate(profile_key2, location_cert2),
                                               TrustLevel.MARGINAL)
        assert profile.pgp_id == profile_key2.pgp_id
        assert profile.name == "bob" and profile.trust is TrustLevel.MARGINAL
        assert profile.added_at == t[0] and not profile.ssl_only
        assert friends.is_accepted_profile(profile_key2.pgp_id)
        assert friends.public_key(profile_key2.pgp_id) == profile_key2.public
        loc = friends.location(location_cert2.ssl_id)
    assert loc.pgp_id == profile_key2.pgp_id and loc.name == "bob-desktop"
    # The unset external address (0.0.0.0:0) is not an address.
    assert loc.addresses == (AddressInfo(addr("172.31.1.20", 7812), t[0], 0),)
    assert loc.last_connected is None


def test_state_survives_reopening(db_path: pathlib.Path, profile_key2: ProfileKey,
                                  location_cert2: LocationCertificate) -> None:
    """What one FriendList wrote, a new one on the same file reads (it is on disk)."""
    with FriendList(db_path) as friends:
        friends.add_from_certificate(bob_certificate(profile_key2, location_cert2))
        friends.set_last_connected(location_cert2.ssl_id, 1234)
    with FriendList(db_path) as friends:
        assert friends.is_accepted_profile(profile_key2.pgp_id)
        assert friends.location(location_cert2.ssl_id).last_connected == 1234
        assert [p.pgp_id for p in friends.profiles()] == [profile_key2.pgp_id]


def test_database_uses_wal(db_path: pathlib.Path) -> None:
    """The file is in WAL mode so the TLS verifier's reads never wait for a writer."""
    FriendList(db_path).close()
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_offer_is_pending_until_approved(db_path: pathlib.Path,
                                         profile_key2: ProfileKey) -> None:
    """A key learned from discovery is pending, not accepted, until `approve`."""
    t = clock()
    learned_from = SslId(bytes(range(16)))
    ssl_id = SslId(b"\x42" * 16)
    with FriendList(db_path, now=lambda: t[0]) as friends:
        outcome = friends.offer(profile_key2.public, origin=PendingOrigin.DISCOVERY,
                                learned_from=learned_from,
                                locations=[(ssl_id, "bob-laptop",
                                            [AddressInfo(addr("172.16.0.2", 7812), 5, 1)])])
        assert outcome is OfferOutcome.PENDING
        assert not friends.is_accepted_profile(profile_key2.pgp_id)
        with pytest.raises(UnknownFriendError):
            friends.public_key(profile_key2.pgp_id)
        with pytest.raises(UnknownFriendError):
            friends.location(ssl_id)
        [pending] = friends.pending()
        assert pending.pgp_id == profile_key2.pgp_id and pending.name == "bob"
        assert pending.learned_from == learned_from and pending.received_at == t[0]
        assert [loc.ssl_id for loc in pending.locations] == [ssl_id]
        profile = friends.approve(profile_key2.pgp_id, TrustLevel.FULL)
        assert profile.trust is TrustLevel.FULL
        assert friends.is_accepted_profile(profile_key2.pgp_id)
        assert friends.pending() == []
        loc = friends.location(ssl_id)
    assert loc.name == "bob-laptop"
    assert loc.addresses == (AddressInfo(addr("172.16.0.2", 7812), 5, 1),)


def test_approve_and_reject_unknown(db_path: pathlib.Path, profile_key2: ProfileKey) -> None:
    """Approving or rejecting something not pending names the missing id."""
    with FriendList(db_path) as friends:
        with pytest.raises(NotPendingError) as e:
            friends.approve(profile_key2.pgp_id)
        assert e.value.ident == profile_key2.pgp_id
        with pytest.raises(NotPendingError):
            friends.reject(profile_key2.pgp_id)
        friends.offer(profile_key2.public, origin=PendingOrigin.OFFERED)
        friends.reject(profile_key2.pgp_id)
        assert friends.pending() == []
        assert not friends.is_accepted_profile(profile_key2.pgp_id)


def test_offer_of_accepted_profile_records_locations(
        db_path: pathlib.Path, profile_key2: ProfileKey,
        location_cert2: LocationCertificate) -> None:
    """Discovery telling us a new location of a friend adds it; nothing goes pending."""
    new = SslId(b"\x07" * 16)
    with FriendList(db_path) as friends:
        friends.add_from_certificate(bob_certificate(profile_key2, location_cert2))
        outcome = friends.offer(profile_key2.public, locations=[(new, "bob-phone", [])])
        assert outcome is OfferOutcome.ALREADY_ACCEPTED
        assert friends.pending() == []
        assert {loc.ssl_id for loc in friends.locations(profile_key2.pgp_id)} == {
            new, location_cert2.ssl_id}


def test_ssl_only_friend_from_invite(db_path: pathlib.Path, profile_key2: ProfileKey,
                                     location_cert2: LocationCertificate) -> None:
    """A short invite makes an SSL-only friend: location known, profile not accepted."""
    invite = ShortInvite(location_cert2.ssl_id, profile_key2.fingerprint, "bob",
                         (Loc4Locator(addr("172.31.1.20", 7812)), DnsLocator("bob.example", 1),
                          Ext4Locator(addr("203.0.113.9", 7812))))
    with FriendList(db_path) as friends:
        loc = friends.add_from_invite(invite)
        assert loc.pgp_id == profile_key2.pgp_id
        assert {a.addr for a in loc.addresses} == {addr("172.31.1.20", 7812),
                                                   addr("203.0.113.9", 7812)}
        profile = friends.profile(profile_key2.pgp_id)
        assert profile.ssl_only and profile.fingerprint == profile_key2.fingerprint
        assert not friends.is_accepted_profile(profile_key2.pgp_id)
        # Discovery brings the key: the friend becomes a full friend.
        assert friends.offer(profile_key2.public) is OfferOutcome.KEY_COMPLETED
        assert friends.is_accepted_profile(profile_key2.pgp_id)
        assert friends.pending() == []


def test_invite_without_fingerprint_is_refused(db_path: pathlib.Path,
                                               location_cert2: LocationCertificate) -> None:
    """An invite that names no profile cannot make a friend (we could not check its issuer)."""
    with FriendList(db_path) as friends, pytest.raises(IncompleteInviteError):
        friends.add_from_invite(ShortInvite(location_cert2.ssl_id, None, "bob"))


@pytest.mark.slow
def test_key_with_wrong_fingerprint_does_not_complete_ssl_only_friend(
        db_path: pathlib.Path, profile_key: ProfileKey, profile_key2: ProfileKey,
        location_cert2: LocationCertificate) -> None:
    """A key whose PGP id collides but fingerprint differs is refused, nothing changes."""
    fake_fpr = type(profile_key2.fingerprint)(b"\x00" * 12 + bytes(profile_key2.pgp_id))
    with FriendList(db_path) as friends:
        friends.add_ssl_only(location_cert2.ssl_id, fake_fpr, "bob")
        before = dump(db_path)
        with pytest.raises(FingerprintMismatchError) as e:
            friends.offer(profile_key2.public)
        assert e.value.expected == fake_fpr and e.value.got == profile_key2.fingerprint
        assert dump(db_path) == before
        assert friends.profile(profile_key2.pgp_id).ssl_only


def test_failed_transaction_leaves_database_unchanged(
        db_path: pathlib.Path, profile_key: ProfileKey, profile_key2: ProfileKey,
        location_cert2: LocationCertificate) -> None:
    """A certificate whose location belongs to another profile fails as a whole.

    The profile row is written first inside the transaction; the location conflict rolls it
    back, so the file is byte-for-byte the same set of rows as before.
    """
    with FriendList(db_path) as friends:
        friends.add_from_certificate(bob_certificate(profile_key2, location_cert2))
        before = dump(db_path)
        forged = RsCertificate(public_key=profile_key.public, ssl_id=location_cert2.ssl_id,
                               location="stolen", local_addr=addr("172.25.9.9", 1))
        with pytest.raises(LocationConflictError) as e:
            friends.add_from_certificate(forged)
        assert e.value.owner == profile_key2.pgp_id
        assert e.value.claimed_by == profile_key.pgp_id
        assert not friends.is_accepted_profile(profile_key.pgp_id)
    assert dump(db_path) == before


def test_remove_profile_removes_its_locations(db_path: pathlib.Path, profile_key2: ProfileKey,
                                              location_cert2: LocationCertificate) -> None:
    """Removing a profile stops accepting it and forgets its locations and addresses."""
    with FriendList(db_path) as friends:
        friends.add_from_certificate(bob_certificate(profile_key2, location_cert2))
        friends.remove_profile(profile_key2.pgp_id)
        assert not friends.is_accepted_profile(profile_key2.pgp_id)
        assert friends.locations() == []
        with pytest.raises(UnknownFriendError):
            friends.location(location_cert2.ssl_id)
        with pytest.raises(UnknownFriendError):
            friends.remove_profile(profile_key2.pgp_id)
    con = sqlite3.connect(db_path)
    assert con.execute("SELECT count(*) FROM addresses").fetchone()[0] == 0
    con.close()


def test_remove_location_keeps_profile(db_path: pathlib.Path, profile_key2: ProfileKey,
                                       location_cert2: LocationCertificate) -> None:
    """Removing one location leaves the profile accepted."""
    with FriendList(db_path) as friends:
        friends.add_from_certificate(bob_certificate(profile_key2, location_cert2))
        friends.remove_location(location_cert2.ssl_id)
        assert friends.is_accepted_profile(profile_key2.pgp_id)
        assert friends.locations() == []
        with pytest.raises(UnknownFriendError) as e:
            friends.remove_location(location_cert2.ssl_id)
        assert e.value.ident == location_cert2.ssl_id


def test_addresses_refresh_and_order(db_path: pathlib.Path, profile_key2: ProfileKey,
                                     location_cert2: LocationCertificate) -> None:
    """Re-seeing an address keeps one row with the newest time; newest addresses come first."""
    ssl_id = location_cert2.ssl_id
    with FriendList(db_path, now=lambda: 100) as friends:
        friends.add_from_certificate(bob_certificate(profile_key2, location_cert2))
        friends.record_address(ssl_id, AddressInfo(addr("2001:db8::1", 7812), 300, 2))
        friends.record_address(ssl_id, AddressInfo(addr("172.31.1.20", 7812), 200, 3))
        friends.record_address(ssl_id, AddressInfo(addr("172.31.1.20", 7812), 150, 3))
        assert friends.location(ssl_id).addresses == (
            AddressInfo(addr("2001:db8::1", 7812), 300, 2),
            AddressInfo(addr("172.31.1.20", 7812), 200, 3))
        with pytest.raises(UnknownFriendError):
            friends.record_address(SslId(b"\x01" * 16), AddressInfo(addr("1.2.3.4", 1)))


def test_trust_levels(db_path: pathlib.Path, profile_key2: ProfileKey,
                      location_cert2: LocationCertificate) -> None:
    """Trust is stored as RetroShare's numbers and can be changed; unknown ids are errors."""
    assert [int(t) for t in TrustLevel] == [1, 3, 4]
    with FriendList(db_path) as friends:
        friends.add_from_certificate(bob_certificate(profile_key2, location_cert2))
        assert friends.profile(profile_key2.pgp_id).trust is TrustLevel.NONE
        friends.set_trust(profile_key2.pgp_id, TrustLevel.FULL)
        assert friends.profile(profile_key2.pgp_id).trust is TrustLevel.FULL
        with pytest.raises(UnknownFriendError):
            friends.set_trust(PgpId(b"\x00" * 8), TrustLevel.FULL)


def test_readding_certificate_clears_pending(db_path: pathlib.Path, profile_key2: ProfileKey,
                                             location_cert2: LocationCertificate) -> None:
    """Accepting a long certificate of a pending profile is the approval: pending is cleared."""
    with FriendList(db_path) as friends:
        friends.offer(profile_key2.public, origin=PendingOrigin.OFFERED)
        friends.add_from_certificate(bob_certificate(profile_key2, location_cert2))
        assert friends.pending() == []
        assert friends.is_accepted_profile(profile_key2.pgp_id)


def test_profile_only_certificate(db_path: pathlib.Path, profile_key2: ProfileKey) -> None:
    """A certificate without location part accepts the profile and no location."""
    with FriendList(db_path) as friends:
        friends.add_from_certificate(RsCertificate(public_key=profile_key2.public))
        assert friends.is_accepted_profile(profile_key2.pgp_id)
        assert friends.locations() == []


@pytest.mark.slow
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(infos=st.lists(address_infos, max_size=6))
def test_addresses_round_trip(tmp_path: pathlib.Path, profile_key2: ProfileKey,
                              infos: list[AddressInfo]) -> None:
    """Any addresses (as discovery may send them) survive pending -> approve -> location.

    Unset addresses are dropped; a repeated host:port keeps its newest time; times beyond
    sqlite's signed 64-bit range are clamped rather than crashing the store.
    """
    path = tmp_path / f"rt-{uuid.uuid4().hex}.sqlite"
    ssl_id = SslId(b"\x09" * 16)
    with FriendList(path) as friends:
        friends.offer(profile_key2.public, locations=[(ssl_id, "loc", infos)])
        friends.approve(profile_key2.pgp_id)
        stored = friends.location(ssl_id).addresses
    expected: dict[NetAddress, AddressInfo] = {}
    for info in infos:
        if info.addr is None:
            continue
        seen = min(info.seen_time, MAX_STORED_TIME)
        old = expected.get(info.addr)
        expected[info.addr] = AddressInfo(info.addr, max(seen, old.seen_time if old else 0),
                                          info.source)
    assert sorted(stored, key=repr) == sorted(expected.values(), key=repr)


#: What a wire decoder makes of "café" in Latin-1 followed by a stray byte.
JUNK = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")


def test_names_not_utf8_are_kept_identical(db_path: pathlib.Path, profile_key2: ProfileKey,
                                           location_cert2: LocationCertificate) -> None:
    """Location names that are not UTF-8 (discovery relays what a friend's friend chose), an
    SSL-only friend's name and a denial reason are stored (they used to make the write fail)
    and read back identical after reopening; valid names beside them are untouched."""
    other, pending_loc, denied = SslId(b"\x07" * 16), SslId(b"\x08" * 16), SslId(b"\x09" * 16)
    with FriendList(db_path) as friends:
        friends.add_from_certificate(bob_certificate(profile_key2, location_cert2))
        friends.add_location(profile_key2.pgp_id, other, JUNK)
        friends.add_location(profile_key2.pgp_id, denied, "plain")
        friends.deny_location(denied, reason=JUNK + " spam")
        friends.add_ssl_only(SslId(b"\x0a" * 16), PgpFingerprint(b"\x0b" * 20), JUNK)
    with FriendList(db_path) as friends:
        assert friends.location(other).name == JUNK
        assert friends.location(location_cert2.ssl_id).name == "bob-desktop"
        assert [d.reason for d in friends.denials()] == [JUNK + " spam"]
        assert friends.profile(PgpId(b"\x0b" * 8)).name == JUNK
        friends.remove_profile(profile_key2.pgp_id)
        friends.offer(profile_key2.public, locations=[(pending_loc, JUNK, [])])
        assert [loc.name for p in friends.pending() for loc in p.locations] == [JUNK]
        friends.approve(profile_key2.pgp_id)
        assert friends.location(pending_loc).name == JUNK
