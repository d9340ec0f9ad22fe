#!/usr/bin/env bash
# Run one atheris harness over its corpus for a while.
#
#   tools/fuzz/run.sh TARGET [SECONDS]      e.g.  tools/fuzz/run.sh tlv_decode 60
#
# TARGET names tools/fuzz/fuzz_TARGET.py and tools/fuzz/corpus/TARGET/.  The committed corpus is
# read, never written: new inputs go to $FUZZ_WORK (default /tmp/rsproto-fuzz/TARGET) and
# crashes to $FUZZ_WORK/crash-*.  Exit status is non-zero when the harness found a crash.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 TARGET [SECONDS]" >&2
    exit 2
fi
target=$1
seconds=${2:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
harness=$root/tools/fuzz/fuzz_$target.py
corpus=$root/tools/fuzz/corpus/$target
work=${FUZZ_WORK:-/tmp/rsproto-fuzz/$target}

if [ ! -f "$harness" ]; then
    echo "no harness $harness" >&2
    exit 2
fi
mkdir -p "$corpus" "$work/new"
cd "$root"
# -max_len 4096: long enough for every TLV shape and most items, short enough to mutate well.
PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH} exec python3 "$harness" \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/" -print_final_stats=1 \
    "$work/new" "$corpus"
