// completion: the bash completion script. It knows no verbs itself; it
// asks the binary it completes for (lotsectl __complete), so the script
// never falls out of step with the verb table.
#include "tools/lotsectl/internal/cli.h"

namespace lotse::lotsectl {

std::string BashCompletionScript() {
  return R"(# bash completion for lotsectl; load with: source <(lotsectl completion bash)
_lotsectl() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local IFS=$'\n'
  local candidates
  candidates=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null) || return 0
  COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
}
complete -o default -F _lotsectl lotsectl
)";
}

}  // namespace lotse::lotsectl
