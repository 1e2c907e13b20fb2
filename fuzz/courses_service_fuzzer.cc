// Fuzz target: the courses service's RPCs and event inbox, from request
// bytes (fuzz/support/service_input.h), on a real SQLite database, with
// the tests' FakeIdentityClient in place of identity and the dev PKI's
// agencies registered through identity's AgencyRegistered events, as in
// tests/courses/service/courses_server_fixture.h.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/events/inbox.h"
#include "fuzz/support/service_harness.h"
#include "services/courses/service/courses_service.h"
#include "services/courses/store/migrations.h"
#include "tests/support/fake_identity_client.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::courses {
namespace {

struct Courses {
  fuzz::ServiceHarness harness{CoursesMigrations(), "courses.lotse"};
  std::shared_ptr<testing::FakeIdentityClient> fake_identity =
      std::make_shared<testing::FakeIdentityClient>();
  std::unique_ptr<CoursesServiceImpl> service;
  events::ApplyFn apply;

  Courses() {
    fake_identity->AddPerson("persons/p-anna");
    fake_identity->AddPerson("persons/p-bela");
    CoursesOptions options;
    options.identity = fake_identity;
    service = std::make_unique<CoursesServiceImpl>(harness.runtime(), options);
    apply = service->EventHandler();
    fuzz::RegisterDevAgenciesOrAbort(
        harness.db(), apply,
        {"vhs-koeln", "kim-koeln", "bamf-nuernberg", "abh-koeln",
         "jobcenter-koeln", "caritas-koeln"});
  }
};

}  // namespace
}  // namespace lotse::courses

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* const courses = new lotse::courses::Courses;
  lotse::fuzz::RunServiceInput(*courses->service, courses->harness.db(),
                               courses->apply, data, size);
  return 0;
}
