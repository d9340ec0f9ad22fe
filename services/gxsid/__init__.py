"""gxsid: GXS identities (service 0x0211): creating them and checking their PGP link."""

from services.gxsid.identity import NewIdentity, create_identity, is_pgp_linked, pgp_link

__all__ = ["NewIdentity", "create_identity", "is_pgp_linked", "pgp_link"]
