#include "services/cases/domain/plan_rules.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/api/text.h"
#include "services/cases/domain/rules.h"

namespace lotse::cases {

PlanChange ValidatePlanChange(const v1::IntegrationPlan& in,
                              const google::protobuf::FieldMask& mask,
                              FieldViolations* violations) {
  PlanChange change;
  if (mask.paths_size() == 0) violations->Add("update_mask", "is required");
  for (const std::string& path : mask.paths()) {
    if (path == "goals") {
      change.goals = true;
    } else if (path == "summary") {
      change.summary = true;
    } else {
      violations->Add("update_mask",
                      "only \"goals\" and \"summary\" can be changed");
    }
  }
  if (in.goals_size() > 100) {
    violations->Add("plan.goals", "at most 100 goals");
  }
  absl::flat_hash_set<std::string> ids;
  for (int i = 0; i < in.goals_size(); ++i) {
    const v1::Goal& g = in.goals(i);
    const std::string f = absl::StrCat("plan.goals[", i, "]");
    if (!g.goal_id().empty()) {
      if (!ValidGoalId(g.goal_id())) {
        violations->Add(f + ".goal_id", "must be 1..64 of [a-z0-9-]");
      } else if (!ids.insert(g.goal_id()).second) {
        violations->Add(f + ".goal_id", "is used twice");
      }
    }
    if (g.life_area() == v1::LIFE_AREA_UNSPECIFIED ||
        !v1::LifeArea_IsValid(g.life_area())) {
      violations->Add(f + ".life_area", "is required");
    }
    api::ValidateText(g.description(), f + ".description", {1, 1000, true},
                      violations);
    if (g.status() == v1::GOAL_STATUS_UNSPECIFIED ||
        !v1::GoalStatus_IsValid(g.status())) {
      violations->Add(f + ".status", "is required");
    }
    if (g.has_target_date() && !IsValidDate(g.target_date())) {
      violations->Add(f + ".target_date", "is not a valid date");
    }
  }
  api::ValidateText(in.summary(), "plan.summary", {0, 4000, true}, violations);
  api::ValidateText(in.change_note(), "plan.change_note", {0, 1000, true},
                    violations);
  return change;
}

void CheckGoalTargetDates(const v1::IntegrationPlan& in, int32_t opened_day,
                          FieldViolations* violations) {
  for (int i = 0; i < in.goals_size(); ++i) {
    if (in.goals(i).has_target_date() &&
        DateKey(in.goals(i).target_date()) < opened_day) {
      violations->Add(absl::StrCat("plan.goals[", i, "].target_date"),
                      "must not be before the case was opened");
    }
  }
}

void ReplaceGoals(const v1::IntegrationPlan& in, v1::IntegrationPlan* next,
                  FieldViolations* violations) {
  bool unknown = false;
  for (int i = 0; i < in.goals_size(); ++i) {
    if (!in.goals(i).goal_id().empty() &&
        !PlanHasGoal(*next, in.goals(i).goal_id())) {
      violations->Add(absl::StrCat("plan.goals[", i, "].goal_id"),
                      "no such goal in the current plan; leave empty "
                      "for a new goal");
      unknown = true;
    }
  }
  if (unknown) return;
  next->clear_goals();
  for (const v1::Goal& g : in.goals()) {
    v1::Goal* out = next->add_goals();
    *out = g;
    if (out->goal_id().empty()) out->set_goal_id(NewGoalId());
  }
}

absl::Status CheckGoalKept(const v1::IntegrationPlan& next,
                           const std::string& step_name, const v1::Step& step) {
  if (step.goal_id().empty() || IsFinalStepState(step.state()) ||
      PlanHasGoal(next, step.goal_id())) {
    return absl::OkStatus();
  }
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition, "GOAL_IN_USE",
                         "an open step serves a goal the change removes",
                         {{"step", step_name}, {"goal_id", step.goal_id()}});
}

bool PlanHasGoal(const v1::IntegrationPlan& plan, absl::string_view goal_id) {
  return std::any_of(
      plan.goals().begin(), plan.goals().end(),
      [goal_id](const v1::Goal& g) { return g.goal_id() == goal_id; });
}

std::vector<type::v1::DataCategory> SensitiveGoalCategories(
    const v1::IntegrationPlan& plan) {
  std::vector<type::v1::DataCategory> out;
  for (const v1::Goal& g : plan.goals()) {
    const type::v1::DataCategory c = GoalCategory(g.life_area());
    if (c != type::v1::DATA_CATEGORY_CASE_STATUS &&
        std::find(out.begin(), out.end(), c) == out.end()) {
      out.push_back(c);
    }
  }
  return out;
}

std::string NewGoalId() { return absl::StrCat("g-", NewId().substr(0, 16)); }

bool ValidGoalId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace lotse::cases
