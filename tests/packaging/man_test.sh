#!/usr/bin/env bash
# The generated man pages say what the help and docs/spec.md say: groff
# renders them without warnings, every option of every command's help is a
# tagged paragraph of ringwatch(1) or ringwatchd(8) (under its command's
# heading, when the command has one), and every field and heading of
# docs/spec.md is in ringwatch-spec(5).
#
# Usage: man_test.sh MAN_DIR RINGWATCH RINGWATCHD SPEC_MD
set -uo pipefail
man_dir=$1 ringwatch=$2 ringwatchd=$3 spec_md=$4
here=$(cd "$(dirname "$0")" && pwd)
help_tree=$here/../../packaging/help-tree.sh
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

for page in ringwatch.1 ringwatchd.8 ringwatch-spec.5; do
  [[ -s $man_dir/$page ]] || { fail "$page was not generated"; continue; }
  # Long table cells may not be adjustable; anything else is a defect.
  warnings=$(groff -t -man -Tutf8 -ww -z "$man_dir/$page" 2>&1 | grep -v 'cannot adjust line\|cannot break line')
  [[ -z $warnings ]] || fail "$page: groff: $warnings"
done

# "<command heading or program> <option>" for every tag of a man page.
man_tags() {
  awk -v program="$1" '
    /^\.SH / { heading = program; next }
    /^\.SS "/ { heading = $0; sub(/^\.SS "/, "", heading); sub(/:?"$/, "", heading); next }
    /^\.TP/ { tag = 1; next }
    tag {
      tag = 0
      line = $0
      gsub(/\\f[BIRP]|\\[,\/&]/, "", line)
      gsub(/\\-/, "-", line)
      while (match(line, /--[a-z0-9][a-z0-9-]*/)) {
        print heading "\t" substr(line, RSTART, RLENGTH)
        line = substr(line, RSTART + RLENGTH)
      }
    }' "$2" | sort -u
}
# "<command> <option>" for every option line of every command's help.
help_options() {
  "$help_tree" "$1" | awk '
    /^@@ / { node = substr($0, 4); options = 0; next }
    /[Oo]ptions:$/ { options = 1; next }
    /^$/ { options = 0 }
    options && /^  +-/ {
      line = $0
      while (match(line, /--[a-z0-9][a-z0-9-]*/)) {
        print node "\t" substr(line, RSTART, RLENGTH)
        line = substr(line, RSTART + RLENGTH)
        sub(/^ \].*/, "", line)  # -h [ --help ]: the long name ends the names
        if (line !~ /^ *\[ --/) break
      }
    }' | sort -u
}

check_page() {
  local program=$1 page=$2
  man_tags "$(basename "$program")" "$man_dir/$page" >"$scratch/tags"
  help_options "$program" >"$scratch/options"
  # Every option somewhere in the page...
  missing=$(cut -f2 "$scratch/options" | sort -u | comm -23 - <(cut -f2 "$scratch/tags" | sort -u))
  [[ -z $missing ]] || fail "$page lacks options: $missing"
  # ...and under a command's heading exactly the options of its help.
  while read -r heading; do
    diff <(grep -F "$heading$(printf '\t')--" "$scratch/tags") \
      <(grep -F "$heading$(printf '\t')--" "$scratch/options") \
      >"$scratch/diff" || fail "$page, $heading: man (<) and help (>) differ: $(cat "$scratch/diff")"
  done < <(comm -12 <(cut -f1 "$scratch/tags" | sort -u) <(cut -f1 "$scratch/options" | sort -u))
}
check_page "$ringwatch" ringwatch.1
check_page "$ringwatchd" ringwatchd.8
grep -q '^\.SS "ringwatch lab fault:"' "$man_dir/ringwatch.1" || fail "ringwatch.1 has no lab fault section"

# ringwatch-spec(5): every field in a table's first column, every heading.
groff -t -man -Tutf8 -P-cbou -rLL=200n "$man_dir/ringwatch-spec.5" 2>/dev/null >"$scratch/spec.txt"
while read -r field; do
  grep -qF -- "$field" "$scratch/spec.txt" || fail "ringwatch-spec.5 lacks the field $field"
done < <(sed -n 's/^| `\([^`]*\)` *|.*/\1/p' "$spec_md")
while read -r heading; do
  grep -qiF -- "$heading" "$scratch/spec.txt" || fail "ringwatch-spec.5 lacks the heading $heading"
done < <(sed -n 's/^##* //p' "$spec_md" | tr -d '`' | sed '1d')

[[ $failures -eq 0 ]] && echo "man pages: all checks pass"
exit $((failures > 0))
