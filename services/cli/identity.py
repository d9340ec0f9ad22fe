# -*- test-case-name: tests.test_cli_identity -*-
"""``rsnode init``, ``rsnode cert`` and ``rsnode friend ...``: the account and its friends.

Each command works on one account directory (``--base-dir``).  Only ``init`` (which makes the
keys) and ``run`` (which uses them) need the password; ``cert`` prints public data and the
friend commands touch the friend list, nothing secret.  When the account's node is running,
the friend commands go through it, so an added or approved friend is dialled at once; else they
write the friend list directly.  Failures print one line (`services.cli.common`).
"""

from __future__ import annotations

import argparse
import ipaddress
import pathlib
import time
from typing import TYPE_CHECKING, Any, Final

from pqi.identity.errors import AccountError, IdentityError
from pqi.identity.friends import FriendList, FriendsError, PendingCertificate, TrustLevel
from pqi.wire.errors import DecodeError
from pqi.wire.fields import PgpId, SslId
from services.cli.common import (
    CliError,
    NodeNotRunningCliError,
    ask_node,
    base_dir_parent,
    password,
)
from services.cli.terminal import safe
from services.node.netsettings import (
    DEFAULT_INTERFACE,
    NetworkSettings,
    certificate_addresses,
    locator_url,
)

if TYPE_CHECKING:
    from pqi.identity.certificate import RsCertificate
    from pqi.identity.invite import ShortInvite

# The account and certificate codecs (and their cryptography) are imported by the commands
# that use them, so that every other ``rsnode`` command starts fast.

__all__ = ["register", "FRIENDS_FILE", "require_account", "certificate_for_friends",
           "decode_friend"]

#: The friend list's file inside the account directory.
FRIENDS_FILE: Final = "friends.sqlite"
#: Largest certificate file ``friend add`` reads (real ones are a few KiB).
_MAX_CERT_FILE: Final = 64 * 1024
#: Suffixes that mark an argument as a file name rather than certificate text.
_FILE_SUFFIXES: Final = (".txt", ".cert", ".crt", ".asc", ".pem")


def require_account(base_dir: pathlib.Path) -> list[tuple[SslId, str]]:
    """The account's locations, or a `CliError` saying there is no (usable) account."""
    from pqi.identity.account import list_locations
    try:
        ours = list_locations(base_dir)
    except AccountError as e:
        raise CliError(f"{base_dir} holds a damaged account: {e}") from e
    if not ours:
        raise CliError(f"no account in {base_dir}; create one with `rsnode init`")
    return ours


def _friends(base_dir: pathlib.Path) -> FriendList:
    require_account(base_dir)
    return FriendList(base_dir / FRIENDS_FILE)


def certificate_for_friends(base_dir: pathlib.Path, port: int | None = None,
                            short: bool = False) -> str:
    """Our certificate (or short invite) with every address friends can dial us at: the
    account's interface with ``port``, else the port the node last listened on, else the
    account's; and the external address the node last knew."""
    from pqi.identity.account import AccountCard
    require_account(base_dir)
    try:
        card = AccountCard.load(base_dir)
        settings = NetworkSettings.load(base_dir)
    except (AccountError, ValueError) as e:
        raise CliError(str(e)) from e
    from services.node.netsettings import recorded_addresses
    listening, external = recorded_addresses(base_dir)
    if port is None and listening is not None:
        port = listening.port  # where the node last listened (`run --port` may differ)
    if port is not None:
        settings = NetworkSettings(port, settings.interface)
    addresses = certificate_addresses(settings) if settings.port else []
    local = addresses[0] if addresses else None
    if short:
        return card.short_invite(local_addr=local, ext_addr=external).encode()
    return card.certificate_text(local_addr=local, ext_addr=external,
                                 extra_locators=tuple(locator_url(a) for a in addresses[1:]))


def _read_certificate_argument(arg: str) -> str:
    if not arg.strip():
        raise CliError("the certificate is empty; paste the whole text `rsnode cert` printed")
    path = pathlib.Path(arg).expanduser()
    # Certificates are base64 and never contain a path separator... except '/', so a text that
    # is an existing file wins.
    try:
        is_file = len(arg) < 4096 and path.is_file()
    except OSError:  # e.g. a certificate text longer than a file name may be
        is_file = False
    if not is_file:
        if arg.startswith(("/", "./", "../", "~")) or arg.endswith(_FILE_SUFFIXES):
            raise CliError(f"no certificate file {arg}")
        return arg
    if path.stat().st_size > _MAX_CERT_FILE:
        raise CliError(f"{path} is too large to be a certificate")
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {path}: {e}") from e
    if not text.strip():
        raise CliError(f"the certificate file {path} is empty")
    return text


def decode_friend(text: str) -> RsCertificate | ShortInvite:
    """A long certificate or a short invite (text or URL); which one is told by trying."""
    from pqi.identity.certificate import RsCertificate
    from pqi.identity.invite import ShortInvite
    text = text.strip()
    errors: list[str] = []
    decoders: list[Any] = [ShortInvite.decode, RsCertificate.decode]
    if "rsInvite=" not in text:
        decoders.reverse()
    for decode in decoders:
        try:
            return decode(text)
        except (DecodeError, IdentityError) as e:
            errors.append(str(e))
    raise CliError(f"not a RetroShare certificate or invite: {errors[0]}")


def _local_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


# --- commands --------------------------------------------------------------------------------

def _init(args: argparse.Namespace) -> int:
    from pqi.identity.account import Account

    base: pathlib.Path = args.base_dir
    try:
        settings = NetworkSettings(args.port, args.interface)
    except ValueError as e:
        raise CliError(str(e)) from e
    if base.exists() and (not base.is_dir() or any(base.iterdir())):
        raise CliError(f"{base} is not empty; choose another --base-dir")
    for parent in base.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CliError(f"cannot create {base}: {parent} is a file")
            break
    secret = password(confirm=True)
    if not secret:
        raise CliError("the password must not be empty")
    try:
        account = Account.create(base, args.name, args.location, secret, bits=args.bits)
    except (AccountError, ValueError) as e:
        raise CliError(str(e)) from e
    settings.save(base)
    FriendList(base / FRIENDS_FILE).close()
    from services.cli.jsonapi import create_credentials
    create_credentials(base, account.name)
    where = "loopback only" if settings.loopback else f"interface {settings.interface}"
    print(f"created profile {account.name} ({account.pgp_id}), "
          f"location {account.location_name} ({account.ssl_id}) in {base}; "
          f"the node will listen on TCP {settings.port} ({where})")
    return 0


def _cert(args: argparse.Namespace) -> int:
    print(certificate_for_friends(args.base_dir, args.port, args.short))
    return 0


def _friend_add(args: argparse.Namespace) -> int:
    from pqi.identity.certificate import RsCertificate

    ours = {ssl_id for ssl_id, _ in require_account(args.base_dir)}
    text = _read_certificate_argument(args.certificate)
    item = decode_friend(text)
    if item.ssl_id is not None and item.ssl_id in ours:
        raise CliError("that is this account's own certificate")
    try:
        answer = ask_node(args.base_dir, "add_friend",
                          {"certificate": text.strip(), "trust": args.trust})
        print(f"added friend {answer} to the running node; dialling now")
        return 0
    except NodeNotRunningCliError:
        pass
    with _friends(args.base_dir) as friends:
        try:
            if isinstance(item, RsCertificate):
                profile = friends.add_from_certificate(item, TrustLevel[args.trust.upper()])
                where = f", location {safe(item.location)} ({item.ssl_id})" if item.ssl_id else ""
                print(f"added friend {safe(profile.name)} ({profile.pgp_id}){where}; "
                      "`rsnode run` connects")
            else:
                loc = friends.add_from_invite(item)
                print(f"added {safe(item.name or 'friend')} location {loc.ssl_id} (profile "
                      f"{loc.pgp_id}) from a short invite: only this location is admitted "
                      "until discovery brings the profile key")
        except FriendsError as e:
            raise CliError(str(e)) from e
    return 0


def _pending_id(friends: FriendList, ident: str) -> PgpId:
    """A pending certificate by PGP id or by (unique) name."""
    pending: list[PendingCertificate] = friends.pending()
    text = ident.strip()
    if len(text) == 2 * PgpId.LENGTH:
        try:
            return PgpId.from_hex(text)
        except ValueError:
            pass
    matches = [p.pgp_id for p in pending if p.name == text]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(f"{safe(p.name)} ({p.pgp_id})" for p in pending) or "none"
    if matches:
        raise CliError(f"{len(matches)} pending certificates are called {text!r}; "
                       f"give the PGP id (pending: {names})")
    raise CliError(f"no pending certificate called {text!r} (pending: {names})")


def _friend_decide(args: argparse.Namespace, approve: bool) -> int:
    with _friends(args.base_dir) as friends:
        pgp_id = _pending_id(friends, args.id)
    command = "approve" if approve else "deny"
    try:
        name = ask_node(args.base_dir, command, {"pgp_id": pgp_id.to_hex()})
        print(f"{'approved' if approve else 'denied'} {name} ({pgp_id})"
              + ("; dialling now" if approve else ""))
        return 0
    except NodeNotRunningCliError:
        pass
    with _friends(args.base_dir) as friends:
        try:
            if approve:
                profile = friends.approve(pgp_id)
                print(f"approved {safe(profile.name)} ({pgp_id}); `rsnode run` connects")
            else:
                friends.reject(pgp_id)
                print(f"denied {pgp_id}: its certificate is forgotten")
        except FriendsError as e:
            raise CliError(str(e)) from e
    return 0


def _friend_list(args: argparse.Namespace) -> int:
    with _friends(args.base_dir) as friends:
        profiles = friends.profiles()
        pending = friends.pending()
        if not profiles and not pending:
            print("no friends yet; add one with `rsnode friend add CERTIFICATE`")
        for p in profiles:
            status = ("SSL-only, key not yet known" if p.ssl_only
                      else f"trust {p.trust.name.lower()}")
            ident = f"  {p.pgp_id}" if args.ids else ""
            print(f"{safe(p.name)}{ident}  ({status})")
            for loc in friends.locations(p.pgp_id):
                seen = ("never" if loc.last_connected is None
                        else _local_time(loc.last_connected))
                addrs = ", ".join(str(a.addr) for a in loc.addresses) or "-"
                ident = f"  {loc.ssl_id}" if args.ids else ""
                print(f"  {safe(loc.name or '(unnamed)')}{ident}  last connected {seen}  "
                      f"addresses {addrs}")
        for c in pending:
            via = f", learned {_local_time(c.received_at)}" if c.received_at else ""
            print(f"pending: {safe(c.name)}  {c.pgp_id}  ({c.origin.value}{via}); "
                  f"`rsnode friend approve {safe(c.name)}` or `... deny {safe(c.name)}`")
    return 0


def _friend_remove(args: argparse.Namespace) -> int:
    ident: str = args.id.strip()
    with _friends(args.base_dir) as friends:
        try:
            if len(ident) == 2 * PgpId.LENGTH:
                friends.remove_profile(PgpId.from_hex(ident))
                print(f"removed profile {ident.upper()} and its locations")
            elif len(ident) == 2 * SslId.LENGTH:
                friends.remove_location(SslId.from_hex(ident))
                print(f"removed location {ident.lower()}")
            else:
                raise CliError(f"{ident!r} is neither a PGP id (16 hex digits) "
                               "nor an SSL id (32 hex digits)")
        except ValueError as e:
            raise CliError(str(e)) from e
        except FriendsError as e:
            raise CliError(str(e)) from e
    return 0


# --- parser ----------------------------------------------------------------------------------

def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"port {port} is not in 0..65535")
    return port


def _ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 address: {text!r}") from None


def register(subparsers: Any) -> None:
    """Add ``init``, ``cert`` and ``friend`` to ``rsnode``'s subcommands."""
    from pqi.wire.address import DEFAULT_PORT
    common = [base_dir_parent()]
    p = subparsers.add_parser("init", parents=common, help="create a profile and a location",
                              description="Create the account: a profile key, a location "
                                          "(this device) and its certificate; asks for the "
                                          "password that guards the private keys.")
    p.add_argument("--name", required=True, help="your profile name, as friends will see it")
    p.add_argument("--location", required=True, help="this device's name")
    p.add_argument("--bits", type=int, default=3072, choices=(2048, 3072, 4096),
                   help="RSA key size (default: %(default)s)")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT,
                   help="TCP port the node will listen on; UDP uses the next one "
                        "(default: %(default)s)")
    p.add_argument("--interface", type=_ipv4, default=DEFAULT_INTERFACE,
                   help="IPv4 address to listen on: 0.0.0.0 for every interface, 127.0.0.1 "
                        "for this machine only (default: %(default)s)")
    p.set_defaults(func=_init)

    p = subparsers.add_parser("cert", parents=common, help="print our certificate",
                              description="Print the certificate to give a friend, with the "
                                          "addresses the node listens on; no password needed.")
    p.add_argument("--short", action="store_true", help="print the short invite instead")
    p.add_argument("--port", type=_port, default=None,
                   help="announce this TCP port instead of the account's")
    p.set_defaults(func=_cert)

    friend = subparsers.add_parser("friend", help="manage friends",
                                   description="Add, approve, deny, list and remove friends.")
    fsub = friend.add_subparsers(dest="friend_command", required=True, metavar="ACTION")
    p = fsub.add_parser("add", parents=common,
                        help="accept a friend's certificate or short invite",
                        description="Accept a friend's certificate or short invite; a running "
                                    "node dials the friend at once.")
    p.add_argument("certificate", help="the certificate or invite text, or a file holding it")
    p.add_argument("--trust", choices=[t.name.lower() for t in TrustLevel], default="none",
                   help="how much we trust the profile's key (default: %(default)s)")
    p.set_defaults(func=_friend_add)
    p = fsub.add_parser("approve", parents=common, help="accept a pending certificate",
                        description="Accept a certificate that discovery brought (see "
                                    "`friend list`); a running node dials it at once.")
    p.add_argument("id", help="the pending profile's PGP id or name")
    p.set_defaults(func=lambda args: _friend_decide(args, True))
    p = fsub.add_parser("deny", parents=common, help="forget a pending certificate",
                        description="Forget a certificate that discovery brought.")
    p.add_argument("id", help="the pending profile's PGP id or name")
    p.set_defaults(func=lambda args: _friend_decide(args, False))
    p = fsub.add_parser("list", parents=common, help="list friends and pending certificates",
                        description="Friends by name with their locations, when they last "
                                    "connected (local time) and their addresses.")
    p.add_argument("--ids", action="store_true", help="show PGP and SSL ids too")
    p.set_defaults(func=_friend_list)
    p = fsub.add_parser("remove", parents=common, help="remove a friend profile or location",
                        description="Remove a friend profile (PGP id) with its locations, or "
                                    "one location (SSL id).")
    p.add_argument("id", help="a PGP id (removes the profile) or an SSL id (one location)")
    p.set_defaults(func=_friend_remove)
