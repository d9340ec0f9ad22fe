"""pqi: RetroShare's wire layer and everything that moves items between two friends.

Items (`PQItem` and one class per (service, subtype)), their `construct` schemas, TLVs, the
`PQIStreamer` that frames them over a byte stream, and the error family every decoder raises.
Importing `pqi` registers every item class, so `decode` knows them all.
"""

from pqi.wire.address import AddressInfo, NetAddress
from pqi.wire.errors import (
                     DecodeError,
                     EncodeError,
                     FramingError,
                     InvalidValueError,
                     LimitExceededError,
                     QueueFullError,
                     TrailingBytesError,
                     TruncatedError,
)
from pqi.wire.fields import GxsId, GxsMessageId, PgpFingerprint, PgpId, Sha1Hash, Sha256Hash, SslId
from pqi.wire.framing import Deframer, Enframer, ItemReceived, ProbeReceived
from pqi.wire.item import PQItem, UnknownItem, decode, encode, item_class, parse_header, registered
from pqi.wire.streamer import PQIStreamer
from pqi.wire.tlvvalues import FileData, FileItem, FileSet, KeySignature

from . import items as _items  # noqa: F401  (registers the item classes)

__all__ = [
    "PQItem", "UnknownItem", "encode", "decode", "parse_header", "registered", "item_class",
    "DecodeError", "TruncatedError", "LimitExceededError", "InvalidValueError",
    "TrailingBytesError", "FramingError", "EncodeError", "QueueFullError",
    "SslId", "PgpId", "PgpFingerprint", "Sha1Hash", "Sha256Hash", "GxsId", "GxsMessageId",
    "FileItem", "FileSet", "FileData", "NetAddress", "AddressInfo", "KeySignature",
    "Deframer", "Enframer", "ItemReceived", "ProbeReceived", "PQIStreamer",
]

# --- identity (profile keys, location certificates, text certificates, accounts) ----------
from pqi.identity.account import Account  # noqa: E402
from pqi.identity.certificate import RsCertificate  # noqa: E402
from pqi.identity.errors import (  # noqa: E402
    AccountError,
    CertificateDecodeError,
    CertificateError,
    ChecksumError,
    IdentityError,
    ObsoleteCertificateError,
    PgpPacketError,
    SignatureError,
    WrongPasswordError,
    X509DecodeError,
)
from pqi.identity.invite import ShortInvite  # noqa: E402
from pqi.identity.pgp import ProfileKey, PublicKey  # noqa: E402
from pqi.identity.sslcert import LocationCertificate, make_location_certificate  # noqa: E402

__all__ += [
    "ProfileKey", "PublicKey", "LocationCertificate", "make_location_certificate",
    "RsCertificate", "ShortInvite", "Account",
    "IdentityError", "CertificateError", "ObsoleteCertificateError", "SignatureError",
    "WrongPasswordError", "AccountError", "PgpPacketError", "X509DecodeError",
    "CertificateDecodeError", "ChecksumError",
]

# --- links (link manager, NetInterface, PQIPerson) ------------------------------------------
from pqi.link.linkmgr import (  # noqa: E402
    AddressSource,
    Attempt,
    LinkLimits,
    LinkManager,
    Outcome,
)
from pqi.link.netinterface import DEFAULT_PORT, NetInterface  # noqa: E402
from pqi.link.person import PeerNotConnectedError, PQIPerson  # noqa: E402

__all__ += [
    "LinkManager", "LinkLimits", "AddressSource", "Attempt", "Outcome",
    "NetInterface", "DEFAULT_PORT", "PQIPerson", "PeerNotConnectedError",
]

# --- authentication (friend list, mutual TLS) ------------------------------------------------
from pqi.identity.friends import (  # noqa: E402
    FriendList,
    FriendsError,
    Location,
    PendingCertificate,
    Profile,
    TrustLevel,
    UnknownFriendError,
)
from pqi.identity.tls import (  # noqa: E402
    AuthenticatedPeer,
    TLSOptions,
    TLSRefusal,
    client_endpoint_factory,
    server_factory,
)

__all__ += [
    "FriendList", "FriendsError", "UnknownFriendError", "TrustLevel", "Profile", "Location",
    "PendingCertificate",
    "AuthenticatedPeer", "TLSOptions", "TLSRefusal", "server_factory", "client_endpoint_factory",
]
