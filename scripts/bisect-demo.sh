#!/usr/bin/env bash
# A kernel regression found by `git bisect run`, from a clean start (docs/bisect.md):
#
#   scripts/bisect-demo.sh                 # everything: 16-25 minutes on a 2 vCPU VM
#   scripts/bisect-demo.sh --series-only   # only unpack and make the history (2 minutes)
#
# 1. Unpacks Debian's linux-source-6.12 (/usr/src/linux-source-6.12.tar.xz, or
#    $TB_LINUX_SOURCE) into $TB_DEMO/linux (default /work/kbuild/bisect-demo), and commits
#    it: tag demo-good.
# 2. Applies the eight commits of scripts/bisect-demo/ on top: tag demo-bad. Seven are
#    harmless (documentation, comments, a selftest's comment, Kconfig help). Commit 5,
#    "sched/fair: expire cpu-local runtime at the end of each period", is the planted
#    regression. It brings back the expiry of cpu-local bandwidth slices that commit
#    512ac999d275 made effective and commit de53fd7aedb1 removed (CVE-2019-19922):
#      - struct cfs_bandwidth and struct cfs_rq get an `expires_seq`;
#      - __refill_cfs_bandwidth_runtime() (each period's refill) bumps cfs_b->expires_seq;
#      - __assign_cfs_rq_runtime() and distribute_cfs_runtime() stamp the cfs_rq with it
#        when they hand it runtime;
#      - __account_cfs_rq_runtime() calls a new expire_cfs_rq_runtime(), which sets
#        runtime_remaining to 0 when the stamp is from an earlier period;
#      - __return_cfs_rq_runtime() does not return expired runtime to the pool.
#    Why that reproduces the symptom: a CPU whose threads wake briefly and sleep (Fibtest's
#    slow threads) takes a 5 ms slice, returns all but min_cfs_rq_runtime (1 ms) when they
#    sleep, and keeps that 1 ms; it now expires at the end of every period, on every such
#    CPU, while the busy thread on CPU 0 is throttled for lack of it. The job gets far less
#    than its quota, and the slow threads, finding their runtime expired and the pool
#    empty, are throttled too.
# 3. Configures the tree (scripts/kernel/configure.sh) and runs
#      git bisect start demo-bad demo-good
#      git bisect run sh -c 'make -j2 bzImage >/dev/null 2>&1 || exit 125;
#          throttlebench vm --kernel . --cpus 8 -- check scenarios/cfs-slice-expiry.toml ...'
#    (the one-liner of docs/bisect.md, with the build timed). It must end on commit 5.
#
# Needs: gcc make flex bison bc libelf-dev libssl-dev (to build), vng and QEMU on the PATH
# (eval "$(.ci/setup-vm)"), a release build of throttlebench ($TB, default
# target/release/throttlebench, or $CARGO_TARGET_DIR/release/throttlebench).
# Writes only under $TB_DEMO: linux/ (the tree), results/<commit>/ (each step's result
# folder), bisect-run.log (everything printed) and bisect.log (`git bisect log`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${TB_DEMO:-/work/kbuild/bisect-demo}
source=${TB_LINUX_SOURCE:-/usr/src/linux-source-6.12.tar.xz}
cpus=${TB_DEMO_CPUS:-8}
tb=${TB:-${CARGO_TARGET_DIR:-$repo/target}/release/throttlebench}
series_only=false
[ "${1:-}" = "--series-only" ] && series_only=true

say() { echo "bisect-demo: $(date -u +%H:%M:%S) $*"; }
# Fixed names and dates: the same source gives the same commit ids on every machine.
export GIT_AUTHOR_NAME="throttlebench demo" GIT_AUTHOR_EMAIL="demo@throttlebench.invalid"
export GIT_COMMITTER_NAME="throttlebench demo" GIT_COMMITTER_EMAIL="demo@throttlebench.invalid"
export GIT_AUTHOR_DATE="2025-12-31T12:00:00Z" GIT_COMMITTER_DATE="2025-12-31T12:00:00Z"

[ -f "$source" ] || { echo "bisect-demo: no $source (apt-get install linux-source-6.12)" >&2; exit 1; }
if ! $series_only; then
    [ -x "$tb" ] || { echo "bisect-demo: no $tb (cargo build --release, or set TB)" >&2; exit 1; }
fi

began=$(date +%s)
say "unpacking $source into $work/linux"
rm -rf "$work/linux" "$work/results"
mkdir -p "$work/linux" "$work/results"
tar xf "$source" -C "$work/linux" --strip-components=1
cd "$work/linux"
git init -q
git add -A -f
version=$(awk '/^(VERSION|PATCHLEVEL|SUBLEVEL) =/ {v = v (v ? "." : "") $3} END {print v}' Makefile)
git commit -q -m "Debian linux-source-6.12 ($version), unpacked"
git tag demo-good
say "applying $(ls "$repo"/scripts/bisect-demo/*.patch | wc -l) commits of scripts/bisect-demo"
# git am keeps each patch's author date; the committer date follows it.
git am -q --committer-date-is-author-date "$repo"/scripts/bisect-demo/*.patch
git tag demo-bad
git log --oneline demo-good..demo-bad
$series_only && exit 0

say "configuring (scripts/kernel/configure.sh)"
"$repo/scripts/kernel/configure.sh" .
export PATH="$(dirname "$tb"):$PATH"
scenario="$repo/scenarios/cfs-slice-expiry.toml"
out="$work/results"
jobs=$(nproc)
say "load average $(cut -d" " -f1-3 /proc/loadavg)"
say "bisecting: $(command -v throttlebench), vng $(vng --version 2>/dev/null | cut -d' ' -f2), $jobs build jobs, $cpus guest CPUs"
git bisect start demo-bad demo-good
# The one-liner of docs/bisect.md, with the build's time printed.
git bisect run sh -c '
    s=$(date +%s.%N)
    make -j'"$jobs"' bzImage >/dev/null 2>&1 || exit 125
    echo "bisect-demo: build of $(git rev-parse --short HEAD): $(echo "$(date +%s.%N) - $s" | bc | cut -c1-6) s" >&2
    throttlebench vm --kernel . --cpus '"$cpus"' -- check '"$scenario"' --no-plot --out '"$out"'/$(git rev-parse --short HEAD)
' 2>&1 | tee "$work/bisect-run.log" || true
git bisect log >"$work/bisect.log"
git bisect reset >/dev/null
first=$(sed -n 's/^\([0-9a-f]\{40\}\) is the first bad commit$/\1/p' "$work/bisect-run.log")
planted=$(git log --format=%H --grep='^sched/fair: expire cpu-local runtime' demo-good..demo-bad)
if [ "$first" = "$planted" ]; then
    say "found the planted commit: $(git log -1 --format='%h %s' "$first"), $(( $(date +%s) - began )) s in all"
    say "load average $(cut -d" " -f1-3 /proc/loadavg)"
elif [ -z "$first" ]; then
    say "the bisect named no first bad commit (see $work/bisect-run.log)" >&2
    exit 1
else
    say "ended on $(git log -1 --format='%h %s' "$first"), not the planted $(git log -1 --format='%h %s' "$planted")" >&2
    exit 1
fi
