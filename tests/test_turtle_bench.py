"""tools/bench/turtle.py stays runnable: a small file direct, over one relay and over two,
each node a process; every copy verifies and the ratios and relay CPU are printed."""

from __future__ import annotations

import pytest

from tools.bench import turtle as bench

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_bench_runs_the_three_scenarios(capsys) -> None:
    """2 MiB: exit code 0, the three lines with their ratio to direct, each relay's figures."""
    assert bench.main(["--size", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("SHA-1 verified") == 3
    assert "(x1.00 of direct)" in out
    assert out.count("ms CPU per MiB relayed") == 3
    assert "relay2: relayed 2.0 MiB" in out
