#!/usr/bin/env bash
# The README's second command (and CI's): install what is missing, build with
# warnings as errors, run the whole test suite; then build with ASan+UBSan
# (clang, in build-asan/, the libFuzzer targets of fuzz/ beside the tests) and
# run the tests again; then run each fuzz target for RINGWATCH_FUZZ_SECONDS
# (default 10: CI's budget is 40 minutes on 2 cores; run fuzz/run.sh longer
# by hand). RINGWATCH_SKIP_SANITIZERS=1 or RINGWATCH_SKIP_FUZZ=1 leave out
# the sanitized tests or the fuzzing.
#
# A green run means every test ran: each pass prints the tests that were
# skipped (the netns tests skip without CAP_NET_ADMIN), and a run as root
# (as CI runs, where nothing has a reason to skip) fails if any was.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/install-deps.sh"

# run_ctest BUILD_DIR CTEST_ARGS...: ctest with its output kept, then the
# skipped tests listed; fails as ctest did, or as root when a test skipped.
run_ctest() {
  local build=$1
  shift
  local log=$build/ctest-output.log status=0
  ctest --test-dir "$build" --output-on-failure "$@" 2>&1 | tee "$log" || status=$?
  # ctest ends with "The following tests did not run:" and one line per test.
  local skipped
  skipped=$(sed -n '/^The following tests did not run:/,/^$/p' "$log" | grep -E '^\s+[0-9]+ - ' || true)
  if [[ -n $skipped ]]; then
    echo "== skipped tests ($(wc -l <<<"$skipped")):"
    echo "$skipped"
    if [[ $(id -u) == 0 ]]; then
      echo "== FAIL: running as root, yet tests skipped (a missing program or capability?)"
      status=1
    else
      echo "== note: not root; the netns tests need CAP_NET_ADMIN (run as root, as CI does)"
    fi
  else
    echo "== skipped tests: none"
  fi
  return "$status"
}

echo "== build (warnings as errors)"
# -g1 (line tables, no variables' debug info): the same code as -g, built in
# about 40% less time (55 s -> 34 s for daemon/http_server.cpp), which CI's
# 40 minutes on 2 cores need. tools/build.sh alone keeps -g for developers.
RINGWATCH_BUILD_DIR=$root/build "$root/tools/build.sh" -DRINGWATCH_WERROR=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
echo "== tests"
# Two at a time: most tests wait on real programs and deadlines, not on the
# CPU; every test starts its programs on free ports of its own, so two run
# side by side as they do on a developer's machine.
run_ctest "$root/build" --timeout 300 -j2

# The second pass: one build with ASan+UBSan for the tests and, where clang
# is (install-deps.sh installs it), the libFuzzer targets beside them, so the
# sanitized libraries are compiled once, by clang, which builds this tree
# about a third faster than GCC does under the sanitizers (a separate fuzz
# build took another 6 of CI's 40 minutes). Without clang, GCC builds it for
# the tests alone.
run_sanitized_tests=$([[ ${RINGWATCH_SKIP_SANITIZERS:-0} != 1 ]] && echo 1 || echo 0)
run_fuzzers=$([[ ${RINGWATCH_SKIP_FUZZ:-0} != 1 ]] && command -v clang++-14 >/dev/null && echo 1 || echo 0)
if [[ $run_sanitized_tests == 1 || $run_fuzzers == 1 ]]; then
  sanitized_build=(-DRINGWATCH_WERROR=ON -DRINGWATCH_SANITIZE=ON
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
  if command -v clang++-14 >/dev/null; then
    echo "== build (ASan+UBSan, clang, with the libFuzzer targets)"
    # lld links the sanitized binaries in a fraction of ld.bfd's time.
    sanitized_build+=(-DCMAKE_CXX_COMPILER=clang++-14 -DRINGWATCH_FUZZ=ON
      -DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld -DCMAKE_SHARED_LINKER_FLAGS=-fuse-ld=lld)
  else
    echo "== build (ASan+UBSan, GCC; no clang, so no fuzzing)"
    sanitized_build+=(-DCMAKE_CXX_COMPILER=g++ -DRINGWATCH_FUZZ=OFF)
  fi
  # -O1 -g1: the build is most of this pass's time on 2 cores; line tables are
  # all a sanitizer's stack trace needs, and -O1 keeps its frames readable.
  # Only the fuzz targets when the tests are skipped.
  targets=$([[ $run_sanitized_tests == 1 ]] && echo "" || echo ringwatch_fuzz)
  RINGWATCH_BUILD_DIR=$root/build-asan RINGWATCH_TARGETS=$targets \
    "$root/tools/build.sh" "${sanitized_build[@]}"
fi

if [[ $run_sanitized_tests == 1 ]]; then
  echo "== tests under ASan+UBSan"
  # The package test (label `package`) builds and installs the .deb: once, in
  # the first pass, is enough. The 1,000-proxy lab (label `bigfleet`) is too
  # slow for 2 cores under ASan; shared_nutcracker_lab_test covers its
  # mechanics there. Nor does the 12x48 fault-equivalence test: its full
  # round (1,152 canaries read through each of 12 proxies) takes longer than
  # the lab's 1 s io deadline under ASan at -O1 next to another test; the
  # 3x3 one runs the same code here.
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_ctest "$root/build-asan" --timeout 600 -j2 --label-exclude "package|bigfleet" \
    --exclude-regex '^LinearRoundLabTest\.EveryFaultIsFoundInTheFirstRoundAsInAFullRoundOn12x48$'
fi

if [[ $run_fuzzers == 1 ]]; then
  echo "== fuzzing (${RINGWATCH_FUZZ_SECONDS:-10} s per target)"
  "$root/fuzz/run.sh" "$root/build-asan" "${RINGWATCH_FUZZ_SECONDS:-10}"
fi
