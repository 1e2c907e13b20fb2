// The shared case view and the waiting-time statistics.
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

// Nearest-rank percentile of sorted durations (in microseconds).
int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * sorted.size() + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > sorted.size()) rank = sorted.size();
  return sorted[rank - 1];
}

void Summarize(std::vector<int64_t> micros, v1::DurationSummary* out) {
  std::sort(micros.begin(), micros.end());
  out->set_count(static_cast<int32_t>(micros.size()));
  if (micros.empty()) return;
  auto set = [](int64_t us, google::protobuf::Duration* d) {
    d->set_seconds(us / 1000000);
    d->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
  };
  set(Percentile(micros, 0.5), out->mutable_median());
  set(Percentile(micros, 0.9), out->mutable_p90());
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
        *resp->mutable_case_record() = CaseToProto(*c);
        absl::StatusOr<std::optional<v1::IntegrationPlan>> plan =
            ReadPlan(tx, id, 0);
        if (!plan.ok()) return plan.status();
        if (plan->has_value()) {
          *resp->mutable_plan() = **plan;
          resp->mutable_plan()->set_etag(
              internal::PlanEtag(id, c->record.plan_version()));
        }
        absl::StatusOr<std::vector<StepRow>> steps = StepsOfCase(tx, id);
        if (!steps.ok()) return steps.status();
        for (const StepRow& s : *steps) *resp->add_steps() = StepToProto(s);
        absl::StatusOr<std::vector<v1::StepActivity>> loose =
            ReadUnassignedActivities(tx, c->record.person(), id);
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
        const std::string& person = c->record.person();
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
        absl::StatusOr<std::vector<std::string>> others =
            CasesOfPerson(tx, person);
        if (!others.ok()) return others.status();
        others->push_back("");  // activities without a case
        for (const std::string& other : *others) {
          if (other == id) continue;
          if (!other.empty()) {
            absl::StatusOr<std::vector<StepRow>> other_steps =
                StepsOfCase(tx, other);
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
      });
  // Outside the transaction: identity is asked.
  if (status.ok())
    status = [&]() -> absl::Status {
      const std::string& person = resp->case_record().person();
      resp->mutable_person()->set_person(person);
      const absl::Time identity_deadline =
          IdentityDeadline(rc.deadline, absl::Now());
      // One CheckAccess for every category the view may carry; fail
      // closed when identity does not answer.
      absl::flat_hash_map<int, type::v1::AccessDenialReason> denied;
      std::vector<identity::v1::Relation> relations = {
          resp->case_record().owner_agency() == agency
              ? identity::v1::RELATION_CASE_OWNER
              : identity::v1::RELATION_CASE_PARTICIPANT};
      absl::StatusOr<std::vector<AccessDecision>> decisions =
          access_->Check(agency, person, ViewCategories(), rc.purpose,
                         relations, identity_deadline);
      for (DataCategory c : ViewCategories()) {
        denied[c] = type::v1::ACCESS_DENIAL_REASON_CHECK_UNAVAILABLE;
      }
      if (decisions.ok()) {
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
      }
      auto withhold = [&](const std::string& field, DataCategory c) {
        type::v1::Withheld* w = resp->add_withheld();
        w->set_field(field);
        w->set_category(c);
        w->set_reason(denied[c]);
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
            access_->GetPerson(person, rc.purpose, identity_deadline);
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
            access_->GetCurrentResidenceStatus(person, rc.purpose,
                                               identity_deadline);
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
      *resp->mutable_view_time() = ToTimestamp(absl::Now());
      std::vector<std::string> categories = {internal::kCategoryCaseStatus};
      for (DataCategory c : ViewCategories()) {
        if (!denied.contains(c)) categories.push_back(CategoryName(c));
      }
      categories.push_back(internal::kCategoryNotes);
      internal::AuditAs(call, target, std::move(categories));
      return absl::OkStatus();
    }();
  return call.Finish(status);
}

absl::Status CasesServiceImpl::DoStatistics(
    const RequestContext& rc, const v1::GetWaitingTimeStatisticsRequest& req,
    v1::WaitingTimeStatistics* resp) {
  const std::string target =
      absl::StrCat("statistics/", req.municipality_code().size() == 8
                                      ? req.municipality_code()
                                      : "invalid");
  agencies::AuditedCall call(call_env_, rc, "GetWaitingTimeStatistics", target);
  internal::AuditAs(call, target);
  return call.Finish(call.Read([&](Transaction& tx,
                                   const LocalAgency& caller) -> absl::Status {
    internal::AuditAs(call, target, {"STATISTICS"});
    FieldViolations violations;
    const std::string& code = req.municipality_code();
    bool digits = code.size() == 8;
    for (char ch : code) digits = digits && ch >= '0' && ch <= '9';
    if (!digits) {
      violations.Add("municipality_code", "must be eight digits (AGS)");
    }
    const bool start_ok = IsValidDate(req.period_start());
    const bool end_ok = IsValidDate(req.period_end());
    if (!start_ok) violations.Add("period_start", "is not a valid date");
    if (!end_ok) violations.Add("period_end", "is not a valid date");
    absl::CivilDay from, to;
    if (start_ok && end_ok) {
      from =
          absl::CivilDay(req.period_start().year(), req.period_start().month(),
                         req.period_start().day());
      to = absl::CivilDay(req.period_end().year(), req.period_end().month(),
                          req.period_end().day());
      if (to < from) {
        violations.Add("period_end", "must not be before period_start");
      } else if (to >
                 absl::CivilDay(from.year() + 3, from.month(), from.day())) {
        violations.Add("period_end",
                       "must be at most 3 years after period_start");
      }
    }
    for (int i = 0; i < req.groupings_size(); ++i) {
      if (!v1::WaitingTimeGrouping_IsValid(req.groupings(i))) {
        violations.Add(absl::StrCat("groupings[", i, "]"), "unknown value");
      }
    }
    if (!violations.empty()) return violations.ToStatus();
    // Who sees what: the municipality's KOMMUNE agencies and
    // ADMINISTRATION all rows; everyone else only rows about itself as
    // receiving agency.
    const bool full = caller.legal_domain == internal::kAdministration ||
                      (caller.legal_domain == internal::kKommune &&
                       caller.municipality_code == code);
    const std::string self = AgencyName(caller.id);
    const absl::TimeZone utc = absl::UTCTimeZone();
    const int64_t from_us = ToMicros(absl::FromCivil(from, utc));
    const int64_t to_us = ToMicros(absl::FromCivil(to + 1, utc));
    absl::StatusOr<std::vector<StepTiming>> timings =
        StepTimings(tx, code, from_us, to_us);
    if (!timings.ok()) return timings.status();
    const absl::Time now = absl::Now();
    absl::StatusOr<std::vector<OverdueCount>> overdue =
        OverdueSteps(tx, code, DayKeyOf(now));
    if (!overdue.ok()) return overdue.status();

    bool want[4] = {false, false, false, false};
    for (int g : req.groupings()) {
      if (g > 0 && g < 4) want[g] = true;
    }
    if (!want[1] && !want[2] && !want[3]) want[1] = want[2] = want[3] = true;
    if (!full) want[1] = false;  // kind rows span other agencies

    struct Group {
      int32_t referrals = 0;
      std::vector<int64_t> to_accept, to_start;
      int32_t overdue = 0;
    };
    // Key: (kind, agency); kind 0 / agency "" for "all".
    std::map<std::pair<int, std::string>, Group> groups;
    auto keys = [&](int kind, const std::string& receiver) {
      std::vector<std::pair<int, std::string>> out;
      if (!full && receiver != self) return out;
      if (want[1]) out.push_back({kind, ""});
      if (want[2]) out.push_back({0, receiver});
      if (want[3]) out.push_back({kind, receiver});
      return out;
    };
    for (const StepTiming& t : *timings) {
      for (const auto& key : keys(t.kind, t.receiving_agency)) {
        Group& g = groups[key];
        ++g.referrals;
        if (t.accept_us > 0) g.to_accept.push_back(t.accept_us - t.create_us);
        if (t.start_us > 0) g.to_start.push_back(t.start_us - t.create_us);
      }
    }
    for (const OverdueCount& o : *overdue) {
      for (const auto& key : keys(o.kind, o.receiving_agency)) {
        groups[key].overdue += static_cast<int32_t>(o.count);
      }
    }
    resp->set_municipality_code(code);
    *resp->mutable_period_start() = req.period_start();
    *resp->mutable_period_end() = req.period_end();
    resp->set_suppression_threshold(options_.suppression_threshold);
    *resp->mutable_compute_time() = ToTimestamp(now);
    for (auto& [key, g] : groups) {
      v1::WaitingTimeRow* row = resp->add_rows();
      row->set_step_kind(static_cast<v1::StepKind>(key.first));
      row->set_receiving_agency(key.second);
      if (g.referrals < options_.suppression_threshold) {
        row->set_suppressed(true);
        continue;
      }
      row->set_referral_count(g.referrals);
      Summarize(std::move(g.to_accept), row->mutable_referral_to_acceptance());
      Summarize(std::move(g.to_start), row->mutable_referral_to_start());
      row->set_overdue_count(g.overdue);
    }
    return absl::OkStatus();
  }));
}

}  // namespace lotse::cases
