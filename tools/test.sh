#!/usr/bin/env bash
# The README's second command (and CI's): install what is missing, build with
# warnings as errors, run the whole test suite; then build with ASan+UBSan and
# run the tests again.
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
  # the first pass, is enough. The 1,000-proxy lab (label `bigfleet`) is too
  # slow for 2 cores under ASan; shared_nutcracker_lab_test covers its
  # mechanics there.
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$root/build-asan" --output-on-failure --timeout 600 --label-exclude "package|bigfleet"
fi
