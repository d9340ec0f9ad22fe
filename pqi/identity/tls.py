# -*- test-case-name: tests.test_tls -*-
"""Mutual TLS between friends: RetroShare's authentication, on Twisted's memory-BIO TLS.

Both ends present their location certificate and both ends decide, in the OpenSSL verify
callback, whether the other is a friend.  OpenSSL's own chain checks mean nothing here (there is
no CA: the certificate's "signature" is an OpenPGP signature by the profile key), so the callback
ignores them and applies RetroShare's rule (``AuthSSLimpl::VerifyX509Callback``) instead:

1. the leaf certificate must parse as a location certificate;
2. a peer with our own SSL id is refused (we dialled ourselves, or someone replays our cert);
   a location or profile the user denied (`pqi.identity.friends.FriendList.deny_profile`) is
   refused with the denial's reason in the log (RetroShare refuses it as a non-friend);
3. when we dialled, the peer's SSL id must be the one we meant to reach;
4. its issuer must be our own profile or an accepted friend's, and the OpenPGP signature must
   verify with that profile's key (serial 0x70001; older certificates are refused);
5. or the SSL id is an SSL-only friend's (added from a short invite, key not known yet): then the
   issuer must be the PGP id of the fingerprint the invite named, and the signature cannot be
   checked until discovery brings the key.

Ids are compared with `hmac.compare_digest`.  **Validity dates are ignored**: every RetroShare
certificate carries the same fixed range (2010-01-01 to 2110-01-01), RetroShare never looks at
them, and trust comes only from the PGP signature and the friend list; revoking a location means
removing it from the friend list.  A correctly signed certificate with any other dates is
therefore admitted (tests pin this).

TLS 1.3 is the default and the minimum; `TLSOptions.allow_tls12` opts into TLS 1.2 for old peers,
with RetroShare's cipher policy (``kEDH+HIGH:!DSS:!aNULL:!3DES:!EXP``: DHE-RSA only) and its
fixed 4096-bit DH group (g = 5).  Session tickets and the session cache are off, so every
connection runs a full handshake and re-verifies the peer; a TLS 1.3 server sends no ticket
either (`pqi.identity.tickets`).

The TLS runs over memory BIOs (`pqi.identity.tlsbatch`: Twisted's `TLSMemoryBIOFactory`, moving
many records per call), so it works over any byte transport, TCP or TCP-over-UDP. The application
protocol is only built once the peer is authenticated; it is told who the peer is
(`AuthenticatedPeer`) through `IPeerAuthenticated` and the ``on_authenticated`` callback. With TLS
1.3 a client finishes its handshake before the server has checked the client's certificate, so a
dialler may see its link come up and drop at once when the other side does not accept it;
RetroShare has no application hello either.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import hmac
import os
import tempfile
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final
from typing import Protocol as TypingProtocol

from cryptography.hazmat.primitives.asymmetric import rsa
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import (
    IAddress,
    IConnector,
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
)
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.logger import Logger, LogLevel
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from pqi.identity.errors import CertificateError, ObsoleteCertificateError, SignatureError
from pqi.identity.friends import FriendList, UnknownFriendError
from pqi.identity.sslcert import SERIAL_07_0001, LocationCertificate
from pqi.identity.tickets import disable_tickets
from pqi.identity.tlsbatch import BatchingTLSFactory, take_whole_writes
from pqi.wire.errors import DecodeError
from pqi.wire.fields import PgpId, SslId

if TYPE_CHECKING:
    from pqi.identity.pgp import ProfileKey, PublicKey

__all__ = [
    "TLSOptions", "TLSRefusal", "AuthenticatedPeer", "IPeerAuthenticated", "LocalIdentity",
    "PeerVerdict", "check_peer_certificate", "server_factory", "client_endpoint_factory",
    "verdict_of",
    "RETROSHARE_CIPHERS", "TLS12_CIPHERS", "TLS13_CIPHERSUITES", "RETROSHARE_DH_PRIME",
    "RETROSHARE_DH_GENERATOR",
    "DEFAULT_HANDSHAKE_TIMEOUT",
]

_log = Logger(namespace="pqi.identity.tls")

#: RetroShare's cipher list (``AuthSSLimpl::InitAuth``); with TLS <= 1.2 it leaves DHE-RSA only.
RETROSHARE_CIPHERS: Final = b"kEDH+HIGH:!DSS:!aNULL:!3DES:!EXP"
#: What we offer in TLS 1.2 compatibility mode: the AEAD suites of RetroShare's list only
#: (DHE-RSA with AES-GCM or ChaCha20-Poly1305; no CBC with SHA-1 or SHA-2 MACs).  RetroShare
#: 0.6.7 offers these too, so an old peer still finds a common suite.
TLS12_CIPHERS: Final = b"kEDH+AESGCM:kEDH+CHACHA20:!DSS:!aNULL"
#: The TLS 1.3 suites we offer: OpenSSL's three, with AES-128-GCM (TLS 1.3's mandatory
#: suite) first instead of AES-256-GCM.  A dialler's order decides (no server preference is
#: set), so two rsproto nodes use AES-128-GCM, which costs a quarter less CPU per byte on
#: each side of a file transfer (docs/identity.md), while a peer that dials with AES-256-GCM
#: first, as RetroShare does, still gets it.
TLS13_CIPHERSUITES: Final = b"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
    b"TLS_CHACHA20_POLY1305_SHA256"
#: RetroShare's fixed 4096-bit DH prime (``dh_prime_4096_hex`` in ``src/pqi/authssl.cc``).
RETROSHARE_DH_PRIME: Final = int(
    "A6F5777292D9E6BB95559C9124B9119E6771F11F2048C8FE74F4E8140494520972A087EF1D60B73894F1C5D5"
    "09DD15D96CF379E9DDD46CE51B748085BACB440D915565782C73AF3A9580CE788441D1DA4D114E3D302CAB45"
    "A061ABCFC1F7E9200AE019CB923B77E096FA9377454A16FFE91D86535FF23E075B3E714F785CD7606E9CBD9D"
    "06F01CAFA2271883D649F13ABE170D714F6B6EC064C5BF35C4F4BDA5EF5ED5E70D5DC78F1AC1CDC04EEDAE8A"
    "DD65C4A9E27368E0B2C8595DD7626D763BFFB15364B3CCA9FCE814B9226B35FE652F4B041F0FF6694D6A482B"
    "0EF48CA41163D083AD2DE7B7A068BB05C0453E9D008551C7F67993A3EF2C4874F0244F78C4E0997BD31AB3BD"
    "88446916B499B2513DD5BA002063BD38D2CE55D29D071399D5CEE99458AF6FDC104A61CA3FACDAC803CBDE62"
    "B4C0EAC946D0E12F05CE9E94497110D64E611D957423B8AA412D84EC83E6E70E0977A31D6EE056D0527D4667"
    "D7242A77C9B679D191562E4026DA9C35FF85666296D872ED548E0FFE1A677FCC373C1F490CAB4F53DFD8735C"
    "0F1DF02FEAD824A217FDF4E3404D38A5BBC719C6622630FCD34F6F1968AF1B66A4AB1A9FCF653DA96EB3A42A"
    "F6FCFEA0547B8F314A527C519949007D7FA1726FF3D33EC46393B0207AA029E5EA574BDAC94D78894B22A2E3"
    "303E65A3F820DF57DB44951DE4E973C016C57F7A242D0BC53BC563AF", 16)
RETROSHARE_DH_GENERATOR: Final = 5
#: OpenSSL's reason text when VERIFY_FAIL_IF_NO_PEER_CERT ends a handshake.
_NO_PEER_CERTIFICATE: Final = "peer did not return a certificate"
#: RetroShare gives a TLS handshake 30 s (``pqissl``).
DEFAULT_HANDSHAKE_TIMEOUT: Final = 30.0


class TLSRefusal(enum.Enum):
    """Why a TLS peer was refused; the value is the reason code in the log event."""

    NO_CERTIFICATE = "no-certificate"  # the peer presented none (OpenSSL refused already)
    NOT_A_LOCATION_CERTIFICATE = "not-a-location-certificate"  # unparsable / not RetroShare's
    SELF_CONNECTION = "self-connection"  # the peer is this very location
    DENIED = "denied"  # the user blocked this location or its profile (reason in the detail)
    WRONG_SSL_ID = "wrong-ssl-id"  # we dialled a different location
    UNKNOWN_ISSUER = "unknown-issuer"  # issuer is not us, not accepted, not an SSL-only friend
    SSL_ONLY_ISSUER_MISMATCH = "ssl-only-issuer-mismatch"  # issuer not the invite's fingerprint
    OBSOLETE_CERTIFICATE = "obsolete-certificate"  # pre-0.6.4 serial
    BAD_SERIAL = "bad-serial"  # a serial RetroShare does not write
    BAD_SIGNATURE = "bad-signature"  # the PGP signature does not verify
    HANDSHAKE_FAILED = "handshake-failed"  # TLS failed before any certificate decision
    HANDSHAKE_TIMEOUT = "handshake-timeout"  # no complete handshake in time
    INTERNAL_ERROR = "internal-error"  # a bug in our checks: refused, and logged with traceback


@dataclasses.dataclass(frozen=True)
class TLSOptions:
    """Settings of our TLS contexts.

    ``allow_tls12`` is for peers linked against OpenSSL < 1.1.1 (RetroShare before ~2019):
    TLS 1.2 with DHE-RSA only, as RetroShare configures it.
    """

    allow_tls12: bool = False
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT


@dataclasses.dataclass(frozen=True)
class AuthenticatedPeer:
    """Who is at the other end of an authenticated link."""

    ssl_id: SslId
    pgp_id: PgpId
    certificate: LocationCertificate = dataclasses.field(repr=False, compare=False)
    #: Admitted as an SSL-only friend: its PGP signature could not be checked yet.
    ssl_only: bool = False
    #: True if we dialled, False if the peer connected to us.
    outgoing: bool = False


class IPeerAuthenticated(Interface):
    """An application protocol that wants to know who its peer is.

    Called once, after the handshake and before ``makeConnection``.
    """

    def peerAuthenticated(peer: AuthenticatedPeer) -> None:  # noqa: N802, N805
        """The link is up and ``peer`` is its authenticated friend."""


class LocalIdentity(TypingProtocol):
    """What the TLS layer needs of our account (`pqi.identity.account.Account` provides it)."""

    @property
    def profile(self) -> ProfileKey: ...

    @property
    def location_key(self) -> rsa.RSAPrivateKey: ...

    @property
    def certificate(self) -> LocationCertificate: ...


@dataclasses.dataclass(frozen=True)
class PeerVerdict:
    """The outcome of `check_peer_certificate`: a peer, or a refusal with its reason."""

    peer: AuthenticatedPeer | None
    refusal: TLSRefusal | None = None
    detail: str = ""
    ssl_id: SslId | None = None
    pgp_id: PgpId | None = None


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(bytes(a), bytes(b))


def check_peer_certificate(der: bytes, own: LocalIdentity, friends: FriendList, *,
                           expected_ssl_id: SslId | None = None) -> PeerVerdict:
    """Decide whether the location certificate ``der`` belongs to a friend we admit.

    The whole acceptance rule of the module docstring, without any TLS: the verify callback
    calls it with the peer's leaf certificate.
    """
    outgoing = expected_ssl_id is not None
    try:
        cert = LocationCertificate.from_der(der)
    except DecodeError as e:
        return PeerVerdict(None, TLSRefusal.NOT_A_LOCATION_CERTIFICATE, str(e))
    ssl_id, issuer = cert.ssl_id, cert.issuer_pgp_id

    def refuse(reason: TLSRefusal, detail: str) -> PeerVerdict:
        return PeerVerdict(None, reason, detail, ssl_id, issuer)

    if _same(ssl_id, own.certificate.ssl_id):
        return refuse(TLSRefusal.SELF_CONNECTION, "the peer presents our own location")
    denial = friends.denial(ssl_id, issuer)
    if denial is not None:
        return refuse(TLSRefusal.DENIED, denial.describe())
    if expected_ssl_id is not None and not _same(ssl_id, expected_ssl_id):
        return refuse(TLSRefusal.WRONG_SSL_ID, f"dialled {expected_ssl_id}, reached {ssl_id}")
    key: PublicKey | None = None
    if _same(issuer, own.profile.pgp_id):
        key = own.profile.public
    elif friends.is_accepted_profile(issuer):
        key = friends.public_key(issuer)
    if key is None:
        try:
            location = friends.location(ssl_id)
            profile = friends.profile(location.pgp_id)
        except UnknownFriendError:
            return refuse(TLSRefusal.UNKNOWN_ISSUER, f"issuer {issuer} is not a friend")
        if not profile.ssl_only:
            return refuse(TLSRefusal.UNKNOWN_ISSUER,
                          f"issuer {issuer} is not the owner {profile.pgp_id} of {ssl_id}")
        if not _same(issuer, profile.pgp_id):
            return refuse(TLSRefusal.SSL_ONLY_ISSUER_MISMATCH,
                          f"invite named profile {profile.pgp_id}, certificate says {issuer}")
        if cert.serial != SERIAL_07_0001:
            return refuse(TLSRefusal.BAD_SERIAL, f"serial 0x{cert.serial:x}")
        return PeerVerdict(AuthenticatedPeer(ssl_id, issuer, cert, True, outgoing),
                           ssl_id=ssl_id, pgp_id=issuer)
    try:
        cert.verify(key)
    except ObsoleteCertificateError as e:
        return refuse(TLSRefusal.OBSOLETE_CERTIFICATE, str(e))
    except CertificateError as e:
        return refuse(TLSRefusal.BAD_SERIAL, str(e))
    except SignatureError as e:
        return refuse(TLSRefusal.BAD_SIGNATURE, str(e))
    return PeerVerdict(AuthenticatedPeer(ssl_id, issuer, cert, False, outgoing),
                       ssl_id=ssl_id, pgp_id=issuer)


#: Refusals of incoming connections that never showed a certificate (half-open connections
#: evicted or timed out, scanners): logged at debug level, since a flood of them would
#: otherwise write one warning each; the link manager counts them.
_QUIET_INCOMING: Final = frozenset({TLSRefusal.HANDSHAKE_FAILED, TLSRefusal.HANDSHAKE_TIMEOUT})


def _log_refusal(verdict: PeerVerdict, outgoing: bool) -> None:
    assert verdict.refusal is not None
    level = (LogLevel.debug if not outgoing and verdict.refusal in _QUIET_INCOMING
             else LogLevel.warn)
    _log.emit(level, "refused TLS peer {peer_ssl_id} (profile {peer_pgp_id}, {direction}): "
              "{reason_code}: {detail}", reason=verdict.refusal,
              reason_code=verdict.refusal.value, detail=verdict.detail,
              peer_ssl_id=verdict.ssl_id, peer_pgp_id=verdict.pgp_id,
              direction="outgoing" if outgoing else "incoming")


class _PeerCheck:
    """One connection's verification state: the verify callback decides once, at depth 0."""

    def __init__(self, own: LocalIdentity, friends: FriendList,
                 expected_ssl_id: SslId | None) -> None:
        self.own = own
        self.friends = friends
        self.expected_ssl_id = expected_ssl_id
        self.verdict: PeerVerdict | None = None

    @property
    def outgoing(self) -> bool:
        return self.expected_ssl_id is not None

    def decide(self, der: bytes) -> PeerVerdict:
        if self.verdict is None:
            try:
                self.verdict = check_peer_certificate(der, self.own, self.friends,
                                                      expected_ssl_id=self.expected_ssl_id)
            except Exception as e:  # noqa: BLE001  (a security boundary: a bug must refuse)
                _log.failure("TLS peer check crashed")
                self.verdict = PeerVerdict(None, TLSRefusal.INTERNAL_ERROR, repr(e))
            if self.verdict.refusal is not None:
                _log_refusal(self.verdict, self.outgoing)
        return self.verdict

    def refuse(self, reason: TLSRefusal, detail: str) -> None:
        """Record and log a refusal that happened outside the certificate check."""
        if self.verdict is None:
            self.verdict = PeerVerdict(None, reason, detail)
            _log_refusal(self.verdict, self.outgoing)

    def verify_callback(self, conn: SSL.Connection, x509: crypto.X509, errno: int, depth: int,
                        ok: int) -> bool:
        """OpenSSL's verdict (``ok``, ``errno``) is ignored: there is no CA, dates don't count."""
        if depth > 0:
            return True
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, x509)
        return self.decide(der).peer is not None


def _dh_params_pem() -> bytes:
    """PKCS#3 ``DHParameter ::= SEQUENCE { prime INTEGER, base INTEGER }`` as PEM.

    Written by hand: `cryptography` deprecates finite-field DH, but RetroShare's TLS 1.2 needs it.
    """
    def der(tag: int, content: bytes) -> bytes:
        n = len(content)
        if n < 0x80:
            return bytes([tag, n]) + content
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([tag, 0x80 | len(raw)]) + raw + content

    def integer(v: int) -> bytes:
        return der(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))

    body = der(0x30, integer(RETROSHARE_DH_PRIME) + integer(RETROSHARE_DH_GENERATOR))
    b64 = base64.encodebytes(body).replace(b"\n", b"")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return b"\n".join([b"-----BEGIN DH PARAMETERS-----", *lines,
                        b"-----END DH PARAMETERS-----", b""])


@functools.cache
def _tickets_stay_on() -> None:
    """Said once per process: this OpenSSL build keeps sending TLS 1.3 session tickets."""
    _log.info("TLS 1.3 session tickets stay on with this OpenSSL build (they cannot resume "
              "a session: the session cache is off)")


def _make_context(own: LocalIdentity, options: TLSOptions) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION if options.allow_tls12 else SSL.TLS1_3_VERSION)
    ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_COMPRESSION | SSL.OP_SINGLE_DH_USE
                    | SSL.OP_NO_RENEGOTIATION)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    take_whole_writes(ctx)
    ctx.set_tls13_ciphersuites(TLS13_CIPHERSUITES)
    if not disable_tickets(ctx):
        _tickets_stay_on()
    ctx.use_certificate(own.certificate.x509)
    ctx.use_privatekey(own.location_key)
    ctx.check_privatekey()
    if options.allow_tls12:
        ctx.set_cipher_list(TLS12_CIPHERS)
        # pyOpenSSL loads DH parameters from a file only.
        fd, path = tempfile.mkstemp(suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_dh_params_pem())
            ctx.load_tmp_dh(path.encode())
        finally:
            os.unlink(path)
    return ctx


@implementer(IOpenSSLServerConnectionCreator, IOpenSSLClientConnectionCreator)
class _ConnectionCreator:
    """Makes each TLS connection with its own `_PeerCheck` as verify callback."""

    def __init__(self, own: LocalIdentity, friends: FriendList, options: TLSOptions,
                 expected_ssl_id: SslId | None) -> None:
        self._own = own
        self._friends = friends
        self._expected = expected_ssl_id
        self._context = _make_context(own, options)
        self._checks: weakref.WeakKeyDictionary[TLSMemoryBIOProtocol, _PeerCheck] = (
            weakref.WeakKeyDictionary())

    def check_for(self, tls: TLSMemoryBIOProtocol) -> _PeerCheck:
        return self._checks[tls]

    def _connection(self, tls: TLSMemoryBIOProtocol) -> SSL.Connection:
        check = _PeerCheck(self._own, self._friends, self._expected)
        self._checks[tls] = check
        conn = SSL.Connection(self._context, None)
        conn.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, check.verify_callback)
        return conn

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol  # noqa: N802, N803
                               ) -> SSL.Connection:
        return self._connection(tlsProtocol)

    def clientConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol  # noqa: N802, N803
                               ) -> SSL.Connection:
        return self._connection(tlsProtocol)


@implementer(IHandshakeListener)
class _AuthGate(Protocol):
    """Sits under TLS and connects the application protocol only to an authenticated peer."""

    factory: _GateFactory

    def __init__(self, addr: IAddress) -> None:
        self._addr = addr
        self._app: IProtocol | None = None
        self._timeout: Any = None
        self.peer: AuthenticatedPeer | None = None

    @property
    def accepts_views(self) -> bool:
        """Whether the application takes read-only views of decrypted bytes for keeps
        (`pqi.identity.tlsbatch`): only if it says so itself."""
        return bool(getattr(self._app, "accepts_views", False))

    def _check(self) -> _PeerCheck:
        return self.factory.creator.check_for(self.transport)

    def connectionMade(self) -> None:  # noqa: N802
        self._timeout = self.factory.clock.callLater(self.factory.options.handshake_timeout,
                                                     self._handshake_timed_out)

    def _handshake_timed_out(self) -> None:
        self._timeout = None
        self._check().refuse(TLSRefusal.HANDSHAKE_TIMEOUT,
                             f"no handshake in {self.factory.options.handshake_timeout} s")
        self.transport.abortConnection()

    def _cancel_timeout(self) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None

    def handshakeCompleted(self) -> None:  # noqa: N802
        self._cancel_timeout()
        check = self._check()
        verdict = check.verdict
        if verdict is None:
            # OpenSSL finished without a depth-0 callback: decide on the certificate now.
            cert = self.transport.getPeerCertificate()
            if cert is None:
                check.refuse(TLSRefusal.NO_CERTIFICATE, "handshake completed without one")
                verdict = check.verdict
            else:
                verdict = check.decide(crypto.dump_certificate(crypto.FILETYPE_ASN1, cert))
        assert verdict is not None
        if verdict.peer is None:
            self.transport.abortConnection()
            return
        app = self.factory.app_factory.buildProtocol(self._addr)
        if app is None:
            self.transport.loseConnection()
            return
        self.peer = verdict.peer
        self._app = app
        if self.factory.on_authenticated is not None:
            self.factory.on_authenticated(verdict.peer)
        if IPeerAuthenticated.providedBy(app):
            app.peerAuthenticated(verdict.peer)
        app.makeConnection(self.transport)

    def dataReceived(self, data: bytes | memoryview) -> None:  # noqa: N802
        if self._app is not None:
            self._app.dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        self._cancel_timeout()
        if self._app is not None:
            self._app.connectionLost(reason)
            return
        detail = reason.getErrorMessage()
        no_cert = reason.check(SSL.Error) and _NO_PEER_CERTIFICATE in detail
        self._check().refuse(TLSRefusal.NO_CERTIFICATE if no_cert else
                             TLSRefusal.HANDSHAKE_FAILED, detail)


class _GateFactory(ClientFactory):
    """Builds `_AuthGate`s; holds what they share.

    A dialler's connection failures go on to the application factory if it wants them.
    """

    #: No "Starting factory" line per connection in the node's log.
    noisy = False

    def __init__(self, app_factory: IProtocolFactory, creator: _ConnectionCreator,
                 options: TLSOptions, clock: IReactorTime,
                 on_authenticated: Callable[[AuthenticatedPeer], object] | None) -> None:
        self.app_factory = app_factory
        self.creator = creator
        self.options = options
        self.clock = clock
        self.on_authenticated = on_authenticated

    def buildProtocol(self, addr: IAddress) -> _AuthGate:  # noqa: N802
        gate = _AuthGate(addr)
        gate.factory = self
        return gate

    def doStart(self) -> None:  # noqa: N802
        self.app_factory.doStart()

    def doStop(self) -> None:  # noqa: N802
        self.app_factory.doStop()

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:  # noqa: N802
        if isinstance(self.app_factory, ClientFactory):
            self.app_factory.clientConnectionFailed(connector, reason)

    def clientConnectionLost(self, connector: IConnector, reason: Failure) -> None:  # noqa: N802
        if isinstance(self.app_factory, ClientFactory):
            self.app_factory.clientConnectionLost(connector, reason)


def verdict_of(tls: TLSMemoryBIOProtocol) -> PeerVerdict | None:
    """The acceptance decision taken on a connection of our factories (None: not yet taken).

    For the link layer, which must tell "refused by authentication" from other losses when the
    connection ends (it stays available after the loss); the refusal has already been logged.
    """
    gates = getattr(getattr(tls, "factory", None), "wrappedFactory", None)
    if not isinstance(gates, _GateFactory):
        raise TypeError(f"{tls!r} was not made by pqi.identity.tls")
    return gates.creator.check_for(tls).verdict


def _tls_factory(own: LocalIdentity, friends: FriendList, app_factory: IProtocolFactory,
                 expected_ssl_id: SslId | None, options: TLSOptions,
                 on_authenticated: Callable[[AuthenticatedPeer], object] | None,
                 clock: IReactorTime | None) -> TLSMemoryBIOFactory:
    if clock is None:
        from twisted.internet import reactor as clock  # the running node's reactor
    creator = _ConnectionCreator(own, friends, options, expected_ssl_id)
    gates = _GateFactory(app_factory, creator, options, clock, on_authenticated)
    return BatchingTLSFactory(creator, expected_ssl_id is not None, gates, clock=clock)


def server_factory(own: LocalIdentity, friends: FriendList, app_factory: IProtocolFactory, *,
                   options: TLSOptions = TLSOptions(),
                   on_authenticated: Callable[[AuthenticatedPeer], object] | None = None,
                   clock: IReactorTime | None = None) -> TLSMemoryBIOFactory:
    """A factory for a listener: TLS server side, admitting any friend location.

    ``app_factory`` builds the application protocol for each authenticated link.
    """
    return _tls_factory(own, friends, app_factory, None, options, on_authenticated, clock)


def client_endpoint_factory(own: LocalIdentity, friends: FriendList,
                            app_factory: IProtocolFactory, expected_ssl_id: SslId, *,
                            options: TLSOptions = TLSOptions(),
                            on_authenticated: Callable[[AuthenticatedPeer], object] | None = None,
                            clock: IReactorTime | None = None) -> TLSMemoryBIOFactory:
    """A factory for dialling the friend location ``expected_ssl_id`` (TLS client side).

    Pass it to an endpoint's ``connect``; a peer presenting any other location is refused.
    """
    return _tls_factory(own, friends, app_factory, expected_ssl_id, options, on_authenticated,
                        clock)
