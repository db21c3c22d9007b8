#!/usr/bin/env bash
# Walks a program's help: prints the program's --help and that of every
# command listed under "Commands:" or "Subcommands:", one level deep below a
# command (ringwatch lab up), each after a line "@@ <program> [<command>...]".
# The man pages and the bash completion are generated from this one text, so
# they follow the help (packaging/README.md).
#
# Usage: help-tree.sh PROGRAM...
set -euo pipefail

# The names listed under a "Commands:" or "Subcommands:" heading: lines
# indented by exactly two spaces, up to the next blank line.
commands_of() {
  awk '/^(Sub)?[Cc]ommands:$/ { listing = 1; next }
       /^$/ { listing = 0 }
       listing && /^  [a-z][a-z0-9-]*( |$)/ { print $1 }'
}

walk() {
  local program=$1 depth=$2
  shift 2
  local help
  help=$("$program" "$@" --help)
  printf '@@ %s' "$(basename "$program")"
  [[ $# -gt 0 ]] && printf ' %s' "$@"
  printf '\n%s\n' "$help"
  [[ $depth -lt 2 ]] || return 0
  local command
  for command in $(commands_of <<<"$help"); do
    walk "$program" $((depth + 1)) "$@" "$command"
  done
}

for program in "$@"; do
  walk "$program" 0
done
