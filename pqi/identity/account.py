# -*- test-case-name: tests.test_account -*-
"""Accounts: our profile key and our locations, kept on disk under a password.

Layout of an account directory (every directory 0700, every file 0600)::

    account.json                  {"format", "pgp_id", "name", "current_location"}
    profile/public_key.gpg        the transferable public key (with its self-certification)
    profile/private_key.p8        PKCS#8, encrypted with the password (`pqi.identity.keyfile`)
    locations/<ssl id>/location.json   {"ssl_id", "name"}
    locations/<ssl id>/tls_key.p8      PKCS#8, encrypted with the password
    locations/<ssl id>/tls_cert.pem    the location certificate

Private keys never touch the disk unencrypted.  An account or a location is written into a
temporary directory beside its final place, every file and directory fsynced, then renamed into
place, so a crash leaves either nothing or a complete account.  One profile can have several
locations (devices); ``current_location`` says which one this directory runs as.

Accounts written before keys moved to PKCS#8 hold ``private_key.p12`` and ``tls_key.p12``
(PKCS#12, whose 2,048-iteration MAC let a thief test passwords cheaply): `Account.load`
migrates them on the next unlock (the ``.p8`` written atomically, then the ``.p12`` removed).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa

from pqi.identity.certificate import RsCertificate
from pqi.identity.errors import AccountError, IdentityError, WrongPasswordError
from pqi.identity.invite import DnsLocator, Ext4Locator, Loc4Locator, Locator, ShortInvite
from pqi.identity.keyfile import (
    KDF_ROUNDS,
    KeyFileError,
    decrypt_key,
    decrypt_legacy_pkcs12,
    encrypt_key,
)
from pqi.identity.pgp import ProfileKey, PublicKey
from pqi.identity.sslcert import LocationCertificate, make_location_certificate
from pqi.storage import atomic_write, fsync_dir
from pqi.wire.address import NetAddress
from pqi.wire.errors import DecodeError
from pqi.wire.fields import PgpId, SslId

__all__ = ["Account", "AccountCard", "ACCOUNT_FORMAT", "KDF_ROUNDS", "list_locations"]

#: Version of the on-disk layout above.
ACCOUNT_FORMAT: Final = 1
_MANIFEST: Final = "account.json"
_PROFILE: Final = "profile"
_LOCATIONS: Final = "locations"


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdir(path: Path) -> None:
    path.mkdir(mode=0o700)
    path.chmod(0o700)


def _json(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


@contextlib.contextmanager
def _staging(final: Path) -> Iterator[Path]:
    """A private temporary directory beside ``final``, renamed onto it on success."""
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise AccountError(f"{final} already exists and is not empty")
    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        for root, _dirs, _files in os.walk(tmp, topdown=False):
            fsync_dir(Path(root))
        if final.exists():
            final.rmdir()  # empty, checked above: rename cannot replace a directory otherwise
        os.rename(tmp, final)
        fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: Key file names: the PKCS#8 files written now and the PKCS#12 ones they replace.
_PROFILE_KEY: Final = "private_key.p8"
_TLS_KEY: Final = "tls_key.p8"
_LEGACY_SUFFIX: Final = ".p12"


def _encrypt(key: rsa.RSAPrivateKey, password: str) -> bytes:
    return encrypt_key(key, password)


def _decrypt(path: Path, password: str) -> rsa.RSAPrivateKey:
    """The key in ``path`` (a ``.p8``); a legacy ``.p12`` beside it is migrated to ``path``."""
    legacy = path.with_suffix(_LEGACY_SUFFIX)
    migrate = not path.exists() and legacy.exists()
    source = legacy if migrate else path
    try:
        data = source.read_bytes()
    except OSError as e:
        raise AccountError(f"cannot read {source}: {e}") from e
    try:
        key = (decrypt_legacy_pkcs12 if migrate else decrypt_key)(data, password)
    except KeyFileError as e:
        raise WrongPasswordError("wrong password (or damaged key file "
                                 f"{source.name})") from e
    if migrate:
        atomic_write(path, _encrypt(key, password), mode=0o600)
        legacy.unlink()
        fsync_dir(path.parent)
    return key


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise AccountError(f"cannot read {path}: {e}") from e
    if not isinstance(obj, dict):
        raise AccountError(f"{path} is not a JSON object")
    return obj


def _ssl_id(text: object, where: Path) -> SslId:
    if not isinstance(text, str) or len(text) != 32:
        raise AccountError(f"{where}: bad SSL id {text!r}")
    try:
        return SslId.from_hex(text)
    except ValueError as e:
        raise AccountError(f"{where}: bad SSL id {text!r}") from e


def _check_password(password: str) -> None:
    if not password:
        raise AccountError("an account needs a non-empty password")


def _write_location(locations: Path, profile: ProfileKey, name: str, password: str,
                    bits: int) -> LocationCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    cert = make_location_certificate(profile, key)
    with _staging(locations / cert.ssl_id.to_hex()) as tmp:
        _write(tmp / "location.json", _json({"ssl_id": cert.ssl_id.to_hex(), "name": name}))
        _write(tmp / _TLS_KEY, _encrypt(key, password))
        _write(tmp / "tls_cert.pem", cert.to_pem())
    return cert


def list_locations(base_dir: Path) -> list[tuple[SslId, str]]:
    """The locations stored in an account (no password needed: nothing secret is read)."""
    out = []
    folder = Path(base_dir) / _LOCATIONS
    for sub in sorted(folder.iterdir()) if folder.is_dir() else ():
        if sub.name.startswith("."):
            continue  # a staging directory left by a crash
        info = _read_json(sub / "location.json")
        out.append((_ssl_id(info.get("ssl_id"), sub), str(info.get("name", ""))))
    return out


class AccountCard:
    """What an account shows friends: the public profile key and the current location's
    certificate.  Read without the password (nothing secret), so ``rsnode cert`` need not
    ask for it."""

    def __init__(self, base_dir: Path, public: PublicKey, certificate: LocationCertificate,
                 location_name: str) -> None:
        self.base_dir = base_dir
        self.public = public
        self.certificate = certificate
        self.location_name = location_name

    @property
    def ssl_id(self) -> SslId:
        return self.certificate.ssl_id

    @property
    def pgp_id(self) -> PgpId:
        return self.public.pgp_id

    @property
    def name(self) -> str:
        """The profile name (what friends see)."""
        return self.public.name

    @classmethod
    def load(cls, base_dir: Path, location: SslId | None = None) -> AccountCard:
        """The public side of the account in ``base_dir`` (its current location by default);
        the location certificate is checked against the profile key."""
        base_dir = Path(base_dir)
        manifest = _read_json(base_dir / _MANIFEST)
        if manifest.get("format") != ACCOUNT_FORMAT:
            raise AccountError(f"{base_dir}: unknown account format {manifest.get('format')!r}")
        ssl_id = location or _ssl_id(manifest.get("current_location"), base_dir / _MANIFEST)
        loc_dir = base_dir / _LOCATIONS / ssl_id.to_hex()
        if not loc_dir.is_dir():
            raise AccountError(f"{base_dir} has no location {ssl_id}")
        try:
            public = PublicKey.from_bytes((base_dir / _PROFILE / "public_key.gpg").read_bytes())
            cert = LocationCertificate.from_pem((loc_dir / "tls_cert.pem").read_bytes())
            cert.verify(public)
        except (OSError, DecodeError, IdentityError, ValueError) as e:
            raise AccountError(f"{base_dir}: damaged account: {e}") from e
        if cert.ssl_id != ssl_id:
            raise AccountError(f"{loc_dir}: certificate is for location {cert.ssl_id}")
        info = _read_json(loc_dir / "location.json")
        return cls(base_dir, public, cert, str(info.get("name", "")))

    def certificate_for(self, local_addr: NetAddress | None = None,
                        ext_addr: NetAddress | None = None, dns: str = "",
                        extra_locators: tuple[str, ...] = ()) -> RsCertificate:
        """Our long certificate.  Unknown addresses are written 0.0.0.0:0, as RetroShare does."""
        zero = NetAddress(ipaddress.IPv4Address(0), 0)
        return RsCertificate(self.public, self.ssl_id, self.location_name,
                             local_addr or zero, ext_addr or zero, dns, "", extra_locators)

    def certificate_text(self, local_addr: NetAddress | None = None,
                         ext_addr: NetAddress | None = None, dns: str = "",
                         extra_locators: tuple[str, ...] = ()) -> str:
        """Our long certificate as text, one line (RetroShare's default form)."""
        return self.certificate_for(local_addr, ext_addr, dns, extra_locators).encode()

    def short_invite(self, local_addr: NetAddress | None = None,
                     ext_addr: NetAddress | None = None, dns: str = "",
                     dns_port: int | None = None) -> ShortInvite:
        """Our short invite, with the locators RetroShare writes for these addresses."""
        locators: list[Locator] = []
        if dns and (dns_port or ext_addr or local_addr):
            port = dns_port or (ext_addr or local_addr).port  # type: ignore[union-attr]
            locators.append(DnsLocator(dns, port))
        if local_addr is not None and local_addr.host.version == 4 and local_addr.port:
            locators.append(Loc4Locator(local_addr))
        if ext_addr is not None and ext_addr.host.version == 4 and ext_addr.port:
            locators.append(Ext4Locator(ext_addr))
        return ShortInvite(self.ssl_id, self.public.fingerprint, self.name, tuple(locators))


class Account:
    """An unlocked account: profile key, current location's TLS key and certificate."""

    def __init__(self, base_dir: Path, profile: ProfileKey, location_key: rsa.RSAPrivateKey,
                 certificate: LocationCertificate, location_name: str) -> None:
        self.base_dir = base_dir
        self.profile = profile
        self.location_key = location_key
        self.certificate = certificate
        self.location_name = location_name

    @property
    def ssl_id(self) -> SslId:
        return self.certificate.ssl_id

    @property
    def pgp_id(self) -> PgpId:
        return self.profile.pgp_id

    @property
    def name(self) -> str:
        """The profile name (what friends see)."""
        return self.profile.public.name

    @classmethod
    def create(cls, base_dir: Path, name: str, location: str, password: str,
               bits: int = 3072, location_bits: int | None = None) -> Account:
        """Make a new profile and its first location in ``base_dir`` (absent or empty)."""
        _check_password(password)
        base_dir = Path(base_dir)
        profile = ProfileKey.generate(name, bits)
        with _staging(base_dir) as tmp:
            _mkdir(tmp / _PROFILE)
            _write(tmp / _PROFILE / "public_key.gpg", profile.public.to_bytes())
            _write(tmp / _PROFILE / _PROFILE_KEY, _encrypt(profile.private_key, password))
            _mkdir(tmp / _LOCATIONS)
            cert = _write_location(tmp / _LOCATIONS, profile, location, password,
                                   location_bits or bits)
            _write(tmp / _MANIFEST, _json({
                "format": ACCOUNT_FORMAT, "pgp_id": profile.pgp_id.to_hex(), "name": name,
                "current_location": cert.ssl_id.to_hex()}))
        return cls.load(base_dir, password)

    @classmethod
    def load(cls, base_dir: Path, password: str, location: SslId | None = None) -> Account:
        """Unlock the account, as its current location unless ``location`` says otherwise."""
        base_dir = Path(base_dir)
        manifest = _read_json(base_dir / _MANIFEST)
        if manifest.get("format") != ACCOUNT_FORMAT:
            raise AccountError(f"{base_dir}: unknown account format {manifest.get('format')!r}")
        ssl_id = location or _ssl_id(manifest.get("current_location"), base_dir / _MANIFEST)
        profile_dir = base_dir / _PROFILE
        loc_dir = base_dir / _LOCATIONS / ssl_id.to_hex()
        if not loc_dir.is_dir():
            raise AccountError(f"{base_dir} has no location {ssl_id}")
        private = _decrypt(profile_dir / _PROFILE_KEY, password)
        try:
            public = PublicKey.from_bytes((profile_dir / "public_key.gpg").read_bytes())
            profile = ProfileKey(private, public)
            cert = LocationCertificate.from_pem((loc_dir / "tls_cert.pem").read_bytes())
            cert.verify(public)
        except (OSError, DecodeError, IdentityError, ValueError) as e:
            raise AccountError(f"{base_dir}: damaged account: {e}") from e
        tls_key = _decrypt(loc_dir / _TLS_KEY, password)
        if tls_key.public_key().public_numbers() != cert.public_key.public_numbers():
            raise AccountError(f"{loc_dir}: TLS key does not match its certificate")
        if cert.ssl_id != ssl_id:
            raise AccountError(f"{loc_dir}: certificate is for location {cert.ssl_id}")
        info = _read_json(loc_dir / "location.json")
        return cls(base_dir, profile, tls_key, cert, str(info.get("name", "")))

    def add_location(self, name: str, password: str, bits: int = 3072) -> SslId:
        """Create another location of this profile (it does not become current)."""
        _check_password(password)
        _decrypt(self.base_dir / _PROFILE / _PROFILE_KEY, password)  # same password only
        cert = _write_location(self.base_dir / _LOCATIONS, self.profile, name, password, bits)
        return cert.ssl_id

    def set_current_location(self, ssl_id: SslId) -> None:
        """Record which location this account directory runs as from now on."""
        if ssl_id not in {s for s, _ in list_locations(self.base_dir)}:
            raise AccountError(f"{self.base_dir} has no location {ssl_id}")
        manifest = _read_json(self.base_dir / _MANIFEST)
        manifest["current_location"] = ssl_id.to_hex()
        atomic_write(self.base_dir / _MANIFEST, _json(manifest))

    @property
    def card(self) -> AccountCard:
        """The public side of this account (what certificates and invites are made of)."""
        return AccountCard(self.base_dir, self.profile.public, self.certificate,
                           self.location_name)

    def certificate_for(self, local_addr: NetAddress | None = None,
                        ext_addr: NetAddress | None = None, dns: str = "",
                        extra_locators: tuple[str, ...] = ()) -> RsCertificate:
        """Our long certificate (`AccountCard.certificate_for`)."""
        return self.card.certificate_for(local_addr, ext_addr, dns, extra_locators)

    def certificate_text(self, local_addr: NetAddress | None = None,
                         ext_addr: NetAddress | None = None, dns: str = "",
                         extra_locators: tuple[str, ...] = ()) -> str:
        """Our long certificate as text, one line (RetroShare's default form)."""
        return self.card.certificate_text(local_addr, ext_addr, dns, extra_locators)

    def short_invite(self, local_addr: NetAddress | None = None,
                     ext_addr: NetAddress | None = None, dns: str = "",
                     dns_port: int | None = None) -> ShortInvite:
        """Our short invite (`AccountCard.short_invite`)."""
        return self.card.short_invite(local_addr, ext_addr, dns, dns_port)
