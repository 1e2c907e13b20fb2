// Events in: other services' events move steps, are kept as
// activities, and keep the local agency registry and person merges;
// identity's lifecycle events place and release legal holds and erase a
// person's cases.
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/lifecycle/erasure.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/person_keys.h"
#include "common/lifecycle/retention.h"
#include "lotse/cases/v1/events.pb.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/placement/v1/events.pb.h"
#include "services/cases/domain/rules.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/service/internal.h"
#include "services/cases/store/lifecycle_store.h"

namespace lotse::cases {
namespace {

using api::StoreNow;
using api::ToTimestamp;
using internal::CaseToProto;
using internal::Emit;
using lotse::events::v1::Event;
using storage::Transaction;

// What one course or placement event means for the case.
struct Fact {
  std::string person;
  std::string case_step;  // named step, if any
  // A step not named is found among those received by these agencies.
  std::vector<std::string> acting_agencies;
  // The agency a step transition names; empty: acting_agencies.front().
  std::string transition_agency;
  std::vector<v1::StepKind> kinds;  // step kinds it fits
  v1::StepActivity activity;
  // Where the step moves (UNSPECIFIED: activity only).
  v1::StepState to = v1::STEP_STATE_UNSPECIFIED;
  v1::StepOutcome outcome = v1::STEP_OUTCOME_UNSPECIFIED;
};

void FillCourse(const courses::v1::BookingContext& ctx, Fact* f) {
  f->person = ctx.person();
  f->case_step = ctx.case_step();
  f->acting_agencies = {ctx.provider_agency(), ctx.booking_agency()};
  f->kinds = {v1::STEP_KIND_INTEGRATION_COURSE,
              v1::STEP_KIND_VOCATIONAL_LANGUAGE_COURSE};
  f->activity.set_source("courses");
  f->activity.set_category(type::v1::DATA_CATEGORY_LANGUAGE);
  v1::CourseActivity* c = f->activity.mutable_course();
  c->set_course(ctx.course());
  c->set_booking(ctx.booking());
  if (ctx.has_start_date()) *c->mutable_start_date() = ctx.start_date();
}

void FillPlacement(const placement::v1::PlacementContext& ctx, Fact* f) {
  f->person = ctx.person();
  f->case_step = ctx.case_step();
  // The step is the proposer's (it was referred the placement); the
  // transition names whoever acted, e.g. the publisher that hired.
  f->acting_agencies = {ctx.proposing_agency()};
  f->transition_agency = ctx.acting_agency();
  f->kinds = {v1::STEP_KIND_JOB_PLACEMENT,
              v1::STEP_KIND_APPRENTICESHIP_PLACEMENT};
  f->activity.set_source("placement");
  f->activity.set_category(type::v1::DATA_CATEGORY_EMPLOYMENT);
  v1::PlacementActivity* p = f->activity.mutable_placement();
  p->set_placement(ctx.placement());
  p->set_offer(ctx.offer());
  p->set_occupation_code(ctx.occupation_code());
}

// The fact an event carries, or nullopt for events cases ignores. One
// branch per event type, side by side so the mapping reads as one table
// (hence about 100 lines).
std::optional<Fact> FactOf(const Event& e) {
  Fact f;
  const google::protobuf::Any& any = e.payload();
  if (any.Is<courses::v1::CourseBooked>()) {
    courses::v1::CourseBooked m;
    any.UnpackTo(&m);
    FillCourse(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_COURSE_BOOKED);
    f.activity.mutable_course()->set_source_state(
        courses::v1::BookingState_Name(m.state()).substr(14));
    f.to = v1::STEP_STATE_ACCEPTED;
  } else if (any.Is<courses::v1::WaitlistPromoted>()) {
    courses::v1::WaitlistPromoted m;
    any.UnpackTo(&m);
    FillCourse(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_COURSE_WAITLIST_PROMOTED);
    f.to = v1::STEP_STATE_ACCEPTED;
  } else if (any.Is<courses::v1::BookingConfirmed>()) {
    courses::v1::BookingConfirmed m;
    any.UnpackTo(&m);
    FillCourse(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_COURSE_BOOKING_CONFIRMED);
    f.activity.mutable_course()->set_source_state("CONFIRMED");
  } else if (any.Is<courses::v1::BookingCancelled>()) {
    courses::v1::BookingCancelled m;
    any.UnpackTo(&m);
    FillCourse(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_COURSE_BOOKING_ENDED);
    f.activity.mutable_course()->set_source_state("CANCELLED");
  } else if (any.Is<courses::v1::BookingHoldExpired>()) {
    courses::v1::BookingHoldExpired m;
    any.UnpackTo(&m);
    FillCourse(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_COURSE_BOOKING_ENDED);
    f.activity.mutable_course()->set_source_state("EXPIRED");
  } else if (any.Is<courses::v1::WaitlistJoined>()) {
    courses::v1::WaitlistJoined m;
    any.UnpackTo(&m);
    FillCourse(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_COURSE_WAITLIST_JOINED);
  } else if (any.Is<courses::v1::CourseStarted>()) {
    courses::v1::CourseStarted m;
    any.UnpackTo(&m);
    FillCourse(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_COURSE_STARTED);
    f.to = v1::STEP_STATE_IN_PROGRESS;
  } else if (any.Is<courses::v1::AttendanceRecorded>()) {
    courses::v1::AttendanceRecorded m;
    any.UnpackTo(&m);
    FillCourse(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_COURSE_ATTENDANCE);
  } else if (any.Is<courses::v1::CourseResultRecorded>()) {
    courses::v1::CourseResultRecorded m;
    any.UnpackTo(&m);
    FillCourse(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_COURSE_RESULT);
    f.activity.mutable_course()->set_achieved_level(m.achieved_level());
    f.activity.mutable_course()->set_passed(m.passed());
    f.to = v1::STEP_STATE_DONE;
    if (!m.passed()) {
      f.outcome = v1::STEP_OUTCOME_NOT_ACHIEVED;
    } else if (m.context().target_level() == type::v1::CEFR_LEVEL_UNSPECIFIED ||
               m.achieved_level() >= m.context().target_level()) {
      f.outcome = v1::STEP_OUTCOME_ACHIEVED;
    } else {
      f.outcome = v1::STEP_OUTCOME_PARTIALLY_ACHIEVED;
    }
  } else if (any.Is<placement::v1::PlacementProposed>()) {
    placement::v1::PlacementProposed m;
    any.UnpackTo(&m);
    FillPlacement(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_PLACEMENT_PROPOSED);
    f.activity.mutable_placement()->set_source_state("PROPOSED");
    f.to = v1::STEP_STATE_IN_PROGRESS;
  } else if (any.Is<placement::v1::PlacementStateChanged>()) {
    placement::v1::PlacementStateChanged m;
    any.UnpackTo(&m);
    FillPlacement(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_PLACEMENT_STATE_CHANGED);
    f.activity.mutable_placement()->set_source_state(
        placement::v1::PlacementState_Name(m.to_state()).substr(16));
  } else if (any.Is<placement::v1::PlacementHired>()) {
    placement::v1::PlacementHired m;
    any.UnpackTo(&m);
    FillPlacement(m.context(), &f);
    f.activity.set_kind(v1::ACTIVITY_KIND_PLACEMENT_HIRED);
    f.activity.mutable_placement()->set_source_state("HIRED");
    if (m.has_start_date()) {
      *f.activity.mutable_placement()->mutable_start_date() = m.start_date();
    }
    f.to = v1::STEP_STATE_DONE;
    f.outcome = v1::STEP_OUTCOME_ACHIEVED;
  } else {
    return std::nullopt;
  }
  f.activity.set_source_event_id(e.event_id());
  *f.activity.mutable_occur_time() =
      e.has_occurred_at() ? e.occurred_at() : ToTimestamp(StoreNow());
  return f;
}

absl::Status ApplyAgency(Transaction& tx, const identity::v1::Agency& a) {
  FieldViolations violations;
  ParseAgencyName(a.name(), "agency.name", &violations);
  if (!violations.empty()) return violations.ToStatus();
  return agencies::UpsertAgency(tx, a);
}

// Whether `person` ("persons/x") was erased here: events about such a
// person are dropped, as nothing new is written about them.
absl::StatusOr<bool> Erased(Transaction& tx, const std::string& person) {
  absl::string_view id = person;
  absl::ConsumePrefix(&id, "persons/");
  return lifecycle::IsPersonShredded(tx, id);
}

absl::Status ApplyMerge(Transaction& tx, const identity::v1::PersonMerged& m) {
  if (!ValidPersonName(m.merged()) || !ValidPersonName(m.survivor())) {
    return absl::InvalidArgumentError("PersonMerged names no persons");
  }
  // A merge naming an erased person moves nothing onto or off them.
  for (const std::string* p : {&m.merged(), &m.survivor()}) {
    absl::StatusOr<bool> erased = Erased(tx, *p);
    if (!erased.ok()) return erased.status();
    if (*erased) return absl::OkStatus();
  }
  if (absl::Status s = RecordMerge(tx, m.merged(), m.survivor()); !s.ok()) {
    return s;
  }
  if (absl::Status s = MoveUnassignedActivities(tx, m.merged(), m.survivor());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::vector<std::string>> ids = CasesOfPerson(tx, m.merged());
  if (!ids.ok()) return ids.status();
  for (const std::string& id : *ids) {
    if (absl::Status s = LockCase(tx, id); !s.ok()) return s;
    absl::StatusOr<std::optional<CaseRow>> c = ReadCase(tx, id);
    if (!c.ok()) return c.status();
    if (!c->has_value()) continue;
    CaseRow row = **c;
    row.record.set_person(m.survivor());
    *row.record.mutable_update_time() = ToTimestamp(StoreNow());
    ++row.version;
    if (absl::Status s = UpdateCase(tx, row); !s.ok()) return s;
    v1::CasePersonChanged changed;
    changed.set_case_name(CaseName(id));
    changed.set_from_person(m.merged());
    changed.set_to_person(m.survivor());
    if (absl::Status s = Emit(tx, CaseToProto(row), changed); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// The step a fact is about: the named one if it exists, else the oldest
// open step of the person's open cases of a fitting kind received by an
// acting agency.
absl::StatusOr<std::optional<StepRow>> MatchStep(
    Transaction& tx, const Fact& f, const std::string& person,
    const std::vector<std::string>& open) {
  if (!f.case_step.empty()) {
    std::string cid, sid;
    FieldViolations ignored;
    if (ParseStepName(f.case_step, "case_step", &cid, &sid, &ignored)) {
      absl::StatusOr<std::optional<StepRow>> named = ReadStep(tx, cid, sid);
      if (!named.ok()) return named;
      // Only a step of the person's own case: an event naming another
      // person's step moves nothing there.
      absl::StatusOr<std::optional<CaseRow>> owner_case = ReadCase(tx, cid);
      if (!owner_case.ok()) return owner_case.status();
      if (named->has_value() && owner_case->has_value() &&
          (*owner_case)->record.person() == person) {
        return named;
      }
    }
  }
  std::optional<StepRow> best;
  for (const std::string& cid : open) {
    absl::StatusOr<std::vector<StepRow>> steps = StepsOfCase(tx, cid);
    if (!steps.ok()) return steps.status();
    for (StepRow& s : *steps) {
      if (IsFinalStepState(s.record.state())) continue;
      if (std::find(f.kinds.begin(), f.kinds.end(), s.record.kind()) ==
          f.kinds.end()) {
        continue;
      }
      if (std::find(f.acting_agencies.begin(), f.acting_agencies.end(),
                    s.record.receiving_agency()) == f.acting_agencies.end()) {
        continue;
      }
      if (!best || s.record.create_time().seconds() <
                       best->record.create_time().seconds()) {
        best = std::move(s);
      }
    }
  }
  return best;
}

// Records fact `f` of event `e`: on the step it matches (moving it when the
// state machine lets an event do so), else as an activity of the person's
// case or of the person alone. About 100 lines: the two outcomes share the
// locks and lookups taken first.
absl::Status ApplyFact(Transaction& tx, const Event& e, Fact f) {
  if (!ValidPersonName(f.person)) {
    return absl::InvalidArgumentError("event names no person");
  }
  absl::StatusOr<std::string> person = ResolveSurvivor(tx, f.person);
  if (!person.ok()) return person.status();
  // An event that arrives after the person was erased here (its source
  // had not erased yet) is dropped: it would write about them again.
  for (const std::string* p : {&f.person, &*person}) {
    absl::StatusOr<bool> erased = Erased(tx, *p);
    if (!erased.ok()) return erased.status();
    if (*erased) return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> open =
      OpenCasesOfPerson(tx, *person);
  if (!open.ok()) return open.status();
  for (const std::string& id : *open) {
    if (absl::Status s = LockCase(tx, id); !s.ok()) return s;
  }
  absl::StatusOr<std::optional<StepRow>> step =
      MatchStep(tx, f, *person, *open);
  if (!step.ok()) return step.status();
  if (!step->has_value()) {
    // No step: kept on the person's oldest open case, or on the person
    // alone until a case is opened (shown there then).
    const std::string case_id = open->empty() ? "" : open->front();
    if (absl::Status s =
            InsertUnassignedActivity(tx, *person, case_id, f.activity);
        !s.ok()) {
      return s;
    }
    v1::ActivityRecorded recorded;
    recorded.set_person(*person);
    *recorded.mutable_activity() = f.activity;
    if (case_id.empty()) {
      // Not streamed (no case); still published for other services.
      lotse::events::v1::Event out;
      out.set_ordering_key(*person);
      out.set_source("cases");
      out.mutable_payload()->PackFrom(recorded);
      return events::EnqueueEvent(tx, std::move(out));
    }
    absl::StatusOr<std::optional<CaseRow>> c = ReadCase(tx, case_id);
    if (!c.ok()) return c.status();
    if (!c->has_value()) return absl::InternalError("case vanished");
    recorded.set_case_name(CaseName(case_id));
    return Emit(tx, CaseToProto(**c), recorded);
  }
  StepRow& s = **step;
  if (absl::Status st = LockCase(tx, s.case_id); !st.ok()) return st;
  absl::StatusOr<std::optional<CaseRow>> c = ReadCase(tx, s.case_id);
  if (!c.ok()) return c.status();
  if (!c->has_value()) return absl::InternalError("case vanished");
  const v1::Case case_proto = CaseToProto(**c);
  const absl::Time now = StoreNow();
  *s.record.add_activities() = f.activity;
  std::optional<v1::StepTransition> moved;
  const v1::StepState from = s.record.state();
  if (f.to != v1::STEP_STATE_UNSPECIFIED &&
      StepTransitionAllowed(from, f.to, StepActor::kEvent)) {
    v1::StepTransition t;
    t.set_from_state(from);
    t.set_to_state(f.to);
    *t.mutable_transition_time() = ToTimestamp(now);
    if (!f.transition_agency.empty()) {
      t.set_agency(f.transition_agency);
    } else if (!f.acting_agencies.empty()) {
      t.set_agency(f.acting_agencies.front());
    }
    t.set_source_event_id(e.event_id());
    *s.record.add_transitions() = t;
    s.record.set_state(f.to);
    if (f.to == v1::STEP_STATE_ACCEPTED ||
        (!s.record.has_accept_time() && from == v1::STEP_STATE_REFERRED)) {
      *s.record.mutable_accept_time() = ToTimestamp(now);
    }
    if (f.to == v1::STEP_STATE_IN_PROGRESS ||
        (f.to == v1::STEP_STATE_DONE && !s.record.has_start_time())) {
      *s.record.mutable_start_time() = ToTimestamp(now);
    }
    if (f.to == v1::STEP_STATE_DONE) {
      s.record.set_outcome(f.outcome);
      *s.record.mutable_end_time() = ToTimestamp(now);
    }
    moved = t;
  }
  *s.record.mutable_update_time() = ToTimestamp(now);
  ++s.version;
  if (absl::Status st = UpdateStepState(tx, s); !st.ok()) return st;
  v1::ActivityRecorded recorded;
  recorded.set_step(StepName(s.case_id, s.id));
  recorded.set_case_name(CaseName(s.case_id));
  recorded.set_person(*person);
  *recorded.mutable_activity() = f.activity;
  if (absl::Status st = Emit(tx, case_proto, recorded); !st.ok()) return st;
  if (moved) {
    v1::StepStateChanged changed;
    changed.set_step(StepName(s.case_id, s.id));
    changed.set_case_name(CaseName(s.case_id));
    changed.set_person(*person);
    changed.set_kind(s.record.kind());
    changed.set_receiving_agency(s.record.receiving_agency());
    *changed.mutable_transition() = *moved;
    changed.set_outcome(s.record.outcome());
    if (absl::Status st = Emit(tx, case_proto, changed); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace

events::ApplyFn CasesServiceImpl::EventApplier() {
  return [this](Transaction& tx, const Event& e) -> absl::Status {
    const google::protobuf::Any& any = e.payload();
    if (any.Is<identity::v1::AgencyRegistered>()) {
      identity::v1::AgencyRegistered m;
      any.UnpackTo(&m);
      return ApplyAgency(tx, m.agency());
    }
    if (any.Is<identity::v1::AgencyUpdated>()) {
      identity::v1::AgencyUpdated m;
      any.UnpackTo(&m);
      return ApplyAgency(tx, m.agency());
    }
    if (any.Is<identity::v1::AgencySuspended>()) {
      identity::v1::AgencySuspended m;
      any.UnpackTo(&m);
      return ApplyAgency(tx, m.agency());
    }
    if (any.Is<identity::v1::AgencyReactivated>()) {
      identity::v1::AgencyReactivated m;
      any.UnpackTo(&m);
      return ApplyAgency(tx, m.agency());
    }
    if (any.Is<identity::v1::LegalHoldPlaced>()) {
      identity::v1::LegalHoldPlaced m;
      any.UnpackTo(&m);
      return lifecycle::ApplyHold(tx, m.hold());
    }
    if (any.Is<identity::v1::LegalHoldReleased>()) {
      identity::v1::LegalHoldReleased m;
      any.UnpackTo(&m);
      return lifecycle::ApplyHold(tx, m.hold());
    }
    if (any.Is<identity::v1::PersonErased>()) {
      identity::v1::PersonErased m;
      any.UnpackTo(&m);
      if (!ValidPersonName(m.person())) {
        return absl::InvalidArgumentError("PersonErased names no person");
      }
      static const lifecycle::RetentionRules* const kNoRules =
          new lifecycle::RetentionRules();
      const lifecycle::RetentionRules& rules =
          runtime_.retention != nullptr ? *runtime_.retention : *kNoRules;
      return lifecycle::ApplyPersonErased(tx, m, "cases", rules,
                                          ErasePersonCases, absl::Now());
    }
    if (any.Is<identity::v1::PersonRectified>()) {
      // Nothing cases keeps derives from the core record: cases, steps and
      // events name the person by id only, and the case view reads names
      // and birth date from identity on every call.
      return absl::OkStatus();
    }
    absl::Status applied;
    if (any.Is<identity::v1::PersonMerged>()) {
      identity::v1::PersonMerged m;
      any.UnpackTo(&m);
      applied = ApplyMerge(tx, m);
    } else {
      std::optional<Fact> fact = FactOf(e);
      if (!fact) return absl::OkStatus();  // not for cases
      applied = ApplyFact(tx, e, *std::move(fact));
    }
    // The case events this appended reach the watchers as soon as they are
    // visible: the pump is woken after the commit (waking it earlier would
    // let it read before the rows are there, and then sleep a whole poll).
    if (applied.ok()) tx.OnCommit([hub = hub_.get()] { hub->Notify(); });
    return applied;
  };
}

}  // namespace lotse::cases
