#include "common/server/usage.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lotse::server {
namespace {

constexpr size_t kWidth = 80;
constexpr char kHelpIndent[] = "      ";

// Abseil defines a few flags of its own in every binary that parses flags
// (--flagfile, --fromenv, --tryfromenv, --undefok); they are the library's,
// not the binary's.
bool IsAbseilFile(absl::string_view file) {
  return absl::StrContains(file, "absl/");
}

// The default as Abseil's --helpfull shows it: strings quoted.
std::string DefaultOf(const absl::CommandLineFlag& flag) {
  if (flag.IsOfType<std::string>()) {
    return absl::StrCat("\"", flag.DefaultValue(), "\"");
  }
  return flag.DefaultValue();
}

// `text` as lines of at most kWidth columns, each starting with `indent`.
void AppendWrapped(absl::string_view text, absl::string_view indent,
                   std::string* out) {
  std::string line;
  for (absl::string_view word :
       absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    if (!line.empty() &&
        indent.size() + line.size() + 1 + word.size() > kWidth) {
      absl::StrAppend(out, indent, line, "\n");
      line.clear();
    }
    if (!line.empty()) line.push_back(' ');
    absl::StrAppend(&line, word);
  }
  if (!line.empty()) absl::StrAppend(out, indent, line, "\n");
}

void AppendFlag(const absl::CommandLineFlag& flag, std::string* out) {
  absl::StrAppend(out, "  --", flag.Name(), " (default: ", DefaultOf(flag),
                  ")\n");
  AppendWrapped(flag.Help(), kHelpIndent, out);
}

bool AsksForHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) return false;
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-help") == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string WrapText(absl::string_view text) {
  std::string out;
  AppendWrapped(text, "", &out);
  return out;
}

std::string HelpText(absl::string_view usage,
                     const std::vector<FlagGroup>& groups) {
  std::string out(usage);
  if (!out.empty() && out.back() != '\n') out.push_back('\n');

  // Groups of the same title merge into the first one.
  std::vector<FlagGroup> merged;
  for (const FlagGroup& group : groups) {
    auto same = std::find_if(
        merged.begin(), merged.end(),
        [&group](const FlagGroup& g) { return g.title == group.title; });
    if (same == merged.end()) {
      merged.push_back(group);
    } else {
      same->flags.insert(same->flags.end(), group.flags.begin(),
                         group.flags.end());
    }
  }

  const auto all = absl::GetAllFlags();
  absl::flat_hash_set<std::string> listed;
  auto append_group = [&](const std::string& title,
                          const std::vector<std::string>& names) {
    std::string body;
    for (const std::string& name : names) {
      auto it = all.find(name);
      if (it == all.end() || IsAbseilFile(it->second->Filename())) continue;
      if (!listed.insert(name).second) continue;
      AppendFlag(*it->second, &body);
    }
    if (!body.empty()) absl::StrAppend(&out, "\n", title, ":\n", body);
  };
  for (const FlagGroup& group : merged) append_group(group.title, group.flags);

  std::vector<std::string> others;
  for (const auto& [name, flag] : all) {
    if (!IsAbseilFile(flag->Filename()) && !listed.contains(name)) {
      others.emplace_back(name);
    }
  }
  std::sort(others.begin(), others.end());
  append_group("Other", others);

  absl::StrAppend(&out,
                  "\n--helpfull also lists the flags of the libraries this "
                  "program uses.\n");
  return out;
}

void HandleHelpFlag(int argc, char** argv, absl::string_view usage,
                    const std::vector<FlagGroup>& groups) {
  absl::SetProgramUsageMessage(usage);
  // Abseil's --helpshort then lists this binary's flags too (in its own
  // format, by file) instead of none.
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = [](absl::string_view file) {
    return !IsAbseilFile(file);
  };
  config.contains_help_flags = config.contains_helpshort_flags;
  absl::SetFlagsUsageConfig(config);
  if (!AsksForHelp(argc, argv)) return;
  const std::string text = HelpText(usage, groups);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  std::exit(0);
}

std::vector<char*> ParseToolFlags(int argc, char** argv,
                                  absl::string_view usage,
                                  const std::vector<FlagGroup>& groups) {
  HandleHelpFlag(argc, argv, usage, groups);
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace lotse::server
