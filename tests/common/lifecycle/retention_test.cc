#include "common/lifecycle/retention.h"

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dev_pki.h"

namespace lotse::lifecycle {
namespace {

using ::testing::HasSubstr;

constexpr absl::string_view kCaseRule =
    "retain case category=CASE_STATUS keep=3y from=CLOSE basis=\"Case file\"";

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss),
                         absl::UTCTimeZone());
}

// The message of a parse of `text` that must fail.
std::string ParseError(absl::string_view text) {
  absl::StatusOr<RetentionRules> rules = RetentionRules::Parse(text);
  EXPECT_FALSE(rules.ok()) << text;
  if (rules.ok()) return "";
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(rules.status().message());
}

TEST(KnownResourceKindsTest, ListsEveryKindOnceWithAnchors) {
  std::set<std::string> names;
  for (const ResourceKind& kind : KnownResourceKinds()) {
    EXPECT_TRUE(names.insert(kind.name).second) << kind.name;
    EXPECT_FALSE(kind.anchors.empty()) << kind.name;
    EXPECT_FALSE(kind.description.empty()) << kind.name;
    EXPECT_FALSE(kind.service.empty()) << kind.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{
                       "person-revision", "residence-status", "consent", "case",
                       "note", "booking", "waitlist-entry", "attendance",
                       "course-result", "entitlement", "candidate-profile",
                       "placement", "offer", "audit-record"}));
}

TEST(RetentionRulesTest, ParsesAGoodFile) {
  absl::StatusOr<RetentionRules> rules = RetentionRules::Parse(
      "# comment\n"
      "\n"
      "retain case category=CASE_STATUS keep=3y from=CLOSE "
      "basis=\"Case file # not a comment\"  # trailing comment\n"
      "  retain course-result category=LANGUAGE keep=18m from=CREATE "
      "erasure=keep basis=\"§ 17 IntV\"\n"
      "retain booking keep=90d from=END category=LANGUAGE erasure=erase "
      "basis=Bookings\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->rules().size(), 3u);

  const RetentionRule* c = rules->Find("case");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->category, "CASE_STATUS");
  EXPECT_EQ(c->years, 3);
  EXPECT_EQ(c->months, 0);
  EXPECT_EQ(c->days, 0);
  EXPECT_EQ(c->anchor, "CLOSE");
  EXPECT_FALSE(c->keep_on_erasure);
  EXPECT_EQ(c->basis, "Case file # not a comment");
  EXPECT_EQ(c->line, 3);
  EXPECT_EQ(c->PeriodText(), "3y");

  const RetentionRule* r = rules->Find("course-result");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->months, 18);
  EXPECT_TRUE(r->keep_on_erasure);
  EXPECT_EQ(r->basis, "§ 17 IntV");
  EXPECT_EQ(r->PeriodText(), "18m");
  EXPECT_EQ(r->line, 4);

  const RetentionRule* b = rules->Find("booking");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->days, 90);
  EXPECT_FALSE(b->keep_on_erasure);
  EXPECT_EQ(b->PeriodText(), "90d");

  EXPECT_EQ(rules->Find("offer"), nullptr);
}

TEST(RetentionRulesTest, EmptyTextHasNoRules) {
  absl::StatusOr<RetentionRules> rules = RetentionRules::Parse("# none\n\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_TRUE(rules->rules().empty());
  EXPECT_EQ(RetentionRules().Find("case"), nullptr);
}

TEST(RetentionRulesTest, EveryMistakeNamesItsLine) {
  const std::string good = absl::StrCat(kCaseRule, "\n");
  struct Case {
    std::string line;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {"retain cat category=CASE_STATUS keep=1y from=CLOSE basis=x",
       "unknown kind cat"},
      {"retain offer category=JOBS keep=1y from=WITHDRAW basis=x",
       "unknown category JOBS"},
      {"retain offer category=UNSPECIFIED keep=1y from=WITHDRAW basis=x",
       "unknown category UNSPECIFIED"},
      {"retain offer category=LANGUAGE keep=1y from=WITHDRAW basis=x",
       "kind offer is of category EMPLOYMENT, not LANGUAGE"},
      {"retain offer keep=1y from=WITHDRAW basis=x", "category is missing"},
      {"retain note category=PRIVATE_NOTES keep=1y from=CREATE basis=x",
       "kind note allows from=CLOSE, not CREATE"},
      {"retain note category=PRIVATE_NOTES keep=1y basis=x", "from is missing"},
      {"retain note category=PRIVATE_NOTES from=CLOSE basis=x",
       "keep is missing"},
      {"retain note category=PRIVATE_NOTES keep=0y from=CLOSE basis=x",
       "keep must be at least 1"},
      {"retain note category=PRIVATE_NOTES keep=-3m from=CLOSE basis=x",
       "keep must be at least 1"},
      {"retain note category=PRIVATE_NOTES keep=3w from=CLOSE basis=x",
       "keep=3w is not a period"},
      {"retain note category=PRIVATE_NOTES keep=y from=CLOSE basis=x",
       "keep=y is not a period"},
      {"retain note category=PRIVATE_NOTES keep=1.5y from=CLOSE basis=x",
       "keep=1.5y is not a period"},
      {"retain note category=PRIVATE_NOTES keep= from=CLOSE basis=x",
       "keep is empty"},
      {"retain note category=PRIVATE_NOTES keep=99999999999y from=CLOSE "
       "basis=x",
       "keep=99999999999y is longer than 1000 years"},
      {"retain note category=PRIVATE_NOTES keep=1y from=CLOSE",
       "basis is missing"},
      {"retain note category=PRIVATE_NOTES keep=1y from=CLOSE basis=\"  \"",
       "basis is empty"},
      {absl::StrCat(
           "retain note category=PRIVATE_NOTES keep=1y from=CLOSE basis=\"",
           std::string(201, 'x'), "\""),
       "basis is longer than 200 characters"},
      {"retain note category=PRIVATE_NOTES keep=1y from=CLOSE basis=x "
       "colour=red",
       "unknown key colour"},
      {"retain note category=PRIVATE_NOTES keep=1y from=CLOSE basis=x "
       "erasure=maybe",
       "erasure must be erase or keep, not maybe"},
      {"retain note category=PRIVATE_NOTES keep=1y from=CLOSE "
       "basis=\"open end",
       "unterminated quote"},
      {"retain note category=PRIVATE_NOTES keep=1y keep=2y from=CLOSE "
       "basis=x",
       "keep is given twice"},
      {"retain note category=PRIVATE_NOTES keep=1y from=CLOSE basis=x extra",
       "unexpected word extra"},
      {"keep note category=PRIVATE_NOTES keep=1y from=CLOSE basis=x",
       "expected a line \"retain <kind> ...\""},
      {"retain", "retain needs a kind"},
      {kCaseRule.data(), "duplicate rule for kind case (first on line 2)"},
  };
  for (const Case& c : cases) {
    const std::string message =
        ParseError(absl::StrCat("# rules\n", good, c.line, "\n"));
    EXPECT_THAT(message, HasSubstr(absl::StrCat("line 3: ", c.problem)))
        << c.line;
  }
}

TEST(RetentionRulesTest, LoadPrefixesThePathAndReportsAMissingFile) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/retention_test_bad.conf");
  {
    std::ofstream out(path);
    out << kCaseRule << "\nretain case category=CASE_STATUS keep=-1y "
        << "from=CLOSE basis=x\n";
  }
  absl::StatusOr<RetentionRules> bad = RetentionRules::Load(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      bad.status().message(),
      HasSubstr(absl::StrCat(path, ": line 2: keep must be at least 1")));
  std::remove(path.c_str());

  absl::StatusOr<RetentionRules> missing = RetentionRules::Load(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(path));
}

TEST(RetentionRulesTest, ShippedFileParsesAndNamesOnlyKnownKinds) {
  const std::string path = testing::SourceDir() + "/config/retention.conf";
  absl::StatusOr<RetentionRules> rules = RetentionRules::Load(path);
  ASSERT_TRUE(rules.ok()) << rules.status();
  std::set<std::string> known;
  for (const ResourceKind& kind : KnownResourceKinds()) known.insert(kind.name);
  std::set<std::string> named;
  for (const RetentionRule& rule : rules->rules()) {
    EXPECT_EQ(known.count(rule.kind), 1u) << rule.kind;
    named.insert(rule.kind);
  }
  // The shipped file gives every kind a period: a deployment that removes a
  // line does so on purpose.
  EXPECT_EQ(named, known);
  ASSERT_NE(rules->Find("course-result"), nullptr);
  EXPECT_TRUE(rules->Find("course-result")->keep_on_erasure);
  ASSERT_NE(rules->Find("audit-record"), nullptr);
  EXPECT_EQ(rules->Find("audit-record")->PeriodText(), "2y");
}

TEST(RetentionRuleTest, CutoffAndDueAtUseCalendarPeriodsInUtc) {
  absl::StatusOr<RetentionRules> rules = RetentionRules::Parse(
      "retain case category=CASE_STATUS keep=3y from=CLOSE basis=x\n"
      "retain booking category=LANGUAGE keep=1m from=END basis=x\n"
      "retain offer category=EMPLOYMENT keep=90d from=WITHDRAW basis=x\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  const RetentionRule& years = *rules->Find("case");
  const RetentionRule& months = *rules->Find("booking");
  const RetentionRule& days = *rules->Find("offer");

  const absl::Time now = Utc(2026, 3, 31, 12, 30, 15) + absl::Microseconds(7);
  EXPECT_EQ(years.Cutoff(now),
            Utc(2023, 3, 31, 12, 30, 15) + absl::Microseconds(7));
  // A month before 31 March is the end of February, not 3 March.
  EXPECT_EQ(months.Cutoff(now),
            Utc(2026, 2, 28, 12, 30, 15) + absl::Microseconds(7));
  EXPECT_EQ(months.Cutoff(Utc(2024, 3, 31)), Utc(2024, 2, 29));
  // 90 days across the end of a leap-year February.
  EXPECT_EQ(days.Cutoff(Utc(2024, 3, 1)), Utc(2023, 12, 2));
  // Three years after 29 February is 28 February.
  EXPECT_EQ(years.DueAt(Utc(2024, 2, 29, 8)), Utc(2027, 2, 28, 8));
  EXPECT_EQ(months.DueAt(Utc(2026, 1, 31)), Utc(2026, 2, 28));
  EXPECT_EQ(days.DueAt(Utc(2026, 1, 1)), Utc(2026, 4, 1));
  // A record is due when its anchor is at or before the cutoff.
  const absl::Time anchor = Utc(2023, 6, 1);
  EXPECT_LE(anchor, years.Cutoff(years.DueAt(anchor)));
  EXPECT_GT(anchor, years.Cutoff(years.DueAt(anchor) - absl::Seconds(1)));
}

}  // namespace
}  // namespace lotse::lifecycle
