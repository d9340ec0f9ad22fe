"""tools/bench/chat.py stays runnable in both modes: nodes in processes of their own (the
default) and the three nodes on one reactor (``--in-process``)."""

from __future__ import annotations

import pytest

from tools.bench import chat as bench


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize(("mode", "tick"), [([], "1"), (["--in-process"], "1"),
                                           (["--tick", "0.01"], "10")])
def test_bench_delivers_every_phase_and_prints_its_figures(capsys, mode, tick) -> None:
    """A small flood, a short offered rate (paced every millisecond, or in the earlier 10 ms
    ticks) and a few pings: every message of each phase arrives at the receiver and each
    figure is printed."""
    assert bench.main(["--messages", "200", "--batch", "50", "--pings", "5", "--rate", "500",
                       "--rate-seconds", "0.1", *mode]) == 0
    out = capsys.readouterr().out
    assert "flood: 200 private messages in" in out
    assert f"sent every {tick} ms (50 of 50 arrived)" in out
    assert "single messages on a quiet link (5)" in out
    assert "second friend during the flood" in out
