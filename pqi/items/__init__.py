"""Item classes, one module per service (as libretroshare's ``rsitems/``).

Importing this package imports every module in it, which registers their classes with
`pqi.wire.item`: a new service's item module is known to `decode`, to the property tests and
to the fuzzers without being listed anywhere else.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__: list[str] = []
