# The completion function for ringwatch and ringwatchd. It reads only the
# word tables above it, generated from the programs' --help (words.awk):
#   _ringwatch_subs[PATH]        commands or subcommands of PATH ("ringwatch lab")
#   _ringwatch_opts[PATH]        options of PATH
#   _ringwatch_arg[PATH OPTION]  the option's value name, if it takes a value
#   _ringwatch_vals[PATH OPTION] the values it accepts, if they are a fixed set
#   _ringwatch_list[PATH OPTION] set when the value is a comma-separated list
#   _ringwatch_pos[PATH]         words for PATH's positional argument
# Works with and without the bash-completion package.

_ringwatch_complete() {
  local cur prev words cword split=false
  if declare -F _init_completion >/dev/null; then
    _init_completion -s || return
  else
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
  fi

  # The command path: the program, then each word that names a subcommand of
  # the path so far, skipping options and their values.
  local path=${words[0]##*/} i word positional=""
  for ((i = 1; i < cword; i++)); do
    word=${words[i]}
    if [[ $word == -* ]]; then
      [[ $word != *=* && -n ${_ringwatch_arg["$path $word"]+set} ]] && ((i++))
    elif [[ " ${_ringwatch_subs[$path]-} " == *" $word "* ]]; then
      path+=" $word"
    else
      positional=$word
    fi
  done

  local key="$path $prev"
  if [[ $split == true || -n ${_ringwatch_arg[$key]+set} ]] && [[ $prev == -* ]]; then
    if [[ -n ${_ringwatch_vals[$key]+set} ]]; then
      local done_part=""
      if [[ -n ${_ringwatch_list[$key]+set} && $cur == *,* ]]; then
        done_part=${cur%,*},
        compopt -o nospace 2>/dev/null
      fi
      mapfile -t COMPREPLY < <(compgen -P "$done_part" -W "${_ringwatch_vals[$key]}" -- "${cur#"$done_part"}")
    else
      case ${_ringwatch_arg[$key]-} in
        DIR) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
        FILE | SPEC | PLAN) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        *) COMPREPLY=() ;;
      esac
    fi
    return
  fi

  if [[ $cur != -* && -z $positional ]]; then
    local candidates="${_ringwatch_subs[$path]-} ${_ringwatch_pos[$path]-}"
    if [[ -n ${candidates// /} ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$candidates" -- "$cur")
      return
    fi
  fi
  mapfile -t COMPREPLY < <(compgen -W "${_ringwatch_opts[$path]-}" -- "$cur")
}

complete -F _ringwatch_complete ringwatch ringwatchd
