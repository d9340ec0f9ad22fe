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


_HELD_PROBE = """
import ctypes, sys
from services.node.heap import HELD_FREE_BYTES, keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "set":
    assert keep_freed_memory()
blocks = [bytearray(1 << 20) for _ in range(24)]
del blocks
info = libc.mallinfo2()
print(info.keepcost, HELD_FREE_BYTES)
"""


def test_freed_buffers_stay_mapped_up_to_the_bound() -> None:
    """After `keep_freed_memory`, 24 buffers of a MiB freed stay mapped at the heap's top
    for the next ones (under `HELD_FREE_BYTES`); with glibc's own thresholds the same freed
    memory is given back to the kernel."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))

    def probe(mode: str) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", _HELD_PROBE, mode], check=True, env=env,
                             capture_output=True, text=True, timeout=60).stdout.split()
        keep, bound = map(int, out)
        return keep, bound

    keep, bound = probe("set")
    assert 24 << 20 <= keep < bound
    keep_default, _ = probe("default")
    assert keep_default < 24 << 20
