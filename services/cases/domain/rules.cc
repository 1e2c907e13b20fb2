#include "services/cases/domain/rules.h"

#include <cstdlib>
#include <functional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/api/names.h"

namespace lotse::cases {

using v1::StepState;

bool IsFinalStepState(StepState state) {
  return state == v1::STEP_STATE_DECLINED || state == v1::STEP_STATE_DONE ||
         state == v1::STEP_STATE_CANCELLED;
}

bool StepTransitionAllowed(StepState from, StepState to, StepActor actor) {
  if (IsFinalStepState(from) || from == to) return false;
  switch (actor) {
    case StepActor::kOwner:
      return to == v1::STEP_STATE_CANCELLED;
    case StepActor::kReceiver:
      switch (from) {
        case v1::STEP_STATE_REFERRED:
          return to == v1::STEP_STATE_ACCEPTED || to == v1::STEP_STATE_DECLINED;
        case v1::STEP_STATE_ACCEPTED:
          return to == v1::STEP_STATE_IN_PROGRESS ||
                 to == v1::STEP_STATE_CANCELLED;
        case v1::STEP_STATE_IN_PROGRESS:
          return to == v1::STEP_STATE_DONE || to == v1::STEP_STATE_CANCELLED;
        default:
          return false;
      }
    case StepActor::kEvent: {
      auto rank = [](StepState s) {
        switch (s) {
          case v1::STEP_STATE_REFERRED:
            return 1;
          case v1::STEP_STATE_ACCEPTED:
            return 2;
          case v1::STEP_STATE_IN_PROGRESS:
            return 3;
          case v1::STEP_STATE_DONE:
            return 4;
          default:
            return 0;
        }
      };
      return rank(from) > 0 && rank(to) > rank(from);
    }
  }
  return false;
}

bool CaseTransitionAllowed(v1::CaseState from, v1::CaseState to) {
  return (from == v1::CASE_STATE_INTAKE && to == v1::CASE_STATE_ASSESSMENT) ||
         (from == v1::CASE_STATE_ASSESSMENT && to == v1::CASE_STATE_ACTIVE) ||
         (from == v1::CASE_STATE_ACTIVE && to == v1::CASE_STATE_ASSESSMENT);
}

std::vector<std::string> FindDependencyCycle(
    const std::string& step, const std::vector<std::string>& depends_on,
    const absl::flat_hash_map<std::string, std::vector<std::string>>& graph) {
  // Depth-first search from the new dependencies: a path back to `step` is
  // a cycle. The path found is returned.
  absl::flat_hash_set<std::string> visited;
  std::vector<std::string> path;
  std::function<bool(const std::string&)> reaches =
      [&](const std::string& node) -> bool {
    if (node == step) return true;
    if (!visited.insert(node).second) return false;
    path.push_back(node);
    auto it = graph.find(node);
    if (it != graph.end()) {
      for (const std::string& next : it->second) {
        if (reaches(next)) return true;
      }
    }
    path.pop_back();
    return false;
  };
  for (const std::string& dep : depends_on) {
    if (reaches(dep)) {
      path.insert(path.begin(), step);
      return path;
    }
  }
  return {};
}

absl::Status CheckJurisdiction(
    absl::string_view caller_municipality,
    const std::vector<std::string>& open_case_municipalities) {
  for (const std::string& code : open_case_municipalities) {
    if (code == caller_municipality) continue;
    return ErrorWithReason(
        absl::StatusCode::kFailedPrecondition, "CASE_OPEN_ELSEWHERE",
        absl::StrCat("the person has an open case in another municipality "
                     "(",
                     code,
                     "); its case owner hands it over with TransferCase "
                     "instead of a second case being opened"),
        {{"municipality_code", code}});
  }
  return absl::OkStatus();
}

int32_t DateKey(const type::v1::Date& date) {
  if (date.year() == 0 && date.month() == 0 && date.day() == 0) return 0;
  return date.year() * 10000 + date.month() * 100 + date.day();
}

type::v1::Date DateFromKey(int32_t key) {
  type::v1::Date d;
  if (key == 0) return d;
  d.set_year(key / 10000);
  d.set_month((key / 100) % 100);
  d.set_day(key % 100);
  return d;
}

bool IsValidDate(const type::v1::Date& date) {
  if (date.year() < 1900 || date.year() > 9999) return false;
  if (date.month() < 1 || date.month() > 12) return false;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
  int max = kDays[date.month() - 1];
  if (date.month() == 2) {
    const int y = date.year();
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    max = leap ? 29 : 28;
  }
  return date.day() >= 1 && date.day() <= max;
}

int32_t DayKeyOf(absl::Time t) {
  const absl::CivilDay day = absl::ToCivilDay(t, absl::UTCTimeZone());
  return static_cast<int32_t>(day.year() * 10000 + day.month() * 100 +
                              day.day());
}

type::v1::DataCategory StepCategory(v1::StepKind kind) {
  if (kind == v1::STEP_KIND_HEALTH_SERVICE) {
    return type::v1::DATA_CATEGORY_HEALTH;
  }
  if (kind == v1::STEP_KIND_FAMILY_SUPPORT) {
    return type::v1::DATA_CATEGORY_FAMILY;
  }
  return type::v1::DATA_CATEGORY_CASE_STATUS;
}

type::v1::DataCategory GoalCategory(v1::LifeArea area) {
  if (area == v1::LIFE_AREA_HEALTH) return type::v1::DATA_CATEGORY_HEALTH;
  if (area == v1::LIFE_AREA_FAMILY) return type::v1::DATA_CATEGORY_FAMILY;
  return type::v1::DATA_CATEGORY_CASE_STATUS;
}

std::string CaseName(absl::string_view case_id) {
  return absl::StrCat("cases/", case_id);
}
std::string StepName(absl::string_view case_id, absl::string_view step_id) {
  return absl::StrCat("cases/", case_id, "/steps/", step_id);
}
std::string NoteName(absl::string_view case_id, absl::string_view step_id,
                     absl::string_view note_id) {
  if (step_id.empty())
    return absl::StrCat("cases/", case_id, "/notes/", note_id);
  return absl::StrCat("cases/", case_id, "/steps/", step_id, "/notes/",
                      note_id);
}
std::string AgencyName(absl::string_view agency_id) {
  return absl::StrCat("agencies/", agency_id);
}

std::string ParseCaseName(absl::string_view name, const std::string& field,
                          FieldViolations* violations) {
  return api::ParseNameId(name, "cases/{case}", field, violations);
}

bool ParseStepName(absl::string_view name, const std::string& field,
                   std::string* case_id, std::string* step_id,
                   FieldViolations* violations) {
  std::vector<std::string> ids =
      api::ParseName(name, api::kCaseStepName, field, violations);
  if (ids.empty()) return false;
  *case_id = std::move(ids[0]);
  *step_id = std::move(ids[1]);
  return true;
}

bool ParseNoteName(absl::string_view name, const std::string& field,
                   std::string* case_id, std::string* step_id,
                   std::string* note_id, FieldViolations* violations) {
  static constexpr char kCaseNote[] = "cases/{case}/notes/{note}";
  static constexpr char kStepNote[] = "cases/{case}/steps/{step}/notes/{note}";
  std::vector<std::string> ids;
  if (api::MatchName(name, kCaseNote, &ids)) {
    *case_id = std::move(ids[0]);
    step_id->clear();
    *note_id = std::move(ids[1]);
    return true;
  }
  if (api::MatchName(name, kStepNote, &ids)) {
    *case_id = std::move(ids[0]);
    *step_id = std::move(ids[1]);
    *note_id = std::move(ids[2]);
    return true;
  }
  if (name.empty()) {
    violations->Add(field, "is required");
  } else {
    violations->Add(field, absl::StrCat("must be a name \"", kCaseNote,
                                        "\" or \"", kStepNote, "\""));
  }
  return false;
}

std::string ParseAgencyName(absl::string_view name, const std::string& field,
                            FieldViolations* violations) {
  return api::ParseNameId(name, api::kAgencyName, field, violations);
}

bool ValidPersonName(absl::string_view name) {
  return api::MatchName(name, api::kPersonName);
}

std::string NewId() {
  absl::StatusOr<std::string> id = api::NewId();
  // Without randomness no id is safe to hand out.
  if (!id.ok()) std::abort();
  return *std::move(id);
}

std::optional<audit::LegalBasis> CaseGroundOf(absl::string_view agency,
                                              absl::string_view owner_agency,
                                              absl::string_view category) {
  audit::LegalBasis basis;
  basis.category = std::string(category);
  if (category == "PRIVATE_NOTES") return basis;  // OWNER: notes are private
  if (category != "CASE_STATUS") return std::nullopt;
  if (agency != owner_agency) {
    basis.kind = audit::BasisKind::kRule;
    basis.rule_id = kCaseParticipantsRule;
  }
  return basis;
}

}  // namespace lotse::cases
