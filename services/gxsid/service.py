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
from pqi.items.nxs import NXS_ITEM_BASES, NxsRsaKey, nxs_item_class
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, PgpId, SslId
from services.gxs.nxs_core import SYNC_PERIOD, GroupStored, NxsCore
from services.gxs.security import SignatureError
from services.gxs.service import GxsNetService
from services.gxs.store import GxsStore
from services.gxsid.identity import create_identity, identity_key, is_pgp_linked, pgp_link
from services.spec import Commands, ServiceSpec

__all__ = ["IdentityService", "IdentityInfo", "IdentityStored", "IDENTITY_FILE",
           "MAX_OWN_IDENTITIES", "SPEC", "COMMANDS"]

#: The identity service's sqlite file in the account directory.
IDENTITY_FILE: Final = "gxs-0211.sqlite"
#: Most identities of our own.
MAX_OWN_IDENTITIES: Final = 32
#: Most identities waiting to be asked of one friend, and most friends with such a wait.
MAX_WANTED: Final = 32


@dataclasses.dataclass(frozen=True)
class IdentityStored:
    """An identity was made (``peer`` None) or arrived from friend ``peer`` and is stored."""

    gxs_id: GxsId
    peer: SslId | None


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


def _profile_keys(node: Any) -> Callable[[], list[PublicKey]]:
    """The profile keys a node knows: friends' and those discovery told it about."""
    def keys() -> list[PublicKey]:
        out = []
        blobs = [p.public_key for p in node.friends_list.profiles() if p.public_key]
        blobs += [c.public_key for c in node.friends_list.pending()]
        for blob in blobs:
            try:
                out.append(PublicKey.from_bytes(blob))
            except DecodeError:
                continue
        return out
    return keys


def _build(node: Any) -> IdentityService:
    return IdentityService(node.control, node.reactor, pathlib.Path(node.account.base_dir),
                           node.account.profile, _profile_keys(node), node.emit,
                           sync_period=node.options["gxs_sync_period"])


#: Control commands of identities and lobbies (``rsnode id``, ``rsnode lobby``).
COMMANDS = Commands()

#: Identities on a node (``node.identities``), in the account's `IDENTITY_FILE`.
SPEC: Final = ServiceSpec(
    SERVICE_GXSID, "gxsid", attribute="identities",
    items=tuple(nxs_item_class(SERVICE_GXSID, base) for base in NXS_ITEM_BASES),
    events=(IdentityStored,), commands=COMMANDS, cli="services.cli.social:register",
    options={"gxs_sync_period": SYNC_PERIOD}, build=_build,
    close=lambda service: service.store.close())


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
        self.emit = on_event
        super().__init__(sender, reactor, core, SPEC, self._event)
        self.profile = profile
        self.profile_keys = profile_keys
        self._links: dict[GxsId, PgpId | None] = {}
        #: Identities to ask a friend for once its link reaches this service.
        self._wanted: dict[SslId, set[GxsId]] = {}

    def _event(self, event: Any) -> None:
        if isinstance(event, GroupStored):
            self.emit(IdentityStored(event.grp_id, event.peer))

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


# --- control commands ------------------------------------------------------------------------

def _own_identity(node: Any, identity: object) -> GxsId:
    own = node.identities.own_ids()
    if identity is None:
        if not own:
            raise ValueError("no identity yet: create one (rsnode id create NAME)")
        return own[0]  # type: ignore[no-any-return]
    gid = GxsId.from_hex(str(identity))
    if gid not in own:
        raise ValueError(f"{gid} is not one of our identities")
    return gid


@COMMANDS.command("id_create")
def _id_create(node: Any, args: dict[str, Any]) -> Any:
    return node.identities.create(str(args["name"]), not args.get("anonymous")).to_json()


@COMMANDS.command("id_list")
def _id_list(node: Any, args: dict[str, Any]) -> Any:
    return [i.to_json() for i in node.identities.identities()]


def _lobbies(node: Any) -> Any:
    lobby = getattr(node.chat, "lobby", None) if getattr(node, "chat", None) else None
    if lobby is None:
        raise ValueError("this node runs no chat lobbies")
    return lobby


@COMMANDS.command("lobby_list")
def _lobby_list(node: Any, args: dict[str, Any]) -> Any:
    return _lobbies(node).listing()


@COMMANDS.command("lobby_create")
def _lobby_create(node: Any, args: dict[str, Any]) -> Any:
    lobby_id = _lobbies(node).create(str(args["name"]), str(args.get("topic", "")),
                                     _own_identity(node, args.get("identity")),
                                     not args.get("private"))
    return format(lobby_id, "016x")


@COMMANDS.command("lobby_join")
def _lobby_join(node: Any, args: dict[str, Any]) -> Any:
    _lobbies(node).join(int(str(args["lobby"]), 16), _own_identity(node, args.get("identity")))


@COMMANDS.command("lobby_leave")
def _lobby_leave(node: Any, args: dict[str, Any]) -> Any:
    _lobbies(node).leave(int(str(args["lobby"]), 16))


@COMMANDS.command("lobby_say")
def _lobby_say(node: Any, args: dict[str, Any]) -> Any:
    return _lobbies(node).say(int(str(args["lobby"]), 16), str(args["text"])).msg_id


@COMMANDS.command("lobby_history")
def _lobby_history(node: Any, args: dict[str, Any]) -> Any:
    lobbies = _lobbies(node)
    after = int(args.get("after", lobbies.last_seq()))
    return {"last": lobbies.last_seq(), "messages": [
        {"seq": n, "lobby": f"{m.lobby_id:016x}", "id": m.gxs_id.to_hex(), "nick": m.nick,
         "text": m.text, "send_time": m.send_time, "incoming": m.peer is not None}
        for n, m in lobbies.messages_after(after)]}
