// Fuzz target: the identity service's RPCs and event inbox, from request
// bytes (fuzz/support/service_input.h), on a real SQLite database with the
// shipped access rules, the bootstrap administering agency and the dev
// PKI's agencies registered through RegisterAgency, as in
// tests/identity/service/identity_server_fixture.h.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fuzz/support/service_harness.h"
#include "fuzz/support/service_input.h"
#include "lotse/identity/v1/identity_service.pb.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/service/relation_events.h"
#include "services/identity/service/transparency_fanout.h"
#include "services/identity/store/migrations.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::identity {
namespace {

[[noreturn]] void SetUpFailed(absl::string_view what,
                              const absl::Status& status) {
  std::fprintf(stderr, "identity fuzz set-up: %s: %s\n",
               std::string(what).c_str(), status.ToString().c_str());
  std::abort();
}

struct Identity {
  fuzz::ServiceHarness harness{IdentityMigrations(), "identity.lotse"};
  std::unique_ptr<IdentityServiceImpl> service;
  events::ApplyFn apply = ApplyRelationEvent;

  Identity() {
    if (absl::Status s = BootstrapAdminAgency(harness.db(), "lotse-admin");
        !s.ok()) {
      SetUpFailed("bootstrap", s);
    }
    absl::StatusOr<AccessPolicy> policy = AccessPolicy::LoadFile(
        absl::StrCat(LOTSE_SOURCE_DIR, "/config/access-rules.conf"));
    if (!policy.ok()) SetUpFailed("access rules", policy.status());
    auto rules = std::make_shared<const AccessPolicy>(*std::move(policy));
    service = std::make_unique<IdentityServiceImpl>(harness.runtime());
    if (absl::Status s = service->EnablePersons(rules, size_t{16} << 20);
        !s.ok()) {
      SetUpFailed("persons", s);
    }
    if (absl::Status s = service->EnableAccess(rules); !s.ok()) {
      SetUpFailed("access", s);
    }
    std::vector<AuditPeer> peers;
    peers.push_back({"identity", std::make_shared<LocalAuditRecordSource>(
                                     harness.db(), nullptr)});
    if (absl::Status s = service->EnableTransparency(std::move(peers));
        !s.ok()) {
      SetUpFailed("transparency", s);
    }
    service->EnableLifecycle({"cases", "courses", "placement"},
                             harness.runtime().retention);
    RegisterAgencies();
  }

  // Every dev PKI agency but the administering one, registered by it.
  void RegisterAgencies() {
    server::RequestContext admin;
    admin.caller = {"lotse-admin", "ADMINISTRATION"};
    admin.actor = "fuzz-admin";
    admin.purpose = "agency-administration";
    for (const testing::DevAgency& a : testing::DevAgencies()) {
      if (std::string(a.id) == "lotse-admin") continue;
      v1::RegisterAgencyRequest r;
      r.set_request_id(absl::StrCat("r-", a.id));
      r.set_agency_id(a.id);
      r.mutable_agency()->set_display_name(a.id);
      r.mutable_agency()->set_legal_domain(a.legal_domain);
      if (a.legal_domain == type::v1::LEGAL_DOMAIN_KOMMUNE) {
        r.mutable_agency()->set_municipality_code(a.municipality_code);
      }
      r.mutable_agency()->set_certificate_identity(a.id);
      std::string out;
      absl::Status s = service->CallInProcess("RegisterAgency", admin,
                                              r.SerializeAsString(), &out);
      if (!s.ok()) SetUpFailed(absl::StrCat("register ", a.id), s);
    }
  }
};

}  // namespace
}  // namespace lotse::identity

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* const identity = new lotse::identity::Identity;
  lotse::fuzz::RunServiceInput(*identity->service, identity->harness.db(),
                               identity->apply, data, size);
  return 0;
}
