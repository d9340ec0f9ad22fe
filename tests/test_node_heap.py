"""`freeze_startup_heap`: what exists at start-up leaves the collector's generations."""

from __future__ import annotations

import gc
import weakref

from services.node import freeze_startup_heap


class _Cycle:
    """An object in a reference cycle with itself (only the cyclic collector frees it)."""

    def __init__(self) -> None:
        self.me = self


def test_start_up_objects_are_frozen_and_later_ones_still_collected() -> None:
    """After the call every object made so far is in the permanent generation (the young
    generations are empty of them); a cycle made afterwards is still collected."""
    before = gc.get_freeze_count()
    try:
        kept = [_Cycle() for _ in range(1000)]
        frozen = freeze_startup_heap()
        assert frozen >= before + len(kept)
        assert not any(obj is kept[0] for obj in gc.get_objects(generation=2))
        later = _Cycle()
        gone = weakref.ref(later)
        del later
        assert gone() is not None  # a cycle: reference counting alone does not free it
        gc.collect()
        assert gone() is None
        assert kept[0].me is kept[0]
    finally:
        gc.unfreeze()
