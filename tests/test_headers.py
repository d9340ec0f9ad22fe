"""Every ``# -*- test-case-name: ... -*-`` header names test modules that exist, so an editor
or ``trial`` jumping from a module to its tests lands somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where the project's own Python lives (tests/ itself carries no headers).
SOURCE_DIRS = ("pqi", "tcponudp", "dht", "upnp", "services", "tools", "examples")
HEADER = re.compile(r"#\s*-\*-\s*test-case-name:\s*(?P<names>[^-]*?)\s*-\*-")


def _headers() -> list[tuple[Path, list[str]]]:
    """(module, named test modules) for every source file with a header."""
    found = []
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            match = HEADER.search(path.read_text(encoding="utf-8"))
            if match:
                names = [n.strip() for n in match.group("names").split(",") if n.strip()]
                found.append((path.relative_to(ROOT), names))
    return found


def test_headers_are_found_and_well_formed() -> None:
    """The scan sees the headers (so the check below is not vacuous), each on the first line."""
    headers = _headers()
    assert len(headers) > 100
    for path, names in headers:
        assert names, path
        first = (ROOT / path).read_text(encoding="utf-8").splitlines()[0]
        assert HEADER.fullmatch(first), f"{path}: header is not the first line"


def test_every_header_names_an_existing_test_module() -> None:
    """Each dotted name is a ``tests.test_*`` module with a file in tests/."""
    stale = [(str(path), name) for path, names in _headers() for name in names
             if not (name.startswith("tests.test_")
                     and (ROOT / (name.replace(".", "/") + ".py")).is_file())]
    assert stale == []
