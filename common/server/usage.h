// What `--help` prints for a Lotse binary: a usage text, then the flags the
// binary defines, grouped by purpose, each with its default and help text.
// Abseil's own flags (--flagfile, --fromenv, ...) are left out; --helpfull,
// which Abseil handles, still lists every flag of every library.
//
// `--help` (or `-help`) before any "--" argument prints to stdout and exits
// 0 without doing anything else. Abseil's other help flags (--helpfull,
// --helpshort, --help=substring) keep their meaning.
#ifndef LOTSE_COMMON_SERVER_USAGE_H_
#define LOTSE_COMMON_SERVER_USAGE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lotse::server {

// A heading in --help and the flags listed under it, in this order. Names
// without dashes; names the binary does not define are skipped.
struct FlagGroup {
  std::string title;
  std::vector<std::string> flags;
};

// `text` re-wrapped into lines of at most 80 columns (words split at
// spaces and line breaks), each line ending in '\n'.
std::string WrapText(absl::string_view text);

// The --help text: `usage`, then `groups` (groups with the same title are
// merged, the first one's position wins), then every other flag defined
// outside Abseil under "Other", so none is ever hidden.
std::string HelpText(absl::string_view usage,
                     const std::vector<FlagGroup>& groups);

// Sets `usage` as the program usage message (shown by --helpfull too) and
// handles --help as described above. Call once, before parsing flags.
void HandleHelpFlag(int argc, char** argv, absl::string_view usage,
                    const std::vector<FlagGroup>& groups);

// HandleHelpFlag, then absl::ParseCommandLine: the whole flag parsing of a
// command-line tool. Returns the positional arguments.
std::vector<char*> ParseToolFlags(int argc, char** argv,
                                  absl::string_view usage,
                                  const std::vector<FlagGroup>& groups);

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_USAGE_H_
