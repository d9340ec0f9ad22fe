# -*- test-case-name: tests.test_node_heap -*-
"""The collector and a long-running node: start-up objects moved out of its way.

Starting a node builds a few hundred thousand objects that live as long as the process: the
codecs' generated functions, item classes and schemas, keys, routes, the services' tables.
CPython's cyclic collector walks every tracked object of the oldest generation in each full
collection, and a full collection comes whenever the long-lived objects have grown by a
quarter: on this machine one took 44 ms in the middle of a chat flood, the longest pause in
the run (docs/benchmarks.md, "Chat").  `freeze_startup_heap`, called once the node is up,
moves everything made so far into the permanent generation (`gc.freeze`), so later
collections walk only what was made since.  Objects made later are collected as before.

It is a process-wide setting, so the library never does it on its own: `rsnode run` calls it
after start-up, and a long-running program embedding a node may do the same.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> int:
    """Collect once, then move every tracked object into the permanent generation; returns
    how many objects are frozen in all (``gc.get_freeze_count``)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
