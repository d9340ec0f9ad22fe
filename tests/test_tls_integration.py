# -*- test-case-name: tests.test_tls_integration -*-
"""Real TLS over TCP on 127.0.0.1 between real accounts, and against ``openssl s_client``.

The global reactor is stepped with ``reactor.iterate`` in bounded loops (no test runs it); every
listener is closed and every connection gone before a test ends.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import subprocess
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from twisted.internet import reactor as _reactor
from twisted.logger import capturedLogs
from twisted.protocols.tls import TLSMemoryBIOFactory

from pqi.identity.account import Account
from pqi.identity.friends import FriendList
from pqi.identity.sslcert import LocationCertificate
from pqi.identity.tls import (
    AuthenticatedPeer,
    TLSOptions,
    TLSRefusal,
    client_endpoint_factory,
    server_factory,
)
from pqi.wire.fields import SslId
from tests.identity_fixtures import *  # noqa: F403
from tests.test_tls import (  # noqa: F401
    Identity,
    RecorderFactory,
    alice_laptop,
    befriend,
    der_certificate,
    profile_key3,
    refusals,
)

pytestmark = pytest.mark.integration

PASSWORD = "integration"
#: Upper bound on reactor steps in one wait (each step blocks at most 10 ms).
MAX_STEPS = 3000


def spin(until: Callable[[], bool]) -> None:
    """Step the reactor until ``until()`` holds; fail if it never does within MAX_STEPS."""
    for _ in range(MAX_STEPS):
        if until():
            return
        _reactor.iterate(0.01)
    raise AssertionError("reactor condition never became true")


@pytest.fixture(scope="session")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Account]:
    """Two real accounts on disk (2048-bit keys)."""
    base = tmp_path_factory.mktemp("tls-accounts")
    return {name: Account.create(base / name, name, f"{name}-pc", PASSWORD, bits=2048)
            for name in ("alice", "bob")}


@pytest.fixture
def friends(tmp_path: pathlib.Path) -> Iterator[dict[str, FriendList]]:
    """An empty friend list per account."""
    lists = {name: FriendList(tmp_path / f"{name}.sqlite") for name in ("alice", "bob")}
    yield lists
    for f in lists.values():
        f.close()


@dataclasses.dataclass
class Attempt:
    """What one TCP+TLS connection attempt produced, on both ends."""

    client_peers: list[AuthenticatedPeer]
    server_peers: list[AuthenticatedPeer]
    client_app: RecorderFactory
    server_app: RecorderFactory
    protocol_version: str | None
    events: list[dict]


class Listener:
    """A TLS listener on 127.0.0.1 that a test must `close`."""

    def __init__(self, own: object, friend_list: FriendList,
                 options: TLSOptions = TLSOptions()) -> None:
        self.app = RecorderFactory()
        self.peers: list[AuthenticatedPeer] = []
        self.factory: TLSMemoryBIOFactory = server_factory(
            own, friend_list, self.app, options=options, on_authenticated=self.peers.append,
            clock=_reactor)
        self.port = _reactor.listenTCP(0, self.factory, interface="127.0.0.1")

    @property
    def number(self) -> int:
        return self.port.getHost().port

    def close(self) -> None:
        for proto in list(self.factory.protocols):
            proto.transport.abortConnection()
        stopped: list[object] = []
        self.port.stopListening().addBoth(stopped.append)
        spin(lambda: bool(stopped) and not self.factory.protocols)


@pytest.fixture
def listeners() -> Iterator[Callable[..., Listener]]:
    """Make listeners; all are closed after the test."""
    made: list[Listener] = []

    def make(*args: object, **kwargs: object) -> Listener:
        made.append(Listener(*args, **kwargs))
        return made[-1]
    yield make
    for lst in made:
        lst.close()


def dial(own: object, friend_list: FriendList, listener: Listener, expected: SslId) -> Attempt:
    """Connect to ``listener`` expecting ``expected``; wait until both ends settled; close."""
    app = RecorderFactory()
    peers: list[AuthenticatedPeer] = []
    cf = client_endpoint_factory(own, friend_list, app, expected, on_authenticated=peers.append,
                                 clock=_reactor)
    version: list[str] = []
    with capturedLogs() as events:
        before = len(listener.peers)
        connector = _reactor.connectTCP("127.0.0.1", listener.number, cf)

        def settled() -> bool:
            if peers and len(listener.peers) > before:
                return True  # both sides authenticated
            return connector.state == "disconnected" and not listener.factory.protocols

        spin(settled)
        for proto in list(cf.protocols):
            version.append(proto.getHandle().get_protocol_version_name())
            proto.transport.loseConnection()
        spin(lambda: connector.state == "disconnected" and not listener.factory.protocols)
    return Attempt(peers, listener.peers[before:], app, listener.app,
                   version[0] if version else None, list(events))


@pytest.mark.slow
def test_mutual_friends_connect(accounts: dict[str, Account], friends: dict[str, FriendList],
                                listeners: Callable[..., Listener]) -> None:
    """Both approved each other: TLS 1.3 over TCP, and each side knows the other's ids."""
    alice, bob = accounts["alice"], accounts["bob"]
    befriend(friends["alice"], Identity(bob.profile, bob.location_key, bob.certificate))
    befriend(friends["bob"], Identity(alice.profile, alice.location_key, alice.certificate))
    listener = listeners(bob, friends["bob"])
    attempt = dial(alice, friends["alice"], listener, bob.ssl_id)
    assert attempt.protocol_version == "TLSv1.3"
    assert [(p.ssl_id, p.pgp_id) for p in attempt.client_peers] == [(bob.ssl_id, bob.pgp_id)]
    assert [(p.ssl_id, p.pgp_id) for p in attempt.server_peers] == [
        (alice.ssl_id, alice.pgp_id)]
    assert logged(attempt.events) == []


@pytest.mark.slow
@pytest.mark.parametrize("missing", ["alice-did-not-approve", "bob-did-not-approve"])
def test_refused_without_mutual_approval(accounts: dict[str, Account],
                                         friends: dict[str, FriendList],
                                         listeners: Callable[..., Listener],
                                         missing: str) -> None:
    """If either side has not approved the other, the link does not come up on the listener."""
    alice, bob = accounts["alice"], accounts["bob"]
    if missing != "alice-did-not-approve":
        befriend(friends["alice"], Identity(bob.profile, bob.location_key, bob.certificate))
    if missing != "bob-did-not-approve":
        befriend(friends["bob"], Identity(alice.profile, alice.location_key, alice.certificate))
    listener = listeners(bob, friends["bob"])
    attempt = dial(alice, friends["alice"], listener, bob.ssl_id)
    assert attempt.server_peers == [] and attempt.server_app.built == []
    assert all(p.lost is not None for p in attempt.client_app.built)
    if missing == "alice-did-not-approve":
        # Alice refuses Bob's certificate; Bob sees her alert as a failed handshake.
        assert logged(attempt.events) == [("outgoing", TLSRefusal.UNKNOWN_ISSUER),
                                          ("incoming", TLSRefusal.HANDSHAKE_FAILED)]
    else:
        assert logged(attempt.events) == [("incoming", TLSRefusal.UNKNOWN_ISSUER)]


def logged(events: list[dict]) -> list[tuple[str, TLSRefusal]]:
    """(direction, reason) of each refusal `pqi.identity.tls` logged."""
    return [(e["direction"], e["reason"]) for e in events
            if e.get("log_namespace") == "pqi.identity.tls" and "reason" in e]


def test_refused_for_tampered_signature(accounts: dict[str, Account],
                                       friends: dict[str, FriendList],
                                       listeners: Callable[..., Listener]) -> None:
    """A dialler presenting Alice's certificate with one signature bit flipped is refused."""
    alice, bob = accounts["alice"], accounts["bob"]
    befriend(friends["bob"], Identity(alice.profile, alice.location_key, alice.certificate))
    sig = bytearray(alice.certificate.signature)
    sig[-3] ^= 0x80
    forged = LocationCertificate.from_der(der_certificate(
        alice.certificate.x509.tbs_certificate_bytes, bytes(sig)))
    mallory = Identity(alice.profile, alice.location_key, forged)
    befriend(friends["alice"], Identity(bob.profile, bob.location_key, bob.certificate))
    listener = listeners(bob, friends["bob"])
    attempt = dial(mallory, friends["alice"], listener, bob.ssl_id)
    assert attempt.server_peers == [] and attempt.server_app.built == []
    assert logged(attempt.events) == [("incoming", TLSRefusal.BAD_SIGNATURE)]


@pytest.mark.slow
def test_refused_for_unknown_issuer(accounts: dict[str, Account],
                                    friends: dict[str, FriendList],
                                    listeners: Callable[..., Listener],
                                    profile_key3: object) -> None:  # noqa: F811
    """A location of a profile Bob never accepted (Carol) is refused by Bob's listener."""
    from pqi.identity.sslcert import make_location_certificate
    from tests.identity_fixtures import make_rsa_key
    bob = accounts["bob"]
    key = make_rsa_key()
    carol = Identity(profile_key3, key, make_location_certificate(profile_key3, key))
    befriend(friends["alice"], Identity(bob.profile, bob.location_key, bob.certificate))
    listener = listeners(bob, friends["bob"])
    attempt = dial(carol, friends["alice"], listener, bob.ssl_id)
    assert attempt.server_peers == [] and attempt.server_app.built == []
    assert logged(attempt.events) == [("incoming", TLSRefusal.UNKNOWN_ISSUER)]


@pytest.mark.slow
def test_refused_for_wrong_ssl_id_when_dialling(accounts: dict[str, Account],
                                                friends: dict[str, FriendList],
                                                listeners: Callable[..., Listener],
                                                alice_laptop: Identity) -> None:  # noqa: F811
    """Dialling Alice's laptop but reaching Bob (a friend) is refused by the dialler."""
    alice, bob = accounts["alice"], accounts["bob"]
    befriend(friends["alice"], Identity(bob.profile, bob.location_key, bob.certificate))
    befriend(friends["bob"], Identity(alice.profile, alice.location_key, alice.certificate))
    listener = listeners(bob, friends["bob"])
    attempt = dial(alice, friends["alice"], listener, alice_laptop.ssl_id)
    assert attempt.client_peers == [] and attempt.client_app.built == []
    assert logged(attempt.events) == [("outgoing", TLSRefusal.WRONG_SSL_ID),
                                      ("incoming", TLSRefusal.HANDSHAKE_FAILED)]
    assert all(p.lost is not None for p in attempt.server_app.built)


def test_connection_to_ourselves_refused(accounts: dict[str, Account],
                                         friends: dict[str, FriendList],
                                         listeners: Callable[..., Listener]) -> None:
    """Alice dialling her own listener is refused on both ends."""
    alice = accounts["alice"]
    listener = listeners(alice, friends["alice"])
    attempt = dial(alice, friends["alice"], listener, alice.ssl_id)
    assert attempt.client_peers == [] and attempt.server_peers == []
    # The dialler sees the listener's certificate first and refuses it.
    assert logged(attempt.events) == [("outgoing", TLSRefusal.SELF_CONNECTION),
                                      ("incoming", TLSRefusal.HANDSHAKE_FAILED)]


# --- openssl s_client -------------------------------------------------------------------------

def throwaway_certificate(tmp: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed certificate unrelated to RetroShare, as PEM files (cert, key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "stranger.crt", tmp / "stranger.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def s_client(listener: Listener, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                       list[dict]]:
    """Run ``openssl s_client`` against ``listener`` while stepping the reactor."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{listener.number}", *args]
    with capturedLogs() as events:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            spin(lambda: proc.poll() is not None)
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        spin(lambda: not listener.factory.protocols)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err), list(events)


@pytest.mark.slow
def test_s_client_with_unrelated_certificate_refused(accounts: dict[str, Account],
                                                     friends: dict[str, FriendList],
                                                     listeners: Callable[..., Listener],
                                                     tmp_path: pathlib.Path) -> None:
    """``openssl s_client`` with a throwaway self-signed certificate gets no link.

    The listener refuses the certificate (logged with its reason); s_client sees the alert.
    """
    listener = listeners(accounts["bob"], friends["bob"])
    cert, key = throwaway_certificate(tmp_path)
    result, events = s_client(listener, "-cert", str(cert), "-key", str(key), "-ign_eof")
    assert logged(events) == [("incoming", TLSRefusal.NOT_A_LOCATION_CERTIFICATE)]
    assert listener.peers == [] and listener.app.built == []
    assert "alert unknown ca" in result.stderr


def test_s_client_without_certificate_refused(accounts: dict[str, Account],
                                              friends: dict[str, FriendList],
                                              listeners: Callable[..., Listener]) -> None:
    """A client that presents no certificate fails the handshake; the failure is logged."""
    listener = listeners(accounts["bob"], friends["bob"])
    result, events = s_client(listener, "-ign_eof")
    assert logged(events) == [("incoming", TLSRefusal.NO_CERTIFICATE)]
    assert listener.peers == [] and listener.app.built == []
    assert "alert certificate required" in result.stderr


@pytest.mark.slow
def test_tls12_compat_mode_negotiates_dhe_rsa(accounts: dict[str, Account],
                                              friends: dict[str, FriendList],
                                              listeners: Callable[..., Listener],
                                              tmp_path: pathlib.Path) -> None:
    """With the opt-in, an old TLS 1.2 friend gets DHE-RSA with RetroShare's 4096-bit group."""
    alice, bob = accounts["alice"], accounts["bob"]
    befriend(friends["bob"], Identity(alice.profile, alice.location_key, alice.certificate))
    cert, key = tmp_path / "alice.crt", tmp_path / "alice.key"
    cert.write_bytes(alice.certificate.to_pem())
    key.write_bytes(alice.location_key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    listener = listeners(bob, friends["bob"], TLSOptions(allow_tls12=True))
    result, events = s_client(listener, "-tls1_2", "-cert", str(cert), "-key", str(key))
    assert logged(events) == []
    assert [p.ssl_id for p in listener.peers] == [alice.ssl_id]
    assert "TLSv1.2" in result.stdout
    assert "Cipher is DHE-RSA-" in result.stdout
    assert "Server Temp Key: DH, 4096 bits" in result.stdout
