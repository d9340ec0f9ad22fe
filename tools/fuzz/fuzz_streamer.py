# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the stream deframer: bytes as a peer could send them on a link, cut anywhere.

A `DecodeError` (a `FramingError` for a broken stream) is the expected answer to garbage; any
other exception is a bug.  Invariants checked on every input: cutting the stream into pieces
never changes the events or the error, and the items found, enframed again (sliced in
RetroShare's 1400-byte slices or a node's 65,535-byte ones), deframe to the same items.
"""

from __future__ import annotations

import contextlib

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    import pqi
    from pqi.wire.errors import DecodeError, EncodeError
    from pqi.wire.framing import (
        FAST_GROUP_SIZE,
        FAST_SLICE_SIZE,
        Deframer,
        Enframer,
        FramingEvent,
        ItemReceived,
    )
    from pqi.wire.limits import SLICE_SIZE

__all__ = ["one_input"]


def _deframe(chunks: list[bytes]) -> tuple[list[FramingEvent], str | None]:
    """Events until the end or the first error, and that error's text."""
    deframer = Deframer()
    events: list[FramingEvent] = []
    try:
        for chunk in chunks:
            events.extend(deframer.feed(chunk))
    except DecodeError as e:
        return events, str(e)
    return events, None


def one_input(data: bytes) -> None:
    """Deframe ``data`` whole and in pieces; decode what comes out; check the invariants."""
    events, error = _deframe([data])
    step = data[0] % 13 + 1 if data else 1
    pieces = [data[i:i + step] for i in range(0, len(data), step)]
    if _deframe(pieces) != (events, error):
        raise AssertionError(f"cutting into {step}-byte pieces changed the result")
    found = [e.data for e in events if isinstance(e, ItemReceived)]
    for item in found:
        with contextlib.suppress(DecodeError):
            pqi.decode(item)
    # The re-enframing uses RetroShare's slice size or a node's, chosen by the input's last byte.
    slice_size = FAST_SLICE_SIZE if data and data[-1] & 1 else SLICE_SIZE
    enframer = Enframer(slice_size=slice_size, group_size=FAST_GROUP_SIZE)
    enframer.enable_slicing()
    sendable = []
    for item in found:
        try:
            enframer.push(item, 3)
        except EncodeError:  # reassembled bytes that look like a slice header or the probe
            continue
        sendable.append(item)
    again, again_error = _deframe(list(enframer.writes(0.0)))
    if again_error is not None or [e.data for e in again
                                   if isinstance(e, ItemReceived)] != sendable:
        raise AssertionError("re-enframed items did not deframe to themselves")


if __name__ == "__main__":
    fuzz(one_input)
