"""tools/bench/transfer.py stays runnable: two node processes move a small file and the copy
verifies; without sshd/scp the comparison says so instead of failing."""

from __future__ import annotations

import re

import pytest

from tools.bench import transfer as bench

pytestmark = pytest.mark.timeout(120)


@pytest.mark.slow
@pytest.mark.integration
def test_bench_moves_a_small_file_between_two_node_processes(capsys) -> None:
    """8 MiB between two real node processes: exit code 0, the SHA-1 verified, the rate and
    the sender's request count and the reactor's waits for the disk printed, nothing
    refused."""
    assert bench.main(["--size", "8", "--no-scp"]) == 0
    out = capsys.readouterr().out
    assert "rsproto ft: " in out and "MB/s" in out and "SHA-1 verified" in out
    assert "refused: none" in out
    assert re.search(r"waited for its sync thread \d+ times \(\d+\.\d\d s\)", out)
    assert "scp: not asked for (--no-scp)" in out


def test_missing_sshd_is_reported_not_raised(tmp_path, monkeypatch) -> None:
    """With no sshd, scp or ssh-keygen on the machine, the scp step returns the reason."""
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    monkeypatch.setattr(bench.os.path, "exists", lambda path: False)
    why = bench._scp(tmp_path, tmp_path / "x", "00" * 20)  # noqa: SLF001
    assert isinstance(why, str) and "not installed" in why
