#!/usr/bin/env bash
# Build the scenario services that need a compiler, before any scenario runs them, so that
# no build runs inside a measured cgroup (its CPU would count as the service's). Today:
# the Go services of scenarios/services/go/ (Debian's golang-go, Go 1.19; standard
# library only, so the build is offline).
#
# Each binary goes to a cache folder outside the repository, named by a hash of its
# sources: $THROTTLEBENCH_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/throttlebench)
# /services/NAME-HASH. scenarios/services/go/run.sh finds it by the same hash and refuses
# to run a missing (or out of date) one, naming this script. Running this again when
# nothing changed only checks. Usage: scripts/build-services.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=scenarios/services/go
command -v go >/dev/null || {
    echo "build-services: go is not installed (apt-get install golang-go)" >&2
    exit 127
}
for dir in "$src"/*/; do
    name=$(basename "$dir")
    out=$("$src/run.sh" --path "$name")
    if [ -x "$out" ]; then
        echo "build-services: $name is up to date: $out"
        continue
    fi
    mkdir -p "$(dirname "$out")"
    # Build beside the target, then rename: a concurrent run never sees half a binary.
    tmp=$(mktemp "$out.tmp-XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    (cd "$src" && go build -trimpath -o "$tmp" "./$name")
    chmod 755 "$tmp"
    mv -f "$tmp" "$out"
    trap - EXIT
    echo "build-services: built $name ($(go version | cut -d' ' -f3)): $out"
done
