#!/usr/bin/env bash
# Run a command (a `throttlebench run`, typically) with the shared `throttlebench` cgroup
# parent given the largest CPU weight, and put the weight back after, so that on a busy
# machine other processes' CPU time does not hold a measurement's workload below its limit
# (the same as the `boost` of harness/examples/runtime_vs_cfs.rs; docs/runtimes.md).
#
#   scripts/boosted.sh throttlebench run scenarios/parallel-burst.toml --out /tmp/tb-pb
#
# The weight is the parent's against everything outside it: cgroup v1's cpu.shares
# (262144), v2's cpu.weight (10000). A folder `tb-boost-<pid>` holds the parent while the
# command runs, so no run that ends meanwhile removes it (and the boost with it). A
# limit inside the parent (a quota) still holds: only competition from outside is
# removed. Where the kernel groups each session's processes (autogroup, on in this VM),
# the processes outside the parent (a load generator, the harness's sampler) compete as
# this session's autogroup: its nice is set to -20 too, and put back. As root; cgroup
# root $CGROUP_ROOT (default /sys/fs/cgroup). Exit: the command's.
set -euo pipefail
root=${CGROUP_ROOT:-/sys/fs/cgroup}
[ $# -gt 0 ] || { echo "usage: scripts/boosted.sh COMMAND [ARGS...]" >&2; exit 2; }
if [ -e "$root/cpu/cpu.shares" ]; then
    parent=$root/cpu/throttlebench file=cpu.shares most=262144
else
    parent=$root/throttlebench file=cpu.weight most=10000
fi
hold=$parent/tb-boost-$$
# The harness takes the same lock (flock on the cgroup root) to make and remove parents.
flock "$root" mkdir -p "$hold"
old=$(cat "$parent/$file")
autogroup=
if [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
    autogroup=$(sed -n 's/.* nice //p' /proc/$$/autogroup)
fi
restore() {
    flock "$root" sh -c 'echo "$1" > "$2/$3"; rmdir "$4"; rmdir "$2" 2>/dev/null || true' \
        sh "$old" "$parent" "$file" "$hold"
    echo "boosted: $parent/$file back to $old" >&2
    if [ -n "$autogroup" ]; then
        echo "$autogroup" > /proc/$$/autogroup
        echo "boosted: this session's autogroup nice back to $autogroup" >&2
    fi
}
trap restore EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "$most" > "$parent/$file"
echo "boosted: $parent/$file $old -> $most" >&2
if [ -n "$autogroup" ]; then
    echo -20 > /proc/$$/autogroup
    echo "boosted: this session's autogroup nice $autogroup -> -20" >&2
fi
"$@"
