# -*- test-case-name: tests.test_jsonapi_server -*-
"""Directory handles for ``/rsFiles/requestDirDetails``: RetroShare's 64-bit numbers naming
the root, a node, a directory or a file of our own shares or of a friend's list.

A handle is ``storage << 40 | index``: storage 1 is our own shares, 2, 3, … the friends (in
the order they were first browsed), index 0 the node entry itself; other indexes are given
on first sight.  The table is bounded (`MAX_HANDLES`); when full it starts afresh, so old
handles read as unknown (RetroShare answers ``retval: false`` to those too).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final

__all__ = ["HandleTable", "MAX_HANDLES", "MAX_STORAGES", "STORAGE_SHIFT", "LOCAL_STORAGE"]

#: Handles remembered at once.
MAX_HANDLES: Final = 1 << 16
#: Friends' storages numbered at once.
MAX_STORAGES: Final = 4096
STORAGE_SHIFT: Final = 40
LOCAL_STORAGE: Final = 1


class HandleTable:
    """Key ↔ handle, per storage; keys are any hashable description of an entry."""

    def __init__(self, max_handles: int = MAX_HANDLES) -> None:
        self.max_handles = max_handles
        self._storages: dict[str, int] = {}
        self._by_key: dict[tuple[int, Hashable], int] = {}
        self._by_handle: dict[int, tuple[int, Hashable]] = {}
        self._next: dict[int, int] = {}
        self._first_storage = 2

    def __len__(self) -> int:
        return len(self._by_handle)

    def storage(self, owner: str) -> int:
        """The storage number of ``owner`` ("" for our own shares, else a friend's id)."""
        if owner == "":
            return LOCAL_STORAGE
        number = self._storages.get(owner)
        if number is None:
            if len(self._storages) >= MAX_STORAGES:
                self.clear()
            number = self._storages[owner] = len(self._storages) + self._first_storage
        return number

    def owner(self, storage: int) -> str | None:
        if storage == LOCAL_STORAGE:
            return ""
        for owner, number in self._storages.items():
            if number == storage:
                return owner
        return None

    def handle(self, storage: int, key: Hashable) -> int:
        """The handle of entry ``key`` in ``storage`` (the node entry's key is None)."""
        if key is None:
            return storage << STORAGE_SHIFT
        found = self._by_key.get((storage, key))
        if found is not None:
            return found
        if len(self._by_handle) >= self.max_handles:
            # Start afresh, but never reuse a number: an old handle must not name a new
            # entry (the per-storage counters keep counting).
            self._by_key.clear()
            self._by_handle.clear()
        index = self._next.get(storage, 1)
        self._next[storage] = index + 1
        handle = (storage << STORAGE_SHIFT) | index
        self._by_key[(storage, key)] = handle
        self._by_handle[handle] = (storage, key)
        return handle

    def lookup(self, handle: int) -> tuple[int, Hashable] | None:
        """(storage, key) of a handle; the node entry gives key None; unknown: None."""
        storage = handle >> STORAGE_SHIFT
        if handle == storage << STORAGE_SHIFT and storage > 0:
            return storage, None
        return self._by_handle.get(handle)

    def clear(self) -> None:
        """Forget everything (friends' storages are numbered anew, so counters restart
        past every number given so far)."""
        base = max(self._storages.values(), default=1) + 1
        self._storages.clear()
        self._by_key.clear()
        self._by_handle.clear()
        self._first_storage = base
