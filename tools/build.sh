#!/usr/bin/env bash
# Configures and builds ringwatch into build/ (or $RINGWATCH_BUILD_DIR).
# Arguments go to the cmake configure step, e.g. -DRINGWATCH_SANITIZE=ON.
# RINGWATCH_TARGETS limits what is built (default: everything).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RINGWATCH_BUILD_DIR:-$root/build}
jobs=${RINGWATCH_JOBS:-2}
launcher=()
# ccache, where installed, makes rebuilds of other checkouts and configs cheap.
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" "$@" >/dev/null
targets=()
for target in ${RINGWATCH_TARGETS:-}; do targets+=(--target "$target"); done
cmake --build "$build" -j "$jobs" "${targets[@]}"
