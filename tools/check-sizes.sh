#!/usr/bin/env bash
# Checks that no source file outside tests/ is over 900 lines (docs/architecture.md:
# a file that grows past that is two files). Functions are held under 120
# lines by review and clang-tidy:
#   clang-tidy -p build -checks='-*,readability-function-size' \
#     -config='{CheckOptions: [{key: readability-function-size.LineThreshold, value: 120}]}' FILE
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
limit=${2:-900}
cd "$root"
over=0
while IFS= read -r -d '' file; do
  lines=$(wc -l <"$file")
  if ((lines > limit)); then
    echo "$file: $lines lines (over $limit)"
    over=$((over + 1))
  fi
done < <(find lib probes alerts migration daemon tools -type f \( -name '*.cpp' -o -name '*.h' \) -print0)
((over == 0)) || exit 1
echo "check-sizes: no source file over $limit lines"
