#!/usr/bin/env bash
# The coordinated-omission measurement of docs/latency.md: `fibtest serve` in a cgroup
# under a CFS quota, loaded first by wrk (closed loop, a think time between requests on
# each connection), then by throttlebench's open-loop generator at the rate wrk reached
# (`throttlebench bench load --target`), with the cgroup's cpu.stat before and after each.
#
# Needs root, cgroup v1 with the cpu and cpuacct controllers under /sys/fs/cgroup, and wrk
# (apt-get install wrk). The cgroups it makes (throttlebench/tb-load-<pid>) and the server
# are removed on every exit. Settings (environment): QUOTA_US PERIOD_US WORK THREADS
# CONNS THINK DURATION PORT POISSON=1 TB (the throttlebench binary), and HOG=1 to put a
# spinning thread (`fibtest duty`, on the server's CPU) into the same cgroup: a background
# job that uses up the quota every period, so the server stalls whatever its load.
# SHARES sets the cgroup's cpu.shares (default: left at 1024): on a shared machine, a high
# value keeps other people's work from taking CPU from the server (its quota still holds).
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
HOGPID=
if [ "${HOG:-0}" = 1 ]; then
    "$TB" fibtest duty --on 3600s --duration 3600s --cpus 1 >/dev/null 2>&1 &
    HOGPID=$!
fi
CPU="$ROOT/cpu/throttlebench/tb-load-$SERVER"
ACCT="$ROOT/cpuacct/throttlebench/tb-load-$SERVER"
cleanup() {
    kill -TERM "$SERVER" $HOGPID 2>/dev/null || true
    wait "$SERVER" $HOGPID 2>/dev/null || true
    rmdir "$CPU" "$ACCT" 2>/dev/null || true
    # The parents only when no one else's cgroups are in them.
    rmdir "$ROOT/cpu/throttlebench" "$ROOT/cpuacct/throttlebench" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
mkdir -p "$CPU" "$ACCT"
echo "$PERIOD_US" > "$CPU/cpu.cfs_period_us"
echo "$QUOTA_US" > "$CPU/cpu.cfs_quota_us"
[ -n "${SHARES:-}" ] && echo "$SHARES" > "$CPU/cpu.shares"
for pid in "$SERVER" $HOGPID; do
    echo "$pid" > "$CPU/cgroup.procs"
    echo "$pid" > "$ACCT/cgroup.procs"
done

stat() { tr '\n' ' ' < "$CPU/cpu.stat"; echo "usage_ns $(cat "$ACCT/cpuacct.usage")"; }
echo "server: fibtest serve --threads $THREADS --work $WORK, quota ${QUOTA_US}us per ${PERIOD_US}us${HOGPID:+, with a spinning fibtest duty thread}"
echo "cpu.stat before: $(stat)"
"$TB" bench load --target "http://127.0.0.1:$PORT/" --connections "$CONNS" --cpu-stat "$CPU/cpu.stat" \
    --wrk-think "$THINK" --duration "$DURATION" "${EXTRA[@]}"
echo "cpu.stat after:  $(stat)"
