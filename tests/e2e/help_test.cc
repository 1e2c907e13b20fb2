// `--help` of every binary an operator runs: a usage line, then the flags
// the binary defines (common server flags and its own) with their defaults
// and help text, grouped by purpose, on stdout with exit code 0. Abseil's
// own flags are left to --helpfull, which stays as it is and serves as the
// record of what each binary defines.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

struct HelpCase {
  std::string path;                 // under the build directory
  std::vector<std::string> groups;  // headings --help must show
};

void PrintTo(const HelpCase& c, std::ostream* os) { *os << c.path; }

std::string BaseName(const std::string& path) {
  return std::string(path.substr(path.rfind('/') + 1));
}

std::string CollapseSpace(absl::string_view text) {
  std::string out;
  for (absl::string_view word :
       absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    if (!out.empty()) out.push_back(' ');
    absl::StrAppend(&out, word);
  }
  return out;
}

// One flag as --helpfull shows it: "--name (help); default: value;".
struct ListedFlag {
  std::string file;
  std::string help;
  std::string default_value;
};

// Abseil's --helpfull format: "  Flags from <file>:" headings, then per
// flag a line "    --name (help...); default: value;" wrapped onto lines
// indented by six spaces.
std::map<std::string, ListedFlag> ParseHelpfull(const std::string& text) {
  std::map<std::string, ListedFlag> flags;
  std::string file;
  std::string name;
  std::string entry;
  auto flush = [&] {
    if (name.empty()) return;
    entry = CollapseSpace(entry);
    ListedFlag flag;
    flag.file = file;
    const size_t open = entry.find(" (");
    const size_t tail = entry.rfind("); default: ");
    if (open != std::string::npos && tail != std::string::npos) {
      flag.help = entry.substr(open + 2, tail - open - 2);
      flag.default_value =
          std::string(absl::StripSuffix(entry.substr(tail + 12), ";"));
    }
    flags[name] = flag;
    name.clear();
  };
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "  Flags from ")) {
      flush();
      file = std::string(absl::StripSuffix(line, ":"));
    } else if (absl::StartsWith(line, "    --")) {
      flush();
      entry = std::string(line.substr(4));
      name = entry.substr(2, entry.find(' ') - 2);
    } else if (absl::StartsWith(line, "      ") && !name.empty()) {
      absl::StrAppend(&entry, " ", line);
    }
  }
  flush();
  return flags;
}

bool IsAbseilFile(const std::string& file) {
  return absl::StrContains(file, "absl/");
}

class HelpTest : public ::testing::TestWithParam<HelpCase> {
 protected:
  CommandResult Run(const std::string& arg) {
    absl::StatusOr<CommandResult> result =
        RunCommand(absl::StrCat(BinaryDir(), "/", GetParam().path), {arg},
                   absl::Seconds(20));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.value_or(CommandResult{});
  }
};

TEST_P(HelpTest, ListsTheBinarysOwnFlagsWithDefaultsOnStdout) {
  const std::string program = BaseName(GetParam().path);
  const CommandResult help = Run("--help");
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_EQ(help.err, "");
  EXPECT_TRUE(absl::StartsWith(help.out, absl::StrCat("Usage: ", program)))
      << help.out;

  const CommandResult full = Run("--helpfull");
  const std::map<std::string, ListedFlag> defined = ParseHelpfull(full.out);
  ASSERT_TRUE(defined.count("flagfile")) << full.out;  // parsed at all

  // Each flag entry of --help: "  --name (default: value)" and the help
  // text on the lines below, indented further.
  std::map<std::string, std::string> entries;  // name -> the entry's text
  std::map<std::string, std::string> group_of;
  std::string group;
  std::string current;
  for (absl::string_view line : absl::StrSplit(help.out, '\n')) {
    if (!line.empty() && line[0] != ' ' && absl::EndsWith(line, ":")) {
      group = std::string(line.substr(0, line.size() - 1));
      current.clear();
    } else if (absl::StartsWith(line, "  --")) {
      current = std::string(line.substr(4, line.find(' ', 4) - 4));
      EXPECT_FALSE(entries.count(current)) << "--" << current << " twice";
      entries[current] = std::string(line);
      group_of[current] = group;
    } else if (absl::StartsWith(line, "      ") && !current.empty()) {
      absl::StrAppend(&entries[current], " ", line);
    } else {
      current.clear();
    }
  }

  int own = 0;
  for (const auto& [name, flag] : defined) {
    if (IsAbseilFile(flag.file)) {
      EXPECT_FALSE(entries.count(name))
          << "--" << name << " (from " << flag.file << ") is Abseil's own";
      continue;
    }
    ++own;
    ASSERT_TRUE(entries.count(name))
        << "--" << name << " (from " << flag.file << ") missing in:\n"
        << help.out;
    EXPECT_TRUE(absl::StartsWith(
        entries[name],
        absl::StrCat("  --", name, " (default: ", flag.default_value, ")")))
        << entries[name];
    EXPECT_THAT(CollapseSpace(entries[name]),
                ::testing::HasSubstr(CollapseSpace(flag.help)));
    EXPECT_FALSE(group_of[name].empty()) << "--" << name << " in no group";
  }
  EXPECT_GT(own, 0);
  EXPECT_EQ(entries.size(), static_cast<size_t>(own)) << help.out;
  for (const std::string& heading : GetParam().groups) {
    EXPECT_THAT(help.out,
                ::testing::HasSubstr(absl::StrCat("\n", heading, ":\n")));
  }
}

TEST_P(HelpTest, HelpfullKeepsEveryFlagAndTheUsageLine) {
  const CommandResult full = Run("--helpfull");
  EXPECT_THAT(full.out, ::testing::HasSubstr(absl::StrCat(
                            "Usage: ", BaseName(GetParam().path))));
  EXPECT_THAT(full.out, ::testing::HasSubstr("--flagfile"));
  EXPECT_THAT(full.err, ::testing::Not(::testing::HasSubstr("Warning")));
}

const std::vector<std::string> kServerGroups = {
    "Server", "TLS", "Storage", "Events", "Limits", "Backup and restore"};

std::vector<std::string> With(std::vector<std::string> groups,
                              const std::vector<std::string>& more) {
  groups.insert(groups.end(), more.begin(), more.end());
  return groups;
}

// A limit flag with a bad value stops the process before it serves,
// naming the flag.
TEST(LimitFlagsTest, BadValuesStopStartUp) {
  struct Case {
    const char* binary;
    std::vector<std::string> args;
    const char* named;
  };
  const std::vector<Case> cases = {
      {"services/identity/lotse_identity",
       {"--agency_rate=-1"},
       "--agency_rate"},
      {"services/identity/lotse_identity",
       {"--agency_max_in_flight=-5"},
       "--agency_max_in_flight"},
      {"services/courses/lotse_courses",
       {"--agency_burst=0"},
       "--agency_burst"},
      {"services/placement/lotse_placement",
       {"--agency_limits=kim-koeln:many:10"},
       "--agency_limits"},
      {"services/cases/lotse_cases",
       {"--watch_streams_per_agency=-1",
        absl::StrCat("--database=sqlite:", ::testing::TempDir(),
                     "/limit-flags-cases.db")},
       "--watch_streams_per_agency"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<CommandResult> result = RunCommand(
        absl::StrCat(BinaryDir(), "/", c.binary), c.args, absl::Seconds(30));
    ASSERT_TRUE(result.ok()) << c.binary << ": " << result.status();
    EXPECT_NE(result->exit_code, 0) << c.binary << " " << c.named;
    EXPECT_THAT(result->err, ::testing::HasSubstr(c.named)) << c.binary;
    EXPECT_THAT(result->err,
                ::testing::Not(::testing::HasSubstr("\"msg\":\"serving\"")))
        << c.binary;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Binaries, HelpTest,
    ::testing::Values(
        HelpCase{"services/identity/lotse_identity",
                 With(kServerGroups, {"Identity"})},
        HelpCase{"services/cases/lotse_cases",
                 With(kServerGroups, {"Identity client", "Cases"})},
        HelpCase{"services/courses/lotse_courses",
                 With(kServerGroups, {"Identity client", "Courses"})},
        HelpCase{"services/placement/lotse_placement",
                 With(kServerGroups, {"Identity client"})},
        HelpCase{"tools/lotse_health_probe", {"Target", "TLS"}},
        HelpCase{"tools/lotse_seed_demo", {"Services", "TLS"}}),
    [](const ::testing::TestParamInfo<HelpCase>& info) {
      return BaseName(info.param.path);
    });

}  // namespace
}  // namespace lotse::testing
