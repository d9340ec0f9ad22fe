# -*- test-case-name: tests.test_friends -*-
"""The friend list: who may connect to us, and what we know about their locations.

RetroShare's promise is that only mutually approved friends can talk.  This module is where
"approved" is decided and remembered.  It holds four kinds of record, in one sqlite file:

* **accepted profiles**: a PGP id with its public key, a name and a trust level.  Every location
  certificate signed by an accepted profile is admitted by the TLS verifier (`pqi.identity.tls`);
* **locations** of those profiles: SSL id, location name, addresses (with the time they were
  seen and who told us), when we were last connected;
* **SSL-only friends**: a location added from a short invite, which names the SSL id and the
  profile's fingerprint but carries no key.  RetroShare admits exactly that SSL id until
  discovery brings the key; we store it as a profile without key (`Profile.ssl_only`);
* **pending certificates**: keys learned from friends (discovery) or offered by a stranger, kept
  so the user can look at them, but never admitted until `FriendList.approve` is called;
* **denials**: a profile or a location the user blocked, with a reason and a time.  Denying
  removes the friend (a profile with all its locations), its pending certificate and the
  discovery contacts naming it; while denied, the TLS verifier refuses it with that reason,
  discovery cannot offer it again, and adding it fails with `DeniedError` until `allow`.

Every change runs in one ``BEGIN IMMEDIATE`` transaction, so a change that fails half-way leaves
the file exactly as it was; the database runs in WAL mode so that readers (the TLS verifier)
never wait for a writer.  Names (of profiles and locations, as discovery relays them) and
denial reasons go through `pqi.storage.to_stored`: one that is not UTF-8 is kept as it came.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import ipaddress
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from pqi.storage import from_stored, private_database, to_stored
from pqi.wire.address import AddressInfo, NetAddress
from pqi.wire.fields import PgpFingerprint, PgpId, SslId

if TYPE_CHECKING:
    from pqi.identity.certificate import RsCertificate
    from pqi.identity.invite import ShortInvite
    from pqi.identity.pgp import PublicKey

__all__ = [
    "FriendList", "TrustLevel", "Profile", "Location", "PendingCertificate", "PendingOrigin",
    "OfferOutcome", "FriendsError", "UnknownFriendError", "FriendNameError", "NotPendingError",
    "LocationConflictError", "FingerprintMismatchError", "IncompleteInviteError",
    "MAX_STORED_TIME", "Denial", "DeniedError", "MAX_DENIALS",
]

_SCHEMA_VERSION = 1
#: Seen-times arrive as u64 from peers; sqlite integers are signed 64-bit, so larger (absurd)
#: values are stored as this.
MAX_STORED_TIME = 2**63 - 1
#: Profiles plus locations the user may deny.
MAX_DENIALS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    pgp_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    public_key BLOB,
    name TEXT NOT NULL,
    trust INTEGER NOT NULL,
    added_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS locations (
    ssl_id TEXT PRIMARY KEY,
    pgp_id TEXT NOT NULL REFERENCES profiles(pgp_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    last_connected INTEGER
);
CREATE TABLE IF NOT EXISTS addresses (
    ssl_id TEXT NOT NULL REFERENCES locations(ssl_id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    seen_time INTEGER NOT NULL,
    source INTEGER NOT NULL,
    PRIMARY KEY (ssl_id, host, port)
);
CREATE TABLE IF NOT EXISTS pending (
    pgp_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    public_key BLOB NOT NULL,
    name TEXT NOT NULL,
    origin TEXT NOT NULL,
    learned_from TEXT,
    received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS denied (
    ident TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    denied_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_locations (
    ssl_id TEXT PRIMARY KEY,
    pgp_id TEXT NOT NULL REFERENCES pending(pgp_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    addresses TEXT NOT NULL
);
"""


class TrustLevel(enum.IntEnum):
    """How far we trust a friend's judgement of other keys (RetroShare's PGP trust).

    Values are RetroShare's ``RS_TRUST_LVL_*`` numbers (``src/retroshare/rspeers.h``) so they
    can travel unchanged in discovery items.  Trust says nothing about whether a friend may
    connect: acceptance does that.
    """

    NONE = 1  # RS_TRUST_LVL_UNKNOWN
    MARGINAL = 3
    FULL = 4


class PendingOrigin(enum.Enum):
    """How a not-yet-approved certificate reached us."""

    DISCOVERY = "discovery"  # a friend told us about one of their friends
    OFFERED = "offered"  # someone connected or sent it to us directly


class OfferOutcome(enum.Enum):
    """What `FriendList.offer` did with a key."""

    PENDING = "pending"  # stored for the user to approve
    KEY_COMPLETED = "key-completed"  # it was the missing key of an SSL-only friend
    ALREADY_ACCEPTED = "already-accepted"  # nothing to do (new locations were recorded)
    DENIED = "denied"  # the user denied this profile: nothing stored


class FriendsError(Exception):
    """Base of the friend-list errors."""


class UnknownFriendError(FriendsError, LookupError):
    """No accepted friend (profile or location) has this id."""

    def __init__(self, ident: object) -> None:
        super().__init__(f"no friend with id {ident}")
        self.ident = ident


class FriendNameError(UnknownFriendError):
    """A friend named by profile or location name: no friend, or several, answer to it."""

    def __init__(self, name: str, message: str) -> None:
        FriendsError.__init__(self, message)
        self.ident = name


class NotPendingError(UnknownFriendError):
    """`approve` or `reject` named a PGP id for which no certificate is pending."""

    def __init__(self, ident: object) -> None:
        FriendsError.__init__(self, f"no pending certificate for {ident}")
        self.ident = ident


class LocationConflictError(FriendsError):
    """An SSL id is already recorded as a location of a different profile.

    SSL ids are hashes of a signature by the profile key, so one location cannot honestly
    belong to two profiles: one of the two certificates is forged or corrupt.
    """

    def __init__(self, ssl_id: SslId, owner: PgpId, claimed_by: PgpId) -> None:
        super().__init__(f"location {ssl_id} belongs to {owner}, not to {claimed_by}")
        self.ssl_id = ssl_id
        self.owner = owner
        self.claimed_by = claimed_by


class FingerprintMismatchError(FriendsError):
    """A key does not have the fingerprint that the short invite for this friend promised."""

    def __init__(self, pgp_id: PgpId, expected: PgpFingerprint, got: PgpFingerprint) -> None:
        super().__init__(f"profile {pgp_id}: invite promised fingerprint {expected}, "
                         f"key has {got}")
        self.pgp_id = pgp_id
        self.expected = expected
        self.got = got


class DeniedError(FriendsError):
    """The profile or location is denied; `FriendList.allow` it first."""

    def __init__(self, denial: Denial) -> None:
        super().__init__(f"{denial.kind} {denial.ident} is denied: {denial.reason}")
        self.denial = denial


class IncompleteInviteError(FriendsError):
    """A short invite without the profile fingerprint cannot make an SSL-only friend.

    Without it we could not tell which profile must have signed the location's certificate.
    Ask the friend for their full certificate instead.
    """


@dataclasses.dataclass(frozen=True)
class Profile:
    """A friend's profile.  ``public_key`` is ``None`` for an SSL-only friend."""

    pgp_id: PgpId
    fingerprint: PgpFingerprint
    public_key: bytes | None
    name: str
    trust: TrustLevel
    added_at: int

    @property
    def ssl_only(self) -> bool:
        """Added from a short invite: only its listed SSL ids are admitted, until the key comes."""
        return self.public_key is None


@dataclasses.dataclass(frozen=True)
class Location:
    """One device of a friend."""

    ssl_id: SslId
    pgp_id: PgpId
    name: str
    addresses: tuple[AddressInfo, ...] = ()
    last_connected: int | None = None


@dataclasses.dataclass(frozen=True)
class Denial:
    """A profile (``kind`` "profile", ``ident`` a PgpId) or location ("location", an SslId)
    the user blocked, why and when."""

    ident: PgpId | SslId
    kind: str
    reason: str
    denied_at: int

    def describe(self) -> str:
        """The reason as the TLS refusal logs it."""
        return f"{self.kind} {self.ident} denied at {self.denied_at}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class PendingCertificate:
    """A certificate we know of but the user has not approved."""

    pgp_id: PgpId
    fingerprint: PgpFingerprint
    public_key: bytes
    name: str
    origin: PendingOrigin
    learned_from: SslId | None
    received_at: int
    locations: tuple[Location, ...] = ()


def _locator_address(url: str) -> NetAddress | None:
    """The address of an ``ipv4://HOST:PORT`` extra locator (others are not dialled)."""
    if not url.startswith("ipv4://"):
        return None
    host, _, port = url.removeprefix("ipv4://").rstrip("/").rpartition(":")
    try:
        number = int(port)
        return NetAddress(ipaddress.IPv4Address(host), number) if 0 < number <= 0xFFFF else None
    except ValueError:
        return None


def _addresses_json(addresses: Iterable[AddressInfo]) -> str:
    return json.dumps([[str(a.addr.host), a.addr.port, a.seen_time, a.source]
                       for a in addresses if a.addr is not None])


def _addresses_from_json(text: str) -> tuple[AddressInfo, ...]:
    return tuple(AddressInfo(NetAddress(ipaddress.ip_address(h), p), seen, src)
                 for h, p, seen, src in json.loads(text))


class FriendList:
    """The friend list of one account, stored in the sqlite file at ``path``.

    ``now`` gives the current time in seconds (injected so tests control timestamps).
    The object owns one connection; use it from the reactor thread only, and `close` it (or use
    it as a context manager) when done.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._db = sqlite3.connect(private_database(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                       (str(_SCHEMA_VERSION),))

    # --- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one transaction: committed if it returns, rolled back if it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> FriendList:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _stamp(self) -> int:
        return int(self._now())

    # --- writing -------------------------------------------------------------------------------

    def add_from_certificate(self, cert: RsCertificate,
                             trust: TrustLevel = TrustLevel.NONE) -> Profile:
        """Accept the profile and location of a long certificate: the user's explicit yes.

        Completes an SSL-only friend with the same PGP id (if the fingerprint matches), and
        clears any pending entry for that profile.  A certificate without location (PGP-only)
        accepts the profile alone.
        """
        key = cert.public_key
        pgp_id = key.pgp_id
        seen = self._stamp()
        candidates = [cert.local_addr, cert.ext_addr,
                      *(_locator_address(url) for url in cert.extra_locators)]
        addresses = [AddressInfo(a, seen) for a in dict.fromkeys(candidates)
                     if a is not None and a.port != 0 and not a.host.is_unspecified]
        with self._transaction() as db:
            self._refuse_denied(db, pgp_id, cert.ssl_id)
            self._store_profile(db, key.pgp_id, key.fingerprint, key.to_bytes(), key.name, trust)
            if cert.ssl_id is not None:
                self._store_location(db, pgp_id, cert.ssl_id, cert.location, addresses)
            db.execute("DELETE FROM pending WHERE pgp_id = ?", (pgp_id.to_hex(),))
            return self._profile(db, pgp_id)

    def add_ssl_only(self, ssl_id: SslId, fingerprint: PgpFingerprint, name: str,
                     location_name: str = "", addresses: Iterable[AddressInfo] = ()) -> Location:
        """Accept one location from a short invite, before its profile key is known.

        Only ``ssl_id`` is admitted (and only with a certificate whose issuer is the PGP id of
        ``fingerprint``) until `offer` or `add_from_certificate` brings the matching key.
        """
        pgp_id = PgpId(fingerprint[-PgpId.LENGTH:])
        with self._transaction() as db:
            self._refuse_denied(db, pgp_id, ssl_id)
            row = db.execute("SELECT fingerprint FROM profiles WHERE pgp_id = ?",
                             (pgp_id.to_hex(),)).fetchone()
            if row is None:
                db.execute("INSERT INTO profiles VALUES (?, ?, NULL, ?, ?, ?)",
                           (pgp_id.to_hex(), fingerprint.to_hex(), to_stored(name),
                            int(TrustLevel.NONE), self._stamp()))
            elif PgpFingerprint.from_hex(row[0]) != fingerprint:
                raise FingerprintMismatchError(pgp_id, PgpFingerprint.from_hex(row[0]),
                                               fingerprint)
            self._store_location(db, pgp_id, ssl_id, location_name, addresses)
            return self._location(db, ssl_id)

    def add_from_invite(self, invite: ShortInvite) -> Location:
        """Accept the location of a short invite as an SSL-only friend (the user's explicit yes).

        If the profile is already accepted (we have its key), the location is simply added to it.
        """
        if invite.pgp_fingerprint is None or invite.pgp_id is None:
            raise IncompleteInviteError(f"invite for {invite.ssl_id} names no profile "
                                        "fingerprint")
        from pqi.identity.invite import Ext4Locator, Loc4Locator  # the codec, only here
        seen = self._stamp()
        addresses = [AddressInfo(loc.address, seen) for loc in invite.locators
                     if isinstance(loc, (Loc4Locator, Ext4Locator))]
        return self.add_ssl_only(invite.ssl_id, invite.pgp_fingerprint, invite.name,
                                 addresses=addresses)

    def add_location(self, pgp_id: PgpId, ssl_id: SslId, name: str,
                     addresses: Iterable[AddressInfo] = ()) -> Location:
        """Record a (new) location of an accepted profile, e.g. one that discovery told us of."""
        with self._transaction() as db:
            self._refuse_denied(db, pgp_id, ssl_id)
            self._require_profile(db, pgp_id)
            self._store_location(db, pgp_id, ssl_id, name, addresses)
            return self._location(db, ssl_id)

    def offer(self, key: PublicKey, *, origin: PendingOrigin = PendingOrigin.DISCOVERY,
              learned_from: SslId | None = None,
              locations: Iterable[tuple[SslId, str, Iterable[AddressInfo]]] = ()) -> OfferOutcome:
        """Tell the friend list about a profile key that the user has not (yet) accepted.

        The key of an SSL-only friend completes that friend (RetroShare does the same when
        discovery brings it); a key of an accepted profile only records new locations; any other
        key is kept as pending until `approve`.
        """
        pgp_id = key.pgp_id
        locations = [(s, n, tuple(a)) for s, n, a in locations]
        with self._transaction() as db:
            if self._denial(db, pgp_id) is not None:
                return OfferOutcome.DENIED
            locations = [loc for loc in locations if self._denial(db, loc[0]) is None]
            row = db.execute("SELECT fingerprint, public_key FROM profiles WHERE pgp_id = ?",
                             (pgp_id.to_hex(),)).fetchone()
            if row is not None:
                outcome = OfferOutcome.ALREADY_ACCEPTED
                if row[1] is None:
                    expected = PgpFingerprint.from_hex(row[0])
                    if expected != key.fingerprint:
                        raise FingerprintMismatchError(pgp_id, expected, key.fingerprint)
                    db.execute("UPDATE profiles SET public_key = ? WHERE pgp_id = ?",
                               (key.to_bytes(), pgp_id.to_hex()))
                    outcome = OfferOutcome.KEY_COMPLETED
                for ssl_id, name, addresses in locations:
                    self._store_location(db, pgp_id, ssl_id, name, addresses)
                return outcome
            db.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (pgp_id.to_hex(), key.fingerprint.to_hex(), key.to_bytes(),
                        to_stored(key.name), origin.value,
                        learned_from.to_hex() if learned_from else None,
                        self._stamp()))
            for ssl_id, name, addresses in locations:
                db.execute("INSERT OR REPLACE INTO pending_locations VALUES (?, ?, ?, ?)",
                           (ssl_id.to_hex(), pgp_id.to_hex(), to_stored(name),
                            _addresses_json(addresses)))
            return OfferOutcome.PENDING

    def approve(self, pgp_id: PgpId, trust: TrustLevel = TrustLevel.NONE) -> Profile:
        """Accept a pending certificate: from now on its locations may connect."""
        with self._transaction() as db:
            row = db.execute("SELECT fingerprint, public_key, name FROM pending WHERE pgp_id = ?",
                             (pgp_id.to_hex(),)).fetchone()
            if row is None:
                raise NotPendingError(pgp_id)
            self._store_profile(db, pgp_id, PgpFingerprint.from_hex(row[0]), row[1],
                                from_stored(row[2]), trust)
            for ssl_hex, name, addresses in db.execute(
                    "SELECT ssl_id, name, addresses FROM pending_locations WHERE pgp_id = ?",
                    (pgp_id.to_hex(),)).fetchall():
                self._store_location(db, pgp_id, SslId.from_hex(ssl_hex), from_stored(name),
                                     _addresses_from_json(addresses))
            db.execute("DELETE FROM pending WHERE pgp_id = ?", (pgp_id.to_hex(),))
            return self._profile(db, pgp_id)

    def reject(self, pgp_id: PgpId) -> None:
        """Forget a pending certificate."""
        with self._transaction() as db:
            if db.execute("DELETE FROM pending WHERE pgp_id = ?",
                          (pgp_id.to_hex(),)).rowcount == 0:
                raise NotPendingError(pgp_id)

    def set_trust(self, pgp_id: PgpId, trust: TrustLevel) -> None:
        """Change the trust level of an accepted profile."""
        with self._transaction() as db:
            self._require_profile(db, pgp_id)
            db.execute("UPDATE profiles SET trust = ? WHERE pgp_id = ?",
                       (int(trust), pgp_id.to_hex()))

    def record_address(self, ssl_id: SslId, address: AddressInfo) -> None:
        """Remember (or refresh) an address where a location can be reached."""
        with self._transaction() as db:
            self._require_location(db, ssl_id)
            self._store_addresses(db, ssl_id, [address])

    def set_last_connected(self, ssl_id: SslId, when: int | None = None) -> None:
        """Note that a link to this location was just authenticated (or at ``when``)."""
        with self._transaction() as db:
            self._require_location(db, ssl_id)
            db.execute("UPDATE locations SET last_connected = ? WHERE ssl_id = ?",
                       (self._stamp() if when is None else when, ssl_id.to_hex()))

    def remove_profile(self, pgp_id: PgpId) -> None:
        """Stop accepting a profile and all its locations."""
        with self._transaction() as db:
            if db.execute("DELETE FROM profiles WHERE pgp_id = ?",
                          (pgp_id.to_hex(),)).rowcount == 0:
                raise UnknownFriendError(pgp_id)

    def remove_location(self, ssl_id: SslId) -> None:
        """Forget one location; the profile (and its other locations) stay accepted."""
        with self._transaction() as db:
            if db.execute("DELETE FROM locations WHERE ssl_id = ?",
                          (ssl_id.to_hex(),)).rowcount == 0:
                raise UnknownFriendError(ssl_id)

    def deny_profile(self, pgp_id: PgpId, reason: str = "") -> Denial:
        """Block a profile: forget it, its locations, its pending certificate and the
        discovery contacts naming it, and refuse it from now on."""
        with self._transaction() as db:
            denial = self._deny(db, pgp_id, "profile", reason)
            db.execute("DELETE FROM profiles WHERE pgp_id = ?", (pgp_id.to_hex(),))
            db.execute("DELETE FROM pending WHERE pgp_id = ?", (pgp_id.to_hex(),))
            return denial

    def deny_location(self, ssl_id: SslId, reason: str = "") -> Denial:
        """Block one location (its profile's other locations stay friends)."""
        with self._transaction() as db:
            denial = self._deny(db, ssl_id, "location", reason)
            db.execute("DELETE FROM locations WHERE ssl_id = ?", (ssl_id.to_hex(),))
            db.execute("DELETE FROM pending_locations WHERE ssl_id = ?", (ssl_id.to_hex(),))
            return denial

    def allow(self, ident: PgpId | SslId) -> bool:
        """Lift a denial (the friend must be added again to connect); False if none."""
        with self._transaction() as db:
            return db.execute("DELETE FROM denied WHERE ident = ?",
                              (ident.to_hex(),)).rowcount > 0

    def _deny(self, db: sqlite3.Connection, ident: PgpId | SslId, kind: str,
              reason: str) -> Denial:
        found = self._denial(db, ident)
        if found is None and db.execute("SELECT count(*) FROM denied").fetchone()[0] \
                >= MAX_DENIALS:
            raise FriendsError(f"{MAX_DENIALS} denials are kept already")
        db.execute("INSERT OR REPLACE INTO denied VALUES (?, ?, ?, ?)",
                   (ident.to_hex(), kind, to_stored(reason), self._stamp()))
        denial = self._denial(db, ident)
        assert denial is not None
        return denial

    # --- reading -------------------------------------------------------------------------------

    def denial(self, *idents: PgpId | SslId | None) -> Denial | None:
        """The first denial among ``idents`` (a location and its issuer, say), or None."""
        for ident in idents:
            if ident is not None:
                found = self._denial(self._db, ident)
                if found is not None:
                    return found
        return None

    def denials(self) -> list[Denial]:
        """Every denial, oldest first."""
        rows = self._db.execute("SELECT ident, kind, reason, denied_at FROM denied "
                                "ORDER BY denied_at, ident").fetchall()
        return [self._denial_from_row(r) for r in rows]

    @staticmethod
    def _denial_from_row(row: tuple[str, str, str | bytes, int]) -> Denial:
        ident, kind, reason, at = row
        return Denial(PgpId.from_hex(ident) if kind == "profile" else SslId.from_hex(ident),
                      kind, from_stored(reason), at)

    def _denial(self, db: sqlite3.Connection, ident: PgpId | SslId) -> Denial | None:
        row = db.execute("SELECT ident, kind, reason, denied_at FROM denied WHERE ident = ?",
                         (ident.to_hex(),)).fetchone()
        return None if row is None else self._denial_from_row(row)

    def _refuse_denied(self, db: sqlite3.Connection, pgp_id: PgpId,
                       ssl_id: SslId | None) -> None:
        for ident in (pgp_id, ssl_id):
            if ident is not None and (found := self._denial(db, ident)) is not None:
                raise DeniedError(found)

    def is_accepted_profile(self, pgp_id: PgpId) -> bool:
        """Whether every location signed by this profile may connect (SSL-only: no)."""
        return self._db.execute(
            "SELECT 1 FROM profiles WHERE pgp_id = ? AND public_key IS NOT NULL",
            (pgp_id.to_hex(),)).fetchone() is not None

    def public_key(self, pgp_id: PgpId) -> PublicKey:
        """The key of an accepted profile; `UnknownFriendError` if none is known."""
        from pqi.identity.pgp import PublicKey
        row = self._db.execute("SELECT public_key FROM profiles WHERE pgp_id = ?",
                               (pgp_id.to_hex(),)).fetchone()
        if row is None or row[0] is None:
            raise UnknownFriendError(pgp_id)
        return PublicKey.from_bytes(row[0])

    def profile(self, pgp_id: PgpId) -> Profile:
        """An accepted (or SSL-only) profile; `UnknownFriendError` if absent."""
        return self._profile(self._db, pgp_id)

    def profiles(self) -> list[Profile]:
        """All accepted and SSL-only profiles, by name."""
        rows = self._db.execute("SELECT * FROM profiles ORDER BY name, pgp_id").fetchall()
        return [self._profile_from_row(r) for r in rows]

    def location(self, ssl_id: SslId) -> Location:
        """A known location of a friend; `UnknownFriendError` if absent."""
        return self._location(self._db, ssl_id)

    def locations(self, pgp_id: PgpId | None = None) -> list[Location]:
        """Every known location (of one profile if ``pgp_id`` is given)."""
        if pgp_id is None:
            rows = self._db.execute("SELECT ssl_id FROM locations ORDER BY pgp_id, name, ssl_id")
        else:
            rows = self._db.execute("SELECT ssl_id FROM locations WHERE pgp_id = ? "
                                    "ORDER BY name, ssl_id", (pgp_id.to_hex(),))
        return [self._location(self._db, SslId.from_hex(r[0])) for r in rows.fetchall()]

    def pending(self) -> list[PendingCertificate]:
        """Certificates waiting for the user's approval, oldest first."""
        out = []
        for row in self._db.execute("SELECT * FROM pending ORDER BY received_at, pgp_id"
                                    ).fetchall():
            pgp_hex, fpr, key, name, origin, learned_from, received_at = row
            locs = tuple(
                Location(SslId.from_hex(s), PgpId.from_hex(pgp_hex), from_stored(n),
                         _addresses_from_json(a))
                for s, n, a in self._db.execute(
                    "SELECT ssl_id, name, addresses FROM pending_locations WHERE pgp_id = ? "
                    "ORDER BY ssl_id", (pgp_hex,)).fetchall())
            out.append(PendingCertificate(
                PgpId.from_hex(pgp_hex), PgpFingerprint.from_hex(fpr), key, from_stored(name),
                PendingOrigin(origin), SslId.from_hex(learned_from) if learned_from else None,
                received_at, locs))
        return out

    # --- helpers (inside a transaction) ---------------------------------------------------------

    def _store_profile(self, db: sqlite3.Connection, pgp_id: PgpId, fingerprint: PgpFingerprint,
                       key: bytes, name: str, trust: TrustLevel) -> None:
        row = db.execute("SELECT fingerprint FROM profiles WHERE pgp_id = ?",
                         (pgp_id.to_hex(),)).fetchone()
        if row is None:
            db.execute("INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?)",
                       (pgp_id.to_hex(), fingerprint.to_hex(), key, to_stored(name), int(trust),
                        self._stamp()))
            return
        expected = PgpFingerprint.from_hex(row[0])
        if expected != fingerprint:
            raise FingerprintMismatchError(pgp_id, expected, fingerprint)
        db.execute("UPDATE profiles SET public_key = ?, name = ?, trust = ? WHERE pgp_id = ?",
                   (key, to_stored(name), int(trust), pgp_id.to_hex()))

    def _store_location(self, db: sqlite3.Connection, pgp_id: PgpId, ssl_id: SslId, name: str,
                        addresses: Iterable[AddressInfo]) -> None:
        row = db.execute("SELECT pgp_id FROM locations WHERE ssl_id = ?",
                         (ssl_id.to_hex(),)).fetchone()
        if row is None:
            db.execute("INSERT INTO locations VALUES (?, ?, ?, NULL)",
                       (ssl_id.to_hex(), pgp_id.to_hex(), to_stored(name)))
        elif PgpId.from_hex(row[0]) != pgp_id:
            raise LocationConflictError(ssl_id, PgpId.from_hex(row[0]), pgp_id)
        elif name:
            db.execute("UPDATE locations SET name = ? WHERE ssl_id = ?",
                       (to_stored(name), ssl_id.to_hex()))
        self._store_addresses(db, ssl_id, addresses)

    @staticmethod
    def _store_addresses(db: sqlite3.Connection, ssl_id: SslId,
                         addresses: Iterable[AddressInfo]) -> None:
        for a in addresses:
            if a.addr is None:
                continue
            db.execute("INSERT INTO addresses VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (ssl_id, host, port) DO UPDATE SET "
                       "seen_time = max(seen_time, excluded.seen_time), source = excluded.source",
                       (ssl_id.to_hex(), str(a.addr.host), a.addr.port,
                        min(a.seen_time, MAX_STORED_TIME), a.source))

    @staticmethod
    def _require_profile(db: sqlite3.Connection, pgp_id: PgpId) -> None:
        if db.execute("SELECT 1 FROM profiles WHERE pgp_id = ?",
                      (pgp_id.to_hex(),)).fetchone() is None:
            raise UnknownFriendError(pgp_id)

    @staticmethod
    def _require_location(db: sqlite3.Connection, ssl_id: SslId) -> None:
        if db.execute("SELECT 1 FROM locations WHERE ssl_id = ?",
                      (ssl_id.to_hex(),)).fetchone() is None:
            raise UnknownFriendError(ssl_id)

    @staticmethod
    def _profile_from_row(row: tuple[str, str, bytes | None, str | bytes, int, int]) -> Profile:
        pgp_hex, fpr, key, name, trust, added_at = row
        return Profile(PgpId.from_hex(pgp_hex), PgpFingerprint.from_hex(fpr), key,
                       from_stored(name), TrustLevel(trust), added_at)

    def _profile(self, db: sqlite3.Connection, pgp_id: PgpId) -> Profile:
        row = db.execute("SELECT * FROM profiles WHERE pgp_id = ?",
                         (pgp_id.to_hex(),)).fetchone()
        if row is None:
            raise UnknownFriendError(pgp_id)
        return self._profile_from_row(row)

    @staticmethod
    def _location(db: sqlite3.Connection, ssl_id: SslId) -> Location:
        row = db.execute("SELECT pgp_id, name, last_connected FROM locations WHERE ssl_id = ?",
                         (ssl_id.to_hex(),)).fetchone()
        if row is None:
            raise UnknownFriendError(ssl_id)
        addresses = tuple(
            AddressInfo(NetAddress(ipaddress.ip_address(h), p), seen, src)
            for h, p, seen, src in db.execute(
                "SELECT host, port, seen_time, source FROM addresses WHERE ssl_id = ? "
                "ORDER BY seen_time DESC, host, port", (ssl_id.to_hex(),)).fetchall())
        return Location(ssl_id, PgpId.from_hex(row[0]), from_stored(row[1]), addresses, row[2])
