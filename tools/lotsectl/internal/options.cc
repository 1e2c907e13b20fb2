#include "tools/lotsectl/internal/options.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace lotse::lotsectl {
namespace {

// One global option: its normalized flag name, the environment variable
// that stands in for it, and where its value goes.
struct GlobalDef {
  const char* name;
  const char* alias;  // a short form such as "o", or nullptr
  const char* env;
  const char* value_name;  // nullptr for a switch
  const char* help;
};

const std::vector<GlobalDef>& GlobalDefs() {
  static const auto* const kDefs = new std::vector<GlobalDef>{
      {"tls-dir", nullptr, "LOTSE_TLS_DIR", "DIR",
       "dev-PKI directory (ca.crt, clients/<client>.crt/.key)"},
      {"client", nullptr, "LOTSE_CLIENT", "AGENCY",
       "client certificate name under <tls_dir>/clients/"},
      {"cert", nullptr, "LOTSE_CERT", "FILE",
       "client certificate (PEM); with --key and --ca instead of --tls_dir"},
      {"key", nullptr, "LOTSE_KEY", "FILE", "client private key (PEM)"},
      {"ca", nullptr, "LOTSE_CA", "FILE", "CA certificate(s) to trust (PEM)"},
      {"server-name", nullptr, "LOTSE_SERVER_NAME", "NAME",
       "name the server certificate must carry when it differs from the "
       "target host"},
      {"identity", nullptr, "LOTSE_IDENTITY", "HOST:PORT",
       "identity service (default 127.0.0.1:50051)"},
      {"cases", nullptr, "LOTSE_CASES", "HOST:PORT",
       "cases service (default 127.0.0.1:50052)"},
      {"courses", nullptr, "LOTSE_COURSES", "HOST:PORT",
       "courses service (default 127.0.0.1:50053)"},
      {"placement", nullptr, "LOTSE_PLACEMENT", "HOST:PORT",
       "placement service (default 127.0.0.1:50054)"},
      {"actor", nullptr, "LOTSE_ACTOR", "ID",
       "acting caseworker, sent as x-lotse-actor (default: $USER)"},
      {"purpose", nullptr, "LOTSE_PURPOSE", "CODE",
       "purpose of the access, sent as x-lotse-purpose (default: the verb's)"},
      {"output", "o", "LOTSE_OUTPUT", "table|json|name|FILE",
       "table for people (default), json for scripts (protobuf JSON), name "
       "for the resource name only; a report also takes FILE.html or "
       "FILE.json"},
      {"timeout", nullptr, "LOTSE_TIMEOUT", "DURATION",
       "deadline of each call, e.g. 30s (default 30s)"},
      {"request-id", nullptr, nullptr, "KEY",
       "idempotency key of a creating call (default: a fresh random one)"},
      {"help", "h", nullptr, nullptr, "this help, or a verb's help"},
  };
  return *kDefs;
}

const GlobalDef* FindGlobal(absl::string_view name) {
  for (const GlobalDef& def : GlobalDefs()) {
    if (name == def.name || (def.alias != nullptr && name == def.alias)) {
      return &def;
    }
  }
  return nullptr;
}

absl::Status Apply(const GlobalDef& def, const std::string& value,
                   GlobalOptions& options) {
  const absl::string_view name = def.name;
  if (name == "tls-dir") {
    options.tls_dir = value;
  } else if (name == "client") {
    options.client = value;
  } else if (name == "cert") {
    options.cert = value;
  } else if (name == "key") {
    options.key = value;
  } else if (name == "ca") {
    options.ca = value;
  } else if (name == "server-name") {
    options.server_name = value;
  } else if (name == "identity" || name == "cases" || name == "courses" ||
             name == "placement") {
    options.targets[std::string(name)] = value;
  } else if (name == "actor") {
    options.actor = value;
  } else if (name == "purpose") {
    options.purpose = value;
  } else if (name == "output") {
    if (value == "table") {
      options.output = OutputFormat::kTable;
    } else if (value == "json") {
      options.output = OutputFormat::kJson;
    } else if (value == "name") {
      options.output = OutputFormat::kName;
    } else if (absl::EndsWith(value, ".html")) {
      options.output_file = value;
    } else if (absl::EndsWith(value, ".json")) {
      options.output_file = value;
      options.output = OutputFormat::kJson;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--output must be table, json, name or (for a report) a file "
          "ending in .html or .json, not \"",
          value, "\""));
    }
  } else if (name == "timeout") {
    absl::Duration d;
    if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--timeout must be a positive duration such as 30s, not \"", value,
          "\""));
    }
    options.timeout = d;
  } else if (name == "request-id") {
    options.request_id = value;
  } else if (name == "help") {
    options.help = true;
  }
  return absl::OkStatus();
}

// Splits "--name=value" / "--name" / "-o" into a normalized name and an
// optional inline value; nullopt when `arg` is not a flag.
std::optional<std::pair<std::string, std::optional<std::string>>> SplitFlag(
    const std::string& arg) {
  if (arg.size() < 2 || arg[0] != '-' || arg == "--") return std::nullopt;
  absl::string_view body = arg;
  body.remove_prefix(body[1] == '-' ? 2 : 1);
  std::optional<std::string> value;
  size_t eq = body.find('=');
  if (eq != absl::string_view::npos) {
    value = std::string(body.substr(eq + 1));
    body = body.substr(0, eq);
  }
  return std::make_pair(NormalizeFlagName(body), value);
}

}  // namespace

std::string NormalizeFlagName(absl::string_view name) {
  return absl::StrReplaceAll(name, {{"_", "-"}});
}

absl::StatusOr<GlobalOptions> ExtractGlobalOptions(
    std::vector<std::string>& args, const EnvLookup& env) {
  GlobalOptions options;
  // Environment first, so that flags override it.
  for (const GlobalDef& def : GlobalDefs()) {
    if (def.env == nullptr) continue;
    const char* value = env(def.env);
    if (value == nullptr || *value == '\0') continue;
    absl::Status applied = Apply(def, value, options);
    if (!applied.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(def.env, ": ", applied.message()));
    }
  }
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      rest.insert(rest.end(), args.begin() + i, args.end());
      break;
    }
    auto flag = SplitFlag(args[i]);
    const GlobalDef* def = flag ? FindGlobal(flag->first) : nullptr;
    if (def == nullptr) {
      rest.push_back(args[i]);
      continue;
    }
    std::string value = "true";
    if (def->value_name != nullptr) {
      if (flag->second.has_value()) {
        value = *flag->second;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "--", def->name, " needs a value (", def->value_name, ")"));
      }
    }
    absl::Status applied = Apply(*def, value, options);
    if (!applied.ok()) return applied;
  }
  args = std::move(rest);
  const std::pair<const char*, const char*> defaults[] = {
      {"identity", "127.0.0.1:50051"},
      {"cases", "127.0.0.1:50052"},
      {"courses", "127.0.0.1:50053"},
      {"placement", "127.0.0.1:50054"}};
  for (const auto& [service, target] : defaults) {
    options.targets.emplace(service, target);
  }
  if (options.actor.empty()) {
    const char* user = env("USER");
    options.actor = (user != nullptr && *user != '\0') ? user : "lotsectl";
  }
  return options;
}

const std::vector<OptionHelp>& GlobalOptionHelp() {
  static const auto* const kHelp = [] {
    auto* help = new std::vector<OptionHelp>();
    for (const GlobalDef& def : GlobalDefs()) {
      std::string flag = def.alias != nullptr
                             ? absl::StrCat("-", def.alias, ", --", def.name)
                             : absl::StrCat("--", def.name);
      if (def.value_name != nullptr)
        absl::StrAppend(&flag, " ", def.value_name);
      help->push_back({flag, def.env == nullptr ? "" : def.env, def.help});
    }
    return help;
  }();
  return *kHelp;
}

absl::StatusOr<VerbArgs> ParseVerbArgs(const std::vector<std::string>& args,
                                       const std::vector<FlagDef>& defs) {
  VerbArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      parsed.positional.insert(parsed.positional.end(), args.begin() + i + 1,
                               args.end());
      break;
    }
    auto flag = SplitFlag(args[i]);
    if (!flag.has_value()) {
      parsed.positional.push_back(args[i]);
      continue;
    }
    const FlagDef* def = nullptr;
    for (const FlagDef& d : defs) {
      if (d.name == flag->first) def = &d;
    }
    if (def == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", flag->first));
    }
    std::string value = "true";
    if (def->takes_value) {
      if (flag->second.has_value()) {
        value = *flag->second;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--", def->name, " needs a value"));
      }
    } else if (flag->second.has_value()) {
      value = *flag->second;
    }
    parsed.flags[def->name].push_back(value);
  }
  return parsed;
}

}  // namespace lotse::lotsectl
