// The rules of integration plans: what an UpdateIntegrationPlan request may
// change and must satisfy, how the next version's goals are made, which
// open steps stop a goal from being removed, and which data categories a
// plan's goals carry. Pure functions: no storage, no gRPC.
#ifndef LOTSE_SERVICES_CASES_DOMAIN_PLAN_RULES_H_
#define LOTSE_SERVICES_CASES_DOMAIN_PLAN_RULES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/errors/status.h"
#include "google/protobuf/field_mask.pb.h"
#include "lotse/cases/v1/plan.pb.h"
#include "lotse/cases/v1/step.pb.h"
#include "lotse/type/v1/data_category.pb.h"

namespace lotse::cases {

// The parts of a plan an update replaces.
struct PlanChange {
  bool goals = false;
  bool summary = false;
};

// Checks what an update says without looking at the stored plan, adding a
// violation for each fault: the update mask must name "goals" and/or
// "summary" and nothing else; at most 100 goals; a goal's goal_id is empty
// (a new goal) or 1..64 characters of [a-z0-9-], used once; each goal needs
// a known life_area and status, a description of 1..1000 characters and,
// if it has one, a valid target_date; the summary is at most 4000
// characters, the change_note at most 1000. Fields are named as in
// UpdateIntegrationPlanRequest ("plan.goals[2].status", "update_mask").
// Returns what the mask names.
PlanChange ValidatePlanChange(const v1::IntegrationPlan& requested,
                              const google::protobuf::FieldMask& mask,
                              FieldViolations* violations);

// A goal's target date must not be before the day the case was opened
// (`opened_day`, a DayKeyOf key): a violation "plan.goals[i].target_date"
// for each that is.
void CheckGoalTargetDates(const v1::IntegrationPlan& requested,
                          int32_t opened_day, FieldViolations* violations);

// Replaces the goals of `next` (a copy of the current plan) by the
// requested ones, in the requested order. A requested goal with an id must
// name a goal of the current plan (a violation "plan.goals[i].goal_id"
// otherwise, and `next` is left unchanged); one without an id is a new
// goal and gets a fresh id.
void ReplaceGoals(const v1::IntegrationPlan& requested,
                  v1::IntegrationPlan* next, FieldViolations* violations);

// An open step that serves a goal must keep it: FAILED_PRECONDITION,
// reason GOAL_IN_USE (metadata "step": `step_name`, "goal_id"), when
// `step` is not final and its goal is not among the goals of `next`.
absl::Status CheckGoalKept(const v1::IntegrationPlan& next,
                           const std::string& step_name, const v1::Step& step);

// Whether `plan` has a goal with `goal_id`.
bool PlanHasGoal(const v1::IntegrationPlan& plan, absl::string_view goal_id);

// The categories other than CASE_STATUS the goals of `plan` carry
// (GoalCategory), each once, in the order of the goals. A caller must be
// allowed to read them to get the plan directly.
std::vector<type::v1::DataCategory> SensitiveGoalCategories(
    const v1::IntegrationPlan& plan);

// A new goal id: "g-" and 16 random characters.
std::string NewGoalId();
// Whether `id` is a goal id a client may send: 1..64 of [a-z0-9-].
bool ValidGoalId(absl::string_view id);

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_DOMAIN_PLAN_RULES_H_
