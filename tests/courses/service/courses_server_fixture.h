// The courses service running in-process behind a real mTLS server, on the
// test's backend (SQLite or PostgreSQL), with a fake identity, a settable
// clock, and the dev PKI's agencies registered through the service's own
// event handler (as identity's AgencyRegistered events would), on the
// shared kit (testing::ServiceServerTest). Service tests derive from it and
// call as the dev PKI's agencies:
//   vhs-koeln (KURSTRAEGER), kim-koeln (KOMMUNE), bamf-nuernberg (BAMF),
//   abh-koeln (AUSLAENDERBEHOERDE), jobcenter-koeln (JOBCENTER),
//   caritas-koeln (FREIER_TRAEGER). ihk-koeln is deliberately unknown.
#ifndef LOTSE_TESTS_COURSES_SERVICE_COURSES_SERVER_FIXTURE_H_
#define LOTSE_TESTS_COURSES_SERVICE_COURSES_SERVER_FIXTURE_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/api/names.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/inbox.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "services/courses/domain/dates.h"
#include "services/courses/service/courses_service.h"
#include "services/courses/store/course_store.h"
#include "services/courses/store/migrations.h"
#include "tests/support/fake_identity_client.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::courses {

using ::lotse::testing::Reason;
using ::lotse::testing::ViolatedFields;

class CoursesServerTest : public ::lotse::testing::ServiceServerTest {
 protected:
  void SetUp() override {
    ServiceServerTest::SetUp();
    if (HasFatalFailure()) return;
    identity_ = std::make_shared<::lotse::testing::FakeIdentityClient>();
    ::lotse::testing::ServiceRuntimeOptions runtime;
    // Writes go through a group committer, as in the service process,
    // unless the test asks for a transaction per write.
    runtime.group_commit = GroupCommit();
    StartRuntime(CoursesMigrations(), "courses.lotse", runtime);
    if (HasFatalFailure()) return;
    CoursesOptions options;
    options.identity = identity_;
    options.clock = clock_->AsFunction();
    service_ = std::make_unique<CoursesServiceImpl>(runtime_, options);
    absl::Status registered = ::lotse::testing::RegisterDevAgencies(
        {"vhs-koeln", "kim-koeln", "bamf-nuernberg", "abh-koeln",
         "jobcenter-koeln", "caritas-koeln"},
        [this](const identity::v1::Agency& agency) {
          return ApplyAgencyEvent(agency);
        });
    ASSERT_TRUE(registered.ok()) << registered;
    Serve("courses", service_.get());
  }

  void TearDown() override {
    StopServing();
    service_.reset();
    ServiceServerTest::TearDown();
  }

  virtual bool GroupCommit() const { return true; }

  // Delivers an identity agency event through the service's event handler.
  absl::Status ApplyAgencyEvent(const std::string& id,
                                type::v1::LegalDomain domain, bool suspended) {
    return ApplyAgencyEvent(
        ::lotse::testing::AgencyRecord(id, domain, "", suspended));
  }

  // Delivers identity's event about `agency`, newer than any before.
  absl::Status ApplyAgencyEvent(identity::v1::Agency agency) {
    *agency.mutable_update_time() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
            ++agency_version_);
    return events::ApplyEventOnce(
               db(),
               ::lotse::testing::AgencyEventOf(
                   agency, absl::StrCat("agency-event-", agency_version_)),
               service_->EventHandler())
        .status();
  }

  std::unique_ptr<v1::CoursesService::Stub> As(const std::string& client) {
    return Stub<v1::CoursesService>(client);
  }

  // A client context with the required metadata.
  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("x-lotse-actor", "cw-1");
    ctx->AddMetadata("x-lotse-purpose", "course-placement");
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(30));
    return ctx;
  }

  // A new person identity knows.
  std::string NewPerson() {
    absl::StatusOr<std::string> id = api::NewId();
    EXPECT_TRUE(id.ok());
    const std::string person = absl::StrCat("persons/", *id);
    identity_->AddPerson(person);
    return person;
  }

  type::v1::Date Today() { return DateFromDay(DayOf(clock_->Now())); }
  type::v1::Date InDays(int days) {
    return DateFromDay(DayOf(clock_->Now()) + days);
  }

  // A valid course in Köln starting in 14 days.
  v1::Course ValidCourse(int capacity = 10) {
    v1::Course c;
    c.set_title("Integrationskurs Vormittag");
    c.set_kind(v1::COURSE_KIND_INTEGRATION_GENERAL);
    c.set_target_level(type::v1::CEFR_LEVEL_B1);
    c.mutable_place()->set_postal_code("50667");
    c.mutable_place()->set_locality("Köln");
    c.mutable_place()->set_municipality_code("05315000");
    c.mutable_place()->set_street("Cäcilienstraße");
    auto* s = c.mutable_schedule();
    *s->mutable_start_date() = InDays(14);
    s->add_weekdays(type::v1::DAY_OF_WEEK_MONDAY);
    s->add_weekdays(type::v1::DAY_OF_WEEK_WEDNESDAY);
    s->set_day_period(type::v1::DAY_PERIOD_MORNING);
    s->set_units_per_week(20);
    s->set_total_units(700);
    c.set_capacity(capacity);
    return c;
  }

  v1::Course CreateCourse(const v1::Course& course) {
    v1::CreateCourseRequest request;
    request.set_request_id(absl::StrCat("create-", ++request_counter_));
    *request.mutable_course() = course;
    v1::Course out;
    auto ctx = Ctx();
    grpc::Status status =
        As("vhs-koeln")->CreateCourse(ctx.get(), request, &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  // Records an admission (BAMF) or obligation (jobcenter-koeln) covering
  // general integration courses, 1000 units, valid for a year.
  v1::Entitlement Entitle(const std::string& person, bool obligation = false,
                          int units = 1000) {
    v1::RecordEntitlementRequest request;
    request.set_request_id(absl::StrCat("ent-", ++request_counter_));
    v1::Entitlement* e = request.mutable_entitlement();
    e->set_person(person);
    e->set_kind(obligation ? v1::ENTITLEMENT_KIND_OBLIGATION
                           : v1::ENTITLEMENT_KIND_ADMISSION);
    e->add_course_kinds(v1::COURSE_KIND_INTEGRATION_GENERAL);
    e->set_units(units);
    *e->mutable_valid_from() = Today();
    *e->mutable_valid_until() = InDays(365);
    v1::Entitlement out;
    auto ctx = Ctx();
    grpc::Status status = As(obligation ? "jobcenter-koeln" : "bamf-nuernberg")
                              ->RecordEntitlement(ctx.get(), request, &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  grpc::Status Book(const std::string& as, const std::string& course,
                    const std::string& person, v1::Booking* out,
                    const std::string& request_id = "") {
    v1::CreateBookingRequest request;
    request.set_parent(course);
    request.set_request_id(request_id.empty()
                               ? absl::StrCat("book-", ++request_counter_)
                               : request_id);
    request.mutable_booking()->set_person(person);
    auto ctx = Ctx();
    return As(as)->CreateBooking(ctx.get(), request, out);
  }

  v1::Course GetCourse(const std::string& name) {
    v1::GetCourseRequest request;
    request.set_name(name);
    v1::Course out;
    auto ctx = Ctx();
    EXPECT_TRUE(As("kim-koeln")->GetCourse(ctx.get(), request, &out).ok());
    return out;
  }

  std::shared_ptr<::lotse::testing::FakeIdentityClient> identity_;
  std::unique_ptr<CoursesServiceImpl> service_;
  int64_t agency_version_ = 1000;
  int request_counter_ = 0;
};

}  // namespace lotse::courses

#endif  // LOTSE_TESTS_COURSES_SERVICE_COURSES_SERVER_FIXTURE_H_
