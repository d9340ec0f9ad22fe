"""pqi.link: links to friends.

`linkmgr` (the sans-IO link manager: addresses, attempts, backoff, tie-break of simultaneous
connects), `netinterface` (listeners and diallers on Twisted endpoints, TLS, one streamer per
link), `listener` (the TCP listener with a bounded number of accepts per reactor turn) and
`person` (`PQIPerson`, one per friend location, what services send through).
"""

from pqi.link.linkmgr import LinkManager
from pqi.link.netinterface import NetInterface
from pqi.link.person import PQIPerson

__all__ = ["LinkManager", "NetInterface", "PQIPerson"]
