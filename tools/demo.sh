#!/usr/bin/env bash
# The README's first command: on a fresh Debian 12 machine (as root), install
# what is missing, build, start a lab (3 proxies, 3 backends), break it the way
# the incident did (proxy p2 ejects backend b3 because b3's address pointed at
# its public stand-in), probe it, print the report; then heal it and migrate
# it onto three new backends with the example plan, every step gated on the
# probes (tools/examples/lab-migration.json); stop the lab.
# Exits with the faulted probe's exit code, 2 (CRITICAL), the expected
# outcome, or 3 if the migration did not finish.
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
echo
echo "== ringwatch lab heal --dir $lab"
"$ringwatch" lab heal --dir "$lab"
plan=$root/tools/examples/lab-migration.json
state=$(dirname "$lab")/migration
echo "== ringwatch migrate plan --plan $plan --var lab=$lab"
"$ringwatch" migrate plan --plan "$plan" --var lab="$lab"
echo "== ringwatch migrate run --plan $plan --var lab=$lab --state $state"
if ! "$ringwatch" migrate run --plan "$plan" --var lab="$lab" --state "$state"; then
  echo "== the migration did not finish; see $state" >&2
  exit 3
fi
echo "== ringwatch migrate status --state $state"
"$ringwatch" migrate status --state "$state"
echo "== after the migration: ringwatch probe --cluster $lab/cluster.json"
"$ringwatch" probe --cluster "$lab/cluster.json" --color never
echo "== exit code of the faulted probe: $status"
exit "$status"
