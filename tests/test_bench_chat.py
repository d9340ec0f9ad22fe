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


def test_cpus_split_in_two_halves() -> None:
    """--pin gives the sender the lower half of the CPUs and the receiver the rest; one CPU
    cannot be split."""
    assert bench.split_cpus({3, 1, 0, 2}) == ({0, 1}, {2, 3})
    assert bench.split_cpus({4, 7, 9}) == ({4}, {7, 9})
    with pytest.raises(ValueError, match="needs two CPUs"):
        bench.split_cpus({5})


@pytest.mark.slow
@pytest.mark.integration
def test_pinned_nodes_run_where_they_were_put(capsys) -> None:
    """With --pin each node process runs on its half of the CPUs (as the nodes report) and
    every phase still arrives; where the machine has one CPU, --pin is refused in one line."""
    import os

    cpus = os.sched_getaffinity(0)
    args = ["--messages", "100", "--batch", "50", "--pings", "2", "--rate", "200",
            "--rate-seconds", "0.1", "--pin"]
    if len(cpus) < 2:
        with pytest.raises(SystemExit):
            bench.main(args)
        assert "needs two CPUs" in capsys.readouterr().err
        return
    assert bench.main(args) == 0
    sender, receiver = bench.split_cpus(cpus)
    out = capsys.readouterr().out
    sender_cpus, receiver_cpus = (",".join(map(str, sorted(half))) for half in (sender, receiver))
    assert (f"pinned: sender on CPU {sender_cpus}, receiver on CPU {receiver_cpus}, second "
            f"friend on CPU {receiver_cpus}") in out
    assert "(20 of 20 arrived)" in out
    assert os.sched_getaffinity(0) == cpus


@pytest.mark.slow
@pytest.mark.integration
def test_profiles_go_to_a_directory_made_for_them(tmp_path, capsys) -> None:
    """--profile makes its directory and writes the sender's and the receiver's profiles of
    both phases there; a path that cannot be a directory is refused in one line."""
    target = tmp_path / "new" / "profiles"
    assert bench.main(["--messages", "100", "--batch", "50", "--pings", "2", "--rate", "200",
                       "--rate-seconds", "0.1", "--profile", str(target)]) == 0
    assert sorted(p.name for p in target.iterdir()) == [
        "alice-flood.prof", "alice-offered.prof", "bob-flood.prof", "bob-offered.prof"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit):
        bench.main(["--profile", str(blocker / "x")])
    err = capsys.readouterr().err
    assert "--profile" in err and "Traceback" not in err
