#!/usr/bin/env bash
# `git bisect run` script for kernel regressions in CPU throttling (docs/bisect.md).
#
# Run it from the kernel source tree being bisected:
#
#   git bisect start BAD GOOD
#   TB=/path/to/throttlebench SCENARIO=/path/to/bisect-check.toml \
#       git bisect run /path/to/docs/examples/bisect-kernel.sh
#
# For each commit it builds the kernel with virtme-ng (a minimal config, plus the CFS
# bandwidth options the scenario needs), boots it in a VM that sees this machine's files,
# runs `throttlebench check` there, and turns the answer into git bisect's exit codes.
# vng's own exit code says nothing about the guest (it is 255 here whatever happened), so
# the guest writes its exit code into a folder shared with --rwdir.
#
# Environment:
#   TB        throttlebench binary, built once outside the kernel tree (absolute path)
#   SCENARIO  the check scenario, with an [expect] table (absolute path)
#   VNG       the vng command (default: vng)
#   VNG_OPTS  extra options for the boot (default: --disable-kvm, as KVM guests hang on
#             this project's machines; drop it where KVM works, for real timings)
#   ON_WORKLOAD_FAILURE  exit code when the workload crashed or hung (check's 129):
#             128 (stop the bisect, the default) or 1 (count it as bad, when a hang is the
#             regression being hunted)
#   SKIP_BUILD=1  boot the kernel already built in the tree
#   KERNEL    boot this kernel image instead of building one (vng --run KERNEL), such as a
#             distribution's vmlinuz with its modules next to it (docs/bisect.md)
set -u

: "${TB:?set TB to the throttlebench binary}"
: "${SCENARIO:?set SCENARIO to the check scenario}"
VNG=${VNG:-vng}
VNG_OPTS=${VNG_OPTS:---disable-kvm}
ON_WORKLOAD_FAILURE=${ON_WORKLOAD_FAILURE:-128}

out=$(mktemp -d /tmp/tb-bisect-XXXXXX)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "bisect-kernel: commit $commit, results in $out"

# 1. Build. A commit that does not build cannot be tested: skip it.
if [ -z "${SKIP_BUILD:-}" ] && [ -z "${KERNEL:-}" ]; then
    if ! "$VNG" --build \
        --configitem CONFIG_CGROUPS=y --configitem CONFIG_CGROUP_SCHED=y \
        --configitem CONFIG_FAIR_GROUP_SCHED=y --configitem CONFIG_CFS_BANDWIDTH=y \
        --configitem CONFIG_CGROUP_CPUACCT=y --configitem CONFIG_PSI=y \
        >"$out/build.log" 2>&1; then
        echo "bisect-kernel: the build failed (see $out/build.log): skip"
        exit 125
    fi
fi

# 2. Boot and check. Everything the guest writes goes into $out.
run=()
[ -n "${KERNEL:-}" ] && run=(--run "$KERNEL")
# shellcheck disable=SC2086
"$VNG" "${run[@]}" $VNG_OPTS --cpus 2 --memory 1G --rwdir "$out" --exec \
    "$TB check $SCENARIO --out $out/result --no-plot >$out/check.txt 2>&1; echo \$? >$out/rc" \
    >"$out/boot.log" 2>&1
cat "$out/check.txt" 2>/dev/null

# 3. The guest's answer, in git bisect's terms.
if ! rc=$(cat "$out/rc" 2>/dev/null); then
    echo "bisect-kernel: the guest wrote no exit code (it did not boot, or hung; see $out/boot.log): skip"
    exit 125
fi
case "$rc" in
    0) echo "bisect-kernel: good"; exit 0 ;;
    1) echo "bisect-kernel: bad"; exit 1 ;;
    125) echo "bisect-kernel: this kernel cannot run the check (controller, privileges, cgroup file): skip"; exit 125 ;;
    129) echo "bisect-kernel: the workload failed or hung"; exit "$ON_WORKLOAD_FAILURE" ;;
    *) echo "bisect-kernel: throttlebench itself failed (exit $rc): stopping the bisect"; exit 128 ;;
esac
