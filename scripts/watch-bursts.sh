#!/usr/bin/env bash
# The "what your monitoring sees" example of docs/fleet.md. A cgroup made here, as any
# service's is (not by throttlebench), under a quota of a fifth of a CPU (20 ms per
# 100 ms), runs a steady job of about 0.05 CPU and, every two minutes, a 10 s burst of
# two busy threads that the quota holds back: throttled in every period of the burst. `throttlebench watch`
# records it; `throttlebench report OUT --as-scraped 15s --window 5m` then shows what a
# Prometheus scrape and kubernetes-mixin's CPUThrottlingHigh make of it.
# Usage (root; cgroup v1 or v2): scripts/watch-bursts.sh [DURATION=12m] [OUT=results/watch-bursts]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-12m}; out=${2:-results/watch-bursts}
cargo build --release -q -p throttlebench
tb=${CARGO_TARGET_DIR:-target}/release/throttlebench
name=bursts-demo-$$
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    dirs=("/sys/fs/cgroup/$name")
    mkdir "${dirs[0]}"
    echo "20000 100000" > "${dirs[0]}/cpu.max"
else
    dirs=("/sys/fs/cgroup/cpu/$name" "/sys/fs/cgroup/cpuacct/$name")
    mkdir "${dirs[@]}"
    echo 100000 > "${dirs[0]}/cpu.cfs_period_us"
    echo 20000 > "${dirs[0]}/cpu.cfs_quota_us"
fi
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    for d in "${dirs[@]}"; do rmdir "$d" 2>/dev/null || true; done
}
trap cleanup EXIT
start() {
    "$tb" fibtest duty "$@" >/dev/null 2>&1 &
    pids+=($!)
    for d in "${dirs[@]}"; do echo $! > "$d/cgroup.procs"; done
}
start --on 5ms --off 95ms --duration 1h               # steady: about 0.05 CPU
start --threads 2 --on 10s --off 110s --duration 1h   # 10 s of two CPUs every two minutes
"$tb" watch "$name" --duration "$duration" --out "$out"
