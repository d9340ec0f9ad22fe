# -*- test-case-name: tests.test_fuzz_campaign -*-
"""Run every fuzz harness for a budget and record executions and coverage in docs/fuzzing.md.

    PYTHONPATH=. python3 tools/fuzz/campaign.py --runs 10000000            # the standing goal
    PYTHONPATH=. python3 tools/fuzz/campaign.py --seconds 60 [TARGET...]   # what fits now

Each harness runs through ``tools/fuzz/run.sh``-like options (the committed corpus read only,
new inputs and crashes under ``$FUZZ_WORK``), one after the other, until ``--runs`` executions
or ``--seconds`` (whichever comes first).  libFuzzer's final statistics give the executions,
the last status line the coverage (``cov``: edges, ``ft``: features) and the corpus size.  The
table between the campaign markers of ``docs/fuzzing.md`` is rewritten with one row per target
run (rows of targets not run this time stay).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

__all__ = ["Result", "parse_output", "render_table", "update_doc", "main",
           "BEGIN_MARK", "END_MARK"]

ROOT: Final = Path(__file__).resolve().parents[2]
DOC: Final = ROOT / "docs" / "fuzzing.md"
BEGIN_MARK: Final = "<!-- campaign:begin -->"
END_MARK: Final = "<!-- campaign:end -->"
#: The goal of the standing campaign, per harness.
GOAL_RUNS: Final = 10_000_000

_STATUS: Final = re.compile(rb"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", re.M)
_EXECUTED: Final = re.compile(rb"stat::number_of_executed_units: (\d+)")
_CRASH: Final = re.compile(rb"==\d+== ERROR|Uncaught Python exception|artifact_prefix='.*'; "
                           rb"Test unit written")


@dataclasses.dataclass(frozen=True)
class Result:
    """One harness run: what it executed and reached."""

    target: str
    executions: int
    seconds: float
    edges: int
    features: int
    corpus: int
    crashed: bool

    def row(self) -> str:
        rate = self.executions / self.seconds if self.seconds else 0.0
        goal = "yes" if self.executions >= GOAL_RUNS else "no"
        return (f"| `{self.target}` | {self.executions:,} | {self.seconds:.0f} | {rate:,.0f} | "
                f"{self.edges} | {self.features} | {self.corpus} | "
                f"{'CRASH' if self.crashed else 'none'} | {goal} |")


def parse_output(target: str, output: bytes, seconds: float, returncode: int) -> Result:
    """A `Result` from a harness's libFuzzer output."""
    statuses = _STATUS.findall(output)
    executed = _EXECUTED.search(output)
    last = statuses[-1] if statuses else (b"0", b"0", b"0", b"0")
    executions = int(executed.group(1)) if executed else int(last[0])
    return Result(target, executions, seconds, int(last[1]), int(last[2]), int(last[3]),
                  returncode != 0 or bool(_CRASH.search(output)))


def render_table(rows: dict[str, str]) -> str:
    head = ("| target | executions | seconds | exec/s | edges (cov) | features (ft) | corpus | "
            "crashes | 10^7 reached |\n|---|---|---|---|---|---|---|---|---|\n")
    return head + "\n".join(rows[t] for t in sorted(rows)) + "\n"


def update_doc(doc: str, results: list[Result], when: str) -> str:
    """``doc`` with the campaign table rewritten (rows of ``results`` replaced or added)."""
    if BEGIN_MARK in doc and END_MARK in doc:
        before, rest = doc.split(BEGIN_MARK, 1)
        table, after = rest.split(END_MARK, 1)
    else:
        before, table, after = doc.rstrip("\n") + "\n\n", "", "\n"
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", table, re.M)}
    for r in results:
        rows[r.target] = r.row()
    stamp = f"Last updated {when}.\n\n"
    return before + BEGIN_MARK + "\n" + stamp + render_table(rows) + END_MARK + after


def targets() -> list[str]:
    return sorted(p.stem[len("fuzz_"):] for p in (ROOT / "tools" / "fuzz").glob("fuzz_*.py"))


def run_one(target: str, runs: int, seconds: int) -> Result:
    """Run one harness (bounded by ``runs`` and ``seconds``) and parse what it printed."""
    work = Path(os.environ.get("FUZZ_WORK", "/tmp/rsproto-fuzz")) / target
    (work / "new").mkdir(parents=True, exist_ok=True)
    corpus = ROOT / "tools" / "fuzz" / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, str(ROOT / "tools" / "fuzz" / f"fuzz_{target}.py"),
               f"-runs={runs}", f"-max_total_time={seconds}", "-max_len=4096", "-timeout=10",
               "-rss_limit_mb=2048", f"-artifact_prefix={work}/", "-print_final_stats=1",
               str(work / "new"), str(corpus)]
    start = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True,
                          timeout=seconds + 600)
    elapsed = time.monotonic() - start
    return parse_output(target, proc.stdout + proc.stderr, elapsed, proc.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="harnesses to run (default: all)")
    parser.add_argument("--runs", type=int, default=GOAL_RUNS)
    parser.add_argument("--seconds", type=int, default=24 * 3600)
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    chosen = args.targets or targets()
    results = []
    for target in chosen:
        result = run_one(target, args.runs, args.seconds)
        print(result.row(), flush=True)
        results.append(result)
    when = time.strftime("%Y-%m-%d", time.gmtime())
    args.doc.write_text(update_doc(args.doc.read_text(), results, when))
    return 1 if any(r.crashed for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
