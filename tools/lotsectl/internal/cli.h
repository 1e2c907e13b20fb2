// lotsectl as a function: the command line in, the exit code out, output
// on the given streams. main() is this plus the process's environment and
// Ctrl-C handling; tests call it directly where no service is needed.
//
// Command line: lotsectl [global options] <group> <verb> [flags] [words],
// or one of the top-level commands:
//   call <service> <Method> [--json JSON|@FILE|-]   any RPC, protobuf JSON
//   completion bash                                 the bash completion
//   report ...                                      reserved (not built in)
//   help [<group> [<verb>]]                         same as --help
// The exit codes are those of exit_codes.h.
#ifndef LOTSE_TOOLS_LOTSECTL_INTERNAL_CLI_H_
#define LOTSE_TOOLS_LOTSECTL_INTERNAL_CLI_H_

#include <iosfwd>
#include <string>
#include <vector>

#include "tools/lotsectl/internal/options.h"
#include "tools/lotsectl/internal/verb.h"

namespace lotse::lotsectl {

// Runs one command line (`args` without the program name). `in` is read
// for --json -.
int RunCommandLine(std::vector<std::string> args, const EnvLookup& env,
                   std::istream& in, std::ostream& out, std::ostream& err);

// The generic call: `lotsectl call <service> <Method> ...`. `args` starts
// after "call".
int RunCall(const std::vector<std::string>& args, const GlobalOptions& options,
            std::istream& in, std::ostream& out, std::ostream& err);

// The bash completion script (`lotsectl completion bash`): completes by
// asking `lotsectl __complete <words>` for the candidates of the next word.
std::string BashCompletionScript();

// The candidates for the word after `words` (the words typed so far, the
// program name excluded): groups and commands, then a group's verbs, then
// a verb's flags (and enum values after a flag that takes one), services
// and methods for `call`.
std::vector<std::string> CompletionCandidates(
    const std::vector<std::string>& words);

}  // namespace lotse::lotsectl

#endif  // LOTSE_TOOLS_LOTSECTL_INTERNAL_CLI_H_
