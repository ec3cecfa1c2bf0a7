#!/usr/bin/env bash
# The coordinated-omission measurement of docs/latency.md: `fibtest serve` in a cgroup
# under a CFS quota, loaded first by wrk (closed loop, a think time between requests on
# each connection), then by throttlebench's open-loop generator at the rate wrk reached
# (`throttlebench bench load --target`), with the cgroup's cpu.stat before and after each.
#
# Needs root, cgroup v1 with the cpu and cpuacct controllers under /sys/fs/cgroup, and wrk
# (apt-get install wrk). The cgroups it makes (throttlebench/tb-load-<pid>) and the server
# are removed on every exit. Settings (environment): QUOTA_US PERIOD_US WORK THREADS
# CONNS THINK DURATION PORT POISSON=1 TB (the throttlebench binary).
set -euo pipefail
TB=${TB:-target/release/throttlebench}
QUOTA_US=${QUOTA_US:-20000}
PERIOD_US=${PERIOD_US:-100000}
WORK=${WORK:-5ms}
THREADS=${THREADS:-2}
CONNS=${CONNS:-4}
THINK=${THINK:-100ms}
DURATION=${DURATION:-30s}
PORT=${PORT:-18090}
ROOT=/sys/fs/cgroup
EXTRA=()
[ "${POISSON:-0}" = 1 ] && EXTRA+=(--poisson)

"$TB" fibtest serve --port "$PORT" --threads "$THREADS" --work "$WORK" --cpus 1 >/dev/null 2>&1 &
SERVER=$!
CPU="$ROOT/cpu/throttlebench/tb-load-$SERVER"
ACCT="$ROOT/cpuacct/throttlebench/tb-load-$SERVER"
cleanup() {
    kill -TERM "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rmdir "$CPU" "$ACCT" 2>/dev/null || true
    # The parents only when no one else's cgroups are in them.
    rmdir "$ROOT/cpu/throttlebench" "$ROOT/cpuacct/throttlebench" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
mkdir -p "$CPU" "$ACCT"
echo "$PERIOD_US" > "$CPU/cpu.cfs_period_us"
echo "$QUOTA_US" > "$CPU/cpu.cfs_quota_us"
echo "$SERVER" > "$CPU/cgroup.procs"
echo "$SERVER" > "$ACCT/cgroup.procs"

stat() { tr '\n' ' ' < "$CPU/cpu.stat"; echo "usage_ns $(cat "$ACCT/cpuacct.usage")"; }
echo "server: fibtest serve --threads $THREADS --work $WORK, quota ${QUOTA_US}us per ${PERIOD_US}us"
echo "cpu.stat before: $(stat)"
"$TB" bench load --target "http://127.0.0.1:$PORT/" --connections "$CONNS" --cpu-stat "$CPU/cpu.stat" \
    --wrk-think "$THINK" --duration "$DURATION" "${EXTRA[@]}"
echo "cpu.stat after:  $(stat)"
