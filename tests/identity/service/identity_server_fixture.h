// The identity service running in-process behind a real mTLS server, on the
// test's backend (SQLite or PostgreSQL), with the shipped access rules and
// the bootstrap administering agency. Service tests derive from it and
// call the service as the dev PKI's agencies.
#ifndef LOTSE_TESTS_IDENTITY_SERVICE_IDENTITY_SERVER_FIXTURE_H_
#define LOTSE_TESTS_IDENTITY_SERVICE_IDENTITY_SERVER_FIXTURE_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/server/handler.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "common/storage/migrations.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/migrations.h"
#include "tests/support/dev_pki.h"
#include "tests/support/test_database.h"

namespace lotse::identity {

class IdentityServerTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    pki_ = testing::DevPkiDir();
    ASSERT_FALSE(pki_.empty()) << "dev PKI could not be generated";
    ASSERT_TRUE(storage::ApplyMigrations(db(), IdentityMigrations()).ok());
    ASSERT_TRUE(BootstrapAdminAgency(db(), "lotse-admin").ok());
    pool_ = std::make_unique<server::WorkerPool>(4, 64);
    runtime_.database = &db();
    runtime_.env.pool = pool_.get();
    runtime_.env.error_domain = "identity.lotse";
    // Writes go through a group committer, as in the real process.
    committer_ = std::make_unique<storage::GroupCommitter>(db());
    runtime_.committer = committer_.get();
    service_ = std::make_unique<IdentityServiceImpl>(runtime_);
    auto policy = AccessPolicy::LoadFile(
        absl::StrCat(testing::SourceDir(), "/config/access-rules.conf"));
    ASSERT_TRUE(policy.ok()) << policy.status();
    auto rules = std::make_shared<const AccessPolicy>(*std::move(policy));
    ASSERT_TRUE(service_->EnablePersons(rules).ok());
    ASSERT_TRUE(service_->EnableAccess(rules).ok());
    server::ServerOptions options;
    options.service_name = "identity";
    options.listen = "127.0.0.1:0";
    options.log_calls = false;
    options.drain_grace = absl::ZeroDuration();
    options.shutdown_deadline = absl::Milliseconds(500);
    options.tls = server::TlsFilesFromDir(pki_, "identity");
    auto started = server::Server::Start(options, {service_.get()});
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    server_->SetServing(true);
  }

  void TearDown() override {
    if (server_) server_->Drain();
    server_.reset();
    service_.reset();
    pool_.reset();
    committer_.reset();
  }

  // A stub that calls as `client`, a certificate under the dev PKI's
  // clients/ (e.g. "lotse-admin", "kim-koeln").
  std::unique_ptr<v1::IdentityService::Stub> As(const std::string& client) {
    auto creds = server::ClientCredentialsFromDir(pki_, client);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return v1::IdentityService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->port()), *creds));
  }

  std::string pki_;
  std::unique_ptr<server::WorkerPool> pool_;
  std::unique_ptr<storage::GroupCommitter> committer_;
  server::ServiceRuntime runtime_;
  std::unique_ptr<IdentityServiceImpl> service_;
  std::unique_ptr<server::Server> server_;
};

}  // namespace lotse::identity

#endif  // LOTSE_TESTS_IDENTITY_SERVICE_IDENTITY_SERVER_FIXTURE_H_
