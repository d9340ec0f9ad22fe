# -*- test-case-name: tests.test_errors -*-
"""The error family of the wire layer.

Everything that reads bytes from a peer raises a `DecodeError` subclass and nothing else, so
callers need exactly one ``except`` to drop a bad item and keep the link (or, for framing errors,
drop the link and keep the node).  Errors carry the field path and byte offset where reading
stopped, because "item failed to decode" is useless when hunting an interop bug.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "TruncatedError",
    "LimitExceededError",
    "InvalidValueError",
    "TrailingBytesError",
    "FramingError",
    "EncodeError",
    "QueueFullError",
]


class DecodeError(Exception):
    """Bytes from a peer could not be turned into a value.

    ``field`` is the construct path of the field being read (``"(parsing) -> message"``) or a
    plain name, ``offset`` the byte offset inside the buffer being decoded where it went wrong
    (``None`` when unknown).
    """

    def __init__(self, reason: str, *, field: str | None = None, offset: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.offset = offset

    def __str__(self) -> str:
        # Computed on demand: outer layers shift ``offset`` as the error bubbles out of nested
        # buffers, so the text must follow.
        where = []
        if self.field:
            where.append(f"field {self.field}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return f"{self.reason} ({', '.join(where)})" if where else self.reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class TruncatedError(DecodeError):
    """The input ended before a field it announced was complete."""


class LimitExceededError(DecodeError):
    """A count, length or depth read from the wire is above a named limit.

    ``limit`` names the constant in `pqi.wire.limits` that was exceeded; ``value`` is what the peer
    claimed.  Raised before any loop or allocation sized by that value.
    """

    def __init__(
        self, limit: str, value: int, maximum: int, *, field: str | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(f"{limit} exceeded: {value} > {maximum}", field=field, offset=offset)
        self.limit = limit
        self.value = value
        self.maximum = maximum


class InvalidValueError(DecodeError):
    """A field has a value the format does not allow (wrong TLV type, bad id length, ...)."""


class TrailingBytesError(DecodeError):
    """An item body was longer than its fields: the sender and we disagree on the format."""


class FramingError(DecodeError):
    """The byte stream itself is broken (bad header size, slice out of order, reassembly cap).

    Unlike other decode errors, the stream cannot be resynchronised after this: the link is
    closed.
    """


class EncodeError(ValueError):
    """We were asked to build something the wire format cannot carry (a local bug, not a peer's)."""


class QueueFullError(Exception):
    """A peer's outgoing queue is full: it reads slower than we produce.

    Raised to the sender of the item so it can back off or drop; the link itself stays up.
    """
