// The rules of cases and steps that need no database: the state machines,
// dependency cycles, dates and names.
#ifndef LOTSE_SERVICES_CASES_DOMAIN_RULES_H_
#define LOTSE_SERVICES_CASES_DOMAIN_RULES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "lotse/cases/v1/case.pb.h"
#include "lotse/cases/v1/plan.pb.h"
#include "lotse/cases/v1/step.pb.h"
#include "lotse/type/v1/data_category.pb.h"
#include "lotse/type/v1/date.pb.h"

namespace lotse::cases {

// The rules file's rule (config/access-rules.conf) under which an agency
// taking part in a case sees its status. Case status is the cases
// service's own data, so the service applies this rule itself rather than
// asking identity on every call; the audit record names it.
inline constexpr char kCaseParticipantsRule[] = "case-status.participants";

// The ground on which `agency` ("agencies/x") touches `category` (e.g.
// "CASE_STATUS") of a case owned by `owner_agency`: the owner as OWNER of
// the case status, an agency taking part in it under
// kCaseParticipantsRule, and every agency as OWNER of its own private
// notes. nullopt for the other categories, which identity decides.
std::optional<audit::LegalBasis> CaseGroundOf(absl::string_view agency,
                                              absl::string_view owner_agency,
                                              absl::string_view category);

// Who moves a step.
enum class StepActor { kOwner, kReceiver, kEvent };

// Whether `actor` may move a step from `from` to `to` (the state machine
// on lotse.cases.v1.Step). kEvent (another service's event) may move it
// forward along REFERRED -> ACCEPTED -> IN_PROGRESS -> DONE, skipping
// states.
bool StepTransitionAllowed(v1::StepState from, v1::StepState to,
                           StepActor actor);
bool IsFinalStepState(v1::StepState state);

// ChangeCaseState: INTAKE -> ASSESSMENT -> ACTIVE, ACTIVE -> ASSESSMENT.
bool CaseTransitionAllowed(v1::CaseState from, v1::CaseState to);

// The step ids of a case that form a dependency cycle through `step` when
// its dependencies become `depends_on`, given the other steps' current
// dependencies (`graph`: step id -> ids it depends on). Empty when none.
std::vector<std::string> FindDependencyCycle(
    const std::string& step, const std::vector<std::string>& depends_on,
    const absl::flat_hash_map<std::string, std::vector<std::string>>& graph);

// Municipal jurisdiction: a KOMMUNE agency acts for its own municipality
// (`caller_municipality`, an AGS). It may open a case of a person whose
// open cases (`open_case_municipalities`, one AGS each) all belong to that
// municipality; a case elsewhere is handed over by its owner with
// TransferCase instead. FAILED_PRECONDITION, reason CASE_OPEN_ELSEWHERE
// (metadata "municipality_code": the other case's AGS), otherwise.
absl::Status CheckJurisdiction(
    absl::string_view caller_municipality,
    const std::vector<std::string>& open_case_municipalities);

// Dates as yyyymmdd integers (0 = unset), for storage and comparison.
int32_t DateKey(const type::v1::Date& date);
type::v1::Date DateFromKey(int32_t key);
bool IsValidDate(const type::v1::Date& date);
// The calendar day of `t` in UTC, as a key.
int32_t DayKeyOf(absl::Time t);

// The category of a step's own fields (HEALTH / FAMILY kinds, else
// CASE_STATUS) and of a goal.
type::v1::DataCategory StepCategory(v1::StepKind kind);
type::v1::DataCategory GoalCategory(v1::LifeArea area);

// Resource names, checked with common/api/names.h. Parse* add a violation
// for `field` and return "" when `name` is malformed.
std::string CaseName(absl::string_view case_id);
std::string StepName(absl::string_view case_id, absl::string_view step_id);
std::string NoteName(absl::string_view case_id, absl::string_view step_id,
                     absl::string_view note_id);
std::string AgencyName(absl::string_view agency_id);
std::string ParseCaseName(absl::string_view name, const std::string& field,
                          FieldViolations* violations);
// Sets *case_id and *step_id; false (with a violation) when malformed.
bool ParseStepName(absl::string_view name, const std::string& field,
                   std::string* case_id, std::string* step_id,
                   FieldViolations* violations);
// "cases/{c}/notes/{n}" or "cases/{c}/steps/{s}/notes/{n}".
bool ParseNoteName(absl::string_view name, const std::string& field,
                   std::string* case_id, std::string* step_id,
                   std::string* note_id, FieldViolations* violations);
std::string ParseAgencyName(absl::string_view name, const std::string& field,
                            FieldViolations* violations);
// "persons/{id}": validated form, returned unchanged.
bool ValidPersonName(absl::string_view name);

// A random opaque id, api::NewId's. Cases issued 22 characters of
// [A-Za-z0-9_-] before; those ids stay valid (api::IsValidId).
std::string NewId();

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_DOMAIN_RULES_H_
