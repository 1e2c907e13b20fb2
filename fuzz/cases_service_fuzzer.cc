// Fuzz target: the cases service's RPCs and event inbox, from request bytes
// (fuzz/support/service_input.h), on a real SQLite database, with a
// StaticAccessChecker in place of identity and the dev PKI's agencies in the
// local registry, as in tests/cases/service/cases_server_fixture.h.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "fuzz/support/service_harness.h"
#include "services/cases/domain/access_checker.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/store/migrations.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::cases {
namespace {

struct Cases {
  fuzz::ServiceHarness harness{CasesMigrations(), "cases.lotse"};
  StaticAccessChecker access;
  std::unique_ptr<CasesServiceImpl> service;
  events::ApplyFn apply;

  Cases() {
    access.AddPerson("persons/p-anna");
    access.AddPerson("persons/p-bela");
    access.Grant("agencies/kim-koeln", type::v1::DATA_CATEGORY_CORE_IDENTITY);
    CasesOptions options;
    options.suppression_threshold = 2;
    service =
        std::make_unique<CasesServiceImpl>(harness.runtime(), &access, options);
    apply = service->EventApplier();
    absl::Status registered = testing::RegisterDevAgencies(
        {"kim-koeln", "vhs-koeln", "jobcenter-koeln", "caritas-koeln",
         "lotse-admin", "kim-bonn"},
        [this](const identity::v1::Agency& agency) {
          return service
              ->ApplyEvent(testing::AgencyEventOf(
                  agency,
                  absl::StrCat("agency-", agency.certificate_identity())))
              .status();
        });
    if (!registered.ok()) {
      std::fprintf(stderr, "cases fuzz set-up: %s\n",
                   registered.ToString().c_str());
      std::abort();
    }
  }
};

}  // namespace
}  // namespace lotse::cases

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* const cases = new lotse::cases::Cases;
  lotse::fuzz::RunServiceInput(*cases->service, cases->harness.db(),
                               cases->apply, data, size);
  return 0;
}
