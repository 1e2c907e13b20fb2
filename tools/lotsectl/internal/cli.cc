#include "tools/lotsectl/internal/cli.h"

#include <algorithm>
#include <istream>
#include <ostream>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/lotsectl/internal/client.h"
#include "tools/lotsectl/internal/exit_codes.h"
#include "tools/lotsectl/internal/fields.h"
#include "tools/lotsectl/internal/output.h"
#include "tools/lotsectl/report.h"

namespace lotse::lotsectl {
namespace {

namespace pb = ::google::protobuf;

// Commands that are not a group of verbs.
const std::vector<std::pair<std::string, std::string>>& TopLevel() {
  static const auto* const kTop =
      new std::vector<std::pair<std::string, std::string>>{
          {"call", "call any RPC: call <service> <Method> --json '{...}'"},
          {"report",
           "report steering --municipality AGS [--from D] [--to D] "
           "[-o FILE.html|FILE.json|json]"},
          {"completion", "print the bash completion script: completion bash"},
          {"help", "help [<group> [<verb>]]"}};
  return *kTop;
}

std::vector<std::string> Groups() {
  std::vector<std::string> groups;
  for (const Verb& v : AllVerbs()) {
    if (std::find(groups.begin(), groups.end(), v.group) == groups.end()) {
      groups.push_back(v.group);
    }
  }
  return groups;
}

const Verb* FindVerb(const std::string& group, const std::string& name) {
  for (const Verb& v : AllVerbs()) {
    if (v.group == group && v.name == name) return &v;
  }
  return nullptr;
}

std::vector<std::string> VerbNames(const std::string& group) {
  std::vector<std::string> names;
  for (const Verb& v : AllVerbs()) {
    if (v.group == group) names.push_back(v.name);
  }
  return names;
}

std::string MainHelp() {
  std::string text =
      "Usage: lotsectl [options] <group> <verb> [flags] [names]\n"
      "       lotsectl [options] call <service> <Method> --json '{...}'\n\n"
      "Talks to the Lotse services over mutual TLS as an agency. Output is a\n"
      "table, protobuf JSON with -o json, resource names with -o name.\n"
      "docs/lotsectl.md has the whole story.\n\n"
      "Verbs:\n";
  std::vector<std::vector<std::string>> rows;
  for (const Verb& v : AllVerbs()) {
    rows.push_back({absl::StrCat("  ", v.group, " ", v.name), v.summary});
  }
  for (const auto& [name, summary] : TopLevel()) {
    rows.push_back({absl::StrCat("  ", name), summary});
  }
  std::string table = RenderTable({"", ""}, rows, 0);
  absl::StrAppend(&text, table.substr(table.find('\n') + 1));
  absl::StrAppend(&text, "\nOptions (anywhere on the line; flag beats env):\n");
  rows.clear();
  for (const OptionHelp& o : GlobalOptionHelp()) {
    rows.push_back({absl::StrCat("  ", o.flag), o.env, o.help});
  }
  table = RenderTable({"", "", ""}, rows, 0);
  absl::StrAppend(&text, table.substr(table.find('\n') + 1));
  absl::StrAppend(
      &text,
      "\nExit status: 0 ok, 1 the service refused (code, reason and field\n"
      "violations on stderr), 2 usage error (nothing sent), 3 no connection\n"
      "(certificates unreadable, TLS refused, service unreachable).\n");
  return text;
}

std::string GroupHelp(const std::string& group) {
  std::string text =
      absl::StrCat("Usage: lotsectl ", group, " <verb> [flags]\n\nVerbs:\n");
  std::vector<std::vector<std::string>> rows;
  for (const Verb& v : AllVerbs()) {
    if (v.group == group) {
      rows.push_back({absl::StrCat("  ", v.name), v.summary});
    }
  }
  std::string table = RenderTable({"", ""}, rows, 0);
  absl::StrAppend(&text, table.substr(table.find('\n') + 1));
  return text;
}

std::string VerbHelp(const Verb& verb) {
  std::string usage =
      absl::StrCat("Usage: lotsectl ", verb.group, " ", verb.name);
  for (const VerbFlag& f : verb.flags) {
    if (f.positional) {
      absl::StrAppend(&usage, f.required ? " " : " [", f.name,
                      f.required ? "" : "]");
    }
  }
  absl::StatusOr<const pb::MethodDescriptor*> method =
      FindMethod(verb.service, verb.method);
  absl::StrAppend(&usage, " [flags]\n\n", verb.summary, ".\nCalls ",
                  method.ok() ? (*method)->full_name() : verb.method, " on ",
                  verb.service, "; default purpose \"", verb.purpose,
                  "\".\n\nFlags:\n");
  std::vector<std::vector<std::string>> rows;
  for (const VerbFlag& f : verb.flags) {
    std::string flag = absl::StrCat("  --", f.name, f.takes_value ? " X" : "");
    std::string notes;
    if (f.required) notes = "required";
    if (f.positional) {
      absl::StrAppend(&notes, notes.empty() ? "" : ", ", "or as a word");
    }
    rows.push_back({flag, f.help, notes.empty() ? "" : "(" + notes + ")"});
  }
  std::string table = RenderTable({"", "", ""}, rows, 0);
  absl::StrAppend(&usage, table.substr(table.find('\n') + 1));
  return usage;
}

// Positional words fill the positional flags not given as flags, in order.
absl::Status AssignPositionals(const Verb& verb, VerbArgs& args) {
  size_t next = 0;
  for (const VerbFlag& f : verb.flags) {
    if (!f.positional || args.flags.count(f.name) > 0) continue;
    if (next < args.positional.size()) {
      args.flags[f.name].push_back(args.positional[next++]);
    }
  }
  if (next < args.positional.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", args.positional[next], "\""));
  }
  args.positional.clear();
  for (const VerbFlag& f : verb.flags) {
    if (f.required && args.flags.count(f.name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          verb.group, " ", verb.name, " needs --", f.name, " (", f.help, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int RunCommandLine(std::vector<std::string> args, const EnvLookup& env,
                   std::istream& in, std::ostream& out, std::ostream& err) {
  if (!args.empty() && args[0] == "__complete") {
    for (const std::string& c : CompletionCandidates(
             std::vector<std::string>(args.begin() + 1, args.end()))) {
      out << c << "\n";
    }
    return kExitOk;
  }
  absl::StatusOr<GlobalOptions> options = ExtractGlobalOptions(args, env);
  if (!options.ok()) return ReportUsage(options.status(), err);
  if (!args.empty() && args[0] == "help") {
    options->help = true;
    args.erase(args.begin());
  }
  if (args.empty()) {
    if (options->help) {
      out << MainHelp();
      return kExitOk;
    }
    err << MainHelp();
    return kExitUsage;
  }
  const std::string& group = args[0];
  if (group == "call") {
    if (options->help) {
      out << "Usage: lotsectl call <service> <Method> [--json JSON|@FILE|-]\n"
             "                     [--for DURATION] [--max-messages N]\n"
             "       lotsectl call <service> <Method> --each FILE|-\n\n"
             "Calls any RPC of identity, cases, courses or placement (their\n"
             "own API, AuditService, grpc.health.v1.Health) with a request\n"
             "in protobuf JSON; without --json the request is empty. A\n"
             "server stream prints each message. Without <Method>, lists\n"
             "the methods.\n\n"
             "--each sends one request per line (a bulk import): all lines\n"
             "are checked first, refusals are reported by line number and\n"
             "the run goes on, progress goes to stderr. With --request_id K\n"
             "line N carries request_id K-N, so a rerun creates nothing\n"
             "twice.\n";
      return kExitOk;
    }
    return RunCall(std::vector<std::string>(args.begin() + 1, args.end()),
                   *options, in, out, err);
  }
  if (group == "completion") {
    if (args.size() == 2 && args[1] == "bash") {
      out << BashCompletionScript();
      return kExitOk;
    }
    return ReportUsage(
        absl::InvalidArgumentError("completion supports: completion bash"),
        err);
  }
  if (!options->output_file.empty() && group != "report") {
    return ReportUsage(absl::InvalidArgumentError(
                           "-o FILE is for reports; other commands print"),
                       err);
  }
  if (group == "report") {
    if (options->help) {
      out << ReportHelp();
      return kExitOk;
    }
    return RunReport(std::vector<std::string>(args.begin() + 1, args.end()),
                     *options, out, err);
  }
  std::vector<std::string> groups = Groups();
  if (std::find(groups.begin(), groups.end(), group) == groups.end()) {
    return ReportUsage(absl::InvalidArgumentError(absl::StrCat(
                           "unknown command \"", group,
                           "\"; groups: ", absl::StrJoin(groups, ", "),
                           "; commands: call, completion, report, help")),
                       err);
  }
  if (args.size() < 2 || absl::StartsWith(args[1], "-")) {
    if (options->help) {
      out << GroupHelp(group);
      return kExitOk;
    }
    err << GroupHelp(group);
    return kExitUsage;
  }
  const Verb* verb = FindVerb(group, args[1]);
  if (verb == nullptr) {
    return ReportUsage(absl::InvalidArgumentError(absl::StrCat(
                           "unknown verb \"", args[1], "\" for ", group,
                           "; one of ", absl::StrJoin(VerbNames(group), ", "))),
                       err);
  }
  if (options->help) {
    out << VerbHelp(*verb);
    return kExitOk;
  }
  std::vector<FlagDef> defs;
  for (const VerbFlag& f : verb->flags) defs.push_back({f.name, f.takes_value});
  absl::StatusOr<VerbArgs> verb_args = ParseVerbArgs(
      std::vector<std::string>(args.begin() + 2, args.end()), defs);
  if (!verb_args.ok()) return ReportUsage(verb_args.status(), err);
  absl::Status assigned = AssignPositionals(*verb, *verb_args);
  if (!assigned.ok()) return ReportUsage(assigned, err);
  Invocation run(*options, *std::move(verb_args), out, err);
  return verb->handler ? verb->handler(*verb, run) : RunDeclared(*verb, run);
}

std::vector<std::string> CompletionCandidates(
    const std::vector<std::string>& typed) {
  std::vector<std::string> words = typed;
  // A global option's value is no verb; a failure to parse one just means
  // nothing is removed.
  absl::StatusOr<GlobalOptions> ignored =
      ExtractGlobalOptions(words, [](const char*) { return nullptr; });
  if (!ignored.ok()) words = typed;
  std::vector<std::string> candidates;
  std::vector<std::string> plain;
  for (const std::string& w : words) {
    if (!absl::StartsWith(w, "-")) plain.push_back(w);
  }
  if (plain.empty()) {
    candidates = Groups();
    for (const auto& [name, summary] : TopLevel()) candidates.push_back(name);
    return candidates;
  }
  if (plain[0] == "completion") return {"bash"};
  if (plain[0] == "help") {
    return plain.size() == 1 ? Groups() : VerbNames(plain[1]);
  }
  if (plain[0] == "call") {
    if (plain.size() == 1) {
      return {std::begin(kServiceNames), std::end(kServiceNames)};
    }
    if (plain.size() == 2) {
      for (const pb::ServiceDescriptor* s : ServicesOf(plain[1])) {
        for (int i = 0; i < s->method_count(); ++i) {
          candidates.push_back(s->method(i)->name());
        }
      }
      return candidates;
    }
    return {"--json", "--each", "--for", "--max-messages"};
  }
  if (plain.size() == 1) return VerbNames(plain[0]);
  const Verb* verb = FindVerb(plain[0], plain[1]);
  if (verb == nullptr) return {};
  // After a flag that takes an enum, its values.
  if (!words.empty() && absl::StartsWith(words.back(), "--")) {
    const std::string name = NormalizeFlagName(words.back().substr(2));
    for (const VerbFlag& f : verb->flags) {
      if (f.name != name || !f.takes_value) continue;
      absl::StatusOr<const pb::MethodDescriptor*> method =
          FindMethod(verb->service, verb->method);
      if (!method.ok() || f.path.empty()) return {};
      auto path = ResolvePath((*method)->input_type(), f.path);
      if (!path.ok() || path->back()->enum_type() == nullptr) return {};
      const pb::EnumDescriptor* e = path->back()->enum_type();
      for (int i = 1; i < e->value_count(); ++i) {
        candidates.push_back(ShortEnumName(*e->value(i)));
      }
      return candidates;
    }
  }
  for (const VerbFlag& f : verb->flags) candidates.push_back("--" + f.name);
  for (const OptionHelp& o : GlobalOptionHelp()) {
    std::string flag = o.flag.substr(o.flag.rfind("--"));
    candidates.push_back(flag.substr(0, flag.find(' ')));
  }
  return candidates;
}

}  // namespace lotse::lotsectl
