"""Discovery upgrades a friend added by short invite, and sends unanswered requests again.

The friend ("bob") is SSL-only: we know his profile's fingerprint from the invite, not his
key.  His own CONTACT makes us ask for his key (GETCERT for his PGP id); the key is taken only
if it signed the location certificate his link presented.
"""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock

from pqi.identity.friends import FriendList
from pqi.interfaces import PeerIdentity
from pqi.items.discovery import (
    ContactAddresses,
    DiscContactItem,
    DiscPgpKeyItem,
    DiscPgpListItem,
    PgpListMode,
)
from services.discovery import (
    MAX_RETRIES,
    REQUEST_RETRY,
    DiscoveryListener,
    DiscoveryService,
)
from tests.service_fakes import RecordingSender, identity


class Upgrades(DiscoveryListener):
    def __init__(self) -> None:
        self.upgraded: list[tuple[object, str, object]] = []
        self.pending: list[object] = []

    def friend_upgraded(self, pgp_id, name, learned_from) -> None:
        self.upgraded.append((pgp_id, name, learned_from))

    def pending_friend(self, pgp_id, name, learned_from) -> None:
        self.pending.append(pgp_id)


def contact_of(p: PeerIdentity) -> DiscContactItem:
    return DiscContactItem(pgp_id=p.pgp_id, ssl_id=p.ssl_id, location=p.location_name,
                           version="", net_mode=2, vs_disc=2, vs_dht=2, last_contact=0,
                           addresses=ContactAddresses())


@pytest.fixture
def setup(tmp_path):
    """Our discovery ("alice") with bob as an SSL-only friend; ``link_certs`` is what each
    link presented (a test may swap bob's)."""
    alice_profile, _, alice_cert = identity("alice")
    bob_profile, _, bob_cert = identity("bob")
    bob = PeerIdentity(bob_cert.ssl_id, bob_profile.pgp_id, "bob-loc")
    friends = FriendList(tmp_path / "friends.sqlite", now=lambda: 1_700_000_100)
    friends.add_ssl_only(bob.ssl_id, bob_profile.fingerprint, "bob")
    link_certs = {bob.ssl_id: bob_cert}
    clock = MemoryReactorClock()
    sender = RecordingSender()
    events = Upgrades()
    svc = DiscoveryService(sender, clock, own_ssl_id=alice_cert.ssl_id,
                           own_pgp_id=alice_profile.pgp_id,
                           own_key=alice_profile.public.to_bytes(),
                           own_contact=lambda: contact_of(PeerIdentity(
                               alice_cert.ssl_id, alice_profile.pgp_id, "alice-loc")),
                           friends=friends, listener=events,
                           peer_certificate=link_certs.get)
    yield svc, sender, events, friends, bob, bob_profile, link_certs, clock
    svc.stop()
    friends.close()


def getcerts(sender) -> list[frozenset]:
    return [i.pgp_ids for _, i in sender.sent
            if isinstance(i, DiscPgpListItem) and i.mode == PgpListMode.GETCERT]


def test_contact_of_ssl_only_friend_asks_for_its_key_and_the_key_upgrades_it(setup) -> None:
    """Bob's own CONTACT brings a GETCERT for bob's PGP id; his key, which signed his link's
    certificate, makes him a full friend (one upgrade event, no pending entry)."""
    svc, sender, events, friends, bob, bob_profile, _, _ = setup
    svc.peer_connected(bob)
    svc.receive(bob, contact_of(bob))
    assert getcerts(sender) == [frozenset({bob.pgp_id})]
    svc.receive(bob, DiscPgpKeyItem(pgp_id=bob.pgp_id,
                                    key_data=bob_profile.public.to_bytes()))
    assert not friends.profile(bob.pgp_id).ssl_only
    assert events.upgraded == [(bob.pgp_id, "bob", bob.ssl_id)] and events.pending == []


def test_key_that_did_not_sign_the_links_certificate_is_refused(setup) -> None:
    """If the link presented a certificate that bob's key did not sign (here: one made by
    another profile), the key is refused and bob stays SSL-only."""
    svc, sender, events, friends, bob, bob_profile, link_certs, _ = setup
    link_certs[bob.ssl_id] = identity("mallory")[2]
    svc.peer_connected(bob)
    svc.receive(bob, contact_of(bob))
    svc.receive(bob, DiscPgpKeyItem(pgp_id=bob.pgp_id,
                                    key_data=bob_profile.public.to_bytes()))
    assert friends.profile(bob.pgp_id).ssl_only and events.upgraded == []


def test_unanswered_getcert_is_sent_again_at_most_max_retries_times(setup) -> None:
    """A GETCERT with no key is sent again every REQUEST_RETRY seconds, MAX_RETRIES times,
    then no more; the key arriving after a retry still upgrades."""
    svc, sender, events, friends, bob, bob_profile, _, clock = setup
    svc.start()
    svc.peer_connected(bob)
    svc.receive(bob, contact_of(bob))
    sender.sent.clear()
    for _ in range(4 * (MAX_RETRIES + 2)):
        clock.advance(REQUEST_RETRY / 4)
    assert getcerts(sender) == [frozenset({bob.pgp_id})] * MAX_RETRIES
    svc.receive(bob, DiscPgpKeyItem(pgp_id=bob.pgp_id,
                                    key_data=bob_profile.public.to_bytes()))
    assert not friends.profile(bob.pgp_id).ssl_only


def test_contact_not_answered_with_a_friend_list_is_sent_again(setup) -> None:
    """Our CONTACT is sent again while the peer has not answered with its friend list (at
    most MAX_RETRIES times), and no more once it did."""
    svc, sender, _, _, bob, _, _, clock = setup
    svc.start()
    svc.peer_connected(bob)
    sender.sent.clear()
    clock.advance(REQUEST_RETRY)
    clock.advance(REQUEST_RETRY / 2)
    contacts = [i for _, i in sender.sent if isinstance(i, DiscContactItem)]
    assert len(contacts) == 1
    svc.receive(bob, DiscPgpListItem(mode=PgpListMode.FRIENDS, pgp_ids=frozenset()))
    sender.sent.clear()
    for _ in range(4 * (MAX_RETRIES + 2)):
        clock.advance(REQUEST_RETRY / 2)
    assert [i for _, i in sender.sent if isinstance(i, DiscContactItem)] == []
