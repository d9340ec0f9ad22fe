# -*- test-case-name: tests.test_jsonapi_server -*-
"""The JSON API's credentials: one user and password per account, kept 0600 in the account
directory, checked in constant time; and the failed-authentication throttle.

RetroShare authorises ``user:password`` pairs given at account creation (``apiUser`` /
``apiPass``) and clients send them with HTTP Basic.  ``rsnode init`` creates ours (the user is
the profile name, the password 128 random bits) and ``rsnode api-token`` prints them.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Final

__all__ = [
    "CREDENTIALS_FILE",
    "ApiCredentials",
    "AuthThrottle",
    "MAX_FAILURES",
    "FAILURE_WINDOW",
    "MAX_TRACKED_CLIENTS",
]

#: File, in the account directory, holding the API user and password (mode 0600).
CREDENTIALS_FILE: Final = "jsonapi.json"
#: Failed authentications one client address may make per `FAILURE_WINDOW` seconds; beyond
#: that every call from it is refused until the window passes (brute-force guessing).
MAX_FAILURES: Final = 20
FAILURE_WINDOW: Final = 60.0
#: Client addresses whose failures are remembered (the oldest is forgotten first).
MAX_TRACKED_CLIENTS: Final = 1024


class ApiCredentials:
    """The user and password clients must present."""

    def __init__(self, user: str, password: str) -> None:
        if not user or ":" in user or not password:
            raise ValueError("the API user must be non-empty without ':', the password "
                             "non-empty")
        self.user = user
        self.password = password
        self._expected = f"{user}:{password}".encode()
        #: Further ``user → password`` tokens clients may present (``authorizeUser``; the
        #: service points this at the saved settings' table).
        self.authorized: dict[str, str] = {}

    @property
    def token(self) -> str:
        """``user:password``, what RetroShare calls the auth token."""
        return f"{self.user}:{self.password}"

    def check_token(self, token: str) -> bool:
        """Whether ``user:password`` matches, in time independent of where it differs."""
        return self._matches(token.encode("utf-8", "replace"))

    def _matches(self, token: bytes) -> bool:
        """Compared with every known token, each in constant time (no early exit, so the
        time says nothing about which one came close)."""
        ok = hmac.compare_digest(token, self._expected)
        for user, password in self.authorized.items():
            ok |= hmac.compare_digest(token, f"{user}:{password}".encode())
        return ok

    def check_header(self, header: bytes | None) -> bool:
        """Whether an ``Authorization`` header carries our credentials (scheme ``Basic``,
        case-sensitive like RetroShare)."""
        if header is None or not header.startswith(b"Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return self._matches(decoded)

    def basic_header(self) -> str:
        return "Basic " + base64.b64encode(self._expected).decode("ascii")

    # --- storage ---------------------------------------------------------------------------

    @classmethod
    def load(cls, base_dir: str | os.PathLike[str]) -> ApiCredentials:
        """The account's credentials (FileNotFoundError when none were created)."""
        data = json.loads((Path(base_dir) / CREDENTIALS_FILE).read_text("utf-8"))
        return cls(str(data["user"]), str(data["password"]))

    @classmethod
    def create(cls, base_dir: str | os.PathLike[str], user: str) -> ApiCredentials:
        """New random credentials for ``user``, written atomically with mode 0600."""
        user = user.replace(":", "_") or "rsnode"
        creds = cls(user, secrets.token_urlsafe(16))
        path = Path(base_dir) / CREDENTIALS_FILE
        tmp = path.with_name(CREDENTIALS_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"user": creds.user, "password": creds.password}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return creds

    @classmethod
    def load_or_create(cls, base_dir: str | os.PathLike[str], user: str) -> ApiCredentials:
        try:
            return cls.load(base_dir)
        except FileNotFoundError:
            return cls.create(base_dir, user)


class AuthThrottle:
    """Counts failed authentications per client address in a sliding window (bounded)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = FAILURE_WINDOW,
                 max_clients: int = MAX_TRACKED_CLIENTS) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict())

    def __len__(self) -> int:
        return len(self._failures)

    def _recent(self, client: str, now: float) -> collections.deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def blocked(self, client: str, now: float) -> bool:
        """Whether ``client`` used up its failures for now."""
        times = self._recent(client, now)
        return times is not None and len(times) >= self.max_failures

    def failed(self, client: str, now: float) -> None:
        times = self._recent(client, now)
        if times is None:
            times = self._failures[client] = collections.deque(maxlen=self.max_failures)
        times.append(now)
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
