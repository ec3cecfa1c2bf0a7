#!/usr/bin/env bash
# Fibonacci steps per second of fibtest's fast thread against a C reference of Indeed
# Fibtest's loop built with `cc -O3` (fibtest/bench/fib_ref.c), both on one pinned CPU for
# the same time, in turns. Rates per wall second and per CPU second: the second is what the
# loop does while it runs, so other processes on a shared machine disturb it less.
# Usage: scripts/bench-fib.sh [SECONDS=5] [ROUNDS=5] [CPU=0]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}; rounds=${2:-5}; cpu=${3:-0}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cc -O3 -o "$work/fib_ref" fibtest/bench/fib_ref.c
cargo build --release -q -p fibtest
echo "$(cc --version | head -1); $(rustc --version); CPU $cpu, ${secs} s per run"
printf '%-6s %-22s %16s %16s\n' round program "M steps/wall-s" "M steps/CPU-s"
for r in $(seq "$rounds"); do
    # C: "steps N wall_s W cpu_s C fib F"
    taskset -c "$cpu" "$work/fib_ref" "$secs" \
        | awk -v r="$r" '{printf "%s c %.0f %.0f\n", r, $2 / $4 / 1e6, $2 / $6 / 1e6}' >> "$work/rates"
    # fibtest: one fast thread, no slow one; its `thread` row of the CSV records.
    taskset -c "$cpu" target/release/fibtest fib --fast 1 --slow 0 --fast-cpus "$cpu" \
        --duration "${secs}s" --format csv 2>/dev/null \
        | awk -F, -v r="$r" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            $col["type"] == "thread" && $col["role"] == "fast" {
                s = $col["steps"]; printf "%s rust %.0f %.0f\n", r, s / $col["wall_s"] / 1e6, s / $col["cpu_s"] / 1e6 }' >> "$work/rates"
    tail -2 "$work/rates" | awk '{printf "%-6s %-22s %16s %16s\n", $1,
        ($2 == "c" ? "C reference (cc -O3)" : "fibtest (Rust)"), $3, $4}'
done
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
cw=$(awk '$2 == "c" {print $3}' "$work/rates" | median); cc_=$(awk '$2 == "c" {print $4}' "$work/rates" | median)
rw=$(awk '$2 == "rust" {print $3}' "$work/rates" | median); rc=$(awk '$2 == "rust" {print $4}' "$work/rates" | median)
printf '%-6s %-22s %16s %16s\n' median "C reference (cc -O3)" "$cw" "$cc_"
printf '%-6s %-22s %16s %16s\n' median "fibtest (Rust)" "$rw" "$rc"
awk -v cw="$cw" -v cc="$cc_" -v rw="$rw" -v rc="$rc" \
    'BEGIN {printf "%-6s %-22s %16.3f %16.3f\n", "ratio", "fibtest / C", rw / cw, rc / cc}'
