"""Item classes, one module per service (as libretroshare's ``rsitems/``).

Importing this package registers them all with `pqi.wire.item`.
"""

from . import (  # noqa: F401  (importing registers the classes)
    banlist,
    bwctrl,
    chat,
    discovery,
    filelists,
    ft,
    heartbeat,
    msg,
    nxs,
    rtt,
    serviceinfo,
    status,
    turtle,
)

__all__: list[str] = []
