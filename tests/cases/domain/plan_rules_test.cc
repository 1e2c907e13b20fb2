// What a plan update may change and must satisfy, and how the next
// version's goals are made.
#include "services/cases/domain/plan_rules.h"

#include <set>
#include <string>

#include "gtest/gtest.h"
#include "services/cases/domain/rules.h"

namespace lotse::cases {
namespace {

std::set<std::string> Fields(const FieldViolations& violations) {
  std::set<std::string> out;
  for (const FieldViolation& v : violations.violations()) out.insert(v.field);
  return out;
}

v1::Goal Goal(const std::string& id, v1::LifeArea area) {
  v1::Goal g;
  g.set_goal_id(id);
  g.set_life_area(area);
  g.set_description("learn German");
  g.set_status(v1::GOAL_STATUS_OPEN);
  return g;
}

google::protobuf::FieldMask Mask(std::initializer_list<const char*> paths) {
  google::protobuf::FieldMask mask;
  for (const char* p : paths) mask.add_paths(p);
  return mask;
}

TEST(PlanRulesTest, TheMaskNamesGoalsOrSummary) {
  v1::IntegrationPlan plan;
  FieldViolations violations;
  PlanChange change = ValidatePlanChange(plan, Mask({"goals"}), &violations);
  EXPECT_TRUE(violations.empty());
  EXPECT_TRUE(change.goals);
  EXPECT_FALSE(change.summary);
  change = ValidatePlanChange(plan, Mask({"summary", "version"}), &violations);
  EXPECT_TRUE(change.summary);
  EXPECT_EQ(Fields(violations), std::set<std::string>{"update_mask"});
  FieldViolations empty_mask;
  ValidatePlanChange(plan, Mask({}), &empty_mask);
  EXPECT_EQ(Fields(empty_mask), std::set<std::string>{"update_mask"});
}

TEST(PlanRulesTest, EveryGoalIsCheckedAtOnce) {
  v1::IntegrationPlan plan;
  *plan.add_goals() = Goal("Bad_Id", v1::LIFE_AREA_LANGUAGE);
  *plan.add_goals() = Goal("g-1", v1::LIFE_AREA_UNSPECIFIED);
  *plan.add_goals() = Goal("g-1", v1::LIFE_AREA_WORK);
  v1::Goal* bad = plan.add_goals();
  *bad = Goal("", v1::LIFE_AREA_WORK);
  bad->clear_description();
  bad->set_status(v1::GOAL_STATUS_UNSPECIFIED);
  bad->mutable_target_date()->set_year(2024);
  bad->mutable_target_date()->set_month(2);
  bad->mutable_target_date()->set_day(30);
  plan.set_change_note(std::string(1001, 'x'));
  FieldViolations violations;
  ValidatePlanChange(plan, Mask({"goals"}), &violations);
  EXPECT_EQ(Fields(violations),
            (std::set<std::string>{
                "plan.goals[0].goal_id", "plan.goals[1].life_area",
                "plan.goals[2].goal_id", "plan.goals[3].description",
                "plan.goals[3].status", "plan.goals[3].target_date",
                "plan.change_note"}));
  v1::IntegrationPlan many;
  for (int i = 0; i < 101; ++i)
    *many.add_goals() = Goal("", v1::LIFE_AREA_WORK);
  FieldViolations too_many;
  ValidatePlanChange(many, Mask({"goals"}), &too_many);
  EXPECT_EQ(Fields(too_many), std::set<std::string>{"plan.goals"});
}

TEST(PlanRulesTest, TargetDatesNotBeforeTheCaseWasOpened) {
  v1::IntegrationPlan plan;
  *plan.add_goals() = Goal("", v1::LIFE_AREA_WORK);
  *plan.add_goals() = Goal("", v1::LIFE_AREA_WORK);
  *plan.mutable_goals(0)->mutable_target_date() = DateFromKey(20240101);
  *plan.mutable_goals(1)->mutable_target_date() = DateFromKey(20240301);
  FieldViolations violations;
  CheckGoalTargetDates(plan, 20240201, &violations);
  EXPECT_EQ(Fields(violations),
            std::set<std::string>{"plan.goals[0].target_date"});
}

TEST(PlanRulesTest, KnownGoalsAreKeptAndNewOnesGetAnId) {
  v1::IntegrationPlan current;
  *current.add_goals() = Goal("g-old", v1::LIFE_AREA_LANGUAGE);
  *current.add_goals() = Goal("g-gone", v1::LIFE_AREA_WORK);
  v1::IntegrationPlan requested;
  *requested.add_goals() = Goal("", v1::LIFE_AREA_HOUSING);
  *requested.add_goals() = Goal("g-old", v1::LIFE_AREA_LANGUAGE);
  v1::IntegrationPlan next = current;
  FieldViolations violations;
  ReplaceGoals(requested, &next, &violations);
  EXPECT_TRUE(violations.empty());
  ASSERT_EQ(next.goals_size(), 2);
  EXPECT_TRUE(ValidGoalId(next.goals(0).goal_id()));
  EXPECT_EQ(next.goals(0).goal_id().rfind("g-", 0), 0u);
  EXPECT_EQ(next.goals(1).goal_id(), "g-old");
  EXPECT_FALSE(PlanHasGoal(next, "g-gone"));

  v1::IntegrationPlan unknown;
  *unknown.add_goals() = Goal("g-never", v1::LIFE_AREA_WORK);
  v1::IntegrationPlan unchanged = current;
  FieldViolations refused;
  ReplaceGoals(unknown, &unchanged, &refused);
  EXPECT_EQ(Fields(refused), std::set<std::string>{"plan.goals[0].goal_id"});
  EXPECT_EQ(unchanged.goals_size(), 2);
}

TEST(PlanRulesTest, AnOpenStepKeepsItsGoal) {
  v1::IntegrationPlan next;
  *next.add_goals() = Goal("g-kept", v1::LIFE_AREA_WORK);
  v1::Step step;
  step.set_state(v1::STEP_STATE_ACCEPTED);
  step.set_goal_id("g-kept");
  EXPECT_TRUE(CheckGoalKept(next, "cases/c/steps/s", step).ok());
  step.set_goal_id("g-removed");
  const absl::Status in_use = CheckGoalKept(next, "cases/c/steps/s", step);
  EXPECT_EQ(in_use.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(in_use), "GOAL_IN_USE");
  EXPECT_EQ(MetadataOf(in_use, "step"), "cases/c/steps/s");
  EXPECT_EQ(MetadataOf(in_use, "goal_id"), "g-removed");
  step.set_state(v1::STEP_STATE_DONE);
  EXPECT_TRUE(CheckGoalKept(next, "cases/c/steps/s", step).ok());
}

TEST(PlanRulesTest, SensitiveCategoriesOfTheGoals) {
  v1::IntegrationPlan plan;
  *plan.add_goals() = Goal("a", v1::LIFE_AREA_FAMILY);
  *plan.add_goals() = Goal("b", v1::LIFE_AREA_WORK);
  *plan.add_goals() = Goal("c", v1::LIFE_AREA_HEALTH);
  *plan.add_goals() = Goal("d", v1::LIFE_AREA_FAMILY);
  EXPECT_EQ(
      SensitiveGoalCategories(plan),
      (std::vector<type::v1::DataCategory>{type::v1::DATA_CATEGORY_FAMILY,
                                           type::v1::DATA_CATEGORY_HEALTH}));
}

}  // namespace
}  // namespace lotse::cases
