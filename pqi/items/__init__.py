"""Item classes, one module per service (as libretroshare's ``rsitems/``).

Importing this package registers them all with `pqi.item`.
"""

from . import heartbeat  # noqa: F401

__all__: list[str] = []
