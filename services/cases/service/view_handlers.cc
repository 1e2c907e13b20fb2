// GetCaseView: the shared view of a case, filled from identity and
// withheld where the caller may not read.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "services/cases/domain/rules.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/service/internal.h"

namespace lotse::cases {

using agencies::LocalAgency;
using api::ToTimestamp;
using internal::CaseTarget;
using internal::CaseToProto;
using internal::LoadCase;
using internal::NoteToProto;
using internal::StepToProto;
using server::RequestContext;
using storage::Transaction;
using type::v1::DataCategory;

namespace {

std::string CategoryName(DataCategory c) {
  return type::v1::DataCategory_Name(c).substr(sizeof("DATA_CATEGORY_") - 1);
}

// The categories a view may show besides CASE_STATUS, in the order they
// are asked.
const std::vector<DataCategory>& ViewCategories() {
  static const auto* kCategories = new std::vector<DataCategory>{
      type::v1::DATA_CATEGORY_CORE_IDENTITY,
      type::v1::DATA_CATEGORY_RESIDENCE_STATUS,
      type::v1::DATA_CATEGORY_LANGUAGE,
      type::v1::DATA_CATEGORY_EMPLOYMENT,
      type::v1::DATA_CATEGORY_HEALTH,
      type::v1::DATA_CATEGORY_FAMILY,
  };
  return *kCategories;
}

// Clears an activity's details when its category is denied.
void WithholdActivity(
    v1::StepActivity* activity, const std::string& path,
    const absl::flat_hash_map<int, type::v1::AccessDenialReason>& denied,
    v1::CaseView* view) {
  auto it = denied.find(activity->category());
  if (it == denied.end()) return;
  activity->clear_detail();
  type::v1::Withheld* w = view->add_withheld();
  w->set_field(path);
  w->set_category(activity->category());
  w->set_reason(it->second);
}

// The deadline identity is given within a view: the call's, less a reserve
// (a fifth of the time left, at most 200 ms) for assembling and sending the
// view, so that a slow identity leaves fields marked rather than making
// the whole view miss the caller's deadline.
absl::Time IdentityDeadline(absl::Time call_deadline, absl::Time now) {
  if (call_deadline == absl::InfiniteFuture()) return call_deadline;
  const absl::Duration reserve =
      std::min(absl::Milliseconds(200), (call_deadline - now) / 5);
  return call_deadline - std::max(reserve, absl::ZeroDuration());
}

type::v1::NotDeliveredReason NotDeliveredReasonOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
      return type::v1::NOT_DELIVERED_REASON_SOURCE_UNAVAILABLE;
    default:
      return type::v1::NOT_DELIVERED_REASON_SOURCE_FAILED;
  }
}

// The name Lotse displays (identity's contract): the first Latin-script
// name of kind CURRENT, else the first Latin-script name.
const identity::v1::PersonName* DisplayedName(
    const identity::v1::Person& person) {
  const identity::v1::PersonName* latin = nullptr;
  for (const identity::v1::PersonName& n : person.names()) {
    if (!n.script().empty() && n.script() != "Latn") continue;
    if (n.kind() == identity::v1::NAME_KIND_CURRENT ||
        n.kind() == identity::v1::NAME_KIND_UNSPECIFIED) {
      return &n;
    }
    if (latin == nullptr) latin = &n;
  }
  return latin;
}

void FillPerson(const identity::v1::Person& record, v1::PersonSummary* out) {
  if (const identity::v1::PersonName* name = DisplayedName(record)) {
    out->set_given_names(name->given_names());
    out->set_family_names(name->family_names());
  }
  if (record.has_birth_date()) *out->mutable_birth_date() = record.birth_date();
}

void FillResidence(const identity::v1::ResidenceStatus& status,
                   v1::ResidenceSummary* out) {
  out->set_title_kind(status.title_kind());
  if (status.has_valid_until()) {
    *out->mutable_valid_until() = status.valid_until();
  }
  out->set_work_permission(status.work_permission());
  out->set_integration_course_obligation(
      status.integration_course_obligation());
}

// The language summary from course activities (any order): the highest
// level a result certified, and the booking most recently booked,
// confirmed or started that has not ended since (cancelled, expired, or a
// result recorded). Unset when there is nothing to say.
void SummarizeLanguage(std::vector<v1::StepActivity> activities,
                       v1::CaseView* view) {
  std::stable_sort(activities.begin(), activities.end(),
                   [](const v1::StepActivity& a, const v1::StepActivity& b) {
                     return std::make_pair(a.occur_time().seconds(),
                                           a.occur_time().nanos()) <
                            std::make_pair(b.occur_time().seconds(),
                                           b.occur_time().nanos());
                   });
  v1::LanguageSummary summary;
  // Booking name -> the position of its latest activation, while current.
  std::map<std::string, size_t> current;
  for (size_t i = 0; i < activities.size(); ++i) {
    const v1::StepActivity& a = activities[i];
    const v1::CourseActivity& c = a.course();
    switch (a.kind()) {
      case v1::ACTIVITY_KIND_COURSE_RESULT:
        if (c.achieved_level() > summary.certified_level()) {
          summary.set_certified_level(c.achieved_level());
          *summary.mutable_certified_time() = a.occur_time();
        }
        current.erase(c.booking());
        break;
      case v1::ACTIVITY_KIND_COURSE_BOOKED:
      case v1::ACTIVITY_KIND_COURSE_WAITLIST_PROMOTED:
      case v1::ACTIVITY_KIND_COURSE_BOOKING_CONFIRMED:
      case v1::ACTIVITY_KIND_COURSE_STARTED:
        if (!c.booking().empty()) current[c.booking()] = i;
        break;
      case v1::ACTIVITY_KIND_COURSE_BOOKING_ENDED:
      case v1::ACTIVITY_KIND_COURSE_CANCELLED:
        current.erase(c.booking());
        break;
      default:
        break;
    }
  }
  size_t latest = 0;
  for (const auto& [booking, at] : current) {
    if (summary.current_booking().empty() || at > latest) {
      summary.set_current_booking(booking);
      latest = at;
    }
  }
  if (summary.certified_level() != type::v1::CEFR_LEVEL_UNSPECIFIED ||
      !summary.current_booking().empty()) {
    *view->mutable_language() = std::move(summary);
  }
}

// Why each category the caller may not read is withheld (absent: allowed).
using Denials = absl::flat_hash_map<int, type::v1::AccessDenialReason>;

// The denials of identity's answer for ViewCategories(); every category is
// denied (CHECK_UNAVAILABLE) when identity did not answer.
Denials DenialsFrom(
    const absl::StatusOr<std::vector<AccessDecision>>& decisions) {
  Denials denied;
  for (DataCategory c : ViewCategories()) {
    denied[c] = type::v1::ACCESS_DENIAL_REASON_CHECK_UNAVAILABLE;
  }
  if (!decisions.ok()) return denied;
  for (const AccessDecision& d : *decisions) {
    if (d.allowed) {
      denied.erase(d.category);
    } else {
      denied[d.category] =
          d.denial_reason == type::v1::ACCESS_DENIAL_REASON_UNSPECIFIED
              ? type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS
              : d.denial_reason;
    }
  }
  return denied;
}

// Marks `field` of the view as withheld for category `c` (denied).
void Withhold(const Denials& denied, const std::string& field, DataCategory c,
              v1::CaseView* resp) {
  type::v1::Withheld* w = resp->add_withheld();
  w->set_field(field);
  w->set_category(c);
  w->set_reason(denied.at(c));
}

// Fills the case view from the store: case, current plan, steps, the
// person's activities waiting for a case, the caller's own notes and the
// language summary.
absl::Status ReadStoredView(Transaction& tx, const CaseRow& c,
                            const std::string& agency, v1::CaseView* resp) {
  const std::string& id = c.id;
  *resp->mutable_case_record() = CaseToProto(c);
  absl::StatusOr<std::optional<v1::IntegrationPlan>> plan = ReadPlan(tx, id, 0);
  if (!plan.ok()) return plan.status();
  if (plan->has_value()) {
    *resp->mutable_plan() = **plan;
    resp->mutable_plan()->set_etag(
        internal::PlanEtag(id, c.record.plan_version()));
  }
  absl::StatusOr<std::vector<StepRow>> steps = StepsOfCase(tx, id);
  if (!steps.ok()) return steps.status();
  for (const StepRow& s : *steps) *resp->add_steps() = StepToProto(s);
  absl::StatusOr<std::vector<v1::StepActivity>> loose =
      ReadUnassignedActivities(tx, c.record.person(), id);
  if (!loose.ok()) return loose.status();
  for (v1::StepActivity& a : *loose) {
    *resp->add_unassigned_activities() = std::move(a);
  }
  absl::StatusOr<std::vector<NoteRow>> notes =
      cases::ListNotes(tx, id, "", false, agency, false, 0, "", 50);
  if (!notes.ok()) return notes.status();
  for (const NoteRow& n : *notes) *resp->add_own_notes() = NoteToProto(n);
  // The language summary draws on every course event cases holds
  // about the person: this case's, the person's other cases' and
  // those still waiting for a case. Withheld below if not allowed.
  const std::string& person = c.record.person();
  std::vector<v1::StepActivity> course;
  auto keep = [&](const v1::StepActivity& a) {
    if (a.has_course()) course.push_back(a);
  };
  for (const v1::Step& s : resp->steps()) {
    for (const v1::StepActivity& a : s.activities()) keep(a);
  }
  for (const v1::StepActivity& a : resp->unassigned_activities()) {
    keep(a);
  }
  absl::StatusOr<std::vector<std::string>> others = CasesOfPerson(tx, person);
  if (!others.ok()) return others.status();
  others->push_back("");  // activities without a case
  for (const std::string& other : *others) {
    if (other == id) continue;
    if (!other.empty()) {
      absl::StatusOr<std::vector<StepRow>> other_steps = StepsOfCase(tx, other);
      if (!other_steps.ok()) return other_steps.status();
      for (const StepRow& s : *other_steps) {
        for (const v1::StepActivity& a : s.record.activities()) keep(a);
      }
    }
    absl::StatusOr<std::vector<v1::StepActivity>> waiting =
        ReadUnassignedActivities(tx, person, other);
    if (!waiting.ok()) return waiting.status();
    for (const v1::StepActivity& a : *waiting) keep(a);
  }
  SummarizeLanguage(std::move(course), resp);
  return absl::OkStatus();
}

// The person's names and birth date and the residence status, from
// identity, where `denied` allows them; marked withheld or not delivered
// otherwise.
void FillFromIdentity(AccessChecker& access, const RequestContext& rc,
                      absl::Time identity_deadline, const Denials& denied,
                      v1::CaseView* resp) {
  const std::string& person = resp->case_record().person();
  auto withhold = [&](const std::string& field, DataCategory c) {
    Withhold(denied, field, c, resp);
  };
  auto not_delivered = [&](const std::string& field, DataCategory c,
                           const absl::Status& why) {
    type::v1::NotDelivered* n = resp->add_not_delivered();
    n->set_field(field);
    n->set_category(c);
    n->set_reason(NotDeliveredReasonOf(why));
  };
  // Names and birth date are identity's; cases keeps only the
  // pseudonymous id. Read only when the check allowed them.
  static constexpr const char* kPersonFields[] = {
      "person.given_names", "person.family_names", "person.birth_date"};
  if (denied.contains(type::v1::DATA_CATEGORY_CORE_IDENTITY)) {
    for (const char* f : kPersonFields) {
      withhold(f, type::v1::DATA_CATEGORY_CORE_IDENTITY);
    }
  } else {
    absl::StatusOr<identity::v1::Person> record =
        access.GetPerson(person, rc.purpose, identity_deadline);
    if (record.ok()) {
      FillPerson(*record, resp->mutable_person());
    } else {
      for (const char* f : kPersonFields) {
        not_delivered(f, type::v1::DATA_CATEGORY_CORE_IDENTITY,
                      record.status());
      }
    }
  }
  if (denied.contains(type::v1::DATA_CATEGORY_RESIDENCE_STATUS)) {
    resp->clear_residence();
    withhold("residence", type::v1::DATA_CATEGORY_RESIDENCE_STATUS);
  } else {
    absl::StatusOr<identity::v1::ResidenceStatus> status =
        access.GetCurrentResidenceStatus(person, rc.purpose, identity_deadline);
    if (status.ok()) {
      FillResidence(*status, resp->mutable_residence());
    } else if (!(absl::IsNotFound(status.status()) &&
                 ReasonOf(status.status()).value_or("") ==
                     "NO_RESIDENCE_STATUS")) {
      // None recorded is an answer (residence stays unset); anything
      // else means identity did not deliver it.
      not_delivered("residence", type::v1::DATA_CATEGORY_RESIDENCE_STATUS,
                    status.status());
    }
  }
}

// Clears what the caller may not read of the language summary, the plan's
// goals, the steps and their activities, marking each withheld.
void WithholdDenied(const Denials& denied, v1::CaseView* resp) {
  auto withhold = [&](const std::string& field, DataCategory c) {
    Withhold(denied, field, c, resp);
  };
  if (denied.contains(type::v1::DATA_CATEGORY_LANGUAGE)) {
    resp->clear_language();
    withhold("language", type::v1::DATA_CATEGORY_LANGUAGE);
  }
  v1::IntegrationPlan* plan = resp->mutable_plan();
  for (int i = 0; i < plan->goals_size(); ++i) {
    v1::Goal* g = plan->mutable_goals(i);
    const DataCategory c = GoalCategory(g->life_area());
    if (!denied.contains(c)) continue;
    v1::Goal kept;
    kept.set_goal_id(g->goal_id());
    kept.set_life_area(g->life_area());
    *g = kept;
    withhold(absl::StrCat("plan.goals[", i, "]"), c);
  }
  for (int i = 0; i < resp->steps_size(); ++i) {
    v1::Step* s = resp->mutable_steps(i);
    const DataCategory c = StepCategory(s->kind());
    if (denied.contains(c)) {
      s->clear_description();
      s->clear_state_comment();
      withhold(absl::StrCat("steps[", i, "].description"), c);
    }
    for (int j = 0; j < s->activities_size(); ++j) {
      WithholdActivity(s->mutable_activities(j),
                       absl::StrCat("steps[", i, "].activities[", j, "]"),
                       denied, resp);
    }
  }
  for (int k = 0; k < resp->unassigned_activities_size(); ++k) {
    WithholdActivity(resp->mutable_unassigned_activities(k),
                     absl::StrCat("unassigned_activities[", k, "]"), denied,
                     resp);
  }
}

}  // namespace

absl::Status CasesServiceImpl::DoGetCaseView(const RequestContext& rc,
                                             const v1::GetCaseViewRequest& req,
                                             v1::CaseView* resp) {
  std::string agency;
  const std::string target = CaseTarget(req.name());
  agencies::AuditedCall call(call_env_, rc, "GetCaseView", target);
  internal::AuditAs(call, target);
  absl::Status status = call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        resp->Clear();
        FieldViolations violations;
        const std::string id = ParseCaseName(req.name(), "name", &violations);
        if (!violations.empty()) return violations.ToStatus();
        agency = AgencyName(caller.id);
        absl::StatusOr<CaseRow> c = LoadCase(tx, id, agency);
        if (!c.ok()) return c.status();
        return ReadStoredView(tx, *c, agency, resp);
      });
  if (!status.ok()) return call.Finish(status);
  // Outside the transaction: identity is asked, once for every category the
  // view may carry; the view fails closed when it does not answer.
  const std::string& person = resp->case_record().person();
  resp->mutable_person()->set_person(person);
  const absl::Time identity_deadline =
      IdentityDeadline(rc.deadline, absl::Now());
  const std::vector<identity::v1::Relation> relations = {
      resp->case_record().owner_agency() == agency
          ? identity::v1::RELATION_CASE_OWNER
          : identity::v1::RELATION_CASE_PARTICIPANT};
  const absl::StatusOr<std::vector<AccessDecision>> decisions =
      access_->Check(agency, person, ViewCategories(), rc.purpose, relations,
                     identity_deadline);
  const Denials denied = DenialsFrom(decisions);
  if (decisions.ok()) {
    for (const AccessDecision& d : *decisions) {
      if (d.allowed) call.AddLegalBasisFor(person, d.basis);
    }
  }
  FillFromIdentity(*access_, rc, identity_deadline, denied, resp);
  WithholdDenied(denied, resp);
  *resp->mutable_view_time() = ToTimestamp(absl::Now());
  std::vector<std::string> categories = {internal::kCategoryCaseStatus};
  for (DataCategory c : ViewCategories()) {
    if (!denied.contains(c)) categories.push_back(CategoryName(c));
  }
  categories.push_back(internal::kCategoryNotes);
  internal::AuditAs(call, target, std::move(categories));
  return call.Finish(absl::OkStatus());
}

}  // namespace lotse::cases
