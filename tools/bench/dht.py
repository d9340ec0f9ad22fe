# -*- test-case-name: tests.test_dht_node -*-
"""How well the DHT's lookups converge in a simulated network of sans-IO nodes.

Run ``python3 -m tools.bench.dht`` (2,000 nodes, 200 lookups: a few minutes).  The nodes join
one after another through the first node over a fake network (50 ms one-way latency, fixed
per-link order) with a fake clock; then lookups of random ids start from random nodes, one at a
time.  For each lookup it records the queries sent, the round trips (the longest chain of
"node A named node B" among the nodes that answered), and how many of the true 8 closest nodes
it returned.  The figures are in ``docs/dht.md``.
"""

from __future__ import annotations

import argparse
import sys
import time

from dht.simulation import FakeNetwork, measure_lookups

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools.bench.dht", description=__doc__)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=60.0,
                        help="simulated seconds after the last join before measuring")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    net = FakeNetwork(args.seed)
    net.build(args.nodes, settle=args.settle)
    built = time.perf_counter()
    stats = measure_lookups(net, args.lookups)
    done = time.perf_counter()
    s = stats.summary()
    print(f"nodes {args.nodes}, seed {args.seed}, {net.delivered} datagrams delivered, "
          f"{net.now:.0f} simulated s")
    print(f"build {built - started:.1f} s, lookups {done - built:.1f} s (wall clock)")
    print(f"lookups: {s['lookups']:.0f}")
    print(f"queries per lookup: median {s['queries_median']:.1f}, p95 {s['queries_p95']:.0f}")
    print(f"round trips per lookup: median {s['round_trips_median']:.1f}, "
          f"p95 {s['round_trips_p95']:.0f}")
    print(f"true 8 closest found: mean {s['closest8_overlap_mean']:.2f} of 8; "
          f"nearest found in {100 * s['nearest_found_rate']:.1f}% of lookups")
    print(f"routing table size: median {s['table_size_median']:.0f}, "
          f"p5 {s['table_size_p5']:.0f}, p95 {s['table_size_p95']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
