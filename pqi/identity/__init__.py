"""pqi.identity: who a node is and whom it accepts.

OpenPGP profile keys (`pgp`, `pgp_packets`), location certificates (`sslcert`), long
certificates and short invites (`certificate`, `invite`), accounts on disk (`account`), the
friend list (`friends`) and the mutual TLS that admits only friends (`tls`); errors in
`errors`.
"""

from pqi.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "pqi.identity.account": ("Account",),
    "pqi.identity.certificate": ("RsCertificate",),
    "pqi.identity.errors": ("IdentityError",),
    "pqi.identity.friends": ("FriendList", "Location", "Profile", "TrustLevel"),
    "pqi.identity.invite": ("ShortInvite",),
    "pqi.identity.pgp": ("ProfileKey", "PublicKey"),
    "pqi.identity.sslcert": ("LocationCertificate",),
})
