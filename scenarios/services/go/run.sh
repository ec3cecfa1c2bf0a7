#!/bin/sh
# Run a Go service of this folder as a scenario's workload: `run.sh NAME ARGS...` execs
# the binary scripts/build-services.sh built for the current sources (the same cache path
# and hash as there), so the workload's cgroup runs the service and never a build.
# `run.sh --path NAME` prints where that binary belongs. A missing binary is an error that
# names the build command (exit 127).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
path_only=
if [ "${1:-}" = --path ]; then
    path_only=1
    shift
fi
name=${1:?usage: run.sh [--path] NAME [ARGS...]}
shift
[ -d "$here/$name" ] || { echo "run.sh: no Go service $name in $here" >&2; exit 2; }
cache=${THROTTLEBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/throttlebench}
# The hash of the module file and the program's sources, in name order.
hash=$(cd "$here" && find go.mod "$name" -type f -name '*.go' -o -name go.mod | LC_ALL=C sort \
    | xargs cat | sha256sum | cut -c1-16)
bin="$cache/services/$name-$hash"
if [ -n "$path_only" ]; then
    echo "$bin"
    exit 0
fi
if [ ! -x "$bin" ]; then
    echo "run.sh: $name is not built for these sources ($bin is missing): run scripts/build-services.sh first (needs golang-go)" >&2
    exit 127
fi
exec "$bin" "$@"
