#!/usr/bin/env bash
# The README's first command: on a fresh Debian 12 machine (as root), install
# what is missing, build, start a lab (3 proxies, 3 backends), break it the way
# the incident did (proxy p2 ejects backend b3 because b3's address pointed at
# its public stand-in), probe it, print the report, stop the lab.
# Exits with the probe's exit code: 2 (CRITICAL) is the expected outcome.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/install-deps.sh"
RINGWATCH_TARGETS=ringwatch "$root/tools/build.sh"
ringwatch=${RINGWATCH_BUILD_DIR:-$root/build}/tools/ringwatch

lab=$(mktemp -d /tmp/ringwatch-demo.XXXXXX)/lab
trap '"$ringwatch" lab down --dir "$lab" >/dev/null || true' EXIT
echo "== ringwatch lab up --dir $lab"
"$ringwatch" lab up --dir "$lab"
echo "== healthy: ringwatch probe --cluster $lab/cluster.json"
"$ringwatch" probe --cluster "$lab/cluster.json" --color never
echo
echo "== ringwatch lab fault --dir $lab eject --proxy p2 --backend b3"
"$ringwatch" lab fault --dir "$lab" eject --proxy p2 --backend b3
echo "== ringwatch probe --cluster $lab/cluster.json"
status=0
"$ringwatch" probe --cluster "$lab/cluster.json" || status=$?
echo "== probe exit code: $status"
exit "$status"
