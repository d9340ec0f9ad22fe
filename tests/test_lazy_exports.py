"""Packages' public APIs imported on first use (`pqi.lazy`): the names resolve to their
modules' objects, the facade still registers every item class before ``pqi.decode`` runs, and
a short ``rsnode`` command imports neither Twisted, nor cryptography, nor any service."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from pqi.lazy import lazy_exports

ROOT = Path(__file__).resolve().parent.parent

#: The packages whose ``__init__`` lists its API through `lazy_exports`.
LAZY_PACKAGES = ("pqi", "pqi.wire", "pqi.identity", "pqi.link", "services", "services.node",
                 "services.jsonapi", "services.cli", "dht")


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter on this tree; its stdout."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_names_resolve_on_first_use_once_and_unknown_names_fail(monkeypatch) -> None:
    """A listed name is imported from its module when first read and kept; ``first`` is
    imported before; an unlisted name is an AttributeError; ``dir`` lists the API."""
    package = types.ModuleType("fakepkg")
    monkeypatch.setitem(sys.modules, "fakepkg", package)
    imported: list[str] = []
    real = importlib.import_module

    def recording(name: str, *args: object) -> types.ModuleType:
        imported.append(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", recording)
    names, getattr_, dir_ = lazy_exports("fakepkg", {"json": ("dumps", "loads"),
                                                     "textwrap": ("dedent",)}, first="string")
    package.__getattr__ = getattr_  # type: ignore[method-assign]
    assert names == ["dumps", "loads", "dedent"] and imported == []
    assert package.dumps is json.dumps  # type: ignore[attr-defined]
    assert imported == ["string", "json"]
    assert vars(package)["dumps"] is json.dumps  # kept: the hook is not asked again
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        package.nothing  # type: ignore[attr-defined]  # noqa: B018
    assert {"dumps", "loads", "dedent"} <= set(dir_())


def test_a_name_listed_twice_is_refused() -> None:
    """Two homes for one name is the package's mistake, said at import."""
    with pytest.raises(ValueError, match="'x' listed under a and b"):
        lazy_exports("p", {"a": ("x",), "b": ("x",)})


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_every_listed_name_is_its_modules_object(name: str) -> None:
    """Each package's ``__all__`` resolves, name by name, and ``from package import *``
    gives the same objects."""
    package = importlib.import_module(name)
    assert package.__all__
    star: dict[str, object] = {}
    exec(f"from {name} import *", star)  # noqa: S102
    for attr in package.__all__:
        assert star[attr] is getattr(package, attr)


def test_the_facade_registers_every_item_class_before_decoding() -> None:
    """``import pqi`` alone imports no item module, and the first use of its API
    (``pqi.registered``) sees every item class `pqi.items` registers."""
    out = _fresh("import sys, pqi\n"
                 "before = sorted(m for m in sys.modules if m.startswith('pqi.items'))\n"
                 "count = len(pqi.registered())\n"
                 "import pqi.items, pqi.wire.item\n"
                 "import json\n"
                 "print(json.dumps([before, count, len(pqi.wire.item.registered())]))\n")
    before, count, total = json.loads(out)
    assert before == [] and count == total > 150


def test_a_short_rsnode_command_imports_no_twisted_crypto_or_service() -> None:
    """Building ``rsnode``'s whole parser (what every command does first) and loading the
    control channel's client imports the command-line modules only: no Twisted, no
    cryptography, no service, no item codec (they cost over a second on a small machine)."""
    out = _fresh("import sys\n"
                 "from services.cli.rsnode import build_parser\n"
                 "import services.node.control_client\n"
                 "build_parser().parse_args(['chat', 'bob', 'hi'])\n"
                 "print('\\n'.join(sorted(sys.modules)))\n")
    loaded = out.split()
    assert "services.cli.chat" in loaded and "services.node.control_client" in loaded
    heavy = [m for m in loaded if m.split(".")[0] in ("twisted", "cryptography", "OpenSSL")
             or m.startswith(("pqi.items", "services.registry", "services.node.node",
                              "services.chat.", "services.transfer", "services.turtle"))]
    assert heavy == []
