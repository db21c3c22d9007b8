#!/usr/bin/env bash
# Makes what the package ships beside the programs, from the programs' help
# and from docs/, so none of it is kept by hand: ringwatch.1, ringwatchd.8
# (help2man over man/help2man-input.sh), ringwatch-spec.5 (man/md2man.awk over
# docs/spec.md), each also gzipped as Debian ships man pages, and the bash
# completion (completion/generate.sh).
#
# Usage: make-docs.sh OUTDIR RINGWATCH RINGWATCHD VERSION
set -euo pipefail
out=$1 ringwatch=$2 ringwatchd=$3 version=$4
source_dir=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out/man" "$out/completion"

man_page() {
  local program=$1 section=$2 name=$3
  local page="$out/man/$(basename "$program").$section"
  RINGWATCH_MAN_PROGRAM=$program help2man --no-info --section="$section" --name="$name" \
    --include="$source_dir/man/$(basename "$program").h2m" --output="$page" \
    "$source_dir/man/help2man-input.sh"
}
man_page "$ringwatch" 1 "keeps memcached clusters behind sharding proxies honest"
man_page "$ringwatchd" 8 "probes a fleet of memcached clusters on a schedule"
awk -v name=ringwatch-spec -v section=5 -v title="cluster spec file format" -v version="$version" \
  -v source=docs/spec.md -f "$source_dir/man/md2man.awk" "$source_dir/docs/spec.md" \
  >"$out/man/ringwatch-spec.5"
for page in "$out"/man/*.[0-9]; do
  gzip -9n -c "$page" >"$page.gz"
done

"$source_dir/completion/generate.sh" "$ringwatch" "$ringwatchd" >"$out/completion/ringwatch"
ln -sfn ringwatch "$out/completion/ringwatchd"
