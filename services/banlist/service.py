# -*- test-case-name: tests.test_banlist_service -*-
"""Blocking communication (draft section 4.3): the ban-list service (0x0101) and the block
lists a user controls, as one part of a node (``node.banlist``).

* **IP addresses**: `services.banlist.rules.BanRules` decides; this part is the node's
  `pqi.interfaces.IAddressFilter`, so a banned address can open no TCP connection (hence no
  TLS) and its UDP datagrams (DHT, stunner, relay, TOU) are dropped both ways.  Links already
  up from an address that becomes banned are closed.  Every ``SEND_PERIOD`` (600 s, as
  RetroShare) each friend running the service gets our own-level entries (`BanListItem`);
  friends' items feed the rules.  Our DHT (a flooding source) and our relay (a relay over
  its bandwidth) report abusers with `report_abuse`; as RetroShare's ``getDhtInfo``, the
  reports are taken in every `DHT_TALK_PERIOD` (240 s) as our own DHT entries, shared with
  friends and applied here only while ``from_dht`` is on (their /24 counts toward the
  automatic ranges);
* **people**: `deny` removes a friend location or a whole profile (pending certificate and
  discovery contacts too) and denies it in the friend list, which the TLS verifier reads: a
  denied key is refused with its reason logged, even from a new location;
* **files**: `services.banlist.files.BannedFiles`, wired into file sharing (not listed, not
  served, not searched, not downloaded) and exchanged as file-list items 0x04;
* **identities**: `services.banlist.identities.IdentityBans` and, when the node runs it, the
  reputation service (0x0219; a banned identity is our own opinion "negative" there, so
  friends learn it as RetroShare's do): ``is_identity_banned`` is the hook the lobbies, the
  GXS services and (distant) mail ask; a banned identity's lobby messages are neither shown
  nor relayed, its GXS messages are refused, distant mail from it is refused.

Every change is saved at once (`services.banlist.store`).  Commands: ``block_ip``,
``unblock_ip``, ``block_friend``, ``unblock_friend``, ``block_file``, ``unblock_file``,
``block_id``, ``unblock_id``, ``block_list``, ``block_settings``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from typing import Any, Final

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from pqi.identity.friends import Denial, UnknownFriendError
from pqi.interfaces import DisconnectReason, IAddressFilter, IItemSender, PeerIdentity
from pqi.items.banlist import BanEntry, BanListItem
from pqi.items.ids import SERVICE_BANLIST
from pqi.items.reputation import Opinion as ReputationOpinion
from pqi.wire.address import NetAddress
from pqi.wire.fields import GxsId, PgpId, Sha1Hash, SslId
from services.base import PeriodicService
from services.spec import Commands, ServiceSpec

from . import store
from .files import BannedFile, BannedFiles
from .identities import IdentityBans, Opinion
from .rules import Ban, BanRules, BanSettings, Origin, Reason, is_external

__all__ = ["BanListService", "SPEC", "COMMANDS", "BlocksChanged", "SEND_PERIOD",
           "parse_range", "MAX_ENTRIES_PER_ITEM", "DHT_TALK_PERIOD", "MAX_PENDING_REPORTS"]

#: Seconds between ban-list broadcasts (``RSBANLIST_SEND_PERIOD``).
SEND_PERIOD: Final = 600.0
#: Entries we put in one item (the rules keep at most this many of our own anyway).
MAX_ENTRIES_PER_ITEM: Final = 4096
#: Seconds between two intakes of the abuse reports (``RSBANLIST_DELAY_BETWEEN_TALK_TO_DHT``).
DHT_TALK_PERIOD: Final = 240.0
#: Abusers reported and not yet taken in; further reports wait for the next intake.
MAX_PENDING_REPORTS: Final = 1024

COMMANDS = Commands()


@dataclasses.dataclass(frozen=True)
class BlocksChanged:
    """A block list changed: ``what`` is "ip", "friend", "file", "id" or "friends-list"."""

    what: str


def parse_range(text: str) -> tuple[ipaddress.IPv4Address, int]:
    """``1.2.3.4``, ``1.2.3.0/24`` or ``1.2.0.0/16`` to (address, masked bytes)."""
    network = ipaddress.ip_network(text.strip(), strict=False)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"{text!r}: only IPv4 addresses are banned (as RetroShare)")
    masked = {32: 0, 24: 1, 16: 2}.get(network.prefixlen)
    if masked is None:
        raise ValueError(f"{text!r}: a range must be /32, /24 or /16")
    return network.network_address, masked


def _ban_json(b: Ban, now: float) -> dict[str, Any]:
    return {"range": str(b.network), "reason": Reason(b.reason).name.lower()
            if b.reason in Reason._value2member_map_ else b.reason,
            "level": Origin(b.level).name.lower() if b.level in Origin._value2member_map_
            else b.level, "age": round(now - b.since), "comment": b.comment,
            "attempts": b.attempts}


def _build(node: Any) -> BanListService:
    service = BanListService(node.control, node.reactor, node.ssl_id,
                             Path(node.account.base_dir) / store.BLOCKS_FILE,
                             emit=node.emit, node=node)
    node.net.address_filter = service
    sharing = getattr(node, "sharing", None)
    if sharing is not None:
        sharing.index.file_filter = service.files.is_banned
        sharing.lists.banned_files = service.files
    transfers = getattr(node, "transfers", None)
    if transfers is not None:
        transfers.file_filter = service.files.is_banned
        transfers.server.file_filter = service.files.is_banned
    turtle = getattr(node, "turtle", None)
    if turtle is not None:
        turtle.router.hash_filter = service.files.is_banned
    lobby = getattr(getattr(node, "chat", None), "lobby", None)
    if lobby is not None:
        lobby.core.is_banned = service.is_identity_banned
    for gxs_part in ("identities", "channels", "forums", "boards", "distant_mail"):
        gxs = getattr(node, gxs_part, None)
        if gxs is not None:
            gxs.core.is_banned = service.is_identity_banned
    mail = getattr(node, "mail", None)
    if mail is not None:
        mail.identity_banned = service.is_identity_banned
    distant = getattr(node, "distant", None)
    if distant is not None:
        distant.chat.is_banned = service.is_identity_banned
    return service


#: The ban list and the block lists on a node.
SPEC: Final = ServiceSpec(
    SERVICE_BANLIST, "banlist", attribute="banlist", items=(BanListItem,),
    events=(BlocksChanged,), commands=COMMANDS, cli="services.cli.block:register",
    build=_build)


@implementer(IAddressFilter)
class BanListService(PeriodicService):
    """Our ban list, shared with friends, and the user's block lists, saved at ``path``.

    ``node`` (optional) is the `services.spec.NodeContext` whose friends, links and
    discovery `deny` and a new ban act on; without it (tests) only the lists change.
    """

    spec = SPEC
    period = SEND_PERIOD

    def __init__(self, sender: IItemSender, reactor: IReactorTime, own: SslId, path: Path, *,
                 emit: Any = None, node: Any = None,
                 settings: BanSettings | None = None) -> None:
        super().__init__(sender, reactor)
        self.own = own
        self.path = path
        self.emit = emit or (lambda event: None)
        self.node = node
        self.rules = BanRules(own, settings)
        self.files = BannedFiles()
        self.identities = IdentityBans()
        #: Abusers reported since the last intake: address -> when last reported.
        self._reports: dict[ipaddress.IPv4Address, float] = {}
        self._intake: IDelayedCall | None = None
        store.load(path, self.rules, self.files, self.identities, SslId.from_hex,
                   reactor.seconds())

    def _changed(self, what: str) -> None:
        store.save(self.path, self.rules, self.files, self.identities)
        self.emit(BlocksChanged(what))

    # --- IAddressFilter ------------------------------------------------------------------

    def accepts(self, host: Any) -> bool:
        return self.rules.accepts(host)

    # --- the network service -------------------------------------------------------------

    def tick(self) -> None:
        self.rules.condense(self.reactor.seconds())
        for ssl_id in list(self.peers):
            self.send_list(ssl_id)

    def send_list(self, ssl_id: SslId) -> bool:
        """Send a friend our own-level entries (what RetroShare sends every 10 minutes)."""
        now = self.reactor.seconds()
        entries = [BanEntry(NetAddress(b.addr, 0), level=int(b.level), reason=int(b.reason),
                            age=max(0, min(0xFFFFFFFF, int(now - b.since))))
                   for b in self.rules.shared_entries()[:MAX_ENTRIES_PER_ITEM]]
        return self.send(ssl_id, BanListItem(entries=entries))

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if not isinstance(item, BanListItem):
            return
        now = self.reactor.seconds()
        reported = []
        for e in item.entries[:MAX_ENTRIES_PER_ITEM]:
            if e.addr is None or not isinstance(e.addr.host, ipaddress.IPv4Address):
                continue
            reported.append((e.addr.host, e.level, e.reason, e.age))
        if self.rules.received_list(peer.ssl_id, reported, now):
            self._changed("ip")
            self._drop_banned_links()

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self.files.peer_gone(peer.ssl_id)

    # --- IP addresses --------------------------------------------------------------------

    def block_ip(self, text: str, comment: str = "", *, white: bool = False) -> Ban:
        """Ban (or whitelist) an address or /24, /16 range, and close links from it."""
        addr, masked = parse_range(text)
        ban = self.rules.add_range(addr, masked, self.reactor.seconds(), comment=comment,
                                   white=white)
        self._changed("ip")
        self._drop_banned_links()
        return ban

    def unblock_ip(self, text: str, *, white: bool = False) -> bool:
        addr, masked = parse_range(text)
        removed = self.rules.remove_range(addr, masked, self.reactor.seconds(), white=white)
        if removed:
            self._changed("ip")
        return removed

    def report_abuse(self, host: Any, what: str = "dht") -> bool:
        """Our DHT or relay layer caught ``host`` misbehaving (``what`` says how, for the
        log): it becomes our own DHT entry at the next intake (`DHT_TALK_PERIOD`), as
        RetroShare takes its DHT's filtered peers.  False when the report is not taken: not
        an external IPv4 address, or `MAX_PENDING_REPORTS` wait already."""
        addr = host if isinstance(host, ipaddress.IPv4Address) else getattr(
            host, "ipv4_mapped", None)
        if addr is None or not is_external(addr):
            return False
        if addr not in self._reports and len(self._reports) >= MAX_PENDING_REPORTS:
            return False
        self._reports[addr] = self.reactor.seconds()
        self.log.info("abuse from {host} ({what}) reported to the ban list", host=str(addr),
                      what=what)
        if self._intake is None or not self._intake.active():
            self._intake = self.reactor.callLater(DHT_TALK_PERIOD, self.take_reports)
        return True

    def take_reports(self) -> int:
        """Take the pending abuse reports in as our own entries (reason DHT, level ours);
        returns how many changed the list."""
        if self._intake is not None and self._intake.active():
            self._intake.cancel()
        self._intake = None
        reports, self._reports = self._reports, {}
        now = self.reactor.seconds()
        changed = sum(self.rules.add_entry(self.own, addr, Origin.SELF, Reason.DHT, seen, now)
                      for addr, seen in sorted(reports.items()))
        if changed:
            self.rules.condense(now)
            self._changed("ip")
            self._drop_banned_links()
        return changed

    def stop(self) -> None:
        super().stop()
        if self._intake is not None and self._intake.active():
            self._intake.cancel()
        self._intake = None

    def set_settings(self, **changes: Any) -> BanSettings:
        """Change RetroShare's options (``filtering``, ``auto_range``, ``auto_range_limit``,
        ``from_friends``, ``from_dht``)."""
        self.rules.settings = dataclasses.replace(self.rules.settings, **changes)
        self.rules.condense(self.reactor.seconds())
        self._changed("ip")
        self._drop_banned_links()
        return self.rules.settings

    def _drop_banned_links(self) -> None:
        if self.node is None:
            return
        for ssl_id, person in list(self.node.net.persons.items()):
            address = self.node.net.link_address(ssl_id) if person.connected else None
            if address is not None and not self.rules.accepts(address.host):
                self.log.info("closing link to {peer}: {address} is banned",
                              peer=ssl_id.to_hex(), address=str(address))
                person.close(DisconnectReason.LOCAL)

    # --- people --------------------------------------------------------------------------

    def deny(self, who: str, reason: str = "", *, profile: bool = False) -> Denial:
        """Remove and deny a friend location (or, with ``profile``, its whole profile; a PGP
        id names a profile too), closing its links; needs the node."""
        node = self.node
        if node is None:
            raise RuntimeError("deny needs the node")
        text = who.strip()
        pgp_id: PgpId | None = None
        ssl_id: SslId | None = None
        if len(text) == 2 * PgpId.LENGTH:
            pgp_id = PgpId.from_hex(text)
        else:
            try:
                ssl_id = node.friend_location(text)
            except UnknownFriendError:
                if len(text) != 2 * SslId.LENGTH:
                    raise
                ssl_id = SslId.from_hex(text)  # a stranger's location may be denied too
            if profile:
                pgp_id = node.friends_list.location(ssl_id).pgp_id
        if pgp_id is not None:
            gone = [loc.ssl_id for loc in node.friends_list.locations(pgp_id)]
            denial = node.friends_list.deny_profile(pgp_id, reason)
        else:
            assert ssl_id is not None
            gone = [ssl_id]
            denial = node.friends_list.deny_location(ssl_id, reason)
        for location in gone:
            node.net.remove_friend(location)
            self.files.peer_gone(location)
        discovery = getattr(node, "discovery", None)
        if discovery is not None:
            discovery.forget(gone, pgp_id)
            discovery.friends_changed()
        self.log.info("denied {what}: {reason}", what=denial.describe(), reason=reason)
        self.emit(BlocksChanged("friend"))
        return denial

    def allow(self, who: str) -> bool:
        """Lift a denial (a PGP or SSL id); the friend must be added again to connect."""
        if self.node is None:
            raise RuntimeError("allow needs the node")
        text = who.strip()
        ident = PgpId.from_hex(text) if len(text) == 2 * PgpId.LENGTH else SslId.from_hex(text)
        lifted = bool(self.node.friends_list.allow(ident))
        if lifted:
            self.emit(BlocksChanged("friend"))
        return lifted

    # --- files ---------------------------------------------------------------------------

    def block_file(self, file_hash: Sha1Hash, name: str = "", size: int = 0) -> BannedFile:
        entry = self.files.ban(file_hash, self.reactor.seconds(), name, size)
        self._changed("file")
        self._send_banned_files()
        return entry

    def unblock_file(self, file_hash: Sha1Hash) -> bool:
        removed = self.files.unban(file_hash, self.reactor.seconds())
        if removed:
            self._changed("file")
            self._send_banned_files()
        return removed

    def set_trust_friends_files(self, trust: bool) -> None:
        """Whether friends' banned files are banned here too (RetroShare's default: yes)."""
        self.files.trust_friends = trust
        self._changed("file")

    def _send_banned_files(self) -> None:
        lists = getattr(getattr(self.node, "sharing", None), "lists", None)
        if lists is not None:
            lists.send_banned_files()

    # --- identities ----------------------------------------------------------------------

    def _reputation(self) -> Any:
        return getattr(self.node, "reputation", None)

    def is_identity_banned(self, gxs_id: bytes) -> bool:
        """The hook lobbies, GXS services and mail ask before taking an identity's content:
        our own ban (kept here), or the reputation service hiding it (LOCALLY_NEGATIVE, and
        REMOTELY_NEGATIVE when its friends'-votes threshold option is on)."""
        if self.identities.is_banned(gxs_id):
            return True
        reputation = self._reputation()
        return reputation is not None and bool(reputation.hides(GxsId(bytes(gxs_id))))

    def set_identity_opinion(self, gxs_id: bytes, opinion: Opinion, reason: str = "") -> bool:
        """Our opinion of an identity (``RsOpinion``), kept here with its reason and given to
        the reputation service, which tells friends; NEGATIVE bans it.  Returns whether it
        was banned by us before."""
        key = GxsId(bytes(gxs_id))
        reputation = self._reputation()
        was = self.identities.own_opinion(gxs_id) is Opinion.NEGATIVE or (
            reputation is not None
            and reputation.core.own_opinion(key) == ReputationOpinion.NEGATIVE)
        self.identities.set_own_opinion(gxs_id, opinion, self.reactor.seconds(), reason)
        if reputation is not None:
            reputation.set_opinion(key, ReputationOpinion(int(opinion)))
        if was or opinion is not Opinion.NEUTRAL:
            self._changed("id")
        return was

    def identity_opinion(self, gxs_id: bytes) -> Opinion:
        """Our own opinion: ours here, else the reputation service's."""
        own = self.identities.own_opinion(gxs_id)
        reputation = self._reputation()
        if own is Opinion.NEUTRAL and reputation is not None:
            return Opinion(int(reputation.core.own_opinion(GxsId(bytes(gxs_id)))))
        return own

    def block_id(self, gxs_id: bytes, reason: str = "") -> None:
        """Ban an identity (our opinion "negative")."""
        self.set_identity_opinion(gxs_id, Opinion.NEGATIVE, reason)

    def unblock_id(self, gxs_id: bytes) -> bool:
        """Lift our ban (our opinion back to neutral); False when we had none."""
        if self.identity_opinion(gxs_id) is not Opinion.NEGATIVE:
            return False
        return self.set_identity_opinion(gxs_id, Opinion.NEUTRAL)

    # --- listing -------------------------------------------------------------------------

    def listing(self) -> dict[str, Any]:
        """Everything blocked, as JSON data (``rsnode block list``)."""
        now = self.reactor.seconds()
        denials = [] if self.node is None else self.node.friends_list.denials()
        return {
            "settings": dataclasses.asdict(self.rules.settings),
            "ips": [_ban_json(b, now) for b in self.rules.banned()],
            "whitelist": [_ban_json(b, now) for b in self.rules.whitelist()],
            "learned": [_ban_json(b, now) for b in self.rules.ban_set()
                        if is_external(b.addr)],
            "friends": [{"id": d.ident.to_hex(), "kind": d.kind, "reason": d.reason,
                         "since": d.denied_at} for d in denials],
            "files": [{"hash": f.hash.to_hex(), "name": f.name, "size": f.size,
                       "since": f.since} for f in self.files.primary()],
            "ids": [{"id": k.hex(), "reason": r, "since": t}
                    for k, r, t in self.identities.banned()],
        }


# --- control commands ------------------------------------------------------------------------

def _part(node: Any) -> BanListService:
    return node.banlist  # type: ignore[no-any-return]


@COMMANDS.command("block_ip")
def _block_ip(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    ban = _part(node).block_ip(str(args["range"]), str(args.get("comment", "")),
                               white=bool(args.get("white", False)))
    return _ban_json(ban, node.reactor.seconds())


@COMMANDS.command("unblock_ip")
def _unblock_ip(node: Any, args: dict[str, Any]) -> bool:
    return _part(node).unblock_ip(str(args["range"]), white=bool(args.get("white", False)))


@COMMANDS.command("block_friend")
def _block_friend(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    d = _part(node).deny(str(args["friend"]), str(args.get("reason", "")),
                         profile=bool(args.get("profile", False)))
    return {"id": d.ident.to_hex(), "kind": d.kind, "reason": d.reason, "since": d.denied_at}


@COMMANDS.command("unblock_friend")
def _unblock_friend(node: Any, args: dict[str, Any]) -> bool:
    return _part(node).allow(str(args["friend"]))


@COMMANDS.command("block_file")
def _block_file(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    f = _part(node).block_file(Sha1Hash.from_hex(str(args["hash"])), str(args.get("name", "")),
                               int(args.get("size", 0)))
    return {"hash": f.hash.to_hex(), "name": f.name, "size": f.size, "since": f.since}


@COMMANDS.command("unblock_file")
def _unblock_file(node: Any, args: dict[str, Any]) -> bool:
    return _part(node).unblock_file(Sha1Hash.from_hex(str(args["hash"])))


@COMMANDS.command("block_id")
def _block_id(node: Any, args: dict[str, Any]) -> bool:
    _part(node).block_id(bytes.fromhex(str(args["id"])), str(args.get("reason", "")))
    return True


@COMMANDS.command("unblock_id")
def _unblock_id(node: Any, args: dict[str, Any]) -> bool:
    return _part(node).unblock_id(bytes.fromhex(str(args["id"])))


@COMMANDS.command("block_list")
def _block_list(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    return _part(node).listing()


@COMMANDS.command("block_settings")
def _block_settings(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(BanSettings)}
    changes = {k: v for k, v in args.items() if k in names}
    return dataclasses.asdict(_part(node).set_settings(**changes))
