"""The fuzz campaign runner: libFuzzer's output read into figures, docs/fuzzing.md's table
rewritten in place; and the generated codecs the item fuzzers now instrument."""

from __future__ import annotations

from tools.fuzz.campaign import BEGIN_MARK, END_MARK, parse_output, update_doc
from tools.fuzz.harness import generated_functions

OUTPUT = b"""INFO: Seed: 1
#2\tINITED cov: 500 ft: 700 corp: 100/2Kb exec/s: 0 rss: 80Mb
#4096\tpulse  cov: 850 ft: 1400 corp: 150/3Kb lim: 40 exec/s: 2048 rss: 90Mb
#35979\tDONE   cov: 872 ft: 1504 corp: 159/4Kb lim: 64 exec/s: 190 rss: 95Mb
Done 35979 runs in 11 second(s)
stat::number_of_executed_units: 35979
"""


def test_parse_output_reads_final_figures() -> None:
    """Executions come from the final stats, edges/features/corpus from the last status."""
    r = parse_output("item_decode", OUTPUT, 11.0, 0)
    assert (r.executions, r.edges, r.features, r.corpus, r.crashed) == (35979, 872, 1504,
                                                                        159, False)
    assert parse_output("x", OUTPUT + b"==12== ERROR: libFuzzer: deadly signal", 1, 1).crashed


def test_update_doc_replaces_rows_and_keeps_others() -> None:
    """A first run appends the marked table; a later run replaces its target's row only."""
    first = update_doc("# Fuzzing\n", [parse_output("a", OUTPUT, 11.0, 0),
                                        parse_output("b", OUTPUT, 11.0, 0)], "day 1")
    assert first.startswith("# Fuzzing\n") and BEGIN_MARK in first and END_MARK in first
    again = update_doc(first, [parse_output("b", OUTPUT.replace(b"872", b"900"), 11.0, 0)],
                       "day 2")
    rows = [line for line in again.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and "| 900 |" in rows[1] and "| 872 |" in rows[0]
    assert "day 2" in again and "day 1" not in again


def test_generated_codecs_are_found() -> None:
    """The harness finds the run-time generated decoders and encoders (the code the item
    fuzzers could not instrument before: issue 14, finding 8)."""
    functions = generated_functions()
    assert len(functions) > 100
    assert {f.__code__.co_filename for f in functions} == {"<pqi.wire.codegen>"}
