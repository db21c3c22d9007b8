# Turns the help tree (packaging/help-tree.sh) into the completion's word
# tables, bash assignments to the associative arrays completion/complete.bash
# reads. What is read from the help, so that the completion follows it:
#
#   subcommands   the names under "Commands:" / "Subcommands:" of a program
#                 or of a command (not of a subcommand, whose help may repeat
#                 its group's list)
#   options       the option lines of an "...Options:" block (Boost's layout):
#                 "  -w [ --warning ] RANGE (=x)   description"; a value name
#                 after the option means it takes an argument
#   values        "--format text|json|nagios" anywhere in the help (a usage
#                 line), "a|b|c" in an option's description, a default
#                 "(=a,b,c)" (a comma-separated list, like --checks), or a
#                 lower-case value name (a literal, like "all")
#   positionals   the names under a "... kinds:" heading (lab fault's kinds)

function emit(array, key, value) {
  gsub(/'/, "", key)
  gsub(/'/, "", value)
  printf "_ringwatch_%s['%s']='%s'\n", array, key, value
}

function add_word(array, key, word) {
  if (!((array, key) in seen_table)) order[++keys] = array SUBSEP key
  seen_table[array, key] = 1
  if (index(" " table[array, key] " ", " " word " ")) return
  table[array, key] = (table[array, key] == "" ? word : table[array, key] " " word)
}

# Every "|"-separated run of words in `text` becomes values of the option
# named right before it (with `option` empty) or of `option`.
function alternatives(text, option,    run, name, words, n, i) {
  while (match(text, /(--[a-z0-9-]+[ =])?[a-z0-9_.-]+(\|[a-z0-9_.-]+)+/)) {
    run = substr(text, RSTART, RLENGTH)
    text = substr(text, RSTART + RLENGTH)
    name = option
    if (run ~ /^--/) {
      name = run
      sub(/[ =].*/, "", name)
      sub(/^[^ =]*[ =]/, "", run)
    }
    if (name == "") continue
    n = split(run, words, "|")
    for (i = 1; i <= n; i++) add_word("vals", path " " name, words[i])
  }
}

function option_line(line,    names, rest, value, description, n, i, defaults) {
  sub(/^ +/, "", line)
  if (match(line, /^-[A-Za-z0-9] \[ --[a-z0-9][a-z0-9-]* \]/)) {
    names = substr(line, 1, RLENGTH)
    gsub(/[][]/, "", names)
    gsub(/ +/, " ", names)
    sub(/ $/, "", names)
  } else {
    match(line, /^--[a-z0-9][a-z0-9-]*/)
    names = substr(line, 1, RLENGTH)
  }
  rest = substr(line, RLENGTH + 1)
  n = split(names, parts, / +/)
  long = parts[n]
  for (i = 1; i <= n; i++) add_word("opts", path, parts[i])
  value = ""
  if (rest ~ /^ [^ ]/) {
    value = rest
    sub(/^ /, "", value)
    sub(/ .*/, "", value)
    for (i = 1; i <= n; i++) emit("arg", path " " parts[i], value)
    if (value ~ /^[a-z][a-z0-9_.-]*$/ && value != "arg") add_word("vals", path " " long, value)
    if (value == "LIST") list[path " " long] = 1
  }
  if (match(rest, /\(=[^)]*,[^)]*\)/)) {
    defaults = substr(rest, RSTART + 2, RLENGTH - 3)
    n = split(defaults, words, ",")
    for (i = 1; i <= n; i++) add_word("vals", path " " long, words[i])
    list[path " " long] = 1
  }
  description = rest
  if (description ~ /^ [^ ]/) sub(/^ [^ ]+( \(=[^)]*\))?/, "", description)
  alternatives(description, long)
}

function flush(    i, key, parts) {
  for (i = 1; i <= keys; i++) {
    split(order[i], parts, SUBSEP)
    emit(parts[1], parts[2], table[parts[1], parts[2]])
  }
  for (key in list) emit("list", key, 1)
  delete table
  delete seen_table
  delete order
  delete list
  keys = 0
}

/^@@ / {
  flush()
  path = substr($0, 4)
  depth = split(path, ignored, " ")
  section = ""
  long = ""
  next
}

{ alternatives($0, "") }

/^$/ { section = ""; long = ""; next }

/^(Sub)?[Cc]ommands:$/ { section = depth < 3 ? "subs" : ""; next }
/[Oo]ptions:$/ { section = "options"; next }
/kinds:$/ { section = "pos"; next }

section == "subs" && /^  [a-z][a-z0-9-]*( |$)/ { add_word("subs", path, $1); next }
section == "pos" && /^  [a-z][a-z0-9-]*( |$)/ { add_word("pos", path, $1); next }
section == "options" && /^  +-/ { option_line($0); next }
# A description Boost wrapped onto the next lines still belongs to the option.
section == "options" && long != "" { alternatives($0, long) }

END { flush() }
