#!/usr/bin/env bash
# The generated bash completion completes what the programs accept: every
# word list is compared with the list the program itself prints when given a
# wrong word (its own table), so a help text that forgets a subcommand, a
# format or a fault kind fails here. Runs once with plain bash and once with
# the bash-completion package loaded, when it is installed.
#
# Usage: completion_test.sh COMPLETION_SCRIPT RINGWATCH RINGWATCHD
set -uo pipefail
script=$1 ringwatch=$2 ringwatchd=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/labdir" "$scratch/other"
touch "$scratch/plan.json"

# The words a program lists in an error message: "... (a, b or c)" or
# "... must be a, b or c" / "expected a, b or c", sorted, one line.
listed() {
  sed -n -e 's/.*(\(known: \)\{0,1\}\([^)]*\)).*/\2/p' -e 's/.*\(must be\|expected\) \(.*\)$/\2/p' |
    head -n 1 | sed 's/,/ /g; s/ or / /' | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}

run_cases() {
  local failures=0
  complete_line() {
    local line=$1
    read -ra COMP_WORDS <<<"$line"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$line
    COMP_POINT=${#line}
    COMPREPLY=()
    _ringwatch_complete 2>/dev/null
    printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
  }
  expect() {
    local line=$1 want=$2 got
    got=$(complete_line "$line")
    if [[ $got != "$want" ]]; then
      echo "FAIL ($mode): '$line' completes to '$got', expected '$want'"
      failures=$((failures + 1))
    fi
  }
  expect_has() {
    local line=$1 word=$2 got
    got=" $(complete_line "$line") "
    if [[ $got != *" $word "* ]]; then
      echo "FAIL ($mode): '$line' completes to '$got', which lacks '$word'"
      failures=$((failures + 1))
    fi
  }

  # Lists the programs print themselves.
  expect "ringwatch lab " "$("$ringwatch" lab nosuch 2>&1 | listed)"
  expect "ringwatch migrate " "$("$ringwatch" migrate nosuch --state "$scratch/none" 2>&1 | listed)"
  expect "ringwatch lab fault --dir $scratch/labdir " \
    "$("$ringwatch" lab fault --dir "$scratch/none" nosuch 2>&1 | listed)"
  expect "ringwatch probe --format " \
    "$("$ringwatch" probe --cluster x --format nosuch 2>&1 | listed)"
  expect "ringwatch probe --cluster x --checks " \
    "$("$ringwatch" probe --cluster x --checks nosuch 2>&1 | listed)"
  expect "ringwatchd --log-level " "$("$ringwatchd" --cluster x --log-level nosuch 2>&1 | listed)"

  # Commands, options, lists and paths.
  for command in probe lab migrate version; do expect_has "ringwatch " "$command"; done
  expect "ringwatch pr" "probe"
  expect "ringwatch lab ro" "roll-proxies"
  expect "ringwatch lab fault --dir $scratch/labdir --ba" "--backend"
  expect_has "ringwatch probe --" "--cluster"
  expect_has "ringwatch probe --cluster x --" "--format"
  expect_has "ringwatch migrate status --" "--state"
  expect "ringwatch lab up --ne" "--netns"
  expect "ringwatch probe --checks canary,d" "canary,dns"
  expect "ringwatch migrate status --state $scratch/o" "$scratch/other"
  expect "ringwatch lab up --dir $scratch/lab" "$scratch/labdir"
  expect "ringwatch migrate run --plan $scratch/pl" "$scratch/plan.json"
  expect "ringwatch lab fault --dir $scratch/labdir eject --" "--answer --backend --dir --hash --help --proxy"
  expect_has "ringwatchd --" "--fleet"
  expect_has "ringwatchd --" "--version"
  return "$failures"
}

status=0
mode=plain
# shellcheck source=/dev/null
source "$script"
run_cases || status=1
if [[ -r /usr/share/bash-completion/bash_completion ]]; then
  mode=bash-completion
  status_with=$(
    # shellcheck source=/dev/null
    source /usr/share/bash-completion/bash_completion
    # shellcheck source=/dev/null
    source "$script"
    run_cases
    echo "rc=$?"
  )
  echo "$status_with" | grep -v '^rc='
  [[ $status_with == *"rc=0" ]] || status=1
fi
[[ $status -eq 0 ]] && echo "completion: all cases pass"
exit "$status"
