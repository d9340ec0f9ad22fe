"""Test files that use real reactors or real sockets say so with the ``integration`` marker,
so ``-m "not integration"`` leaves only the deterministic tests (fake clocks, memory
transports, the simulated network)."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
#: What a test file writes when it runs a real reactor or opens a real socket.
REAL_IO = re.compile(
    r"on_fresh_reactor\(|SelectReactor\(|EPollReactor\(|asyncioreactor"
    r"|^from twisted\.internet import [^\n]*\breactor\b|socket\.socket\(",
    re.MULTILINE)
#: ``lab`` tests use real sockets too, in network namespaces rather than on 127.0.0.1.
MARKED = re.compile(r"pytest\.mark\.(integration|lab)\b")


def test_files_using_real_io_carry_the_integration_marker() -> None:
    """Every test module matching `REAL_IO` marks (some of) its tests ``integration`` (or
    ``lab``)."""
    real = [p for p in sorted(TESTS.glob("test_*.py"))
            if p.name != Path(__file__).name and REAL_IO.search(p.read_text(encoding="utf-8"))]
    assert len(real) > 20  # the pattern still finds them
    unmarked = [p.name for p in real if not MARKED.search(p.read_text(encoding="utf-8"))]
    assert unmarked == []
