# -*- test-case-name: tests.test_sharing -*-
"""Shared folders and who may see them, persisted in the account directory.

Each shared folder has a virtual name (what friends see as the top-level directory) and a
visibility: every friend, chosen friend locations only, or nobody (indexed, but neither
browsable nor searchable by friends); and, apart, whether anyone may find it by anonymous
(turtle) search and fetch it through tunnels (RetroShare's "anonymous search" and
"anonymous download" flags).  The list is one small JSON file, replaced with
temp + fsync + rename so a crash never leaves it half written.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from pqi.storage import atomic_write
from pqi.wire.fields import SslId

__all__ = ["Visibility", "DIR_FLAGS_ANONYMOUS_DOWNLOAD", "DIR_FLAGS_BROWSABLE",
           "DIR_FLAGS_ANONYMOUS_SEARCH", "SharedFolder", "ShareList", "ShareError",
           "NotAFolderError", "DuplicateShareError", "UnknownShareError", "SHARES_FILE"]

#: The share list's file in the account directory.
SHARES_FILE: Final = "shares.json"
#: RetroShare's share flags (``DIR_FLAGS_*``), as `SharedFolder.flags` reports them.
DIR_FLAGS_ANONYMOUS_DOWNLOAD: Final = 0x0080
DIR_FLAGS_BROWSABLE: Final = 0x0400
DIR_FLAGS_ANONYMOUS_SEARCH: Final = 0x0800


class ShareError(Exception):
    """A share could not be added or changed (base of the errors below)."""


class NotAFolderError(ShareError):
    """Only existing folders can be shared; the path given is missing or not a folder."""


class DuplicateShareError(ShareError):
    """That folder, or another folder under the same name, is shared already."""


class UnknownShareError(ShareError):
    """No shared folder has that name."""


class Visibility(enum.Enum):
    """Who can browse and search a shared folder."""

    ALL = "all"
    FRIENDS = "friends"
    NONE = "none"


@dataclasses.dataclass(frozen=True)
class SharedFolder:
    """A folder on disk, the name friends see, and who sees it."""

    path: str
    name: str
    visibility: Visibility = Visibility.ALL
    friends: frozenset[SslId] = frozenset()
    #: Found by anonymous search and served through tunnels, to anyone.
    anonymous: bool = False

    @property
    def flags(self) -> int:
        """The folder's flags as RetroShare writes them (0x0c80: browsable by friends,
        anonymous search and download)."""
        flags = DIR_FLAGS_BROWSABLE if self.visibility is not Visibility.NONE else 0
        if self.anonymous:
            flags |= DIR_FLAGS_ANONYMOUS_SEARCH | DIR_FLAGS_ANONYMOUS_DOWNLOAD
        return flags

    def visible_to(self, ssl_id: SslId) -> bool:
        """Whether friend location ``ssl_id`` may browse and search this folder."""
        if self.visibility is Visibility.ALL:
            return True
        return self.visibility is Visibility.FRIENDS and ssl_id in self.friends

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "name": self.name, "visibility": self.visibility.value,
                "friends": sorted(f.to_hex() for f in self.friends),
                "anonymous": self.anonymous}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SharedFolder:
        friends = data.get("friends") or []
        if not isinstance(friends, list):
            raise ValueError("friends must be a list of SSL ids")
        return cls(str(data["path"]), str(data["name"]), Visibility(data["visibility"]),
                   frozenset(SslId.from_hex(str(f)) for f in friends),
                   bool(data.get("anonymous", False)))


class ShareList:
    """The shared folders of one account, loaded from and saved to ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._folders: dict[str, SharedFolder] = {}
        if self.path.exists():
            with open(self.path) as f:
                for entry in json.load(f):
                    folder = SharedFolder.from_json(entry)
                    self._folders[folder.name] = folder

    def folders(self) -> list[SharedFolder]:
        """The shared folders, sorted by name."""
        return [self._folders[k] for k in sorted(self._folders)]

    def get(self, name: str) -> SharedFolder:
        try:
            return self._folders[name]
        except KeyError:
            raise UnknownShareError(f"no shared folder is named {name!r}") from None

    def add(self, path: str | os.PathLike[str], name: str | None = None,
            visibility: Visibility = Visibility.ALL,
            friends: Iterable[SslId] = (), anonymous: bool = False) -> SharedFolder:
        """Share the folder at ``path`` under ``name`` (default: its own name)."""
        real = os.path.realpath(path)
        if not os.path.isdir(real):
            raise NotAFolderError(f"{path} is not a folder")
        name = name if name is not None else (os.path.basename(real) or real)
        if not name or "/" in name or name in (".", ".."):
            raise ShareError(f"{name!r} cannot name a shared folder")
        if name in self._folders:
            raise DuplicateShareError(f"a shared folder is already named {name!r}")
        if any(f.path == real for f in self._folders.values()):
            raise DuplicateShareError(f"{real} is shared already")
        folder = SharedFolder(real, name, visibility, frozenset(SslId(f) for f in friends),
                              anonymous)
        self._folders[name] = folder
        self._save()
        return folder

    def remove(self, name: str) -> None:
        self.get(name)
        del self._folders[name]
        self._save()

    def set_visibility(self, name: str, visibility: Visibility,
                       friends: Iterable[SslId] = (),
                       anonymous: bool | None = None) -> SharedFolder:
        """Change who sees folder ``name`` (``anonymous`` None: leave that flag as it is)."""
        old = self.get(name)
        folder = dataclasses.replace(old, visibility=visibility,
                                     friends=frozenset(SslId(f) for f in friends),
                                     anonymous=old.anonymous if anonymous is None else anonymous)
        self._folders[name] = folder
        self._save()
        return folder

    def _save(self) -> None:
        atomic_write(self.path,
                     json.dumps([folder.to_json() for folder in self.folders()], indent=1).encode())
