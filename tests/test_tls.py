# -*- test-case-name: tests.test_tls -*-
"""Mutual TLS between friends, in memory: the acceptance rule and the Twisted glue.

Two locations talk through `twisted.test.iosim` with a `MemoryReactorClock`, so handshakes are
real OpenSSL handshakes but deterministic and socket-free.  ``tests.test_tls_integration`` repeats
the important cases over real TCP on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.test import iosim
from zope.interface import implementer

from pqi.identity.friends import DeniedError, FriendList, OfferOutcome
from pqi.identity.pgp import ProfileKey
from pqi.identity.sslcert import LocationCertificate, build_tbs, make_location_certificate
from pqi.identity.tickets import OPENSSL_DEFAULT_TICKETS
from pqi.identity.tls import (
    RETROSHARE_DH_GENERATOR,
    RETROSHARE_DH_PRIME,
    AuthenticatedPeer,
    IPeerAuthenticated,
    TLSOptions,
    TLSRefusal,
    check_peer_certificate,
    client_endpoint_factory,
    server_factory,
    verdict_of,
)
from pqi.wire.fields import PgpFingerprint, SslId
from tests.identity_fixtures import *  # noqa: F403
from tests.identity_fixtures import CREATED, make_rsa_key


@dataclasses.dataclass(frozen=True)
class Identity:
    """A location without account files: what `pqi.identity.tls.LocalIdentity` needs."""

    profile: ProfileKey
    location_key: rsa.RSAPrivateKey
    certificate: LocationCertificate

    @property
    def ssl_id(self) -> SslId:
        return self.certificate.ssl_id


def der_certificate(tbs: bytes, signature: bytes) -> bytes:
    """Assemble a certificate DER by hand (to make certificates RetroShare never would)."""
    def tlv(tag: int, content: bytes) -> bytes:
        n = len(content)
        length = bytes([n]) if n < 0x80 else (
            bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8,
                                                                       "big"))
        return bytes([tag]) + length + content
    algo = bytes.fromhex("300d06092a864886f70d01010b0500")
    return tlv(0x30, tbs + algo + tlv(0x03, b"\x00" + signature))


def certificate_with_dates(profile: ProfileKey, key: rsa.RSAPrivateKey, not_before: bytes,
                           not_after: bytes) -> LocationCertificate:
    """A correctly signed location certificate with other validity dates than RetroShare's."""
    tbs = build_tbs(profile.pgp_id, key.public_key())
    assert len(not_before) == len(not_after) == 15
    tbs = tbs.replace(b"20100101000000Z", not_before).replace(b"21100101000000Z", not_after)
    return LocationCertificate.from_der(der_certificate(tbs, profile.sign(tbs, created=CREATED)))


@pytest.fixture(scope="session")
def profile_key3() -> ProfileKey:
    """A third profile, "carol", that nobody befriends unless a test says so."""
    return ProfileKey.generate("carol", bits=2048, created=CREATED)


@pytest.fixture(scope="session")
def alice(profile_key: ProfileKey, location_key: rsa.RSAPrivateKey,
          location_cert: LocationCertificate) -> Identity:
    """Alice's location."""
    return Identity(profile_key, location_key, location_cert)


@pytest.fixture(scope="session")
def bob(profile_key2: ProfileKey, location_key2: rsa.RSAPrivateKey,
        location_cert2: LocationCertificate) -> Identity:
    """Bob's location."""
    return Identity(profile_key2, location_key2, location_cert2)


@pytest.fixture(scope="session")
def carol(profile_key3: ProfileKey) -> Identity:
    """Carol's location."""
    key = make_rsa_key()
    return Identity(profile_key3, key,
                    make_location_certificate(profile_key3, key, signed_at=CREATED))


@pytest.fixture(scope="session")
def alice_laptop(profile_key: ProfileKey) -> Identity:
    """A second location of Alice's profile."""
    key = make_rsa_key()
    return Identity(profile_key, key, make_location_certificate(profile_key, key,
                                                                signed_at=CREATED))


def befriend(friends: FriendList, *identities: Identity) -> None:
    """Accept the profiles of ``identities`` explicitly, as the user would."""
    for ident in identities:
        friends.offer(ident.profile.public)
        friends.approve(ident.profile.pgp_id)


@pytest.fixture
def friend_lists(tmp_path: pathlib.Path) -> Iterator[tuple[FriendList, FriendList]]:
    """Empty friend lists for the dialling side and the listening side."""
    a = FriendList(tmp_path / "a.sqlite")
    b = FriendList(tmp_path / "b.sqlite")
    yield a, b
    a.close()
    b.close()


@implementer(IPeerAuthenticated)
class Recorder(Protocol):
    """An application protocol that records what the link gives it."""

    def __init__(self) -> None:
        self.peer: AuthenticatedPeer | None = None
        self.connected = False
        self.received = b""
        self.lost: Failure | None = None

    def peerAuthenticated(self, peer: AuthenticatedPeer) -> None:  # noqa: N802
        self.peer = peer

    def connectionMade(self) -> None:  # noqa: N802
        self.connected = True

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.received += data

    def connectionLost(self, reason: Failure = None) -> None:  # noqa: N802
        self.lost = reason


class RecorderFactory(Factory):
    """Keeps every `Recorder` it builds."""

    def __init__(self) -> None:
        self.built: list[Recorder] = []

    def buildProtocol(self, addr: object) -> Recorder:  # noqa: N802
        p = Recorder()
        p.factory = self
        self.built.append(p)
        return p


@dataclasses.dataclass
class Link:
    """The result of one in-memory connection attempt."""

    client_app: RecorderFactory
    server_app: RecorderFactory
    client_peers: list[AuthenticatedPeer]
    server_peers: list[AuthenticatedPeer]
    client_tls: Protocol
    server_tls: Protocol
    pump: iosim.IOPump
    clock: MemoryReactorClock


def connect_in_memory(dialler: Identity, dialler_friends: FriendList, listener: Identity,
                      listener_friends: FriendList, expected: SslId | None = None, *,
                      client_options: TLSOptions = TLSOptions(),
                      server_options: TLSOptions = TLSOptions()) -> Link:
    """Dial ``listener`` from ``dialler`` over iosim and pump until quiet (bounded)."""
    clock = MemoryReactorClock()
    client_app, server_app = RecorderFactory(), RecorderFactory()
    client_peers: list[AuthenticatedPeer] = []
    server_peers: list[AuthenticatedPeer] = []
    cf = client_endpoint_factory(dialler, dialler_friends, client_app,
                                 expected if expected is not None else listener.ssl_id,
                                 options=client_options, on_authenticated=client_peers.append,
                                 clock=clock)
    sf = server_factory(listener, listener_friends, server_app, options=server_options,
                        on_authenticated=server_peers.append, clock=clock)
    addr = IPv4Address("TCP", "127.0.0.1", 7812)
    client_tls, server_tls, pump = iosim.connectedServerAndClient(
        lambda: sf.buildProtocol(addr), lambda: cf.buildProtocol(addr), clock=clock)
    for _ in range(50):
        if not pump.pump():
            break
    return Link(client_app, server_app, client_peers, server_peers, client_tls, server_tls,
                pump, clock)


def refusals(events: list[dict]) -> list[TLSRefusal]:
    """The refusal reasons logged by `pqi.identity.tls`."""
    return [e["reason"] for e in events
            if e.get("log_namespace") == "pqi.identity.tls" and "reason" in e]


# --- the acceptance rule, without TLS ----------------------------------------------------------

@pytest.mark.slow
def test_check_accepts_certificate_of_accepted_profile(alice: Identity, bob: Identity,
                                                       tmp_path: pathlib.Path) -> None:
    """A location signed by an accepted profile is admitted with its SSL id and PGP id."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        befriend(friends, bob)
        verdict = check_peer_certificate(bob.certificate.der, alice, friends)
    assert verdict.refusal is None
    assert verdict.peer is not None
    assert verdict.peer.ssl_id == bob.ssl_id
    assert verdict.peer.pgp_id == bob.profile.pgp_id
    assert not verdict.peer.ssl_only and not verdict.peer.outgoing


def test_check_refuses_unknown_issuer(alice: Identity, carol: Identity,
                                      tmp_path: pathlib.Path) -> None:
    """A certificate of a profile nobody accepted is refused as an unknown issuer."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        verdict = check_peer_certificate(carol.certificate.der, alice, friends)
    assert verdict.peer is None
    assert verdict.refusal is TLSRefusal.UNKNOWN_ISSUER
    assert verdict.pgp_id == carol.profile.pgp_id


def test_check_refuses_pending_profile(alice: Identity, carol: Identity,
                                       tmp_path: pathlib.Path) -> None:
    """A pending (offered, not approved) profile is not admitted: approval must be explicit."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        friends.offer(carol.profile.public)
        verdict = check_peer_certificate(carol.certificate.der, alice, friends)
    assert verdict.refusal is TLSRefusal.UNKNOWN_ISSUER


def test_check_refuses_tampered_signature(alice: Identity, bob: Identity,
                                          tmp_path: pathlib.Path) -> None:
    """Changing one bit of the PGP signature makes an accepted profile's certificate refused."""
    sig = bytearray(bob.certificate.signature)
    sig[-5] ^= 0x01
    der = der_certificate(bob.certificate.x509.tbs_certificate_bytes, bytes(sig))
    with FriendList(tmp_path / "f.sqlite") as friends:
        befriend(friends, bob)
        verdict = check_peer_certificate(der, alice, friends)
    assert verdict.refusal is TLSRefusal.BAD_SIGNATURE


def test_check_refuses_certificate_signed_by_another_profile(
        alice: Identity, bob: Identity, carol: Identity, tmp_path: pathlib.Path) -> None:
    """A TBS naming Bob as issuer but signed by Carol's key does not pass as Bob's."""
    tbs = build_tbs(bob.profile.pgp_id, carol.location_key.public_key())
    der = der_certificate(tbs, carol.profile.sign(tbs, created=CREATED))
    with FriendList(tmp_path / "f.sqlite") as friends:
        befriend(friends, bob)
        verdict = check_peer_certificate(der, alice, friends)
    assert verdict.refusal is TLSRefusal.BAD_SIGNATURE


def test_check_refuses_self(alice: Identity, tmp_path: pathlib.Path) -> None:
    """Our own certificate coming back at us is a connection to ourselves."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        verdict = check_peer_certificate(alice.certificate.der, alice, friends)
    assert verdict.refusal is TLSRefusal.SELF_CONNECTION


@pytest.mark.slow
def test_check_accepts_other_location_of_own_profile(alice: Identity, alice_laptop: Identity,
                                                     tmp_path: pathlib.Path) -> None:
    """Our own profile counts as accepted: our other locations may connect."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        verdict = check_peer_certificate(alice_laptop.certificate.der, alice, friends)
    assert verdict.peer is not None and verdict.peer.pgp_id == alice.profile.pgp_id


def test_check_refuses_wrong_ssl_id_when_dialling(alice: Identity, bob: Identity,
                                                  alice_laptop: Identity,
                                                  tmp_path: pathlib.Path) -> None:
    """When we dial a location, any other location (even a friend's) is refused."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        befriend(friends, bob)
        verdict = check_peer_certificate(bob.certificate.der, alice, friends,
                                         expected_ssl_id=alice_laptop.ssl_id)
        right = check_peer_certificate(bob.certificate.der, alice, friends,
                                       expected_ssl_id=bob.ssl_id)
    assert verdict.refusal is TLSRefusal.WRONG_SSL_ID
    assert right.peer is not None and right.peer.outgoing


def test_check_refuses_garbage(alice: Identity, tmp_path: pathlib.Path) -> None:
    """Bytes that are no location certificate are refused, not raised."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        verdict = check_peer_certificate(b"\x30\x03\x02\x01\x00", alice, friends)
    assert verdict.refusal is TLSRefusal.NOT_A_LOCATION_CERTIFICATE


def test_check_refuses_other_serial(alice: Identity, bob: Identity,
                                    tmp_path: pathlib.Path) -> None:
    """A certificate with a serial RetroShare does not write (here 0x60001) is refused."""
    tbs = build_tbs(bob.profile.pgp_id, bob.location_key.public_key(), serial=0x060001)
    der = der_certificate(tbs, bob.profile.sign(tbs, created=CREATED))
    with FriendList(tmp_path / "f.sqlite") as friends:
        befriend(friends, bob)
        verdict = check_peer_certificate(der, alice, friends)
    assert verdict.refusal is TLSRefusal.OBSOLETE_CERTIFICATE


@pytest.mark.parametrize("not_before,not_after", [
    (b"20100101000000Z", b"20200101000000Z"),  # expired
    (b"21000101000000Z", b"21100101000000Z"),  # not yet valid
])
def test_validity_dates_are_ignored(alice: Identity, bob: Identity, tmp_path: pathlib.Path,
                                    not_before: bytes, not_after: bytes) -> None:
    """Policy: dates do not count (RetroShare's are fixed 2010-2110); the signature does.

    An expired or not-yet-valid certificate correctly signed by an accepted profile is admitted,
    both by the rule and through a real handshake (where OpenSSL flags the dates).
    """
    key = make_rsa_key()
    odd = Identity(bob.profile, key, certificate_with_dates(bob.profile, key, not_before,
                                                            not_after))
    a = FriendList(tmp_path / "a.sqlite")
    b = FriendList(tmp_path / "b.sqlite")
    befriend(a, bob)
    befriend(b, alice)
    assert check_peer_certificate(odd.certificate.der, alice, a).peer is not None
    link = connect_in_memory(alice, a, odd, b)
    assert [p.ssl_id for p in link.client_peers] == [odd.ssl_id]
    assert [p.ssl_id for p in link.server_peers] == [alice.ssl_id]
    a.close()
    b.close()


def test_ssl_only_friend_admitted_by_ssl_id_and_issuer(alice: Identity, bob: Identity,
                                                       tmp_path: pathlib.Path) -> None:
    """A short-invite friend is admitted at its SSL id if the issuer matches the fingerprint."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        friends.add_ssl_only(bob.ssl_id, bob.profile.fingerprint, "bob")
        verdict = check_peer_certificate(bob.certificate.der, alice, friends,
                                         expected_ssl_id=bob.ssl_id)
    assert verdict.peer is not None and verdict.peer.ssl_only


def test_ssl_only_friend_other_location_refused(alice: Identity, bob: Identity,
                                                tmp_path: pathlib.Path) -> None:
    """An SSL-only friend's profile admits only the listed SSL id, not its other locations."""
    key = make_rsa_key()
    other = make_location_certificate(bob.profile, key, signed_at=CREATED)
    with FriendList(tmp_path / "f.sqlite") as friends:
        friends.add_ssl_only(bob.ssl_id, bob.profile.fingerprint, "bob")
        verdict = check_peer_certificate(other.der, alice, friends)
    assert verdict.refusal is TLSRefusal.UNKNOWN_ISSUER


def test_ssl_only_friend_issuer_mismatch(alice: Identity, bob: Identity, carol: Identity,
                                         tmp_path: pathlib.Path) -> None:
    """An invite promising Carol's fingerprint for Bob's SSL id does not admit Bob's cert."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        friends.add_ssl_only(bob.ssl_id, carol.profile.fingerprint, "bob?")
        verdict = check_peer_certificate(bob.certificate.der, alice, friends)
    assert verdict.refusal is TLSRefusal.SSL_ONLY_ISSUER_MISMATCH


def test_ssl_only_friend_verified_once_key_known(alice: Identity, bob: Identity,
                                                 tmp_path: pathlib.Path) -> None:
    """Once discovery brings the key, the friend is a full one and signatures are checked."""
    sig = bytearray(bob.certificate.signature)
    sig[-5] ^= 0x01
    forged = der_certificate(bob.certificate.x509.tbs_certificate_bytes, bytes(sig))
    with FriendList(tmp_path / "f.sqlite") as friends:
        friends.add_ssl_only(bob.ssl_id, bob.profile.fingerprint, "bob")
        friends.offer(bob.profile.public)
        good = check_peer_certificate(bob.certificate.der, alice, friends)
        bad = check_peer_certificate(forged, alice, friends)
    assert good.peer is not None and not good.peer.ssl_only
    assert bad.refusal is TLSRefusal.BAD_SIGNATURE


def test_fingerprint_type_used_for_ssl_only(bob: Identity) -> None:
    """The PGP id an SSL-only friend is filed under is the last 8 bytes of the fingerprint."""
    fpr: PgpFingerprint = bob.profile.fingerprint
    assert bytes(fpr)[-8:] == bytes(bob.profile.pgp_id)


# --- in-memory TLS ---------------------------------------------------------------------------

def test_mutual_friends_connect_over_tls13(alice: Identity, bob: Identity,
                                           friend_lists: tuple[FriendList, FriendList]) -> None:
    """Two friends handshake TLS 1.3; each side's app learns the other's ids; data flows."""
    a, b = friend_lists
    befriend(a, bob)
    befriend(b, alice)
    link = connect_in_memory(alice, a, bob, b)
    assert [(p.ssl_id, p.pgp_id, p.outgoing) for p in link.client_peers] == [
        (bob.ssl_id, bob.profile.pgp_id, True)]
    assert [(p.ssl_id, p.pgp_id, p.outgoing) for p in link.server_peers] == [
        (alice.ssl_id, alice.profile.pgp_id, False)]
    client, server = link.client_app.built[0], link.server_app.built[0]
    assert client.connected and server.connected
    assert client.peer == link.client_peers[0]
    server_verdict = verdict_of(link.server_tls)
    assert server_verdict is not None and server_verdict.peer == link.server_peers[0]
    with pytest.raises(TypeError):
        verdict_of(iosim.FakeTransport(Protocol(), isServer=True))  # type: ignore[arg-type]
    assert link.client_tls.getHandle().get_protocol_version_name() == "TLSv1.3"
    client.transport.write(b"hello bob")
    server.transport.write(b"hello alice")
    for _ in range(20):
        if not link.pump.pump():
            break
    assert server.received == b"hello bob"
    assert client.received == b"hello alice"


@pytest.mark.parametrize("who_approves", ["dialler-only", "listener-only"])
def test_one_sided_approval_refused(alice: Identity, bob: Identity, who_approves: str,
                                    friend_lists: tuple[FriendList, FriendList]) -> None:
    """If either side has not approved the other, no application protocol survives."""
    a, b = friend_lists
    if who_approves == "dialler-only":
        befriend(a, bob)
    else:
        befriend(b, alice)
    with capturedLogs() as events:
        link = connect_in_memory(alice, a, bob, b)
    assert link.server_app.built == []
    assert link.server_peers == []
    assert TLSRefusal.UNKNOWN_ISSUER in refusals(events)
    # A TLS 1.3 client may finish before the server refuses it; its link must then be gone.
    assert all(p.lost is not None for p in link.client_app.built)


def test_self_connection_refused(alice: Identity,
                                 friend_lists: tuple[FriendList, FriendList]) -> None:
    """Dialling our own location is refused on both ends."""
    a, b = friend_lists
    with capturedLogs() as events:
        link = connect_in_memory(alice, a, alice, b)
    assert link.client_peers == [] and link.server_peers == []
    assert TLSRefusal.SELF_CONNECTION in refusals(events)


def test_wrong_ssl_id_when_dialling(alice: Identity, bob: Identity, alice_laptop: Identity,
                                    friend_lists: tuple[FriendList, FriendList]) -> None:
    """Reaching a friend other than the one we dialled drops the link before any app data."""
    a, b = friend_lists
    befriend(a, bob)
    befriend(b, alice)
    with capturedLogs() as events:
        link = connect_in_memory(alice, a, bob, b, expected=alice_laptop.ssl_id)
    assert link.client_app.built == [] and link.client_peers == []
    assert refusals(events)[0] is TLSRefusal.WRONG_SSL_ID
    client_verdict = verdict_of(link.client_tls)
    assert client_verdict is not None and client_verdict.refusal is TLSRefusal.WRONG_SSL_ID
    assert client_verdict.ssl_id == bob.ssl_id
    assert all(p.lost is not None for p in link.server_app.built)


def test_tls12_is_refused_by_default(alice: Identity, bob: Identity,
                                     friend_lists: tuple[FriendList, FriendList]) -> None:
    """A TLS 1.2-only peer cannot connect unless we opted into compatibility mode."""
    a, b = friend_lists
    befriend(a, bob)
    befriend(b, alice)
    link = connect_in_memory(alice, a, bob, b, client_options=TLSOptions(allow_tls12=True))
    # Compatibility mode still speaks 1.3 to a 1.3 peer.
    assert link.client_tls.getHandle().get_protocol_version_name() == "TLSv1.3"
    with capturedLogs() as events:
        old = _tls12_only_client(alice, a, bob, b)
    assert old.server_peers == [] and old.client_peers == []
    assert refusals(events) == [TLSRefusal.HANDSHAKE_FAILED, TLSRefusal.HANDSHAKE_FAILED]


def _tls12_only_client(dialler: Identity, dialler_friends: FriendList, listener: Identity,
                       listener_friends: FriendList,
                       server_options: TLSOptions = TLSOptions()) -> Link:
    """Connect with a client whose context is capped at TLS 1.2: an old RetroShare peer."""
    import pqi.identity.tls as tls_module
    original = tls_module._make_context

    def capped(own: Identity, options: TLSOptions) -> SSL.Context:
        ctx = original(own, options)
        if own is dialler:
            ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        return ctx

    tls_module._make_context = capped
    try:
        return connect_in_memory(dialler, dialler_friends, listener, listener_friends,
                                 client_options=TLSOptions(allow_tls12=True),
                                 server_options=server_options)
    finally:
        tls_module._make_context = original


def test_tls12_mode_negotiates_dhe_rsa(alice: Identity, bob: Identity,
                                       friend_lists: tuple[FriendList, FriendList]) -> None:
    """In compatibility mode an old (TLS 1.2) peer gets a DHE-RSA suite, as with RetroShare."""
    a, b = friend_lists
    befriend(a, bob)
    befriend(b, alice)
    link = _tls12_only_client(alice, a, bob, b, server_options=TLSOptions(allow_tls12=True))
    assert [p.ssl_id for p in link.server_peers] == [alice.ssl_id]
    handle = link.server_tls.getHandle()
    assert handle.get_protocol_version_name() == "TLSv1.2"
    assert handle.get_cipher_name().startswith("DHE-RSA-")


def test_tls13_suites_prefer_aes128_and_take_a_dialler_that_prefers_aes256(
        alice: Identity, bob: Identity, friend_lists: tuple[FriendList, FriendList]) -> None:
    """Two rsproto nodes agree on AES-128-GCM (offered first); a dialler that puts AES-256-GCM
    first, as RetroShare does with OpenSSL's defaults, gets AES-256-GCM; all three TLS 1.3
    suites stay on offer."""
    import pqi.identity.tls as tls_module
    a, b = friend_lists
    befriend(a, bob)
    befriend(b, alice)
    ours = connect_in_memory(alice, a, bob, b)
    assert ours.server_tls.getHandle().get_cipher_name() == "TLS_AES_128_GCM_SHA256"
    offered = [n for n in SSL.Connection(tls_module._make_context(alice, TLSOptions()))
               .get_cipher_list() if n.startswith("TLS_")]
    assert offered == ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                       "TLS_CHACHA20_POLY1305_SHA256"]
    original = tls_module._make_context

    def openssl_order(own: Identity, options: TLSOptions) -> SSL.Context:
        ctx = original(own, options)
        if own is alice:
            ctx.set_tls13_ciphersuites(b"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
                                       b"TLS_AES_128_GCM_SHA256")
        return ctx

    tls_module._make_context = openssl_order
    try:
        theirs = connect_in_memory(alice, a, bob, b)
    finally:
        tls_module._make_context = original
    assert [p.ssl_id for p in theirs.server_peers] == [alice.ssl_id]
    assert theirs.server_tls.getHandle().get_cipher_name() == "TLS_AES_256_GCM_SHA384"


def test_dh_group_is_retroshares() -> None:
    """The DH group is RetroShare's 4096-bit prime with generator 5."""
    assert RETROSHARE_DH_PRIME.bit_length() == 4096
    assert RETROSHARE_DH_GENERATOR == 5
    assert RETROSHARE_DH_PRIME % 2 == 1


def test_every_connection_reverifies(alice: Identity, bob: Identity,
                                     friend_lists: tuple[FriendList, FriendList]) -> None:
    """No resumption: removing a friend between two connections refuses the second one."""
    a, b = friend_lists
    befriend(a, bob)
    befriend(b, alice)
    first = connect_in_memory(alice, a, bob, b)
    assert first.server_peers
    b.remove_profile(alice.profile.pgp_id)
    second = connect_in_memory(alice, a, bob, b)
    assert second.server_peers == [] and second.server_app.built == []


def test_handshake_timeout(alice: Identity, bob: Identity,
                           friend_lists: tuple[FriendList, FriendList]) -> None:
    """A peer that never completes the handshake is dropped after the configured timeout."""
    a, b = friend_lists
    befriend(b, alice)
    clock = MemoryReactorClock()
    app = RecorderFactory()
    sf = server_factory(bob, b, app, options=TLSOptions(handshake_timeout=5.0), clock=clock)
    from twisted.internet.testing import StringTransport
    proto = sf.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport()
    with capturedLogs() as events:
        proto.makeConnection(transport)
        clock.advance(4.9)
        assert not transport.disconnecting
        clock.advance(0.2)
    assert transport.disconnecting
    assert TLSRefusal.HANDSHAKE_TIMEOUT in refusals(events)
    assert app.built == []


# --- denied friends ---------------------------------------------------------------------------

def test_check_refuses_denied_profile_even_from_a_new_location(
        alice: Identity, bob: Identity, profile_key2: ProfileKey,
        tmp_path: pathlib.Path) -> None:
    """A denied profile is refused with the denial's reason, from its known location and
    from a location never seen; discovery cannot offer it again; allowing lifts the denial
    (the profile must then be accepted again)."""
    key = make_rsa_key()
    bob_new = make_location_certificate(profile_key2, key, signed_at=CREATED + 90)
    with FriendList(tmp_path / "f.sqlite") as friends:
        befriend(friends, bob)
        friends.deny_profile(bob.profile.pgp_id, "abusive")
        old = check_peer_certificate(bob.certificate.der, alice, friends)
        new = check_peer_certificate(bob_new.der, alice, friends)
        offered = friends.offer(bob.profile.public)
        pending = friends.pending()
        assert friends.allow(bob.profile.pgp_id)
        after = check_peer_certificate(bob.certificate.der, alice, friends)
    for verdict in (old, new):
        assert verdict.refusal is TLSRefusal.DENIED and "abusive" in verdict.detail
    assert offered is OfferOutcome.DENIED and pending == []
    assert after.refusal is TLSRefusal.UNKNOWN_ISSUER


def test_denied_location_leaves_the_profiles_other_locations(
        alice: Identity, alice_laptop: Identity, bob: Identity,
        tmp_path: pathlib.Path) -> None:
    """Denying one location refuses it alone; re-adding it fails with DeniedError."""
    with FriendList(tmp_path / "f.sqlite") as friends:
        befriend(friends, bob)
        friends.add_location(bob.profile.pgp_id, bob.ssl_id, "bob-loc")
        denial = friends.deny_location(bob.ssl_id, "stolen laptop")
        refused = check_peer_certificate(bob.certificate.der, alice, friends)
        other = check_peer_certificate(alice_laptop.certificate.der, alice, friends)
        with pytest.raises(DeniedError):
            friends.add_location(bob.profile.pgp_id, bob.ssl_id, "bob-loc")
        assert friends.denials() == [denial]
        assert friends.is_accepted_profile(bob.profile.pgp_id)
    assert refused.refusal is TLSRefusal.DENIED and "stolen laptop" in refused.detail
    assert other.peer is not None


def test_denials_are_bounded(bob: Identity, tmp_path: pathlib.Path, monkeypatch) -> None:
    """No more than MAX_DENIALS denials are kept."""
    from pqi.identity import friends as friends_mod
    monkeypatch.setattr(friends_mod, "MAX_DENIALS", 2)
    with FriendList(tmp_path / "f.sqlite") as friends:
        friends.deny_location(SslId(b"\x01" * 16))
        friends.deny_location(SslId(b"\x02" * 16))
        with pytest.raises(friends_mod.FriendsError):
            friends.deny_location(SslId(b"\x03" * 16))
        assert len(friends.denials()) == 2

def test_tls12_mode_offers_aead_suites_only(alice: Identity) -> None:
    """Compatibility mode offers no CBC suite (finding 8 of the audit: CBC-SHA1 suites were
    offered): every TLS 1.2 suite is DHE-RSA with GCM or ChaCha20-Poly1305."""
    import pqi.identity.tls as tls_module
    ctx = tls_module._make_context(alice, TLSOptions(allow_tls12=True))
    tls12 = [n for n in SSL.Connection(ctx).get_cipher_list() if not n.startswith("TLS_")]
    assert tls12
    for name in tls12:
        assert name.startswith("DHE-RSA-") and ("GCM" in name or "CHACHA20" in name), name


def test_incoming_handshake_failures_are_not_warnings(
        alice: Identity, bob: Identity, friend_lists: tuple[FriendList, FriendList]) -> None:
    """A connection that dies before showing a certificate (an evicted half-open one, a
    scanner) is logged at debug level when incoming (finding 8: one WARN per evicted
    connection); our own failed dial stays a warning."""
    from twisted.logger import LogLevel
    a, b = friend_lists
    befriend(a, bob)
    befriend(b, alice)
    with capturedLogs() as events:
        _tls12_only_client(alice, a, bob, b)
    levels = {(e["direction"], e["reason"]): e["log_level"] for e in events
              if e.get("log_namespace") == "pqi.identity.tls" and "reason" in e}
    assert levels == {("incoming", TLSRefusal.HANDSHAKE_FAILED): LogLevel.debug,
                      ("outgoing", TLSRefusal.HANDSHAKE_FAILED): LogLevel.warn}


def _server_ticket_writes(dialler: Identity, dialler_friends: FriendList, listener: Identity,
                          listener_friends: FriendList) -> tuple[Link, list[str]]:
    """Connect, recording every handshake state each side's OpenSSL passes through."""
    import pqi.identity.tls as tls_module
    original = tls_module._make_context
    states: list[str] = []

    def watched(own: Identity, options: TLSOptions) -> SSL.Context:
        ctx = original(own, options)
        if own is listener:
            ctx.set_info_callback(lambda conn, where, _ret: states.append(
                conn.get_state_string().decode()) if where & SSL.SSL_CB_LOOP else None)
        return ctx

    tls_module._make_context = watched
    try:
        return connect_in_memory(dialler, dialler_friends, listener, listener_friends), states
    finally:
        tls_module._make_context = original


def test_tls13_handshake_sends_no_session_ticket(
        alice: Identity, bob: Identity, friend_lists: tuple[FriendList, FriendList],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 8 of the audit: two TLS 1.3 session tickets per handshake although resumption
    is off.  The listening side's OpenSSL now never enters its "write session ticket" state,
    and the link works; with the ticket switch left out it writes OpenSSL's two."""
    import pqi.identity.tls as tls_module
    a, b = friend_lists
    befriend(a, bob)
    befriend(b, alice)
    link, states = _server_ticket_writes(alice, a, bob, b)
    assert link.client_app.built[0].connected and link.server_peers
    assert states[-1] == "SSLv3/TLS read finished"  # the client's Finished: handshake over
    assert not [s for s in states if "session ticket" in s]
    monkeypatch.setattr(tls_module, "disable_tickets", lambda ctx: False)
    _, states = _server_ticket_writes(alice, a, bob, b)
    assert len([s for s in states if "write session ticket" in s]) == OPENSSL_DEFAULT_TICKETS


def test_ticket_switch_finds_nothing_in_a_file_that_is_not_elf(tmp_path: pathlib.Path) -> None:
    """The symbol lookup behind the ticket switch answers "nothing found" for a file that is
    not a 64-bit ELF (the switch then leaves the context alone), and finds the setter in the
    installed cryptography build."""
    from cryptography.hazmat.bindings import _rust

    from pqi.identity.tickets import _local_functions
    other = tmp_path / "not-elf.so"
    other.write_bytes(b"#!/bin/sh\n" * 10)
    assert _local_functions(str(other), (b"SSL_CTX_set_num_tickets",)) == {}
    assert set(_local_functions(_rust.__file__, (b"SSL_CTX_set_num_tickets",))) == {
        b"SSL_CTX_set_num_tickets"}
