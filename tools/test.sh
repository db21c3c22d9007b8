#!/usr/bin/env bash
# The README's second command (and CI's): install what is missing, build with
# warnings as errors, run the whole test suite; then build with ASan+UBSan and
# run the tests again; then, where clang is, build the libFuzzer targets
# (fuzz/, in build-fuzz/: only they and the libraries they link) and run
# each for RINGWATCH_FUZZ_SECONDS (default 20).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/install-deps.sh"

echo "== build (warnings as errors)"
RINGWATCH_BUILD_DIR=$root/build "$root/tools/build.sh" -DRINGWATCH_WERROR=ON
echo "== tests"
ctest --test-dir "$root/build" --output-on-failure --timeout 300

if [[ ${RINGWATCH_SKIP_SANITIZERS:-0} != 1 ]]; then
  echo "== build (ASan+UBSan)"
  RINGWATCH_BUILD_DIR=$root/build-asan "$root/tools/build.sh" -DRINGWATCH_WERROR=ON -DRINGWATCH_SANITIZE=ON
  echo "== tests under ASan+UBSan"
  # The package test (label `package`) builds and installs the .deb: once, in
  # the first pass, is enough.
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$root/build-asan" --output-on-failure --timeout 600 --label-exclude package
fi

if [[ ${RINGWATCH_SKIP_FUZZ:-0} != 1 ]] && command -v clang++-14 >/dev/null; then
  echo "== build (libFuzzer targets, clang, ASan+UBSan)"
  CC=clang-14 CXX=clang++-14 RINGWATCH_BUILD_DIR=$root/build-fuzz RINGWATCH_TARGETS=ringwatch_fuzz \
    "$root/tools/build.sh" -DRINGWATCH_FUZZ=ON -DRINGWATCH_TESTS=OFF -DRINGWATCH_WERROR=ON
  echo "== fuzzing (${RINGWATCH_FUZZ_SECONDS:-20} s per target)"
  "$root/fuzz/run.sh" "$root/build-fuzz" "${RINGWATCH_FUZZ_SECONDS:-20}"
fi
