"""gxsid: GXS identities (service 0x0211): creating them, checking their PGP link, and the
identity service of a node."""

from services.gxsid.identity import NewIdentity, create_identity, is_pgp_linked, pgp_link
from services.gxsid.service import IdentityInfo, IdentityService

__all__ = ["IdentityInfo", "IdentityService", "NewIdentity", "create_identity", "is_pgp_linked",
           "pgp_link"]
