// The identity service running in-process behind a real mTLS server, on the
// test's backend (SQLite or PostgreSQL), with the shipped access rules and
// the bootstrap administering agency (testing::ServiceServerTest). Service
// tests derive from it and call the service as the dev PKI's agencies.
#ifndef LOTSE_TESTS_IDENTITY_SERVICE_IDENTITY_SERVER_FIXTURE_H_
#define LOTSE_TESTS_IDENTITY_SERVICE_IDENTITY_SERVER_FIXTURE_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/migrations.h"
#include "tests/support/dev_pki.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::identity {

class IdentityServerTest : public testing::ServiceServerTest {
 protected:
  void SetUp() override {
    ServiceServerTest::SetUp();
    if (HasFatalFailure()) return;
    StartRuntime(IdentityMigrations(), "identity.lotse",
                 {/*workers=*/4, /*max_queued=*/64});
    if (HasFatalFailure()) return;
    ASSERT_TRUE(BootstrapAdminAgency(db(), "lotse-admin").ok());
    service_ = std::make_unique<IdentityServiceImpl>(runtime_);
    auto policy = AccessPolicy::LoadFile(
        absl::StrCat(testing::SourceDir(), "/config/access-rules.conf"));
    ASSERT_TRUE(policy.ok()) << policy.status();
    auto rules = std::make_shared<const AccessPolicy>(*std::move(policy));
    ASSERT_TRUE(service_->EnablePersons(rules).ok());
    ASSERT_TRUE(service_->EnableAccess(rules).ok());
    Serve("identity", service_.get());
  }

  void TearDown() override {
    StopServing();
    service_.reset();
    ServiceServerTest::TearDown();
  }

  // A stub that calls as `client`, a certificate under the dev PKI's
  // clients/ (e.g. "lotse-admin", "kim-koeln").
  std::unique_ptr<v1::IdentityService::Stub> As(const std::string& client) {
    return Stub<v1::IdentityService>(client);
  }

  std::unique_ptr<IdentityServiceImpl> service_;
};

}  // namespace lotse::identity

#endif  // LOTSE_TESTS_IDENTITY_SERVICE_IDENTITY_SERVER_FIXTURE_H_
