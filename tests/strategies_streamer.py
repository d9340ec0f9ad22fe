# -*- test-case-name: tests.test_framing -*-
"""Hypothesis strategies for the streamer: items, priorities and ways to cut a byte stream."""

from __future__ import annotations

from hypothesis import strategies as st

from pqi.wire.item import UnknownItem, encode, item_class
from pqi.wire.limits import SLICE_SIZE

__all__ = ["unknown_items", "encoded_items", "queued_items", "chunked"]


def unknown_items(max_body: int = 3 * SLICE_SIZE) -> st.SearchStrategy[UnknownItem]:
    """Items of (service, subtype) pairs no class claims, so they decode back to themselves.

    Body sizes cluster around the slicing boundary (whole, exactly one slice, a few slices).
    """
    sizes = st.one_of(st.integers(0, 64), st.integers(SLICE_SIZE - 16, SLICE_SIZE + 16),
                      st.integers(0, max_body))
    return st.builds(
        UnknownItem,
        service=st.integers(0, 0xFFFF),
        subtype=st.integers(0, 0xFF),
        body=sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    ).filter(lambda item: item_class(item.service, item.subtype) is None
             and (item.service, item.subtype) != (0xAABB, 0xCC))


def encoded_items(max_body: int = 3 * SLICE_SIZE) -> st.SearchStrategy[bytes]:
    """Encoded items (header included), any version byte but the slice protocol id."""
    return unknown_items(max_body).map(encode)


def queued_items(max_items: int = 12) -> st.SearchStrategy[list[tuple[bytes, int]]]:
    """(encoded item, QoS priority) pairs, in the order they are queued; items all differ, so
    a test can tell where each one went."""
    return st.lists(st.tuples(encoded_items(), st.integers(0, 9)), max_size=max_items,
                    unique_by=lambda pair: pair[0])


@st.composite
def chunked(draw: st.DrawFn, data: bytes, max_cuts: int = 20) -> list[bytes]:
    """``data`` cut at arbitrary points (empty chunks included), as TCP may deliver it."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=max_cuts)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
