# -*- test-case-name: tests.test_names -*-
"""File names from peers, made safe to create inside the incoming folder.

A friend's file list, a mail attachment or a search result names a file; that name ends up as
a path on our disk.  `sanitise` turns any string into one plain file name: no directory part
(``..``, ``/``, ``\\``, a drive letter), no NUL or control characters, no Windows device name
(``CON``, ``NUL.txt``, ``COM1``...), no trailing dots or spaces, at most 255 bytes of UTF-8.
`open_exclusive` / `link_into` create a name inside the folder without following a symlink
that someone planted there, and `candidates` gives ``name (1).ext`` on clashes.
"""

from __future__ import annotations

import errno
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Final

__all__ = [
    "sanitise",
    "candidates",
    "link_into",
    "inside",
    "UnsafeNameError",
    "MAX_NAME_BYTES",
    "DEFAULT_NAME",
]

#: Longest file name most file systems take (ext4, NTFS in UTF-16 units aside).
MAX_NAME_BYTES: Final = 255
#: What a name that sanitises to nothing becomes.
DEFAULT_NAME: Final = "download"
#: Clash suffixes tried before giving up (``name (1).ext`` ... ``name (9999).ext``).
MAX_CLASH_SUFFIX: Final = 9999

_DEVICE_NAMES: Final = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
    + ["COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³"])
#: Characters Windows refuses in names, path separators and NUL included.
_FORBIDDEN: Final = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')


class UnsafeNameError(OSError):
    """A file could not be placed inside the incoming folder: the folder itself resolves
    somewhere else than expected, or every clash suffix is taken."""


def _clip_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def sanitise(name: str) -> str:
    """A single safe file name for the peer-supplied ``name`` (never empty)."""
    name = unicodedata.normalize("NFC", name)
    # Only the last path component counts: "a/b\\c" names c, "../../x" names x.
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    name = _FORBIDDEN.sub("_", name)
    name = name.strip().rstrip(". ")
    if name in ("", ".", ".."):
        name = DEFAULT_NAME
    stem = name.split(".", 1)[0].strip().upper()
    if stem in _DEVICE_NAMES:
        name = "_" + name
    stem, ext = _split_ext(name)
    if len(ext.encode("utf-8")) > 32:
        stem, ext = name, ""
    name = _clip_utf8(stem, MAX_NAME_BYTES - len(ext.encode("utf-8"))).rstrip(". ") + ext
    return name or DEFAULT_NAME


def _split_ext(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name, ""
    return stem, "." + ext


def _with_suffix(name: str, n: int) -> str:
    stem, ext = _split_ext(name)
    suffix = f" ({n})"
    room = MAX_NAME_BYTES - len(ext.encode("utf-8")) - len(suffix)
    return _clip_utf8(stem, room) + suffix + ext


def candidates(name: str) -> Iterator[str]:
    """``name`` (made safe), then ``name (1).ext``, ``name (2).ext``... (bounded)."""
    safe = sanitise(name)
    yield safe
    for n in range(1, MAX_CLASH_SUFFIX + 1):
        yield _with_suffix(safe, n)


def inside(folder: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (resolved, symlinks followed) lies inside ``folder`` (resolved)."""
    root = os.path.realpath(folder)
    target = os.path.realpath(path)
    return os.path.commonpath([root, target]) == root and target != root


def link_into(folder: str | os.PathLike[str], name: str,
              place: Callable[[str], None]) -> str:
    """Claim ``name`` (made safe) in ``folder`` and return the final path.

    ``place(path)`` must create ``path`` atomically and fail with ``FileExistsError`` if it
    exists (``os.link`` does; so does ``open(O_CREAT|O_EXCL|O_NOFOLLOW)``): a name taken
    meanwhile, or a symlink planted under it, is never followed nor replaced, the next
    ``name (n).ext`` is tried instead.
    """
    root = os.path.realpath(folder)
    for candidate in candidates(name):
        path = os.path.join(root, candidate)
        if os.path.dirname(path) != root:
            raise UnsafeNameError(errno.EINVAL, f"{candidate!r} leaves {root}")
        try:
            place(path)
        except FileExistsError:
            continue
        return path
    raise UnsafeNameError(errno.EEXIST, f"no free name for {name!r} in {root}")
