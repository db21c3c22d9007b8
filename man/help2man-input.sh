#!/usr/bin/env bash
# What help2man reads for ringwatch(1) and ringwatchd(8): run by help2man as
# `help2man-input.sh --help` and `--version`, with the real program in
# $RINGWATCH_MAN_PROGRAM. --version is the program's own. --help is the
# program's help followed by every command's and subcommand's
# (packaging/help-tree.sh), shaped into what help2man turns into sections:
#   - the commands' usage lines join the program's as "or:" lines (SYNOPSIS);
#   - the commands' helps go under a custom section "*Commands in detail*",
#     each behind a heading "ringwatch lab up:" (.SS) with its usage indented;
#   - a command's "Options:" caption is dropped, so its options stay under
#     its heading instead of starting help2man's OPTIONS section;
#   - a subcommand whose help is its group's again (ringwatch migrate status)
#     is left out, and that help, with its options, becomes the group's
#     section; a command without a usage line (ringwatch version) is left out.
set -euo pipefail
program=${RINGWATCH_MAN_PROGRAM:?set RINGWATCH_MAN_PROGRAM to the program to document}
here=$(cd "$(dirname "$0")" && pwd)

if [[ ${1:-} == --version ]]; then
  exec "$program" --version
fi
[[ ${1:-} == --help ]] || { echo "usage: RINGWATCH_MAN_PROGRAM=PROGRAM $0 --help|--version" >&2; exit 3; }

"$here/../packaging/help-tree.sh" "$program" | awk '
  /^@@ / {
    depth = split(substr($0, 4), ignored, " ")
    node = substr($0, 4)
    nodes[++count] = node
    next
  }
  { help[node] = help[node] $0 "\n" }
  END {
    top = nodes[1]
    # A group whose subcommands all print the group help with its options
    # (ringwatch migrate): the group section shows that fuller help.
    for (c = 2; c < count; c++) {
      child = nodes[c + 1]
      if (index(child, nodes[c] " ") != 1 || keep(child) || help[nodes[c]] ~ /[Oo]ptions:\n/) continue
      text = help[child]
      sub(/^[^\n]*\n\n?/, "", text)
      help[nodes[c]] = text
    }
    # The program help, with every command usage as an "or:" line after its own.
    n = split(help[top], lines, "\n")
    for (i = 1; i < n; i++) {
      print lines[i]
      if (lines[i] !~ /^Usage: /) continue
      for (c = 2; c <= count; c++) {
        if (!keep(nodes[c])) continue
        m = split(help[nodes[c]], command_lines, "\n")
        for (j = 1; j <= m; j++)
          if (sub(/^Usage: /, "   or: ", command_lines[j])) print command_lines[j]
      }
    }
    print ""
    print "*Commands in detail*"
    for (c = 2; c <= count; c++) {
      if (!keep(nodes[c])) continue
      print ""
      print nodes[c] ":"
      m = split(help[nodes[c]], command_lines, "\n")
      for (j = 1; j < m; j++) {
        line = command_lines[j]
        if (line ~ /^[A-Za-z ]*[Oo]ptions:$/) continue
        if (sub(/^Usage: /, "  ", line)) {
          print line
          continue
        }
        print line
      }
    }
  }
  function keep(node,    text, words) {
    text = help[node]
    if (text !~ /(^|\n)Usage: /) return 0
    # A subcommand that prints its group help again.
    if (split(node, words, " ") > 2 && text ~ /(^|\n)Subcommands:\n/) return 0
    return 1
  }'
