// lotsectl's command line: the global options every verb shares (where the
// services are, which certificate to present, who acts and why, how to
// print), and the small flag parser the verbs use for their own flags.
//
// Global options may stand anywhere on the command line, before or after
// the verb. Each has an environment variable that is used when the flag is
// absent; a flag always wins over the environment. Flag names accept '-' and
// '_' alike (--tls_dir and --tls-dir), and --name=value as well as
// --name value.
#ifndef LOTSE_TOOLS_LOTSECTL_INTERNAL_OPTIONS_H_
#define LOTSE_TOOLS_LOTSECTL_INTERNAL_OPTIONS_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lotse::lotsectl {

// The services a verb can talk to, and their default addresses (the ports
// tools/lotse.sh runs them on).
inline constexpr const char* kServiceNames[] = {"identity", "cases", "courses",
                                                "placement"};

// table: for people; json: protobuf JSON for scripts; name: only the
// resource name(s) of the answer, one a line, for shell variables.
enum class OutputFormat { kTable, kJson, kName };

struct GlobalOptions {
  // Mutual TLS: either a dev-PKI directory and a client name under
  // <dir>/clients/, or explicit PEM files. Explicit files win.
  std::string tls_dir;  // --tls_dir, LOTSE_TLS_DIR
  std::string client;   // --client, LOTSE_CLIENT
  std::string cert;     // --cert, LOTSE_CERT
  std::string key;      // --key, LOTSE_KEY
  std::string ca;       // --ca, LOTSE_CA
  // Name the server certificate must carry when it differs from the host
  // of the target (--server_name, LOTSE_SERVER_NAME).
  std::string server_name;
  // host:port per service name (--identity, LOTSE_IDENTITY, ...).
  std::map<std::string, std::string> targets;
  // The acting caseworker and the purpose of the call, sent as
  // x-lotse-actor / x-lotse-purpose. An empty purpose means the verb's
  // default purpose.
  std::string actor;    // --actor, LOTSE_ACTOR (default: $USER)
  std::string purpose;  // --purpose, LOTSE_PURPOSE
  OutputFormat output = OutputFormat::kTable;  // -o/--output, LOTSE_OUTPUT
  // -o FILE.html / -o FILE.json: a report written to a file (only the
  // report command takes one; FILE.json also sets output to kJson).
  std::string output_file;
  absl::Duration timeout = absl::Seconds(30);  // --timeout, LOTSE_TIMEOUT
  // Idempotency key for creating calls; empty: a fresh random one per call.
  std::string request_id;  // --request_id
  bool help = false;       // -h/--help
};

// Where environment variables come from; tests pass a fake.
using EnvLookup = std::function<const char*(const char*)>;

// Removes the global options from `args` (argv without the program name)
// and returns them, completed from the environment. What is left in `args`
// is the verb and its own flags, in their order. INVALID_ARGUMENT names
// the option when a value is missing or malformed (e.g. -o yaml).
absl::StatusOr<GlobalOptions> ExtractGlobalOptions(
    std::vector<std::string>& args, const EnvLookup& env);

// The global options with their environment variables and help, for usage
// text and shell completion.
struct OptionHelp {
  std::string flag;  // "--tls_dir DIR"
  std::string env;   // "LOTSE_TLS_DIR", or empty
  std::string help;
};
const std::vector<OptionHelp>& GlobalOptionHelp();

// A verb's own flag: whether it takes a value.
struct FlagDef {
  std::string name;  // without dashes, words joined by '-'
  bool takes_value = true;
};

// The words and flags of a verb's command line.
struct VerbArgs {
  std::vector<std::string> positional;
  // Flag name (with '-' between words) -> values in command-line order; a
  // flag without value maps to {"true"}.
  std::map<std::string, std::vector<std::string>> flags;
};

// Splits `args` by `defs`. A word after "--" is positional even when it
// starts with a dash. INVALID_ARGUMENT for an unknown flag or a missing
// value.
absl::StatusOr<VerbArgs> ParseVerbArgs(const std::vector<std::string>& args,
                                       const std::vector<FlagDef>& defs);

// "tls_dir" and "tls-dir" are the same flag.
std::string NormalizeFlagName(absl::string_view name);

}  // namespace lotse::lotsectl

#endif  // LOTSE_TOOLS_LOTSECTL_INTERNAL_OPTIONS_H_
