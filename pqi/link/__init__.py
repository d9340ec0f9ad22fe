"""pqi.link: links to friends.

`linkmgr` (the sans-IO link manager: addresses, attempts, backoff, tie-break of simultaneous
connects), `netinterface` (listeners and diallers on Twisted endpoints, TLS, one streamer per
link), `listener` (the TCP listener with a bounded number of accepts per reactor turn) and
`person` (`PQIPerson`, one per friend location, what services send through).
"""

from pqi.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "pqi.link.linkmgr": ("LinkManager",),
    "pqi.link.netinterface": ("NetInterface",),
    "pqi.link.person": ("PQIPerson",),
})
