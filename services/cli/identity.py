# -*- test-case-name: tests.test_cli_identity -*-
"""``rsnode init``, ``rsnode cert`` and ``rsnode friend ...``: the account and its friends.

Each command works on one account directory (``--base-dir``, default the platform's user data
directory).  Commands that need our private keys ask for the account password on the terminal,
or read it from ``RSNODE_PASSWORD`` for scripts; the friend commands only touch the friend list
(nothing secret) and need no password.  Failures the user can fix (wrong password, no account,
a mangled certificate) print one line and exit with status 2; no tracebacks.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import pathlib
from typing import Any, Final

import platformdirs

from pqi.identity.account import Account, list_locations
from pqi.identity.certificate import RsCertificate
from pqi.identity.errors import AccountError, IdentityError, WrongPasswordError
from pqi.identity.friends import FriendList, FriendsError, TrustLevel
from pqi.identity.invite import ShortInvite
from pqi.wire.address import NetAddress
from pqi.wire.errors import DecodeError
from pqi.wire.fields import PgpId, SslId
from services.cli.terminal import safe

__all__ = ["register", "CliError", "PASSWORD_ENV", "FRIENDS_FILE", "default_base_dir"]

#: Environment variable that supplies the account password to scripts.
PASSWORD_ENV: Final = "RSNODE_PASSWORD"
#: The friend list's file inside the account directory.
FRIENDS_FILE: Final = "friends.sqlite"
#: Largest certificate file ``friend add`` reads (real ones are a few KiB).
_MAX_CERT_FILE: Final = 64 * 1024


class CliError(Exception):
    """A failure the user can fix; ``main`` prints it and exits with status 2."""


def default_base_dir() -> pathlib.Path:
    """Where the account lives unless ``--base-dir`` says otherwise."""
    return pathlib.Path(platformdirs.user_data_dir("rsproto"))


def _password(confirm: bool = False) -> str:
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    first = getpass.getpass("Account password: ")
    if confirm and getpass.getpass("Repeat the password: ") != first:
        raise CliError("the two passwords differ")
    return first


def _require_account(base_dir: pathlib.Path) -> list[tuple[SslId, str]]:
    try:
        ours = list_locations(base_dir)
    except AccountError as e:
        raise CliError(f"{base_dir} holds a damaged account: {e}") from e
    if not ours:
        raise CliError(f"no account in {base_dir}; create one with `rsnode init`")
    return ours


def _load(base_dir: pathlib.Path) -> Account:
    _require_account(base_dir)
    try:
        return Account.load(base_dir, _password())
    except WrongPasswordError as e:
        raise CliError("wrong password") from e
    except AccountError as e:
        raise CliError(str(e)) from e


def _friends(base_dir: pathlib.Path) -> FriendList:
    _require_account(base_dir)
    return FriendList(base_dir / FRIENDS_FILE)


# --- commands --------------------------------------------------------------------------------

def _init(args: argparse.Namespace) -> int:
    base: pathlib.Path = args.base_dir
    if base.exists() and (not base.is_dir() or any(base.iterdir())):
        raise CliError(f"{base} is not empty; choose another --base-dir")
    password = _password(confirm=True)
    if not password:
        raise CliError("the password must not be empty")
    try:
        account = Account.create(base, args.name, args.location, password, bits=args.bits)
    except (AccountError, ValueError) as e:
        raise CliError(str(e)) from e
    FriendList(base / FRIENDS_FILE).close()
    print(f"created profile {account.name} ({account.pgp_id}), "
          f"location {account.location_name} ({account.ssl_id}) in {base}")
    return 0


def _cert(args: argparse.Namespace) -> int:
    account = _load(args.base_dir)
    if args.port is not None:
        local: NetAddress | None = NetAddress(ipaddress.IPv4Address("127.0.0.1"), args.port)
    else:
        # The address `rsnode run` last listened on, so the certificate we hand out reaches us.
        from services.node.node import listening_address
        local = listening_address(args.base_dir)
    if args.short:
        print(account.short_invite(local_addr=local).encode())
    else:
        print(account.certificate_text(local_addr=local))
    return 0


def _read_certificate_argument(arg: str) -> str:
    path = pathlib.Path(arg)
    # Certificates are base64 and never contain a path separator... except '/', so a text that
    # is an existing file wins.
    try:
        is_file = len(arg) < 4096 and path.is_file()
    except OSError:  # e.g. a certificate text longer than a file name may be
        is_file = False
    if is_file:
        if path.stat().st_size > _MAX_CERT_FILE:
            raise CliError(f"{path} is too large to be a certificate")
        try:
            return path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CliError(f"cannot read {path}: {e}") from e
    return arg


def _decode_friend(text: str) -> RsCertificate | ShortInvite:
    """A long certificate or a short invite (text or URL); which one is told by trying."""
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


def _friend_add(args: argparse.Namespace) -> int:
    ours = {ssl_id for ssl_id, _ in _require_account(args.base_dir)}
    item = _decode_friend(_read_certificate_argument(args.certificate))
    if item.ssl_id is not None and item.ssl_id in ours:
        raise CliError("that is this account's own certificate")
    with _friends(args.base_dir) as friends:
        try:
            if isinstance(item, RsCertificate):
                profile = friends.add_from_certificate(item, TrustLevel[args.trust.upper()])
                where = f", location {safe(item.location)} ({item.ssl_id})" if item.ssl_id else ""
                print(f"added friend {safe(profile.name)} ({profile.pgp_id}){where}")
            else:
                loc = friends.add_from_invite(item)
                print(f"added {safe(item.name or 'friend')} location {loc.ssl_id} (profile "
                      f"{loc.pgp_id}) from a short invite: only this location is admitted "
                      "until discovery brings the profile key")
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
            print(f"{safe(p.name)}  {p.pgp_id}  ({status})")
            for loc in friends.locations(p.pgp_id):
                seen = "never" if loc.last_connected is None else str(loc.last_connected)
                addrs = ", ".join(str(a.addr) for a in loc.addresses) or "-"
                print(f"  {safe(loc.name or '(unnamed)')}  {loc.ssl_id}  last connected {seen}  "
                      f"addresses {addrs}")
        for c in pending:
            print(f"pending: {safe(c.name)}  {c.pgp_id}  ({c.origin.value}; approve explicitly)")
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

def _base_dir_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--base-dir", type=pathlib.Path, default=default_base_dir(),
                        help="the account directory (default: %(default)s)")
    return parent


def register(subparsers: Any) -> None:
    """Add ``init``, ``cert`` and ``friend`` to ``rsnode``'s subcommands."""
    common = [_base_dir_parent()]
    p = subparsers.add_parser("init", parents=common, help="create a profile and a location")
    p.add_argument("--name", required=True, help="your profile name, as friends will see it")
    p.add_argument("--location", required=True, help="this device's name")
    p.add_argument("--bits", type=int, default=3072, choices=(2048, 3072, 4096),
                   help="RSA key size (default: %(default)s)")
    p.set_defaults(func=_init)

    p = subparsers.add_parser("cert", parents=common, help="print our certificate")
    p.add_argument("--short", action="store_true", help="print the short invite instead")
    p.add_argument("--port", type=int, default=None,
                   help="list 127.0.0.1:PORT as our local address (default: the address "
                        "`rsnode run` last listened on)")
    p.set_defaults(func=_cert)

    friend = subparsers.add_parser("friend", help="manage friends")
    fsub = friend.add_subparsers(dest="friend_command", required=True)
    p = fsub.add_parser("add", parents=common,
                        help="accept a friend's certificate or short invite")
    p.add_argument("certificate", help="the certificate or invite text, or a file holding it")
    p.add_argument("--trust", choices=[t.name.lower() for t in TrustLevel], default="none")
    p.set_defaults(func=_friend_add)
    p = fsub.add_parser("list", parents=common, help="list friends and pending certificates")
    p.set_defaults(func=_friend_list)
    p = fsub.add_parser("remove", parents=common, help="remove a friend profile or location")
    p.add_argument("id", help="a PGP id (removes the profile) or an SSL id (one location)")
    p.set_defaults(func=_friend_remove)

