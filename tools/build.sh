#!/usr/bin/env bash
# Configures and builds ringwatch into build/ (or $RINGWATCH_BUILD_DIR).
# Arguments go to the cmake configure step, e.g. -DRINGWATCH_SANITIZE=ON.
# RINGWATCH_TARGETS limits what is built (default: everything).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RINGWATCH_BUILD_DIR:-$root/build}
jobs=${RINGWATCH_JOBS:-2}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
targets=()
for target in ${RINGWATCH_TARGETS:-}; do targets+=(--target "$target"); done
cmake --build "$build" -j "$jobs" "${targets[@]}"
