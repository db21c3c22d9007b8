#!/usr/bin/env bash
# Checks the include direction of docs/architecture.md on every source file
# under ROOT (default: the repository):
#
#   lib/        includes lib/ only
#   probes/     lib/, probes/
#   alerts/     lib/, alerts/
#   migration/  lib/, probes/, alerts/, migration/
#   daemon/     lib/, probes/, alerts/, daemon/
#   tools/      everything above, and tools/
#   fuzz/       everything but tools/ and tests/, and fuzz/
#   tests/      anything; nothing outside tests/ includes tests/
#
# Prints every include that runs the wrong way as FILE:LINE: PART includes
# HEADER, and exits 1 if there is one.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

declare -A allowed=(
  [lib]="lib"
  [probes]="lib probes"
  [alerts]="lib alerts"
  [migration]="lib probes alerts migration"
  [daemon]="lib probes alerts daemon"
  [tools]="lib probes alerts migration daemon tools"
  [fuzz]="lib probes alerts migration daemon fuzz"
)

violations=0
checked=0
while IFS= read -r -d '' file; do
  part=${file%%/*}
  [[ -n ${allowed[$part]:-} ]] || continue
  checked=$((checked + 1))
  while IFS=: read -r line header; do
    target=${header%%/*}
    [[ $header == */* ]] || continue
    ok=0
    for part_ok in ${allowed[$part]}; do [[ $target == "$part_ok" ]] && ok=1; done
    if [[ $ok == 0 ]]; then
      echo "$file:$line: $part/ includes $header"
      violations=$((violations + 1))
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]+"' "$file" |
           sed -E 's/^([0-9]+):.*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1:\2/')
done < <(find lib probes alerts migration daemon tools fuzz -type f \
           \( -name '*.h' -o -name '*.hpp' -o -name '*.cpp' -o -name '*.cc' \) -print0 2>/dev/null)

if [[ $checked == 0 ]]; then
  echo "check-includes: no source files under $root" >&2
  exit 2
fi
if [[ $violations -gt 0 ]]; then
  echo "check-includes: $violations include(s) run the wrong way (see docs/architecture.md)"
  exit 1
fi
echo "check-includes: $checked files, every include runs one way"
