#!/usr/bin/env bash
# Fibonacci steps per second of fibtest's fast thread against a C reference of Indeed
# Fibtest's loop built with `cc -O3`, both on one pinned CPU for the same time, in turns.
# Usage: scripts/bench-fib.sh [SECONDS] [ROUNDS] [CPU]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}; rounds=${2:-3}; cpu=${3:-0}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cc -O3 -o "$work/fib_ref" fibtest/bench/fib_ref.c
cargo build --release -q -p fibtest
printf '%-6s %-22s %14s\n' round program "M steps/s"
for r in $(seq "$rounds"); do
    c=$(taskset -c "$cpu" "$work/fib_ref" "$secs" | awk '{printf "%.0f", $2 / $4 / 1e6}')
    # Fibtest's own form: one fast thread (thread 0 on CPU 0), prints Iterations Completed(M).
    f=$(taskset -c "$cpu" target/release/fibtest fib --fast 1 --slow 0 --fast-cpus "$cpu" --duration "${secs}s" 2>/dev/null \
        | python3 -c 'import json,sys
rs=[json.loads(l) for l in sys.stdin]
t=[r for r in rs if r["type"]=="thread"][0]
print("%.0f" % (t["steps"]/t["wall_s"]/1e6))')
    printf '%-6s %-22s %14s\n' "$r" "C reference (cc -O3)" "$c"
    printf '%-6s %-22s %14s\n' "$r" "fibtest (Rust)" "$f"
    echo "$c $f" >> "$work/pairs"
done
awk '{c+=$1; f+=$2} END {printf "mean: C %.0f, fibtest %.0f M steps/s, ratio fibtest/C = %.3f\n", c/NR, f/NR, f/c}' "$work/pairs"
