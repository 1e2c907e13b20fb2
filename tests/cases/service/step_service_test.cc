// Steps and their transitions, the shared case view with withheld fields,
// and other services' events applied through the inbox, through a real
// in-process server over mutual TLS, on SQLite and PostgreSQL.
#include <string>

#include "gtest/gtest.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/placement/v1/events.pb.h"
#include "tests/cases/service/cases_server_fixture.h"

namespace lotse::cases {
namespace {

class StepServiceTest : public CasesServerTest {
 protected:
  void SetUp() override {
    CasesServerTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(Open("kim-koeln", kPerson, &case_).ok());
  }

  v1::Case ReadCase(const std::string& as = "kim-koeln") {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetCaseRequest req;
    req.set_name(case_.name());
    v1::Case out;
    EXPECT_TRUE(As(as)->GetCase(&context, req, &out).ok());
    return out;
  }

  grpc::Status View(const std::string& as, v1::CaseView* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetCaseViewRequest req;
    req.set_name(case_.name());
    return As(as)->GetCaseView(&context, req, out);
  }

  grpc::Status UpdateDeps(const v1::Step& step,
                          const std::vector<std::string>& deps, v1::Step* out) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::UpdateStepRequest req;
    req.mutable_step()->set_name(step.name());
    req.mutable_step()->set_etag(step.etag());
    for (const auto& d : deps) req.mutable_step()->add_depends_on(d);
    req.mutable_update_mask()->add_paths("depends_on");
    return As("kim-koeln")->UpdateStep(&context, req, out);
  }

  v1::Case case_;
};

TEST_P(StepServiceTest, ReferAcceptStartComplete) {
  v1::Step step, accepted, started, done;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_INTEGRATION_COURSE,
                    kVhs, &step)
                  .ok());
  EXPECT_EQ(step.state(), v1::STEP_STATE_REFERRED);
  EXPECT_EQ(step.referring_agency(), kKim);
  // The receiver participates now.
  const v1::Case c = ReadCase("vhs-koeln");
  EXPECT_EQ(c.participating_agencies_size(), 2);
  // Only the receiver accepts.
  grpc::Status owner = Accept("kim-koeln", step, &accepted);
  EXPECT_EQ(owner.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(owner), "NOT_STEP_RECEIVER");
  // Not along the state machine: REFERRED -> IN_PROGRESS.
  grpc::Status skip = Start("vhs-koeln", step, &started);
  EXPECT_EQ(skip.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(skip), "TRANSITION_NOT_ALLOWED");
  ASSERT_TRUE(Accept("vhs-koeln", step, &accepted).ok());
  EXPECT_TRUE(accepted.has_accept_time());
  // Stale etag: nothing changed.
  grpc::Status stale = Start("vhs-koeln", step, &started);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED);
  ASSERT_TRUE(Start("vhs-koeln", accepted, &started).ok());
  ASSERT_TRUE(Complete("vhs-koeln", started, &done).ok());
  EXPECT_EQ(done.state(), v1::STEP_STATE_DONE);
  EXPECT_EQ(done.outcome(), v1::STEP_OUTCOME_ACHIEVED);
  ASSERT_EQ(done.transitions_size(), 4);
  EXPECT_EQ(done.transitions(3).from_state(), v1::STEP_STATE_IN_PROGRESS);
  EXPECT_EQ(done.transitions(3).agency(), kVhs);
  EXPECT_EQ(done.transitions(3).actor(), "cm-42");
  EXPECT_TRUE(done.has_end_time());
  // Final.
  v1::Step out;
  EXPECT_EQ(Reason(Cancel("kim-koeln", done, &out)), "TRANSITION_NOT_ALLOWED");
  // A third agency may not move it at all.
  EXPECT_EQ(Reason(Cancel("jobcenter-koeln", done, &out)), "NO_RELATION");
}

TEST_P(StepServiceTest, DeclineAndCancelRules) {
  v1::Step step, out;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_COUNSELLING,
                    kCaritas, &step)
                  .ok());
  // The receiver may not cancel a referral it has not accepted.
  EXPECT_EQ(Reason(Cancel("caritas-koeln", step, &out)),
            "TRANSITION_NOT_ALLOWED");
  grpc::ClientContext context;
  Prepare(&context);
  v1::DeclineStepRequest decline;
  decline.set_name(step.name());
  decline.set_etag(step.etag());
  decline.set_reason(v1::STEP_DECLINE_REASON_OTHER);  // needs a comment
  EXPECT_EQ(
      ViolatedFields(As("caritas-koeln")->DeclineStep(&context, decline, &out)),
      std::set<std::string>{"comment"});
  grpc::ClientContext context2;
  Prepare(&context2);
  decline.set_comment("keine Kapazität bis März");
  ASSERT_TRUE(As("caritas-koeln")->DeclineStep(&context2, decline, &out).ok());
  EXPECT_EQ(out.state(), v1::STEP_STATE_DECLINED);
  EXPECT_EQ(out.state_comment(), "keine Kapazität bis März");

  v1::Step second, cancelled;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_COUNSELLING,
                    kCaritas, &second)
                  .ok());
  ASSERT_TRUE(Cancel("kim-koeln", second, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::STEP_STATE_CANCELLED);
}

TEST_P(StepServiceTest, DependenciesCyclesAndDates) {
  v1::Step a, b, c, out;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_INTEGRATION_COURSE,
                    kVhs, &a)
                  .ok());
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_JOB_PLACEMENT,
                    kJobcenter, &b, {a.name()})
                  .ok());
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_COUNSELLING,
                    kCaritas, &c, {b.name()})
                  .ok());
  // a -> c would close the cycle a -> c -> b -> a.
  grpc::Status cycle = UpdateDeps(a, {c.name()}, &out);
  EXPECT_EQ(cycle.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(cycle), std::set<std::string>{"step.depends_on"});
  EXPECT_EQ(ViolatedFields(UpdateDeps(a, {a.name()}, &out)),
            std::set<std::string>{"step.depends_on[0]"});
  v1::Step unchanged;
  ASSERT_TRUE(GetStep("kim-koeln", a.name(), &unchanged).ok());
  EXPECT_EQ(unchanged.etag(), a.etag());
  EXPECT_EQ(unchanged.depends_on_size(), 0);

  // b cannot start before a is done.
  v1::Step b_acc, b_started;
  ASSERT_TRUE(Accept("jobcenter-koeln", b, &b_acc).ok());
  grpc::Status deps = Start("jobcenter-koeln", b_acc, &b_started);
  EXPECT_EQ(deps.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(deps), "DEPENDENCIES_NOT_DONE");

  // Unknown dependency, other case's step, due date in the past.
  grpc::ClientContext context;
  Prepare(&context);
  v1::CreateStepRequest req;
  req.set_parent(case_.name());
  req.set_request_id("bad-step");
  req.mutable_step()->set_kind(v1::STEP_KIND_OTHER);
  req.mutable_step()->set_receiving_agency(kVhs);
  req.mutable_step()->add_depends_on(case_.name() + "/steps/nope");
  req.mutable_step()->add_depends_on("cases/other/steps/x");
  req.mutable_step()->mutable_due_date()->set_year(2001);
  req.mutable_step()->mutable_due_date()->set_month(2);
  req.mutable_step()->mutable_due_date()->set_day(30);
  grpc::Status bad = As("kim-koeln")->CreateStep(&context, req, &out);
  EXPECT_EQ(ViolatedFields(bad),
            (std::set<std::string>{"step.depends_on[1]", "step.due_date"}));
  grpc::ClientContext context2;
  Prepare(&context2);
  req.mutable_step()->clear_depends_on();
  req.mutable_step()->add_depends_on(case_.name() + "/steps/nope");
  req.mutable_step()->clear_due_date();
  EXPECT_EQ(ViolatedFields(As("kim-koeln")->CreateStep(&context2, req, &out)),
            std::set<std::string>{"step.depends_on[0]"});
  // Unknown and suspended receiving agencies.
  EXPECT_EQ(Refer("kim-koeln", case_.name(), v1::STEP_KIND_OTHER,
                  "agencies/nowhere", &out)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(service_
                  ->ApplyEvent(AgencyEvent(
                      "caritas-koeln", type::v1::LEGAL_DOMAIN_FREIER_TRAEGER,
                      "05315000", true, "susp-caritas"))
                  .ok());
  EXPECT_EQ(Reason(Refer("kim-koeln", case_.name(), v1::STEP_KIND_OTHER,
                         kCaritas, &out)),
            "AGENCY_NOT_ACTIVE");
  // Only the owner refers.
  EXPECT_EQ(Reason(Refer("vhs-koeln", case_.name(), v1::STEP_KIND_OTHER,
                         kJobcenter, &out)),
            "NOT_CASE_OWNER");
  // Unknown case.
  EXPECT_EQ(Refer("kim-koeln", "cases/unknown", v1::STEP_KIND_OTHER, kVhs, &out)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_P(StepServiceTest, ListStepsInboxOfReceiver) {
  v1::Step a, b;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_INTEGRATION_COURSE,
                    kVhs, &a)
                  .ok());
  ASSERT_TRUE(
      Refer("kim-koeln", case_.name(), v1::STEP_KIND_COUNSELLING, kCaritas, &b)
          .ok());
  grpc::ClientContext context;
  Prepare(&context);
  v1::ListStepsRequest req;
  req.set_parent("cases/-");
  req.set_receiving_agency(kVhs);
  v1::ListStepsResponse resp;
  ASSERT_TRUE(As("vhs-koeln")->ListSteps(&context, req, &resp).ok());
  ASSERT_EQ(resp.steps_size(), 1);
  EXPECT_EQ(resp.steps(0).name(), a.name());
  grpc::ClientContext context2;
  Prepare(&context2);
  v1::ListStepsRequest all;
  all.set_parent(case_.name());
  all.set_page_size(1);
  ASSERT_TRUE(As("kim-koeln")->ListSteps(&context2, all, &resp).ok());
  ASSERT_EQ(resp.steps_size(), 1);
  EXPECT_EQ(resp.steps(0).name(), a.name());  // oldest referral first
  grpc::ClientContext context3;
  Prepare(&context3);
  all.set_page_token(resp.next_page_token());
  ASSERT_TRUE(As("kim-koeln")->ListSteps(&context3, all, &resp).ok());
  ASSERT_EQ(resp.steps_size(), 1);
  EXPECT_EQ(resp.steps(0).name(), b.name());
  grpc::ClientContext context4;
  Prepare(&context4);
  all.set_page_size(-1);
  EXPECT_EQ(ViolatedFields(As("kim-koeln")->ListSteps(&context4, all, &resp))
                .count("page_size"),
            1u);
}

lotse::events::v1::Event CourseEvent(const std::string& id,
                                     const google::protobuf::Message& m) {
  lotse::events::v1::Event e;
  e.set_event_id(id);
  e.set_source("courses");
  e.mutable_payload()->PackFrom(m);
  return e;
}

courses::v1::BookingContext Booking(const std::string& step) {
  courses::v1::BookingContext ctx;
  ctx.set_booking("courses/c1/bookings/b1");
  ctx.set_course("courses/c1");
  ctx.set_person(kPerson);
  ctx.set_provider_agency(kVhs);
  ctx.set_booking_agency(kVhs);
  ctx.set_case_step(step);
  ctx.set_target_level(type::v1::CEFR_LEVEL_B1);
  return ctx;
}

TEST_P(StepServiceTest, CourseEventsMoveTheStepOnce) {
  v1::Step step;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_INTEGRATION_COURSE,
                    kVhs, &step)
                  .ok());
  courses::v1::CourseBooked booked;
  *booked.mutable_context() = Booking(step.name());
  auto first = service_->ApplyEvent(CourseEvent("ev-booked", booked));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  auto again = service_->ApplyEvent(CourseEvent("ev-booked", booked));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);  // redelivery changes nothing
  v1::Step now;
  ASSERT_TRUE(GetStep("kim-koeln", step.name(), &now).ok());
  EXPECT_EQ(now.state(), v1::STEP_STATE_ACCEPTED);
  ASSERT_EQ(now.activities_size(), 1);
  EXPECT_EQ(now.transitions().rbegin()->source_event_id(), "ev-booked");

  // Matched by kind and receiver, without a named step.
  courses::v1::CourseStarted started;
  *started.mutable_context() = Booking("");
  ASSERT_TRUE(service_->ApplyEvent(CourseEvent("ev-started", started)).ok());
  courses::v1::CourseResultRecorded result;
  *result.mutable_context() = Booking("");
  result.set_passed(true);
  result.set_achieved_level(type::v1::CEFR_LEVEL_A2);  // below target B1
  ASSERT_TRUE(service_->ApplyEvent(CourseEvent("ev-result", result)).ok());
  ASSERT_TRUE(GetStep("kim-koeln", step.name(), &now).ok());
  EXPECT_EQ(now.state(), v1::STEP_STATE_DONE);
  EXPECT_EQ(now.outcome(), v1::STEP_OUTCOME_PARTIALLY_ACHIEVED);
  EXPECT_EQ(now.activities_size(), 3);

  // The view shows the activities; the owner may not see LANGUAGE without
  // a grant, so details are withheld and marked.
  v1::CaseView view;
  ASSERT_TRUE(View("kim-koeln", &view).ok());
  ASSERT_EQ(view.steps_size(), 1);
  ASSERT_EQ(view.steps(0).activities_size(), 3);
  EXPECT_FALSE(view.steps(0).activities(0).has_course());
  bool marked = false;
  for (const auto& w : view.withheld()) {
    if (w.field() == "steps[0].activities[0]") {
      marked = true;
      EXPECT_EQ(w.category(), type::v1::DATA_CATEGORY_LANGUAGE);
      EXPECT_EQ(w.reason(), type::v1::ACCESS_DENIAL_REASON_NO_LEGAL_BASIS);
    }
  }
  EXPECT_TRUE(marked);
  access_.Grant(kKim, type::v1::DATA_CATEGORY_LANGUAGE);
  ASSERT_TRUE(View("kim-koeln", &view).ok());
  EXPECT_TRUE(view.steps(0).activities(2).has_course());
  EXPECT_EQ(view.language().certified_level(), type::v1::CEFR_LEVEL_A2);
}

TEST_P(StepServiceTest, PlacementHiredAndEventsWithoutCase) {
  v1::Step step;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_JOB_PLACEMENT,
                    kJobcenter, &step)
                  .ok());
  placement::v1::PlacementHired hired;
  hired.mutable_context()->set_placement("placements/p1");
  hired.mutable_context()->set_person(kPerson);
  hired.mutable_context()->set_proposing_agency(kJobcenter);
  hired.mutable_context()->set_case_step(step.name());
  // The offer's publisher recorded the hire, not the proposer.
  hired.mutable_context()->set_acting_agency(kCaritas);
  lotse::events::v1::Event e;
  e.set_event_id("ev-hired");
  e.set_source("placement");
  e.mutable_payload()->PackFrom(hired);
  ASSERT_TRUE(service_->ApplyEvent(e).ok());
  v1::Step now;
  ASSERT_TRUE(GetStep("kim-koeln", step.name(), &now).ok());
  EXPECT_EQ(now.state(), v1::STEP_STATE_DONE);
  EXPECT_EQ(now.outcome(), v1::STEP_OUTCOME_ACHIEVED);
  ASSERT_GT(now.transitions_size(), 0);
  EXPECT_EQ(now.transitions(now.transitions_size() - 1).agency(), kCaritas);

  // A booking for a person without a case is kept and shown in the next
  // case opened for the person.
  courses::v1::CourseBooked booked;
  *booked.mutable_context() = Booking("");
  booked.mutable_context()->set_person(kOtherPerson);
  ASSERT_TRUE(service_->ApplyEvent(CourseEvent("ev-loose", booked)).ok());
  v1::Case other;
  ASSERT_TRUE(Open("kim-koeln", kOtherPerson, &other).ok());
  grpc::ClientContext context;
  Prepare(&context);
  v1::GetCaseViewRequest req;
  req.set_name(other.name());
  v1::CaseView view;
  ASSERT_TRUE(As("kim-koeln")->GetCaseView(&context, req, &view).ok());
  ASSERT_EQ(view.unassigned_activities_size(), 1);
  EXPECT_EQ(view.unassigned_activities(0).source_event_id(), "ev-loose");
}

TEST_P(StepServiceTest, EventNamingAnotherPersonsStepMovesNothing) {
  v1::Step step;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_INTEGRATION_COURSE,
                    kVhs, &step)
                  .ok());
  courses::v1::CourseStarted started;
  *started.mutable_context() = Booking(step.name());
  started.mutable_context()->set_person(kOtherPerson);  // not this case's
  ASSERT_TRUE(service_->ApplyEvent(CourseEvent("ev-foreign", started)).ok());
  v1::Step now;
  ASSERT_TRUE(GetStep("kim-koeln", step.name(), &now).ok());
  EXPECT_EQ(now.state(), v1::STEP_STATE_REFERRED);
  EXPECT_EQ(now.activities_size(), 0);
}

TEST_P(StepServiceTest, PersonMergeMovesCases) {
  identity::v1::PersonMerged merged;
  merged.set_merged(kPerson);
  merged.set_survivor(kOtherPerson);
  lotse::events::v1::Event e;
  e.set_event_id("ev-merge");
  e.set_source("identity");
  e.mutable_payload()->PackFrom(merged);
  ASSERT_TRUE(service_->ApplyEvent(e).ok());
  EXPECT_EQ(ReadCase().person(), kOtherPerson);
  // The survivor has an open case now: a second one is refused.
  v1::Case dup;
  EXPECT_EQ(Reason(Open("kim-koeln", kOtherPerson, &dup)), "OPEN_CASE_EXISTS");
  // Opening for the merged id lands on the survivor as well.
  EXPECT_EQ(Reason(Open("kim-koeln", kPerson, &dup)), "OPEN_CASE_EXISTS");
}

TEST_P(StepServiceTest, ViewWithholdsAndFailsClosed) {
  v1::Step health;
  ASSERT_TRUE(Refer("kim-koeln", case_.name(), v1::STEP_KIND_HEALTH_SERVICE,
                    kCaritas, &health)
                  .ok());
  grpc::ClientContext cn;
  Prepare(&cn);
  v1::CreateNoteRequest note;
  note.set_parent(case_.name());
  note.set_request_id("n1");
  note.mutable_note()->set_text("nur für KIM");
  v1::Note written;
  ASSERT_TRUE(As("kim-koeln")->CreateNote(&cn, note, &written).ok());

  v1::CaseView view;
  ASSERT_TRUE(View("caritas-koeln", &view).ok());
  EXPECT_EQ(view.own_notes_size(), 0);  // not the writer
  EXPECT_TRUE(view.steps(0).description().empty());
  std::set<std::string> fields;
  for (const auto& w : view.withheld()) fields.insert(w.field());
  EXPECT_TRUE(fields.count("steps[0].description"));
  EXPECT_TRUE(fields.count("person.given_names"));
  EXPECT_TRUE(fields.count("language"));

  ASSERT_TRUE(View("kim-koeln", &view).ok());
  EXPECT_EQ(view.own_notes_size(), 1);

  access_.set_unavailable(true);
  ASSERT_TRUE(View("kim-koeln", &view).ok());
  for (const auto& w : view.withheld()) {
    EXPECT_EQ(w.reason(), type::v1::ACCESS_DENIAL_REASON_CHECK_UNAVAILABLE);
  }
  EXPECT_FALSE(view.withheld().empty());
  // Non-participants get nothing.
  EXPECT_EQ(Reason(View("jobcenter-koeln", &view)), "NO_RELATION");
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(StepServiceTest);

class NewReceiverTest : public CasesServerTest {
 protected:
  AccessChecker* Checker() override { return &checker_; }
  void SetUp() override {
    // Identity knows an agency whose registration has not reached cases.
    identity::v1::Agency awo;
    awo.set_name("agencies/awo-neustadt");
    awo.set_legal_domain(type::v1::LEGAL_DOMAIN_FREIER_TRAEGER);
    awo.set_certificate_identity("awo-neustadt");
    awo.set_state(identity::v1::AGENCY_STATE_ACTIVE);
    awo.mutable_update_time()->set_seconds(1);
    checker_.AddAgency(awo);
    checker_.AddPerson(kPerson);
    checker_.Grant("agencies/kim-koeln", type::v1::DATA_CATEGORY_CORE_IDENTITY);
    CasesServerTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(Open("kim-koeln", kPerson, &case_).ok());
  }
  StaticAccessChecker checker_;
  v1::Case case_;
};

TEST_P(NewReceiverTest, AReceiverNotHeardOfYetIsLookedUpInIdentity) {
  v1::Step step;
  grpc::Status s = Refer("kim-koeln", case_.name(), v1::STEP_KIND_COUNSELLING,
                         "agencies/awo-neustadt", &step);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(step.receiving_agency(), "agencies/awo-neustadt");
  // An agency identity does not know either is still refused.
  s = Refer("kim-koeln", case_.name(), v1::STEP_KIND_COUNSELLING,
            "agencies/nobody-here", &step);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(testing::Reason(s), "AGENCY_NOT_FOUND");
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(NewReceiverTest);

}  // namespace
}  // namespace lotse::cases
