# -*- test-case-name: tests.test_jsonapi_settings -*-
"""The JSON API's settings kept in the account: `SETTINGS_FILE`, mode 0600, written
atomically (a temporary file, fsync, rename), so what clients set survives a restart.

It holds what RetroShare keeps in its own configuration for the API's callers: the tokens
authorised with ``/rsJsonApi/authorizeUser``, the address and port set with
``setBindingAddress`` / ``setListeningPort``, transfer and network settings, identity and
reputation preferences.  A damaged or foreign file is logged and ignored (defaults apply);
each value is checked on reading so a hand-edited file cannot make a handler fail.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import string
from pathlib import Path
from typing import Any, Final

from twisted.logger import Logger

from .api import ApiSettings

__all__ = ["SETTINGS_FILE", "SettingsStore", "MAX_AUTHORIZED_TOKENS", "MAX_CONTACTS",
           "MAX_TOKEN_PART", "valid_token_part"]

#: File, in the account directory, holding the API's settings (mode 0600).
SETTINGS_FILE: Final = "jsonapi-settings.json"
#: Tokens ``authorizeUser`` may add besides the account's own credentials.
MAX_AUTHORIZED_TOKENS: Final = 64
#: GXS ids set as regular contacts.
MAX_CONTACTS: Final = 4096
#: Longest user or password of an authorised token.
MAX_TOKEN_PART: Final = 256
_HEX: Final = frozenset(string.hexdigits)
_log = Logger()


def _valid(name: str, value: Any, default: Any) -> bool:
    """Whether a value read from the file fits the field (its default's type and range)."""
    if name == "authorized":
        return (isinstance(value, dict) and len(value) <= MAX_AUTHORIZED_TOKENS
                and all(valid_token_part(k, user=True) and valid_token_part(v)
                        for k, v in value.items()))
    if name == "contacts":
        return (isinstance(value, list) and len(value) <= MAX_CONTACTS
                and all(isinstance(c, str) and len(c) == 32 and set(c) <= _HEX
                        for c in value))
    if name == "default_lobby_identity":
        return value is None or (isinstance(value, str) and len(value) == 32
                                 and set(value) <= _HEX)
    if name == "listen_host":
        if value is None:
            return True
        try:
            ipaddress.ip_address(value)
        except (ValueError, TypeError):
            return False
        return True
    if name == "listen_port":
        return value is None or (type(value) is int and 0 <= value <= 65535)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return type(value) is int and -(1 << 31) <= value < (1 << 32)
    return False


def valid_token_part(text: object, *, user: bool = False) -> bool:
    """A user (no ``:``) or password RetroShare would accept in a ``user:password`` token."""
    return (isinstance(text, str) and 0 < len(text) <= MAX_TOKEN_PART
            and not (user and ":" in text) and text.isprintable())


class SettingsStore:
    """Reads and writes `ApiSettings` in ``base_dir`` / `SETTINGS_FILE`."""

    def __init__(self, base_dir: str | os.PathLike[str]) -> None:
        self.path = Path(base_dir) / SETTINGS_FILE

    def load(self) -> ApiSettings:
        """The saved settings (defaults for anything missing or invalid)."""
        settings = ApiSettings()
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return settings
        except (OSError, ValueError) as e:
            _log.warn("{path}: unreadable, defaults used: {e}", path=str(self.path), e=str(e))
            return settings
        if not isinstance(data, dict):
            _log.warn("{path}: not a JSON object, defaults used", path=str(self.path))
            return settings
        for field in dataclasses.fields(ApiSettings):
            if field.name == "chunk_strategies" or field.name not in data:
                continue
            value = data[field.name]
            if _valid(field.name, value, getattr(settings, field.name)):
                setattr(settings, field.name, value)
            else:
                _log.warn("{path}: {name} ignored (invalid)", path=str(self.path),
                          name=field.name)
        return settings

    def save(self, settings: ApiSettings) -> None:
        """Write the settings atomically, readable by the account's owner only."""
        data = dataclasses.asdict(settings)
        del data["chunk_strategies"]
        tmp = self.path.with_name(SETTINGS_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
