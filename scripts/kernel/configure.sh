#!/usr/bin/env bash
# Configure a kernel tree for throttlebench guests (docs/kernels.md):
#   scripts/kernel/configure.sh TREE
# x86_64_defconfig, then the kernel's own kvm_guest.config, then throttlebench.config (next
# to this script), merged with the kernel's scripts/kconfig/merge_config.sh. Afterwards every
# line of throttlebench.config is checked against the result: an option the kernel dropped
# (a missing dependency, a renamed symbol) is an error, not a kernel that boots without it.
set -euo pipefail
tree=${1:?usage: scripts/kernel/configure.sh TREE}
fragment=$(cd "$(dirname "$0")" && pwd)/throttlebench.config
cd "$tree"
make -s x86_64_defconfig
scripts/kconfig/merge_config.sh -m .config kernel/configs/kvm_guest.config "$fragment" >/dev/null
make -s olddefconfig
bad=0
while IFS= read -r line; do
    case "$line" in
        CONFIG_*=*) want=$line ;;
        "# CONFIG_"*" is not set") want=$line ;;
        *) continue ;;
    esac
    name=${want#\# }; name=${name%%[= ]*}
    if [[ $want == "# "* ]]; then
        # Off: absent, or "is not set".
        if grep -q "^$name=" .config; then
            echo "configure: $name should be off, .config has $(grep "^$name=" .config)" >&2; bad=1
        fi
    elif ! grep -qx "$want" .config; then
        got=$(grep -E "^$name=|^# $name is not set" .config || echo "absent")
        echo "configure: wanted $want, .config has $got" >&2; bad=1
    fi
done <"$fragment"
[ "$bad" = 0 ] || { echo "configure: $tree/.config lacks options of $fragment" >&2; exit 1; }
echo "configure: $tree/.config has every option of $fragment"
