# Converts the Markdown of docs/*.md into a man page, so a page like
# ringwatch-spec(5) is made from the document and never drifts from it.
# It knows the Markdown those documents use: headings (# is the title, ##
# becomes .SH, ### .SS), paragraphs, fenced code, "- " lists with indented
# continuation lines, pipe tables (tbl), and inline `code`, **bold** and
# [links](url). The page declares tbl in its first line ('\" t), as man-db
# expects.
#
# Usage: awk -v name=ringwatch-spec -v section=5 -v title="cluster spec file format" \
#            -v version=0.1.0 -v source=docs/spec.md -f md2man.awk docs/spec.md

function escape(text) {
  gsub(/\\/, "\\e", text)
  return text
}

# Inline markup; `code` keeps its hyphens as minus signs (options, names).
function inline(text,    out, code, start, span) {
  text = escape(text)
  out = ""
  while (match(text, /`[^`]+`/)) {
    start = RSTART  # plain() matches too
    span = RLENGTH
    code = substr(text, start + 1, span - 2)
    gsub(/-/, "\\-", code)
    out = out plain(substr(text, 1, start - 1)) "\\fB" code "\\fR"
    text = substr(text, start + span)
  }
  return out plain(text)
}

function plain(text,    link, label, url) {
  while (match(text, /\*\*[^*]+\*\*/))
    text = substr(text, 1, RSTART - 1) "\\fB" substr(text, RSTART + 2, RLENGTH - 4) "\\fR" \
           substr(text, RSTART + RLENGTH)
  while (match(text, /\[[^]]+\]\([^)]+\)/)) {
    link = substr(text, RSTART, RLENGTH)
    label = link
    sub(/\]\(.*/, "", label)
    sub(/^\[/, "", label)
    url = link
    sub(/^[^]]*\]\(/, "", url)
    sub(/\)$/, "", url)
    text = substr(text, 1, RSTART - 1) label " <" url ">" substr(text, RSTART + RLENGTH)
  }
  return text
}

# A line of running text: a leading dot or quote would be a request.
function line_out(text) {
  if (text ~ /^[.']/) text = "\\&" text
  print text
}

function cells(row, out,    n, i) {
  sub(/^ *\| */, "", row)
  sub(/ *\| *$/, "", row)
  n = split(row, out, / *\| */)
  for (i = 1; i <= n; i++) out[i] = inline(out[i])
  return n
}

function end_block() {
  if (in_table) {
    print ".TE"
    in_table = 0
  }
  in_list = 0
  in_paragraph = 0
}

function table_row(row,    n, i, parts, out) {
  n = cells(row, parts)
  out = ""
  for (i = 1; i <= n; i++) out = out (i > 1 ? "\t" : "") "T{\n" parts[i] "\nT}"
  print out
}

BEGIN {
  print "'\\\" t"
  printf ".\\\" Generated from %s by man/md2man.awk: edit the document, not this page.\n", source
  printf ".TH %s %s \"\" \"ringwatch %s\" \"ringwatch\"\n", toupper(name), section, version
  print ".SH NAME"
  printf "%s \\- %s\n", name, title
}

in_code {
  if ($0 ~ /^```/) {
    print ".fi"
    print ".RE"
    in_code = 0
  } else {
    line = escape($0)
    if (line ~ /^[.']/) line = "\\&" line
    print line
  }
  next
}

/^```/ {
  end_block()
  print ".PP"
  print ".RS 4"
  print ".nf"
  in_code = 1
  next
}

/^# / { end_block(); print ".SH DESCRIPTION"; next }
/^## / { end_block(); print ".SH " toupper(inline(substr($0, 4))); next }
/^### / { end_block(); print ".SS \"" inline(substr($0, 5)) "\""; next }

/^\|/ {
  if (!in_table) {
    end_block()
    columns = cells($0, header)
    format = ""
    for (i = 1; i <= columns; i++) format = format (i > 1 ? " " : "") (i < columns ? "lb" : "lbx")
    body = ""
    for (i = 1; i <= columns; i++) body = body (i > 1 ? " " : "") (i < columns ? "l" : "lx")
    print ".PP"
    print ".TS"
    print "allbox tab(\t);"
    print format
    print body "."
    table_row($0)
    in_table = 1
    next
  }
  if ($0 ~ /^\|[-| :]+\|$/) next
  table_row($0)
  next
}

/^$/ { end_block(); next }

/^- / {
  if (in_table) end_block()
  print ".IP \\(bu 2"
  line_out(inline(substr($0, 3)))
  in_list = 1
  next
}

in_list && /^  / {
  text = $0
  sub(/^ +/, "", text)
  line_out(inline(text))
  next
}

{
  if (in_table) end_block()
  if (!in_paragraph) {
    print ".PP"
    in_paragraph = 1
  }
  line_out(inline($0))
}

END { end_block() }
