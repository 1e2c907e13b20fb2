// Cases across processes: a step of a case is moved by an event from the
// courses process (a booking), and an agency system watching the case's
// events receives it after reconnecting with its last cursor across a
// restart of the cases service — nothing lost, nothing repeated. And the
// case owner's case view carries the person and residence summaries that
// only the identity process holds.
#include <signal.h>
#include <stdlib.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

void Prepare(grpc::ClientContext* context, int seconds = 10) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(seconds));
  context->AddMetadata("x-lotse-actor", "cw-1");
  context->AddMetadata("x-lotse-purpose", "case-management");
}

class CasesFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-cases.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    // Identity picks its own port; cases and courses are told each other's
    // before they run. (Servers refuse SO_REUSEPORT: a clash fails loudly.)
    cases_port_ = FreeLocalPort();
    courses_port_ = FreeLocalPort();
  }

  absl::StatusOr<ServiceProcess> Start(const std::string& service, int port,
                                       std::vector<std::string> extra) {
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=sqlite:", dir_, "/", service, ".db"),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, "-", ++starts_, ".log"));
  }

  std::shared_ptr<grpc::Channel> Channel(int port, const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds);
  }

  // Reads the watch stream from `after` (0: from the earliest) until
  // `enough` holds for the events read or `timeout` passes.
  std::vector<cases::v1::CaseEvent> Watch(
      int64_t after, absl::Duration timeout,
      const std::function<bool(const std::vector<cases::v1::CaseEvent>&)>&
          enough) {
    auto stub =
        cases::v1::CasesService::NewStub(Channel(cases_port_, "kim-koeln"));
    grpc::ClientContext context;
    Prepare(&context, static_cast<int>(absl::ToInt64Seconds(timeout)));
    cases::v1::WatchCaseEventsRequest request;
    request.set_after_cursor(after);
    request.set_start(cases::v1::WATCH_START_EARLIEST);
    auto reader = stub->WatchCaseEvents(&context, request);
    std::vector<cases::v1::CaseEvent> events;
    cases::v1::WatchCaseEventsResponse message;
    while (!enough(events) && reader->Read(&message)) {
      if (message.has_event()) events.push_back(message.event());
    }
    context.TryCancel();
    reader->Finish().IgnoreError();
    return events;
  }

  std::string pki_;
  std::string dir_;
  int cases_port_ = 0;
  int courses_port_ = 0;
  int starts_ = 0;
};

bool HasStepMovedTo(const std::vector<cases::v1::CaseEvent>& events,
                    const std::string& step, cases::v1::StepState state) {
  for (const auto& e : events) {
    if (e.has_step_state_changed() && e.step_state_changed().step() == step &&
        e.step_state_changed().transition().to_state() == state) {
      return true;
    }
  }
  return false;
}

TEST_F(CasesFlowTest,
       CourseBookingMovesTheStepAndAWatcherResumesAcrossRestart) {
  auto identity = Start(
      "identity", 0,
      {absl::StrCat("--event_destinations=courses=127.0.0.1:", courses_port_,
                    ",cases=127.0.0.1:", cases_port_)});
  ASSERT_TRUE(identity.ok()) << identity.status();
  absl::StatusOr<int> identity_port = identity->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(identity_port.ok()) << identity->ReadLog();
  const std::string identity_target =
      absl::StrCat("--identity_target=127.0.0.1:", *identity_port);
  const std::string to_identity =
      absl::StrCat("identity=127.0.0.1:", *identity_port);
  const std::vector<std::string> cases_args = {
      identity_target, absl::StrCat("--event_destinations=", to_identity)};
  auto cases = Start("cases", cases_port_, cases_args);
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_TRUE(cases->WaitServing(absl::Seconds(20)).ok()) << cases->ReadLog();
  auto courses =
      Start("courses", courses_port_,
            {identity_target, absl::StrCat("--event_destinations=", to_identity,
                                           ",cases=127.0.0.1:", cases_port_)});
  ASSERT_TRUE(courses.ok()) << courses.status();
  ASSERT_TRUE(courses->WaitServing(absl::Seconds(20)).ok())
      << courses->ReadLog();

  auto seed = ServiceProcess::Start(
      absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
      {absl::StrCat("--identity=127.0.0.1:", *identity_port),
       absl::StrCat("--tls_dir=", pki_)},
      absl::StrCat(dir_, "/seed.log"));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->WaitExit(absl::Seconds(30)).value_or(-1), 0)
      << seed->ReadLog();

  // The person, registered by the case manager.
  identity::v1::CreatePersonRequest create;
  create.set_request_id("e2e-person");
  *create.mutable_person() =
      SamplePersonWithPapers("Oleksandr", "Kovalenko", 1988);
  identity::v1::Person person;
  {
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status s = identity::v1::IdentityService::NewStub(
                         Channel(*identity_port, "kim-koeln"))
                         ->CreatePerson(&context, create, &person);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // A case (once identity's agency events reached cases) with a language
  // course step referred to the course provider.
  auto cases_stub =
      cases::v1::CasesService::NewStub(Channel(cases_port_, "kim-koeln"));
  cases::v1::OpenCaseRequest open;
  open.set_request_id("e2e-case");
  open.mutable_case_record()->set_person(person.name());
  open.mutable_case_record()->set_responsible_actor("cm-1");
  cases::v1::Case opened;
  grpc::Status last;
  ASSERT_TRUE(Eventually(
      [&] {
        grpc::ClientContext context;
        Prepare(&context);
        last = cases_stub->OpenCase(&context, open, &opened);
        return last.ok();
      },
      absl::Seconds(30)))
      << last.error_message() << "\n"
      << cases->ReadLog();
  cases::v1::CreateStepRequest create_step;
  create_step.set_parent(opened.name());
  create_step.set_request_id("e2e-step");
  create_step.mutable_step()->set_kind(cases::v1::STEP_KIND_INTEGRATION_COURSE);
  create_step.mutable_step()->set_receiving_agency("agencies/vhs-koeln");
  cases::v1::Step step;
  // The provider's AgencyRegistered may reach cases after the owner's.
  ASSERT_TRUE(Eventually(
      [&] {
        grpc::ClientContext context;
        Prepare(&context);
        last = cases_stub->CreateStep(&context, create_step, &step);
        return last.ok();
      },
      absl::Seconds(30)))
      << last.error_message();

  // The watcher reads what there is and remembers its cursor.
  std::vector<cases::v1::CaseEvent> seen = Watch(
      0, absl::Seconds(15), [&](const std::vector<cases::v1::CaseEvent>& e) {
        for (const auto& event : e) {
          if (event.has_step_referred()) return true;
        }
        return false;
      });
  ASSERT_FALSE(seen.empty());
  const int64_t cursor = seen.back().cursor();

  // Cases goes down; meanwhile the provider publishes, BAMF admits, and
  // the case manager books a seat in the courses process. A watcher
  // connected while it drains is told to reconnect (SERVER_DRAINING), not
  // cut off.
  absl::Notification watching;
  grpc::Status drained;
  std::thread watcher([&] {
    auto stub =
        cases::v1::CasesService::NewStub(Channel(cases_port_, "kim-koeln"));
    grpc::ClientContext context;
    Prepare(&context, 30);
    cases::v1::WatchCaseEventsRequest request;
    request.set_start(cases::v1::WATCH_START_EARLIEST);
    auto reader = stub->WatchCaseEvents(&context, request);
    cases::v1::WatchCaseEventsResponse message;
    if (reader->Read(&message)) watching.Notify();
    while (reader->Read(&message)) {
    }
    drained = reader->Finish();
    if (!watching.HasBeenNotified()) watching.Notify();
  });
  watching.WaitForNotification();
  cases->Signal(SIGTERM);
  ASSERT_EQ(cases->WaitExit(absl::Seconds(10)).value_or(-1), 0);
  watcher.join();
  EXPECT_EQ(drained.error_code(), grpc::StatusCode::UNAVAILABLE)
      << drained.error_message();
  EXPECT_EQ(ReasonOf(FromGrpcStatus(drained)).value_or(""), "SERVER_DRAINING");
  auto courses_as = [&](const std::string& as) {
    return courses::v1::CoursesService::NewStub(Channel(courses_port_, as));
  };
  courses::v1::CreateCourseRequest course_request;
  course_request.set_request_id("e2e-course");
  courses::v1::Course* c = course_request.mutable_course();
  *c = IntegrationCourse("Integrationskurs Abend");
  c->mutable_schedule()->set_weekdays(0, type::v1::DAY_OF_WEEK_TUESDAY);
  c->mutable_schedule()->set_day_period(type::v1::DAY_PERIOD_EVENING);
  c->mutable_schedule()->set_units_per_week(10);
  courses::v1::Course course;
  ASSERT_TRUE(Eventually(
      [&] {
        grpc::ClientContext context;
        Prepare(&context);
        last = courses_as("vhs-koeln")
                   ->CreateCourse(&context, course_request, &course);
        return last.ok();
      },
      absl::Seconds(30)))
      << last.error_message();
  // BAMF takes the person into its remit with the papers, then admits them.
  {
    identity::v1::LinkAgencyIdRequest link;
    link.set_parent(person.name());
    link.set_request_id("e2e-bamf-link");
    link.mutable_agency_id()->set_kind(
        identity::v1::AGENCY_ID_KIND_BAMF_FILE_NUMBER);
    link.mutable_agency_id()->set_value("BAMF-7000456");
    *link.mutable_proof() = PapersOf(person);
    identity::v1::AgencyId linked;
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status s = identity::v1::IdentityService::NewStub(
                         Channel(*identity_port, "bamf-nuernberg"))
                         ->LinkAgencyId(&context, link, &linked);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  courses::v1::RecordEntitlementRequest entitle;
  entitle.set_request_id("e2e-entitlement");
  courses::v1::Entitlement* e = entitle.mutable_entitlement();
  e->set_person(person.name());
  e->set_kind(courses::v1::ENTITLEMENT_KIND_ADMISSION);
  e->add_course_kinds(courses::v1::COURSE_KIND_INTEGRATION_GENERAL);
  e->set_units(700);
  *e->mutable_valid_from() = DateInDays(0);
  *e->mutable_valid_until() = DateInDays(365);
  courses::v1::Entitlement entitlement;
  // Each agency's AgencyRegistered reaches courses on its own (per-agency
  // ordering keys), so BAMF may be known a moment after the provider.
  {
    grpc::Status s;
    ASSERT_TRUE(Eventually(
        [&] {
          grpc::ClientContext context;
          Prepare(&context);
          s = courses_as("bamf-nuernberg")
                  ->RecordEntitlement(&context, entitle, &entitlement);
          return s.error_code() != grpc::StatusCode::PERMISSION_DENIED;
        },
        absl::Seconds(30)));
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  courses::v1::CreateBookingRequest book;
  book.set_parent(course.name());
  book.set_request_id("e2e-booking");
  book.mutable_booking()->set_person(person.name());
  book.mutable_booking()->set_case_step(step.name());
  courses::v1::Booking booking;
  {
    grpc::Status s;
    ASSERT_TRUE(Eventually(
        [&] {
          grpc::ClientContext context;
          Prepare(&context);
          s = courses_as("kim-koeln")->CreateBooking(&context, book, &booking);
          return s.error_code() != grpc::StatusCode::PERMISSION_DENIED;
        },
        absl::Seconds(30)));
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // Cases comes back on its database; the watcher resumes from its cursor
  // and receives the step's move to ACCEPTED, delivered by courses' relay.
  auto restarted = Start("cases", cases_port_, cases_args);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE(restarted->WaitServing(absl::Seconds(20)).ok())
      << restarted->ReadLog();
  std::vector<cases::v1::CaseEvent> resumed = Watch(
      cursor, absl::Seconds(45),
      [&](const std::vector<cases::v1::CaseEvent>& e) {
        return HasStepMovedTo(e, step.name(), cases::v1::STEP_STATE_ACCEPTED);
      });
  ASSERT_TRUE(
      HasStepMovedTo(resumed, step.name(), cases::v1::STEP_STATE_ACCEPTED))
      << restarted->ReadLog() << courses->ReadLog();

  // Exactly what was missed: the resumed events are the full history's
  // events after the cursor, in order, none repeated.
  std::vector<cases::v1::CaseEvent> all = Watch(
      0, absl::Seconds(15), [&](const std::vector<cases::v1::CaseEvent>& e) {
        return !e.empty() && e.back().cursor() >= resumed.back().cursor();
      });
  std::vector<int64_t> expected, got;
  for (const auto& event : all) {
    if (event.cursor() > cursor && event.cursor() <= resumed.back().cursor()) {
      expected.push_back(event.cursor());
    }
  }
  for (const auto& event : resumed) got.push_back(event.cursor());
  EXPECT_EQ(got, expected);
  EXPECT_GT(got.front(), cursor);

  for (ServiceProcess* p : {&*restarted, &*courses, &*identity}) {
    p->Signal(SIGTERM);
    EXPECT_EQ(p->WaitExit(absl::Seconds(10)).value_or(-1), 0);
  }
}

TEST_F(CasesFlowTest, CaseOwnerSeesPersonAndResidenceFromIdentity) {
  auto identity = Start(
      "identity", 0,
      {absl::StrCat("--event_destinations=cases=127.0.0.1:", cases_port_)});
  ASSERT_TRUE(identity.ok()) << identity.status();
  absl::StatusOr<int> identity_port = identity->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(identity_port.ok()) << identity->ReadLog();
  auto cases =
      Start("cases", cases_port_,
            {absl::StrCat("--identity_target=127.0.0.1:", *identity_port),
             absl::StrCat("--event_destinations=identity=127.0.0.1:",
                          *identity_port)});
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_TRUE(cases->WaitServing(absl::Seconds(20)).ok()) << cases->ReadLog();
  auto seed = ServiceProcess::Start(
      absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
      {absl::StrCat("--identity=127.0.0.1:", *identity_port),
       absl::StrCat("--tls_dir=", pki_)},
      absl::StrCat(dir_, "/seed.log"));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->WaitExit(absl::Seconds(30)).value_or(-1), 0)
      << seed->ReadLog();

  // The case manager registers the person; the immigration office records
  // the residence status.
  identity::v1::CreatePersonRequest create;
  create.set_request_id("e2e-view-person");
  *create.mutable_person() = SamplePerson("Yusuf", "Demir", 1987);
  identity::v1::Person person;
  {
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status s = identity::v1::IdentityService::NewStub(
                         Channel(*identity_port, "kim-koeln"))
                         ->CreatePerson(&context, create, &person);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  identity::v1::RecordResidenceStatusRequest residence;
  residence.set_parent(person.name());
  residence.set_request_id("e2e-view-residence");
  identity::v1::ResidenceStatus* rs = residence.mutable_residence_status();
  rs->set_title_kind(identity::v1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
  rs->set_legal_basis("§ 25 Abs. 2 AufenthG");
  *rs->mutable_valid_from() = DateInDays(-10);
  *rs->mutable_valid_until() = DateInDays(400);
  rs->set_work_permission(type::v1::WORK_PERMISSION_PERMITTED);
  rs->set_integration_course_obligation(true);
  {
    grpc::ClientContext context;
    Prepare(&context);
    identity::v1::ResidenceStatus recorded;
    grpc::Status s =
        identity::v1::IdentityService::NewStub(
            Channel(*identity_port, "abh-koeln"))
            ->RecordResidenceStatus(&context, residence, &recorded);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  auto kim =
      cases::v1::CasesService::NewStub(Channel(cases_port_, "kim-koeln"));
  cases::v1::OpenCaseRequest open;
  open.set_request_id("e2e-view-case");
  open.mutable_case_record()->set_person(person.name());
  open.mutable_case_record()->set_responsible_actor("cm-1");
  cases::v1::Case opened;
  grpc::Status last;
  ASSERT_TRUE(Eventually(
      [&] {
        grpc::ClientContext context;
        Prepare(&context);
        last = kim->OpenCase(&context, open, &opened);
        return last.ok();
      },
      absl::Seconds(30)))
      << last.error_message() << "\n"
      << cases->ReadLog();

  cases::v1::GetCaseViewRequest get;
  get.set_name(opened.name());
  cases::v1::CaseView view;
  {
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status s = kim->GetCaseView(&context, get, &view);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(view.person().person(), person.name());
  EXPECT_EQ(view.person().given_names(), "Yusuf");
  EXPECT_EQ(view.person().family_names(), "Demir");
  EXPECT_EQ(view.person().birth_date().year(), 1987);
  ASSERT_TRUE(view.has_residence()) << view.DebugString();
  EXPECT_EQ(view.residence().title_kind(),
            identity::v1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
  EXPECT_EQ(view.residence().valid_until().year(), rs->valid_until().year());
  EXPECT_EQ(view.residence().work_permission(),
            type::v1::WORK_PERMISSION_PERMITTED);
  EXPECT_TRUE(view.residence().integration_course_obligation());
  EXPECT_TRUE(view.not_delivered().empty()) << view.DebugString();
  for (const auto& w : view.withheld()) {
    EXPECT_NE(w.category(), type::v1::DATA_CATEGORY_CORE_IDENTITY) << w.field();
    EXPECT_NE(w.category(), type::v1::DATA_CATEGORY_RESIDENCE_STATUS)
        << w.field();
  }

  for (ServiceProcess* p : {&*cases, &*identity}) {
    p->Signal(SIGTERM);
    EXPECT_EQ(p->WaitExit(absl::Seconds(10)).value_or(-1), 0);
  }
}

}  // namespace
}  // namespace lotse::testing
