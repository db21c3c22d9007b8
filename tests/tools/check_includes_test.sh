#!/usr/bin/env bash
# tools/check-includes.sh must catch what it is there for: an upward include
# in lib/, a sibling include between probes/ and alerts/, and tools/ reaching
# into tests/; and pass a tree that runs one way.
set -euo pipefail
script=$1
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{lib/spec,probes,alerts,tools/bench,tests}
printf '#include "lib/spec/x.h"\n' >"$tree/probes/ok.h"
printf '#include "probes/probe.h"\n' >"$tree/lib/spec/bad.h"
"$script" "$tree" >/dev/null && { echo "passed a tree with lib/ including probes/"; exit 1; }
out=$("$script" "$tree" || true)
grep -qx 'lib/spec/bad.h:1: lib/ includes probes/probe.h' <<<"$out" || { echo "unexpected: $out"; exit 1; }

rm "$tree/lib/spec/bad.h"
printf '#include "alerts/sink.h"\n' >"$tree/probes/bad.cpp"
printf '#include "tests/support/x.h"\n' >"$tree/tools/bench/bad.cpp"
out=$("$script" "$tree" || true)
grep -qx 'probes/bad.cpp:1: probes/ includes alerts/sink.h' <<<"$out" || { echo "unexpected: $out"; exit 1; }
grep -qx 'tools/bench/bad.cpp:1: tools/ includes tests/support/x.h' <<<"$out" || { echo "unexpected: $out"; exit 1; }

rm "$tree/probes/bad.cpp" "$tree/tools/bench/bad.cpp"
"$script" "$tree" >/dev/null || { echo "failed a tree that runs one way"; exit 1; }
echo "check-includes catches upward, sideways and test includes"
