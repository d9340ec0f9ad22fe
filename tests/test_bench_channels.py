"""tools/bench/channels.py stays runnable: a small channel converges over a short line and
the last node reads every post."""

from __future__ import annotations

from tools.bench import channels as bench


def test_bench_converges_and_prints_its_figures(capsys) -> None:
    """30 posts over 2 hops: exit code 0, every post read at the end, no refusal."""
    assert bench.main(["--posts", "30", "--hops", "2"]) == 0
    out = capsys.readouterr().out
    assert "30 channel posts over 2 hops: converged=True, refused=0" in out
    assert "reading the channel        : 30 posts" in out
    assert "bytes per post per hop" in out
