#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a while:
#   fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]
# BUILD_DIR is one configured with -DRINGWATCH_FUZZ=ON (tools/test.sh's
# build-asan/). Each target starts from its seed corpus, fuzz/corpus/<name>/
# (read only: what it finds goes to a scratch corpus), for SECONDS (default
# 20), two at a time. Exits 1 if any target crashed, hung, leaked or broke
# one of its properties; the input that did it is kept in
# BUILD_DIR/fuzz-findings/<name>/ (see fuzz/README.md: it becomes a
# regression test by moving into fuzz/regressions/<name>/).
#
# RINGWATCH_FUZZ_JOBS (default 2) targets run at once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]}" && pwd)
seconds=${2:-20}
shift $(($# < 2 ? $# : 2))
jobs=${RINGWATCH_FUZZ_JOBS:-2}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for binary in "$build"/fuzz/fuzz_*; do
    # fuzz_replay_<name>: the corpus replay test of a build with the tests.
    [[ ${binary##*/} == fuzz_replay_* ]] || targets+=("${binary##*/fuzz_}")
  done
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz/run.sh: no fuzz targets in $build/fuzz" >&2; exit 2; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
findings=$build/fuzz-findings

# One target: its own scratch corpus and log; a one-line summary.
run_one() {
  local name=$1 dir=$scratch/$1
  mkdir -p "$dir/corpus" "$dir/artifacts"
  # The regressions are read as seeds too: under clang's sanitizers, which
  # catch what the GCC replay tests may not (fuzz/regressions/spec).
  local seeds=("$root/fuzz/corpus/$name")
  [[ -d $root/fuzz/regressions/$name ]] && seeds+=("$root/fuzz/regressions/$name")
  local status=0
  "$build/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
    "$dir/corpus" "${seeds[@]}" >"$dir/log" 2>&1 || status=$?
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
  if [[ $status -eq 0 ]]; then
    echo "fuzz: $name: ok, ${runs:-?} runs in ${seconds} s"
    return 0
  fi
  mkdir -p "$findings/$name"
  cp "$dir"/artifacts/* "$findings/$name/" 2>/dev/null || true
  echo "fuzz: $name: FAILED (exit $status); inputs in $findings/$name/"
  grep -E 'ERROR|SUMMARY|fuzz:|runtime error' "$dir/log" | head -n 20 | sed 's/^/  /'
  return 1
}
export -f run_one
export build root seconds scratch findings

printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {}
