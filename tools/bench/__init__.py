"""Benchmarks: ``python3 -m tools.bench.codec`` (see docs/benchmarks.md)."""
