// The state machines, dependency cycles, dates and resource names of cases.
#include "services/cases/domain/rules.h"

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/dev_pki.h"

namespace lotse::cases {
namespace {

using v1::StepState;

TEST(StepTransitionTest, ReceiverFollowsTheStateMachine) {
  EXPECT_TRUE(StepTransitionAllowed(
      v1::STEP_STATE_REFERRED, v1::STEP_STATE_ACCEPTED, StepActor::kReceiver));
  EXPECT_TRUE(StepTransitionAllowed(
      v1::STEP_STATE_REFERRED, v1::STEP_STATE_DECLINED, StepActor::kReceiver));
  EXPECT_FALSE(StepTransitionAllowed(v1::STEP_STATE_REFERRED,
                                     v1::STEP_STATE_IN_PROGRESS,
                                     StepActor::kReceiver));
  EXPECT_FALSE(StepTransitionAllowed(
      v1::STEP_STATE_REFERRED, v1::STEP_STATE_CANCELLED, StepActor::kReceiver));
  EXPECT_TRUE(StepTransitionAllowed(
      v1::STEP_STATE_ACCEPTED, v1::STEP_STATE_CANCELLED, StepActor::kReceiver));
  EXPECT_TRUE(StepTransitionAllowed(v1::STEP_STATE_IN_PROGRESS,
                                    v1::STEP_STATE_DONE, StepActor::kReceiver));
  EXPECT_FALSE(StepTransitionAllowed(
      v1::STEP_STATE_ACCEPTED, v1::STEP_STATE_DONE, StepActor::kReceiver));
}

TEST(StepTransitionTest, OwnerOnlyCancelsAndFinalStatesStay) {
  for (StepState from : {v1::STEP_STATE_REFERRED, v1::STEP_STATE_ACCEPTED,
                         v1::STEP_STATE_IN_PROGRESS}) {
    EXPECT_TRUE(StepTransitionAllowed(from, v1::STEP_STATE_CANCELLED,
                                      StepActor::kOwner));
    EXPECT_FALSE(StepTransitionAllowed(from, v1::STEP_STATE_ACCEPTED,
                                       StepActor::kOwner));
  }
  for (StepState final_state : {v1::STEP_STATE_DECLINED, v1::STEP_STATE_DONE,
                                v1::STEP_STATE_CANCELLED}) {
    EXPECT_TRUE(IsFinalStepState(final_state));
    for (StepActor a :
         {StepActor::kOwner, StepActor::kReceiver, StepActor::kEvent}) {
      EXPECT_FALSE(
          StepTransitionAllowed(final_state, v1::STEP_STATE_CANCELLED, a));
      EXPECT_FALSE(StepTransitionAllowed(final_state, v1::STEP_STATE_DONE, a));
    }
  }
}

TEST(StepTransitionTest, EventsOnlyMoveForward) {
  EXPECT_TRUE(StepTransitionAllowed(v1::STEP_STATE_REFERRED,
                                    v1::STEP_STATE_DONE, StepActor::kEvent));
  EXPECT_FALSE(StepTransitionAllowed(
      v1::STEP_STATE_IN_PROGRESS, v1::STEP_STATE_ACCEPTED, StepActor::kEvent));
  EXPECT_FALSE(StepTransitionAllowed(
      v1::STEP_STATE_ACCEPTED, v1::STEP_STATE_CANCELLED, StepActor::kEvent));
}

TEST(CaseTransitionTest, AllowedChanges) {
  EXPECT_TRUE(
      CaseTransitionAllowed(v1::CASE_STATE_INTAKE, v1::CASE_STATE_ASSESSMENT));
  EXPECT_TRUE(
      CaseTransitionAllowed(v1::CASE_STATE_ASSESSMENT, v1::CASE_STATE_ACTIVE));
  EXPECT_TRUE(
      CaseTransitionAllowed(v1::CASE_STATE_ACTIVE, v1::CASE_STATE_ASSESSMENT));
  EXPECT_FALSE(
      CaseTransitionAllowed(v1::CASE_STATE_INTAKE, v1::CASE_STATE_ACTIVE));
  EXPECT_FALSE(
      CaseTransitionAllowed(v1::CASE_STATE_ACTIVE, v1::CASE_STATE_INTAKE));
  EXPECT_FALSE(
      CaseTransitionAllowed(v1::CASE_STATE_CLOSED, v1::CASE_STATE_INTAKE));
}

TEST(DependencyCycleTest, FindsCyclesThroughTheChangedStep) {
  absl::flat_hash_map<std::string, std::vector<std::string>> graph = {
      {"a", {}}, {"b", {"a"}}, {"c", {"b"}}, {"d", {}}};
  EXPECT_TRUE(FindDependencyCycle("a", {"d"}, graph).empty());
  EXPECT_EQ(FindDependencyCycle("a", {"c"}, graph),
            (std::vector<std::string>{"a", "c", "b"}));
  EXPECT_EQ(FindDependencyCycle("a", {"a"}, graph),
            (std::vector<std::string>{"a"}));
  // Diamonds are fine.
  graph["e"] = {"b", "c"};
  EXPECT_TRUE(FindDependencyCycle("d", {"e", "b"}, graph).empty());
}

TEST(DatesTest, ValidityAndKeys) {
  type::v1::Date d;
  d.set_year(2024);
  d.set_month(2);
  d.set_day(29);
  EXPECT_TRUE(IsValidDate(d));
  EXPECT_EQ(DateKey(d), 20240229);
  EXPECT_EQ(DateKey(DateFromKey(20240229)), 20240229);
  d.set_year(2023);
  EXPECT_FALSE(IsValidDate(d));
  d.set_month(13);
  EXPECT_FALSE(IsValidDate(d));
  EXPECT_EQ(DateKey(type::v1::Date()), 0);
  EXPECT_EQ(DayKeyOf(absl::FromCivil(absl::CivilSecond(2026, 11, 22, 23, 59, 0),
                                     absl::UTCTimeZone())),
            20261122);
}

TEST(NamesTest, ParseAndFormat) {
  FieldViolations v;
  EXPECT_EQ(ParseCaseName("cases/abc_D-1", "n", &v), "abc_D-1");
  std::string c, s, n;
  EXPECT_TRUE(ParseStepName("cases/x/steps/y", "n", &c, &s, &v));
  EXPECT_EQ(StepName(c, s), "cases/x/steps/y");
  EXPECT_TRUE(ParseNoteName("cases/x/steps/y/notes/z", "n", &c, &s, &n, &v));
  EXPECT_EQ(NoteName(c, s, n), "cases/x/steps/y/notes/z");
  EXPECT_TRUE(ParseNoteName("cases/x/notes/z", "n", &c, &s, &n, &v));
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(ParseCaseName("cases/a/b", "n1", &v), "");
  EXPECT_EQ(ParseCaseName("cases/", "n2", &v), "");
  EXPECT_EQ(ParseAgencyName("agency/x", "n3", &v), "");
  EXPECT_FALSE(ParseStepName("cases/x/notes/y", "n4", &c, &s, &v));
  EXPECT_EQ(v.violations().size(), 4u);
  EXPECT_TRUE(ValidPersonName("persons/p-1"));
  EXPECT_FALSE(ValidPersonName("persons/"));
  EXPECT_NE(NewId(), NewId());
  // New ids in the one format of every service (common/api/names.h); the
  // mixed-case ids issued before still parse (above).
  const std::string id = NewId();
  EXPECT_EQ(id.size(), 26u);
  for (char ch : id) {
    EXPECT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= '2' && ch <= '7')) << id;
  }
  EXPECT_TRUE(
      ParseStepName(StepName("Xk3_9-AbQzR0w7UvT2sYnA", id), "n", &c, &s, &v));
  EXPECT_EQ(c, "Xk3_9-AbQzR0w7UvT2sYnA");
  EXPECT_EQ(v.violations().size(), 4u);
}

TEST(JurisdictionTest, ACaseElsewhereIsHandedOverNotDuplicated) {
  EXPECT_TRUE(CheckJurisdiction("05315000", {}).ok());
  EXPECT_TRUE(CheckJurisdiction("05315000", {"05315000", "05315000"}).ok());
  absl::Status elsewhere = CheckJurisdiction("05314000", {"05315000"});
  EXPECT_EQ(elsewhere.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(elsewhere), "CASE_OPEN_ELSEWHERE");
  EXPECT_EQ(MetadataOf(elsewhere, "municipality_code"), "05315000");
  EXPECT_EQ(ReasonOf(CheckJurisdiction("05315000", {"05315000", "05314000"})),
            "CASE_OPEN_ELSEWHERE");
}

TEST(CategoriesTest, HealthAndFamilyAreTheirOwn) {
  EXPECT_EQ(StepCategory(v1::STEP_KIND_HEALTH_SERVICE),
            type::v1::DATA_CATEGORY_HEALTH);
  EXPECT_EQ(StepCategory(v1::STEP_KIND_FAMILY_SUPPORT),
            type::v1::DATA_CATEGORY_FAMILY);
  EXPECT_EQ(StepCategory(v1::STEP_KIND_INTEGRATION_COURSE),
            type::v1::DATA_CATEGORY_CASE_STATUS);
  EXPECT_EQ(GoalCategory(v1::LIFE_AREA_FAMILY), type::v1::DATA_CATEGORY_FAMILY);
  EXPECT_EQ(GoalCategory(v1::LIFE_AREA_WORK),
            type::v1::DATA_CATEGORY_CASE_STATUS);
}

TEST(CaseGroundTest, OwnerParticipantAndNotes) {
  std::optional<audit::LegalBasis> owner =
      CaseGroundOf("agencies/kim", "agencies/kim", "CASE_STATUS");
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->kind, audit::BasisKind::kOwner);
  EXPECT_EQ(owner->category, "CASE_STATUS");
  std::optional<audit::LegalBasis> participant =
      CaseGroundOf("agencies/jobcenter", "agencies/kim", "CASE_STATUS");
  ASSERT_TRUE(participant.has_value());
  EXPECT_EQ(participant->kind, audit::BasisKind::kRule);
  EXPECT_EQ(participant->rule_id, kCaseParticipantsRule);
  std::optional<audit::LegalBasis> notes =
      CaseGroundOf("agencies/jobcenter", "agencies/kim", "PRIVATE_NOTES");
  ASSERT_TRUE(notes.has_value());
  EXPECT_EQ(notes->kind, audit::BasisKind::kOwner);
  // Identity decides the person's other categories.
  EXPECT_FALSE(
      CaseGroundOf("agencies/kim", "agencies/kim", "RESIDENCE_STATUS"));
}

TEST(CaseGroundTest, TheParticipantsRuleIsTheDeploymentsRule) {
  // The audit trail names a rule of the shipped rules file; renaming it
  // there without here would leave records pointing at nothing.
  std::ifstream rules(testing::SourceDir() + "/config/access-rules.conf");
  ASSERT_TRUE(rules.good());
  std::string line;
  bool found = false;
  while (std::getline(rules, line)) {
    if (line.rfind(absl::StrCat("rule ", kCaseParticipantsRule,
                                " category=CASE_STATUS "),
                   0) == 0) {
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace lotse::cases
