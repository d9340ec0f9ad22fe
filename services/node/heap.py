# -*- test-case-name: tests.test_node_heap -*-
"""The collector, the allocator and a long-running node: settings for the whole process.

Starting a node builds a few hundred thousand objects that live as long as the process: the
codecs' generated functions, item classes and schemas, keys, routes, the services' tables.
CPython's cyclic collector walks every tracked object of the oldest generation in each full
collection, and a full collection comes whenever the long-lived objects have grown by a
quarter: on this machine one took 44 ms in the middle of a chat flood, the longest pause in
the run (docs/benchmarks.md, "Chat").  `freeze_startup_heap`, called once the node is up,
moves everything made so far into the permanent generation (`gc.freeze`), so later
collections walk only what was made since.  Objects made later are collected as before.

The allocator: a transfer allocates and frees buffers of a quarter to one MiB many times a
second (each socket read, each decrypted batch, each data item).  glibc's ``malloc`` gives
the top of its heap back to the kernel whenever more than twice the last large freed block
lies free there, and serves blocks above a sliding size with a fresh ``mmap``; either way
the next buffer lands on new pages, each zeroed and mapped on first touch.  Counted on a
GiB download: some 40,000 page faults in the downloader, nearly all inside the copies that
fill new buffers.  `keep_freed_memory` sets fixed thresholds instead (``mallopt``): buffers
below `HEAP_BLOCK_LIMIT` come from the heap, and up to `HELD_FREE_BYTES` of freed memory at
the top of each heap stays mapped for the next ones.

Both are process-wide settings, so the library never makes them on its own: `rsnode run`
makes them at start-up, and a long-running program embedding a node may do the same.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Final

__all__ = ["HEAP_BLOCK_LIMIT", "HELD_FREE_BYTES", "freeze_startup_heap", "keep_freed_memory"]

#: Freed memory at the top of a heap kept mapped rather than given back (``M_TRIM_THRESHOLD``).
HELD_FREE_BYTES: Final = 64 * 1024 * 1024
#: Blocks below this size come from the heap, larger ones from their own mapping
#: (``M_MMAP_THRESHOLD``); the largest buffers a link makes are about 1 MiB.
HEAP_BLOCK_LIMIT: Final = 4 * 1024 * 1024
#: ``mallopt`` parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3


def freeze_startup_heap() -> int:
    """Collect once, then move every tracked object into the permanent generation; returns
    how many objects are frozen in all (``gc.get_freeze_count``)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def keep_freed_memory() -> bool:
    """Set the allocator's thresholds (see the module docstring); False, changing nothing,
    where the C library is not glibc (no ``mallopt``)."""
    libc = ctypes.CDLL(None)  # the symbols the process has loaded, the C library's among them
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None or not hasattr(libc, "gnu_get_libc_version"):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, HELD_FREE_BYTES)
                and mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT))
