"""The rooms keep their layering: imports go down, never up, and the sans-IO cores stay free of
Twisted.  Imports are read with `ast` (every ``import`` and ``from ... import`` in the file,
inside functions too), so nothing is imported to check them.

- the library (pqi/, tcponudp/, dht/, upnp/) never imports ``services``;
- inside pqi: the foundation (the core contract, its driver, atomic writes, lazy package
  APIs) < wire < identity < link, and items sit on wire: a layer never imports one above;
- a core imports nothing from ``twisted``.  The cores are every module of the core rooms but
  their named Twisted skins, plus the named core files elsewhere (see `CORE_ROOMS`,
  `CORE_FILES`).  A new module in a core room is a core unless it is added to the skins.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ("pqi", "tcponudp", "dht", "upnp")

#: Rooms whose modules are all sans-IO cores, but for the named skins (which import Twisted).
CORE_ROOMS: dict[str, frozenset[str]] = {
    "pqi/wire": frozenset({"streamer.py"}),
    "pqi/items": frozenset(),
    "pqi/identity": frozenset({"tls.py", "tlsbatch.py"}),
    "tcponudp": frozenset({"transport.py", "udpmux.py", "udpport.py"}),
}
#: Core modules in rooms that also hold skins.
CORE_FILES: tuple[str, ...] = (
    "pqi/core.py",
    "services/publish/making.py",
    "services/publish/local.py",
    "pqi/storage.py",
    "pqi/link/linkmgr.py",
    "pqi/link/peer.py",
    "dht/node.py",
    "dht/krpc.py",
    "dht/routing.py",
    "upnp/mapper.py",
    "services/transfer/engine.py",
    "services/nat/punch.py",
    "services/banlist/rules.py",
    "services/banlist/files.py",
    "services/banlist/identities.py",
    "services/linkup.py",
    "services/gxstunnel/core.py",
    "services/gxstunnel/crypto.py",
)
#: pqi's foundation: modules every layer may use, which import no other pqi module.
PQI_FOUNDATION: frozenset[str] = frozenset({"pqi.core", "pqi.driver", "pqi.storage", "pqi.lazy"})
#: pqi's layers above the foundation, bottom first: a module of one may import its own layer
#: and those below.
PQI_LAYERS: tuple[tuple[str, ...], ...] = (
    ("pqi.wire",),
    ("pqi.items", "pqi.identity"),
    ("pqi.link",),
)


def module_name(path: Path) -> str:
    """``pqi/wire/item.py`` -> ``pqi.wire.item``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def imported_modules(path: Path, module: str | None = None) -> frozenset[str]:
    """Every module the file names in an import, anywhere in it, as absolute dotted names.

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (c may be a submodule); relative
    imports are resolved against the file's package (``module`` is the file's dotted name,
    by default from its place in the repository).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def cores() -> list[Path]:
    """The core modules as defined above."""
    found = [p for room, skins in CORE_ROOMS.items() for p in sorted((ROOT / room).glob("*.py"))
             if p.name not in skins]
    return found + [ROOT / f for f in CORE_FILES]


def test_import_reader_sees_imports_in_functions_and_relative_ones(tmp_path) -> None:
    """The reader finds a function-local Twisted import and resolves ``from . import x``."""
    assert "dht.krpc" in imported_modules(ROOT / "dht" / "node.py")  # ``from . import krpc``
    fake = tmp_path / "m.py"
    fake.write_text("def f():\n    from twisted.internet import task\n    import services\n"
                    "    from ..wire import item\n")
    names = imported_modules(fake, "pqi.link.m")
    assert {"twisted.internet.task", "services", "pqi.wire.item"} <= names


def test_library_never_imports_services() -> None:
    """pqi, tcponudp, dht and upnp are below services: none of their modules imports it."""
    files = _files(*LIBRARY)
    assert len(files) > 50
    offenders = {module_name(p): sorted(m for m in imported_modules(p) if _under(m, "services"))
                 for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_pqi_layers_import_only_downwards() -> None:
    """wire imports no other pqi layer; items and identity not link; nobody imports upward."""
    rank = {prefix: i for i, layer in enumerate(PQI_LAYERS) for prefix in layer}
    upward: dict[str, list[str]] = {}
    checked = 0
    for prefix, mine in rank.items():
        for path in _files(prefix.replace(".", "/")):
            checked += 1
            bad = sorted(m for m in imported_modules(path)
                         for other, theirs in rank.items()
                         if theirs > mine and _under(m, other))
            if prefix == "pqi.wire":  # nothing from pqi outside wire and the foundation
                bad += sorted(m for m in imported_modules(path)
                              if _under(m, "pqi") and not _under(m, "pqi.wire")
                              and m != "pqi"
                              and not any(_under(m, f) for f in PQI_FOUNDATION))
            if bad:
                upward[module_name(path)] = bad
    assert checked > 40
    assert upward == {}


def test_pqi_foundation_imports_no_layer() -> None:
    """The core contract, the driver and atomic writes import no other pqi module, so every
    layer can build on them."""
    offenders = {}
    for name in sorted(PQI_FOUNDATION):
        path = ROOT / (name.replace(".", "/") + ".py")
        bad = sorted(m for m in imported_modules(path)
                     if _under(m, "pqi") and not any(_under(m, f) for f in PQI_FOUNDATION))
        if bad:
            offenders[name] = bad
    assert offenders == {}


def test_cores_import_nothing_from_twisted() -> None:
    """Every core module is sans-IO: no ``twisted`` import anywhere in it."""
    found = cores()
    assert len(found) > 40
    assert all(p.is_file() for p in found), [str(p) for p in found if not p.is_file()]
    offenders = {module_name(p): sorted(m for m in imported_modules(p) if _under(m, "twisted"))
                 for p in found}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_named_skins_are_skins() -> None:
    """Each module excluded from a core room does use Twisted (else it is a core: list it so)."""
    for room, skins in CORE_ROOMS.items():
        for name in skins:
            names = imported_modules(ROOT / room / name)
            assert any(_under(m, "twisted") for m in names), f"{room}/{name} is a core now"
