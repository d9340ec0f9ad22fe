# -*- test-case-name: tests.test_gxs_nodes -*-
"""The identity service (0x0211) of a node: our identities, and everyone's we learn.

Identities are the groups of the identity service, synced by NXS (`GxsNetService`) with
every friend and kept whatever their author (``auto_subscribe``: a node keeps every identity
it learns, so lobbies, forums and mail can check signatures).  Our own identities' private
keys live in the same sqlite file.  An identity's PGP link is checked against the profile
keys we know (our own, friends', and those discovery told us about): `IdentityInfo.pgp_id` is
set only when the link's signature holds.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Iterable
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime

from pqi.identity.pgp import ProfileKey, PublicKey
from pqi.interfaces import IItemSender, PeerIdentity
from pqi.items.gxs import KEY_TYPE_FULL
from pqi.items.ids import SERVICE_GXSID
from pqi.items.nxs import NxsRsaKey
from pqi.wire.fields import GxsId, PgpId, SslId
from services.gxs.nxs_core import SYNC_PERIOD, NxsCore
from services.gxs.security import SignatureError
from services.gxs.service import GxsNetService
from services.gxs.store import GxsStore
from services.gxsid.identity import create_identity, identity_key, is_pgp_linked, pgp_link

__all__ = ["IdentityService", "IdentityInfo", "IDENTITY_FILE", "MAX_OWN_IDENTITIES"]

#: The identity service's sqlite file in the account directory.
IDENTITY_FILE: Final = "gxs-0211.sqlite"
#: Most identities of our own.
MAX_OWN_IDENTITIES: Final = 32
#: Most identities waiting to be asked of one friend, and most friends with such a wait.
MAX_WANTED: Final = 32


@dataclasses.dataclass(frozen=True)
class IdentityInfo:
    """An identity as ``rsnode id list`` shows it."""

    gxs_id: GxsId
    name: str
    own: bool
    pgp_linked: bool
    #: The profile whose signature we checked (None: anonymous, or signer unknown).
    pgp_id: PgpId | None
    publish_ts: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.gxs_id.to_hex(), "name": self.name, "own": self.own,
                "pgp_linked": self.pgp_linked,
                "pgp_id": None if self.pgp_id is None else self.pgp_id.to_hex(),
                "publish_ts": self.publish_ts}


class IdentityService(GxsNetService):
    """Identities of a node (see the module docstring).

    ``profile`` is our profile key (signs our linked identities); ``profile_keys()`` gives
    the other profile keys we know.
    """

    def __init__(self, sender: IItemSender, reactor: IReactorTime, base_dir: pathlib.Path,
                 profile: ProfileKey, profile_keys: Callable[[], Iterable[PublicKey]],
                 on_event: Callable[[Any], object] = lambda e: None,
                 sync_period: float = SYNC_PERIOD) -> None:
        self.store = GxsStore(pathlib.Path(base_dir) / IDENTITY_FILE, SERVICE_GXSID)
        core = NxsCore(SERVICE_GXSID, self.store, auto_subscribe=True, sync_period=sync_period)
        super().__init__(sender, reactor, core, on_event)
        self.profile = profile
        self.profile_keys = profile_keys
        self._links: dict[GxsId, PgpId | None] = {}
        #: Identities to ask a friend for once its link reaches this service.
        self._wanted: dict[SslId, set[GxsId]] = {}

    def stop(self) -> None:
        super().stop()
        self.store.close()

    # --- ours ------------------------------------------------------------------------------

    def create(self, nickname: str, signed: bool = True) -> IdentityInfo:
        """Make an identity (profile-signed unless ``signed`` is False) and announce it."""
        if len(self.own_ids()) >= MAX_OWN_IDENTITIES:
            raise ValueError(f"MAX_OWN_IDENTITIES ({MAX_OWN_IDENTITIES}) reached")
        now = int(self.reactor.seconds())
        ident = create_identity(nickname, now, self.profile if signed else None)
        self.driver.feed(self.core.publish_group, ident.grp, ident.meta,
                         private_keys=(ident.admin.private, ident.publish.private))
        info = self.info(ident.gxs_id)
        assert info is not None
        return info

    def own_signed_ids(self) -> list[GxsId]:
        """Our profile-signed identities (what discovery names to friends)."""
        return [g for g in self.own_ids()
                if (m := self.store.group_meta(g)) is not None and is_pgp_linked(m)]

    def own_ids(self) -> list[GxsId]:
        return [g for g, _, _ in self.store.groups() if self.private_key(g) is not None]

    def private_key(self, gxs_id: GxsId) -> NxsRsaKey | None:
        """Our identity's signing key (its admin private key)."""
        return next((k for k in self.store.private_keys(gxs_id)
                     if k.key_flags & KEY_TYPE_FULL and k.key_id == gxs_id), None)

    # --- everyone's ------------------------------------------------------------------------

    def public_key(self, gxs_id: GxsId) -> NxsRsaKey | None:
        """The key that checks what ``gxs_id`` signs (None: we do not know the identity)."""
        meta = self.store.group_meta(gxs_id)
        return None if meta is None else identity_key(meta)

    def info(self, gxs_id: GxsId) -> IdentityInfo | None:
        g = self.store.group(gxs_id)
        if g is None:
            return None
        return IdentityInfo(gxs_id, g.meta.name, self.private_key(gxs_id) is not None,
                            is_pgp_linked(g.meta), self.pgp_id_of(gxs_id), g.meta.publish_ts)

    def identities(self) -> list[IdentityInfo]:
        return [i for g, _, _ in self.store.groups() if (i := self.info(g)) is not None]

    def pgp_id_of(self, gxs_id: GxsId) -> PgpId | None:
        """The profile that signed the identity, when we know that profile's key."""
        if gxs_id in self._links and self._links[gxs_id] is not None:
            return self._links[gxs_id]
        g = self.store.group(gxs_id)
        if g is None:
            return None
        try:
            link = pgp_link(g.grp, g.meta, [self.profile.public, *self.profile_keys()])
        except SignatureError as e:
            self.log.warn("identity {id}: {e}", id=gxs_id.to_hex(), e=str(e))
            link = None
        self._links[gxs_id] = link
        return link

    def is_pgp_linked(self, gxs_id: GxsId) -> bool:
        return self.pgp_id_of(gxs_id) is not None

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        wanted = self._wanted.pop(peer.ssl_id, None)
        if wanted:
            self.driver.feed(self.core.request_groups, peer.ssl_id, sorted(wanted))

    def request(self, gxs_id: GxsId, peer: SslId) -> None:
        """Ask a friend for an identity we lack (a lobby message or discovery named it).

        A friend whose link this service has not heard of yet (discovery speaks first on a
        new link) gets the request when it has: at most `MAX_WANTED` ids wait per friend.
        """
        if peer in self.peers:
            self.driver.feed(self.core.request_groups, peer, [gxs_id])
            return
        wanted = self._wanted.setdefault(peer, set())
        if len(wanted) < MAX_WANTED and len(self._wanted) <= MAX_WANTED:
            wanted.add(gxs_id)
