// The identity and courses binaries as real processes wired like the run
// command: identity's agency events reach courses (so course providers may
// publish), courses checks persons at identity with its service
// certificate, and a booking's event tells identity that the provider now
// serves the person, which lets it read the person's core identity.
#include <signal.h>
#include <stdlib.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

class CoursesFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-courses.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    // Identity listens on a port of its own choosing; courses on one picked
    // now, because identity must be told where to deliver before courses
    // runs. (Servers refuse SO_REUSEPORT, so a clash fails loudly.)
    courses_port_ = FreeLocalPort();
  }

  absl::StatusOr<ServiceProcess> Start(const std::string& service,
                                       std::vector<std::string> extra) {
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:",
                     service == "identity" ? 0 : courses_port_),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=sqlite:", dir_, "/", service, ".db"),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, ".log"));
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
  std::unique_ptr<courses::v1::CoursesService::Stub> Courses(
      const std::string& as) {
    return courses::v1::CoursesService::NewStub(Channel(courses_port_, as));
  }
  static void Prepare(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    context->AddMetadata("x-lotse-actor", "cw-1");
    context->AddMetadata("x-lotse-purpose", "course-placement");
  }

  std::string pki_;
  std::string dir_;
  int identity_port_ = 0;
  int courses_port_ = 0;
};

TEST_F(CoursesFlowTest, AgenciesPersonsAndBookingsCrossTheServices) {
  auto identity = Start(
      "identity",
      {absl::StrCat("--event_destinations=courses=127.0.0.1:", courses_port_)});
  ASSERT_TRUE(identity.ok()) << identity.status();
  absl::StatusOr<int> identity_port = identity->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(identity_port.ok()) << identity->ReadLog();
  identity_port_ = *identity_port;
  auto courses = Start(
      "courses", {absl::StrCat("--identity_target=127.0.0.1:", identity_port_),
                  absl::StrCat("--event_destinations=identity=127.0.0.1:",
                               identity_port_)});
  ASSERT_TRUE(courses.ok()) << courses.status();
  ASSERT_TRUE(courses->WaitServing(absl::Seconds(20)).ok())
      << courses->ReadLog();

  auto seed = ServiceProcess::Start(
      absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
      {absl::StrCat("--identity=127.0.0.1:", identity_port_),
       absl::StrCat("--tls_dir=", pki_)},
      absl::StrCat(dir_, "/seed.log"));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->WaitExit(absl::Seconds(30)).value_or(-1), 0)
      << seed->ReadLog();

  // A person registered by the municipal case manager.
  identity::v1::CreatePersonRequest create;
  create.set_request_id("e2e-person-1");
  *create.mutable_person() =
      SamplePersonWithPapers("Tesfay", "Gebremedhin", 1994);
  identity::v1::Person person;
  {
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status s =
        Identity("kim-koeln")->CreatePerson(&context, create, &person);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // The provider may publish once identity's AgencyRegistered reached
  // courses.
  courses::v1::CreateCourseRequest course_request;
  course_request.set_request_id("e2e-course-1");
  *course_request.mutable_course() =
      IntegrationCourse("Integrationskurs Vormittag");
  courses::v1::Course course;
  grpc::Status last;
  ASSERT_TRUE(Eventually(
      [&] {
        grpc::ClientContext context;
        Prepare(&context);
        last = Courses("vhs-koeln")
                   ->CreateCourse(&context, course_request, &course);
        return last.ok();
      },
      absl::Seconds(30)))
      << last.error_message() << "\n"
      << courses->ReadLog();

  // Before any booking the provider has no relation to the person.
  identity::v1::GetPersonRequest get;
  get.set_name(person.name());
  identity::v1::Person read;
  {
    grpc::ClientContext context;
    Prepare(&context);
    EXPECT_EQ(
        Identity("vhs-koeln")->GetPerson(&context, get, &read).error_code(),
        grpc::StatusCode::PERMISSION_DENIED);
  }

  // BAMF takes the person into its remit with the papers (its file number),
  // then admits them: courses asks identity whether BAMF may act on them.
  {
    identity::v1::LinkAgencyIdRequest link;
    link.set_parent(person.name());
    link.set_request_id("e2e-bamf-link");
    link.mutable_agency_id()->set_kind(
        identity::v1::AGENCY_ID_KIND_BAMF_FILE_NUMBER);
    link.mutable_agency_id()->set_value("BAMF-7000123");
    *link.mutable_proof() = PapersOf(person);
    identity::v1::AgencyId linked;
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status s =
        Identity("bamf-nuernberg")->LinkAgencyId(&context, link, &linked);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  courses::v1::RecordEntitlementRequest entitle;
  entitle.set_request_id("e2e-entitlement-1");
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
          s = Courses("bamf-nuernberg")
                  ->RecordEntitlement(&context, entitle, &entitlement);
          return s.error_code() != grpc::StatusCode::PERMISSION_DENIED;
        },
        absl::Seconds(30)));
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // An id identity does not know is refused like a person BAMF has no
  // relation to.
  entitle.set_request_id("e2e-entitlement-2");
  e->set_person("persons/aaaaaaaaaaaaaaaaaaaaaaaaaa");
  {
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status s = Courses("bamf-nuernberg")
                         ->RecordEntitlement(&context, entitle, &entitlement);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(ReasonOf(FromGrpcStatus(s)).value_or(""), "NO_RELATION");
  }

  // The case manager books a seat.
  courses::v1::CreateBookingRequest book;
  book.set_parent(course.name());
  book.set_request_id("e2e-booking-1");
  book.mutable_booking()->set_person(person.name());
  courses::v1::Booking booking;
  {
    grpc::Status s;
    ASSERT_TRUE(Eventually(
        [&] {
          grpc::ClientContext context;
          Prepare(&context);
          s = Courses("kim-koeln")->CreateBooking(&context, book, &booking);
          return s.error_code() != grpc::StatusCode::PERMISSION_DENIED;
        },
        absl::Seconds(30)));
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // CourseBooked reaches identity: the provider serves the person now.
  ASSERT_TRUE(Eventually(
      [&] {
        grpc::ClientContext context;
        Prepare(&context);
        return Identity("vhs-koeln")->GetPerson(&context, get, &read).ok();
      },
      absl::Seconds(30)))
      << identity->ReadLog();
  EXPECT_EQ(read.name(), person.name());

  courses->Signal(SIGTERM);
  identity->Signal(SIGTERM);
  EXPECT_EQ(courses->WaitExit(absl::Seconds(10)).value_or(-1), 0);
  EXPECT_EQ(identity->WaitExit(absl::Seconds(10)).value_or(-1), 0);
}

}  // namespace
}  // namespace lotse::testing
