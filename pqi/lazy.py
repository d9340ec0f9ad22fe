# -*- test-case-name: tests.test_lazy_exports -*-
"""A package's public API imported on first use (PEP 562), so importing one module of a large
package does not import all of it.

``rsnode status`` is a short process: it needs the control channel's client, not every
service, codec and Twisted skin that ``import services`` and ``import pqi`` used to load
(over a second on a small machine).  A package whose ``__init__`` lists a large public API
states where each name lives and gets its ``__all__``, ``__getattr__`` and ``__dir__`` here::

    __all__, __getattr__, __dir__ = lazy_exports(__name__, {"pkg.mod": ("Name", ...)})

Standard library only, so every layer may use it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, Sequence[str]], *,
                 first: str | None = None,
                 ) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``package``'s ``__all__`` (every name of ``homes``, module -> names, in order), and the
    ``__getattr__`` and ``__dir__`` that import a name's module when it is first used.

    ``first``: a module imported before any name is resolved (``pqi`` registers every item
    class first, so that ``pqi.decode`` knows them all).  A name listed twice is a ValueError.
    """
    home_of: dict[str, str] = {}
    for module, names in homes.items():
        for name in names:
            if name in home_of:
                raise ValueError(f"{package}: {name!r} listed under {home_of[name]} and {module}")
            home_of[name] = module
    names_in_order = list(home_of)

    def __getattr__(name: str) -> Any:  # noqa: N807  (the PEP 562 hook)
        module = home_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if first is not None:
            importlib.import_module(first)
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # resolved once
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*vars(sys.modules[package]), *names_in_order})

    return names_in_order, __getattr__, __dir__
