# -*- test-case-name: tests.test_jsonapi_encoding -*-
"""RetroShare's JSON API encodings: how values look on the wire, both ways.

RetroShare writes answers with rapidjson's pretty writer (4-space indent, ``": "``, raw UTF-8,
no trailing newline), event frames compactly, 64-bit integers as ``{"xint64":N,"xstr64":"N"}``,
SSL/GXS ids and hashes in lower-case hex and PGP ids in upper-case hex.  Reading parameters it
is lenient: a missing member or one of the wrong JSON type keeps the C++ default, an invalid id
reads as the null id.  `Params` reproduces that leniency so every client that works against
RetroShare works here, and no input can make a handler fail on a type.

Text that is not UTF-8 (a friend's junk byte, kept as a lone surrogate) is written as U+FFFD,
one per byte: RetroShare would copy the raw bytes into the JSON, which strict clients refuse;
U+FFFD keeps every answer valid UTF-8 and never fails.  What is stored keeps the real bytes.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

__all__ = [
    "x64",
    "pretty",
    "compact",
    "Params",
    "NULL_SSL_ID",
    "NULL_PGP_ID",
    "NULL_HASH",
    "NULL_GXS_ID",
    "success_condition",
    "error_condition",
    "MAX_LIST_PARAM",
]

NULL_SSL_ID: Final = "0" * 32
NULL_GXS_ID: Final = "0" * 32
NULL_PGP_ID: Final = "0" * 16
NULL_HASH: Final = "0" * 40
#: Items read from one list parameter (more are ignored): bounds the work one request causes.
MAX_LIST_PARAM: Final = 4096

_HEX = frozenset(string.hexdigits)
#: A lone surrogate: an escaped byte that was not UTF-8 (or a JSON client's ``\udXXX``).
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_U64 = (1 << 64) - 1
_I64_MIN = -(1 << 63)
T = TypeVar("T")


def x64(value: int) -> dict[str, Any]:
    """A 64-bit integer as RetroShare writes it: both a JSON number and its decimal text (so
    JavaScript clients keep every digit)."""
    return {"xint64": value, "xstr64": str(value)}


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8, each lone surrogate as U+FFFD (the fast path when there is none)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def pretty(value: Any) -> bytes:
    """An answer body: rapidjson's pretty layout, UTF-8, no trailing newline."""
    return _utf8(json.dumps(value, ensure_ascii=False, indent=4))


def compact(value: Any) -> bytes:
    """An event frame's JSON: compact, UTF-8."""
    return _utf8(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def success_condition() -> dict[str, Any]:
    """A ``std::error_condition`` meaning success, as RetroShare serialises it."""
    return error_condition(0, "generic", "Success")


def error_condition(number: int, category: str, message: str) -> dict[str, Any]:
    return {"errorNumber": number, "errorCategory": category, "errorMessage": message}


def _hex_id(value: object, length: int) -> str | None:
    if isinstance(value, str) and len(value) == length and all(c in _HEX for c in value):
        return value
    return None


def _sendable(text: str) -> str:
    """A client's string as text the wire can carry: a lone surrogate (a JSON escape such as
    ``\\ud800`` that pairs with nothing) becomes U+FFFD.  Without this such a string got as far
    as a store or an encoder and the call failed with a 500."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


class Params:
    """The parameters of one call, read the way RetroShare reads them (lenient, typed).
    Strings come with lone surrogates replaced (`_sendable`)."""

    def __init__(self, data: object) -> None:
        self.data: Mapping[str, Any] = data if isinstance(data, dict) else {}

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def sub(self, name: str) -> Params:
        """A nested object member as `Params` (empty when missing or not an object)."""
        return Params(self.data.get(name))

    def int(self, name: str, default: int = 0, *, lo: int = -(1 << 31),
            hi: int = (1 << 32) - 1) -> int:
        """A 32-bit integer (enums and flags too); other JSON types keep the default."""
        v = self.data.get(name)
        if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi:
            return v
        return default

    def int64(self, name: str, default: int = 0) -> int:
        """A 64-bit integer: a number, ``{"xint64":N,...}`` or ``{"xstr64":"N"}``."""
        v = self.data.get(name)
        if isinstance(v, dict):
            text = v.get("xstr64")
            if isinstance(text, str) and text.lstrip("-").isdigit() and len(text) <= 20:
                v = int(text)
            else:
                v = v.get("xint64")
        if isinstance(v, int) and not isinstance(v, bool) and _I64_MIN <= v <= _U64:
            return v
        return default

    def bool(self, name: str, default: bool = False) -> bool:
        v = self.data.get(name)
        return v if isinstance(v, bool) else default

    def float(self, name: str, default: float = 0.0) -> float:
        v = self.data.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        return default

    def str(self, name: str, default: str = "") -> str:
        v = self.data.get(name)
        return _sendable(v) if isinstance(v, str) else default

    def ssl_id(self, name: str) -> str:
        """An SSL (location) id in lower-case hex; anything invalid is the null id."""
        found = _hex_id(self.data.get(name), 32)
        return found.lower() if found else NULL_SSL_ID

    gxs_id = ssl_id

    def pgp_id(self, name: str) -> str:
        found = _hex_id(self.data.get(name), 16)
        return found.upper() if found else NULL_PGP_ID

    def hash(self, name: str) -> str:
        found = _hex_id(self.data.get(name), 40)
        return found.lower() if found else NULL_HASH

    def list(self, name: str, item: Callable[[Any], T | None]) -> list[T]:
        """A list member, each element converted by ``item`` (None: element skipped)."""
        v = self.data.get(name)
        if not isinstance(v, list):
            return []
        out: list[T] = []
        for element in v[:MAX_LIST_PARAM]:
            converted = item(element)
            if converted is not None:
                out.append(converted)
        return out

    def ssl_ids(self, name: str) -> list[str]:
        return self.list(name, lambda e: e.lower() if _hex_id(e, 32) else None)

    def strings(self, name: str) -> list[str]:
        return self.list(name, lambda e: _sendable(e) if isinstance(e, str) else None)
