// Fuzz target: the placement service's RPCs and event inbox, from request
// bytes (fuzz/support/service_input.h), on a real SQLite database, with
// the tests' FakeIdentityClient in place of identity and the dev PKI's
// agencies registered through identity's AgencyRegistered events, as in
// tests/placement/service/placement_server_fixture.h (with its default
// legal-basis rules for the employment agencies).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/events/inbox.h"
#include "fuzz/support/service_harness.h"
#include "services/placement/service/placement_service.h"
#include "services/placement/store/migrations.h"
#include "tests/support/fake_identity_client.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::placement {
namespace {

struct Placement {
  fuzz::ServiceHarness harness{PlacementMigrations(), "placement.lotse"};
  std::shared_ptr<testing::FakeIdentityClient> fake_identity =
      std::make_shared<testing::FakeIdentityClient>();
  std::unique_ptr<PlacementServiceImpl> service;
  events::ApplyFn apply;

  Placement() {
    fake_identity->AddPerson("persons/p-anna");
    fake_identity->AddPerson("persons/p-bela");
    for (const char* a : {"agencies/jobcenter-koeln", "agencies/aa-koeln"}) {
      fake_identity->Allow(a, type::v1::DATA_CATEGORY_EMPLOYMENT);
      fake_identity->Allow(a, type::v1::DATA_CATEGORY_RESIDENCE_STATUS);
    }
    fake_identity->Allow("agencies/jobcenter-koeln",
                         type::v1::DATA_CATEGORY_LANGUAGE);
    PlacementOptions options;
    options.identity = fake_identity;
    service =
        std::make_unique<PlacementServiceImpl>(harness.runtime(), options);
    apply = service->EventHandler();
    fuzz::RegisterDevAgenciesOrAbort(
        harness.db(), apply,
        {"jobcenter-koeln", "aa-koeln", "ihk-koeln", "abh-koeln", "kim-koeln",
         "vhs-koeln"});
  }
};

}  // namespace
}  // namespace lotse::placement

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* const placement = new lotse::placement::Placement;
  lotse::fuzz::RunServiceInput(*placement->service, placement->harness.db(),
                               placement->apply, data, size);
  return 0;
}
