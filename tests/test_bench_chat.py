"""tools/bench/chat.py stays runnable in both modes: nodes in processes of their own (the
default) and the three nodes on one reactor (``--in-process``)."""

from __future__ import annotations

import pytest

from tools.bench import chat as bench


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("mode", [[], ["--in-process"]])
def test_bench_delivers_every_phase_and_prints_its_figures(capsys, mode) -> None:
    """A small flood, a short offered rate and a few pings: every message of each phase
    arrives at the receiver and each figure is printed."""
    assert bench.main(["--messages", "200", "--batch", "50", "--pings", "5", "--rate", "500",
                       "--rate-seconds", "0.1", *mode]) == 0
    out = capsys.readouterr().out
    assert "flood: 200 private messages in" in out
    assert "offered" in out and "(50 of 50 arrived)" in out
    assert "single messages on a quiet link (5)" in out
    assert "second friend during the flood" in out
