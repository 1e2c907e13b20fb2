// Names one service issues, used in calls to another, through the four
// service processes wired like tools/lotse.sh, as an outside integrator's
// client would call them.
//
// A case has two open job-placement steps referred to the Jobcenter and two
// open course steps referred to the course provider. A proposal in
// placement and a booking in courses each name the SECOND step of their
// kind ("cases/{case}/steps/{step}" exactly as cases returned it); the step
// that moves in cases is exactly that one, not the oldest step of the kind
// that cases would pick for an event naming no step.
#include <signal.h>
#include <stdlib.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

namespace cv1 = ::lotse::cases::v1;
namespace pv1 = ::lotse::placement::v1;

// Events between processes; the relays back off while a receiver is not up
// yet, so the first deliveries after start-up can take several seconds.
constexpr absl::Duration kEventTimeout = absl::Seconds(45);

grpc::Status Call(
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  context.AddMetadata("x-lotse-actor", "cw-1");
  context.AddMetadata("x-lotse-purpose", "case-management");
  return call(&context);
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message(), " (",
                      ReasonOf(FromGrpcStatus(status)).value_or("no reason"),
                      ")");
}

// Repeats `call` while it is PERMISSION_DENIED: each agency's
// AgencyRegistered reaches a service on its own, a moment after the seed.
grpc::Status OnceAgencyKnown(
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  grpc::Status status;
  Eventually(
      [&] {
        status = Call(call);
        return status.error_code() != grpc::StatusCode::PERMISSION_DENIED;
      },
      kEventTimeout);
  return status;
}

class NamesAcrossServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-names.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    // Identity picks its own port; the others are told each other's before
    // they run.
    cases_port_ = FreeLocalPort();
    courses_port_ = FreeLocalPort();
    placement_port_ = FreeLocalPort();
  }

  void TearDown() override {
    for (auto& p : processes_) {
      p.Signal(SIGTERM);
      EXPECT_EQ(p.WaitExit(absl::Seconds(10)).value_or(-1), 0);
    }
  }

  absl::StatusOr<int> Start(const std::string& service, int port,
                            std::vector<std::string> extra) {
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=sqlite:", dir_, "/", service, ".db"),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, ".log"));
    if (!p.ok()) return p.status();
    processes_.push_back(*std::move(p));
    names_.push_back(service);
    absl::StatusOr<int> serving =
        processes_.back().WaitServing(absl::Seconds(20));
    if (!serving.ok()) {
      return absl::Status(serving.status().code(),
                          absl::StrCat(serving.status().message(), "\n",
                                       processes_.back().ReadLog()));
    }
    return serving;
  }

  // identity, cases, courses and placement with the event wiring of
  // tools/lotse.sh, and the demo agencies registered.
  void StartAll() {
    absl::StatusOr<int> identity = Start(
        "identity", 0,
        {absl::StrCat("--event_destinations=courses=127.0.0.1:", courses_port_,
                      ",cases=127.0.0.1:", cases_port_,
                      ",placement=127.0.0.1:", placement_port_)});
    ASSERT_TRUE(identity.ok()) << identity.status();
    identity_port_ = *identity;
    const std::string identity_target =
        absl::StrCat("--identity_target=127.0.0.1:", identity_port_);
    const std::string to_identity =
        absl::StrCat("identity=127.0.0.1:", identity_port_);
    const std::string to_cases = absl::StrCat("cases=127.0.0.1:", cases_port_);
    absl::StatusOr<int> cases = Start(
        "cases", cases_port_,
        {identity_target, absl::StrCat("--event_destinations=", to_identity)});
    ASSERT_TRUE(cases.ok()) << cases.status();
    absl::StatusOr<int> courses =
        Start("courses", courses_port_,
              {identity_target,
               absl::StrCat("--event_destinations=", to_identity, ",", to_cases,
                            ",placement=127.0.0.1:", placement_port_)});
    ASSERT_TRUE(courses.ok()) << courses.status();
    absl::StatusOr<int> placement = Start(
        "placement", placement_port_,
        {identity_target,
         absl::StrCat("--event_destinations=", to_identity, ",", to_cases)});
    ASSERT_TRUE(placement.ok()) << placement.status();

    auto seed = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
        {absl::StrCat("--identity=127.0.0.1:", identity_port_),
         absl::StrCat("--tls_dir=", pki_)},
        absl::StrCat(dir_, "/seed.log"));
    ASSERT_TRUE(seed.ok()) << seed.status();
    ASSERT_EQ(seed->WaitExit(absl::Seconds(30)).value_or(-1), 0)
        << seed->ReadLog();
  }

  std::shared_ptr<grpc::Channel> Channel(int port, const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds);
  }
  std::unique_ptr<identity::v1::IdentityService::Stub> Identity(
      const std::string& as) {
    return identity::v1::IdentityService::NewStub(Channel(identity_port_, as));
  }
  std::unique_ptr<cv1::CasesService::Stub> Cases(const std::string& as) {
    return cv1::CasesService::NewStub(Channel(cases_port_, as));
  }
  std::unique_ptr<courses::v1::CoursesService::Stub> Courses(
      const std::string& as) {
    return courses::v1::CoursesService::NewStub(Channel(courses_port_, as));
  }
  std::unique_ptr<pv1::PlacementService::Stub> Placement(
      const std::string& as) {
    return pv1::PlacementService::NewStub(Channel(placement_port_, as));
  }

  std::string Logs() const {
    std::string logs;
    for (size_t i = 0; i < processes_.size(); ++i) {
      absl::StrAppend(&logs, "---- ", names_[i], " log ----\n",
                      processes_[i].ReadLog());
    }
    return logs;
  }

  // A person registered by the case manager, with a residence status that
  // permits work recorded by the immigration office.
  void RegisterPerson(identity::v1::Person* person) {
    identity::v1::CreatePersonRequest create;
    create.set_request_id("e2e-names-person");
    *create.mutable_person() = SamplePersonWithPapers("Amina", "Haddad", 1991);
    auto kim = Identity("kim-koeln");
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return kim->CreatePerson(c, create, person);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    identity::v1::RecordResidenceStatusRequest residence;
    residence.set_parent(person->name());
    residence.set_request_id("e2e-names-residence");
    identity::v1::ResidenceStatus* rs = residence.mutable_residence_status();
    rs->set_title_kind(identity::v1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT);
    rs->set_legal_basis("§ 25 Abs. 2 AufenthG");
    *rs->mutable_valid_from() = DateInDays(-30);
    *rs->mutable_valid_until() = DateInDays(2 * 365);
    rs->set_work_permission(type::v1::WORK_PERMISSION_PERMITTED);
    rs->set_integration_course_obligation(true);
    auto abh = Identity("abh-koeln");
    identity::v1::ResidenceStatus recorded;
    s = Call([&](grpc::ClientContext* c) {
      return abh->RecordResidenceStatus(c, residence, &recorded);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  // The case of `person`, opened by the case manager once identity's
  // agency events reached cases.
  void OpenCase(const identity::v1::Person& person, cv1::Case* opened) {
    cv1::OpenCaseRequest open;
    open.set_request_id("e2e-names-case");
    open.mutable_case_record()->set_person(person.name());
    open.mutable_case_record()->set_responsible_actor("cm-1");
    auto kim = Cases("kim-koeln");
    grpc::Status s = OnceAgencyKnown(
        [&](grpc::ClientContext* c) { return kim->OpenCase(c, open, opened); });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  }

  cv1::Step Refer(const cv1::Case& c, cv1::StepKind kind,
                  const std::string& receiver, const std::string& request_id) {
    cv1::CreateStepRequest create;
    create.set_parent(c.name());
    create.set_request_id(request_id);
    create.mutable_step()->set_kind(kind);
    create.mutable_step()->set_receiving_agency(receiver);
    auto kim = Cases("kim-koeln");
    cv1::Step step;
    // Until the receiver's AgencyRegistered reached cases it is
    // AGENCY_NOT_FOUND there.
    grpc::Status s;
    Eventually(
        [&] {
          s = Call([&](grpc::ClientContext* ctx) {
            return kim->CreateStep(ctx, create, &step);
          });
          return s.ok();
        },
        kEventTimeout);
    EXPECT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
    return step;
  }

  cv1::Step ReadStep(const std::string& name) {
    cv1::GetStepRequest get;
    get.set_name(name);
    cv1::Step step;
    auto kim = Cases("kim-koeln");
    grpc::Status s = Call(
        [&](grpc::ClientContext* c) { return kim->GetStep(c, get, &step); });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return step;
  }

  // Waits until `moved` reaches `state`; then `other` must not have moved
  // nor recorded anything.
  void ExpectOnlyMoved(const cv1::Step& moved, cv1::StepState state,
                       const cv1::Step& other) {
    cv1::Step now;
    EXPECT_TRUE(Eventually(
        [&] {
          now = ReadStep(moved.name());
          return now.state() == state;
        },
        kEventTimeout))
        << now.DebugString() << "\n"
        << Logs();
    EXPECT_EQ(now.activities_size(), 1) << now.DebugString();
    const cv1::Step untouched = ReadStep(other.name());
    EXPECT_EQ(untouched.state(), cv1::STEP_STATE_REFERRED)
        << untouched.DebugString();
    EXPECT_EQ(untouched.activities_size(), 0) << untouched.DebugString();
  }

  std::string pki_;
  std::string dir_;
  int identity_port_ = 0;
  int cases_port_ = 0;
  int courses_port_ = 0;
  int placement_port_ = 0;
  std::vector<ServiceProcess> processes_;
  std::vector<std::string> names_;
};

TEST_F(NamesAcrossServicesTest, ProposalAndBookingMoveTheStepTheyName) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  identity::v1::Person person;
  ASSERT_NO_FATAL_FAILURE(RegisterPerson(&person));
  cv1::Case opened;
  ASSERT_NO_FATAL_FAILURE(OpenCase(person, &opened));
  const cv1::Step job_1 = Refer(opened, cv1::STEP_KIND_JOB_PLACEMENT,
                                "agencies/jobcenter-koeln", "e2e-names-job-1");
  const cv1::Step job_2 = Refer(opened, cv1::STEP_KIND_JOB_PLACEMENT,
                                "agencies/jobcenter-koeln", "e2e-names-job-2");
  const cv1::Step course_1 = Refer(opened, cv1::STEP_KIND_INTEGRATION_COURSE,
                                   "agencies/vhs-koeln", "e2e-names-course-1");
  const cv1::Step course_2 = Refer(opened, cv1::STEP_KIND_INTEGRATION_COURSE,
                                   "agencies/vhs-koeln", "e2e-names-course-2");
  ASSERT_FALSE(HasFailure());

  // ---- placement: a proposal naming the second job-placement step -------
  auto jobcenter = Placement("jobcenter-koeln");
  pv1::CreateCandidateProfileRequest create_profile;
  create_profile.set_request_id("e2e-names-profile");
  pv1::CandidateProfile* p = create_profile.mutable_candidate_profile();
  p->set_person(person.name());
  p->add_wanted_offer_kinds(pv1::OFFER_KIND_JOB);
  p->set_stated_language_level(type::v1::CEFR_LEVEL_A2);
  pv1::CandidateProfile profile;
  grpc::Status s = OnceAgencyKnown([&](grpc::ClientContext* c) {
    return jobcenter->CreateCandidateProfile(c, create_profile, &profile);
  });
  ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  pv1::CreateOfferRequest create_offer;
  create_offer.set_request_id("e2e-names-offer");
  *create_offer.mutable_offer() =
      WarehouseOffer("Lagerhelfer (m/w/d)", type::v1::CEFR_LEVEL_A1, 2);
  pv1::Offer offer;
  s = OnceAgencyKnown([&](grpc::ClientContext* c) {
    return jobcenter->CreateOffer(c, create_offer, &offer);
  });
  ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  pv1::ProposePlacementRequest propose;
  propose.set_request_id("e2e-names-proposal");
  propose.mutable_placement()->set_offer(offer.name());
  propose.mutable_placement()->set_candidate(profile.name());
  propose.mutable_placement()->set_case_step(job_2.name());
  pv1::Placement proposed;
  s = Call([&](grpc::ClientContext* c) {
    return jobcenter->ProposePlacement(c, propose, &proposed);
  });
  ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  EXPECT_EQ(proposed.case_step(), job_2.name());
  ExpectOnlyMoved(job_2, cv1::STEP_STATE_IN_PROGRESS, job_1);

  // ---- courses: a booking naming the second course step ------------------
  auto provider = Courses("vhs-koeln");
  courses::v1::CreateCourseRequest create_course;
  create_course.set_request_id("e2e-names-course");
  *create_course.mutable_course() = IntegrationCourse("Integrationskurs");
  courses::v1::Course course;
  s = OnceAgencyKnown([&](grpc::ClientContext* c) {
    return provider->CreateCourse(c, create_course, &course);
  });
  ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  courses::v1::RecordEntitlementRequest entitle;
  entitle.set_request_id("e2e-names-entitlement");
  courses::v1::Entitlement* e = entitle.mutable_entitlement();
  e->set_person(person.name());
  e->set_kind(courses::v1::ENTITLEMENT_KIND_ADMISSION);
  e->add_course_kinds(courses::v1::COURSE_KIND_INTEGRATION_GENERAL);
  e->set_units(700);
  *e->mutable_valid_from() = DateInDays(0);
  *e->mutable_valid_until() = DateInDays(365);
  // BAMF takes the person into its remit with the papers, then admits them.
  {
    identity::v1::LinkAgencyIdRequest link;
    link.set_parent(person.name());
    link.set_request_id("e2e-names-bamf-link");
    link.mutable_agency_id()->set_kind(
        identity::v1::AGENCY_ID_KIND_BAMF_FILE_NUMBER);
    link.mutable_agency_id()->set_value("BAMF-7000789");
    *link.mutable_proof() = PapersOf(person);
    identity::v1::AgencyId linked;
    auto bamf_identity = Identity("bamf-nuernberg");
    s = Call([&](grpc::ClientContext* c) {
      return bamf_identity->LinkAgencyId(c, link, &linked);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  courses::v1::Entitlement entitlement;
  auto bamf = Courses("bamf-nuernberg");
  s = OnceAgencyKnown([&](grpc::ClientContext* c) {
    return bamf->RecordEntitlement(c, entitle, &entitlement);
  });
  ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  courses::v1::CreateBookingRequest book;
  book.set_parent(course.name());
  book.set_request_id("e2e-names-booking");
  book.mutable_booking()->set_person(person.name());
  book.mutable_booking()->set_case_step(course_2.name());
  courses::v1::Booking booking;
  auto kim = Courses("kim-koeln");
  s = OnceAgencyKnown([&](grpc::ClientContext* c) {
    return kim->CreateBooking(c, book, &booking);
  });
  ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  EXPECT_EQ(booking.case_step(), course_2.name());
  ExpectOnlyMoved(course_2, cv1::STEP_STATE_ACCEPTED, course_1);
}

}  // namespace
}  // namespace lotse::testing
