"""pqi: RetroShare's wire layer and everything that moves items between two friends.

Items (`PQItem` and one class per (service, subtype)), their `construct` schemas, TLVs, the
`PQIStreamer` that frames them over a byte stream, and the error family every decoder raises.

The names below are imported on first use (PEP 562), so that ``import pqi.wire.fields`` or a
short ``rsnode`` command does not pay for every layer.  Using any of them (``pqi.decode``)
first registers every item class (`pqi.items`), so `decode` knows them all.
"""

from pqi.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    # wire: items, fields, TLVs, framing, the streamer and the error family
    "pqi.wire.item": ("PQItem", "UnknownItem", "encode", "decode", "parse_header", "registered",
                      "item_class"),
    "pqi.wire.errors": ("DecodeError", "TruncatedError", "LimitExceededError",
                        "InvalidValueError", "TrailingBytesError", "FramingError", "EncodeError",
                        "QueueFullError"),
    "pqi.wire.fields": ("SslId", "PgpId", "PgpFingerprint", "Sha1Hash", "Sha256Hash", "GxsId",
                        "GxsMessageId"),
    "pqi.wire.tlvvalues": ("FileItem", "FileSet", "FileData", "KeySignature"),
    "pqi.wire.address": ("NetAddress", "AddressInfo"),
    "pqi.wire.framing": ("Deframer", "Enframer", "ItemReceived", "ProbeReceived"),
    "pqi.wire.streamer": ("PQIStreamer",),
    # identity: profile keys, location certificates, text certificates, accounts
    "pqi.identity.pgp": ("ProfileKey", "PublicKey"),
    "pqi.identity.sslcert": ("LocationCertificate", "make_location_certificate"),
    "pqi.identity.certificate": ("RsCertificate",),
    "pqi.identity.invite": ("ShortInvite",),
    "pqi.identity.account": ("Account",),
    "pqi.identity.errors": ("IdentityError", "CertificateError", "ObsoleteCertificateError",
                            "SignatureError", "WrongPasswordError", "AccountError",
                            "PgpPacketError", "X509DecodeError", "CertificateDecodeError",
                            "ChecksumError"),
    # links: link manager, NetInterface, PQIPerson
    "pqi.link.linkmgr": ("LinkManager", "LinkLimits", "AddressSource", "Attempt", "Outcome"),
    "pqi.link.netinterface": ("NetInterface", "DEFAULT_PORT"),
    "pqi.link.person": ("PQIPerson", "PeerNotConnectedError"),
    # authentication: friend list, mutual TLS
    "pqi.identity.friends": ("FriendList", "FriendsError", "UnknownFriendError", "TrustLevel",
                             "Profile", "Location", "PendingCertificate"),
    "pqi.identity.tls": ("AuthenticatedPeer", "TLSOptions", "TLSRefusal", "server_factory",
                         "client_endpoint_factory"),
}, first="pqi.items")
