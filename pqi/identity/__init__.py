"""pqi.identity: who a node is and whom it accepts.

OpenPGP profile keys (`pgp`, `pgp_packets`), location certificates (`sslcert`), long
certificates and short invites (`certificate`, `invite`), accounts on disk (`account`), the
friend list (`friends`) and the mutual TLS that admits only friends (`tls`); errors in
`errors`.
"""

from pqi.identity.account import Account
from pqi.identity.certificate import RsCertificate
from pqi.identity.errors import IdentityError
from pqi.identity.friends import FriendList, Location, Profile, TrustLevel
from pqi.identity.invite import ShortInvite
from pqi.identity.pgp import ProfileKey, PublicKey
from pqi.identity.sslcert import LocationCertificate

__all__ = [
    "Account", "RsCertificate", "IdentityError", "FriendList", "Location", "Profile",
    "TrustLevel", "ShortInvite", "ProfileKey", "PublicKey", "LocationCertificate",
]
