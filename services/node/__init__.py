"""node: the assembly of one running location (`Node`) and its local control channel."""

from pqi.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "services.node.node": ("FriendInfo", "Node"),
    "services.node.heap": ("HEAP_BLOCK_LIMIT", "HELD_FREE_BYTES", "freeze_startup_heap",
                           "keep_freed_memory"),
})
