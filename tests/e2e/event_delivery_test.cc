// Event delivery between real processes: the identity binary, started with
// --event_destinations, delivers its outbox over mutual TLS with its own
// service certificate (dev PKI clients/svc-identity) to a receiver that only
// admits Lotse services; what it committed while the receiver was down
// arrives once the receiver is back, also across a kill -9 of identity.
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/events/inbox.h"
#include "common/events/sink.h"
#include "common/server/request_context.h"
#include "common/server/server.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::testing {
namespace {

// An EventSinkService over mutual TLS with the dev PKI's "cases" server
// certificate, recording the display names of registered agencies and the
// certificate names of the callers.
class TlsReceiver {
 public:
  TlsReceiver(const std::string& pki, storage::Database& db) : db_(db) {
    EXPECT_TRUE(storage::ApplyMigrations(db_, events::InboxMigrations()).ok());
    sink_ = std::make_unique<events::EventSinkService>(
        db_,
        [this](storage::Transaction&,
               const events::v1::Event& event) -> absl::Status {
          if (down_.load()) return absl::UnavailableError("receiver down");
          identity::v1::AgencyRegistered registered;
          if (event.payload().UnpackTo(&registered)) {
            absl::MutexLock lock(&mu_);
            agencies_.push_back(registered.agency().display_name());
          }
          return absl::OkStatus();
        },
        [this](grpc::CallbackServerContext* context) -> absl::Status {
          auto caller = server::CallerFromAuthContext(*context->auth_context());
          if (!caller.ok()) return caller.status();
          absl::MutexLock lock(&mu_);
          callers_.push_back(
              absl::StrCat(caller->agency_id, "/", caller->legal_domain));
          if (!caller->is_service()) {
            return absl::PermissionDeniedError("services only");
          }
          return absl::OkStatus();
        });
    server::TlsFiles files = server::TlsFilesFromDir(pki, "cases");
    grpc::SslServerCredentialsOptions ssl(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = *server::ReadFile(files.ca);
    ssl.pem_key_cert_pairs.push_back(
        {*server::ReadFile(files.key), *server::ReadFile(files.cert)});
    credentials_ = grpc::SslServerCredentials(ssl);
  }
  ~TlsReceiver() { Stop(); }

  void Start(int port) {
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    int selected = 0;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), credentials_,
                             &selected);
    builder.RegisterService(sink_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    port_ = selected;
  }
  void Stop() {
    if (server_ == nullptr) return;
    server_->Shutdown(
        absl::ToChronoTime(absl::Now() + absl::Milliseconds(100)));
    server_->Wait();
    server_.reset();
  }
  int port() const { return port_; }
  // While down, every delivery fails with UNAVAILABLE (the port stays
  // bound, so no other process of a parallel test can take it).
  void set_down(bool down) { down_ = down; }
  std::vector<std::string> agencies() {
    absl::MutexLock lock(&mu_);
    return agencies_;
  }
  std::vector<std::string> callers() {
    absl::MutexLock lock(&mu_);
    return callers_;
  }

 private:
  storage::Database& db_;
  std::unique_ptr<events::EventSinkService> sink_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> down_{true};
  absl::Mutex mu_;
  std::vector<std::string> agencies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> callers_ ABSL_GUARDED_BY(mu_);
};

class EventDeliveryE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-events.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
  }

  // Each start logs to its own file: WaitServing reads the port from it.
  // `database`: a URL; empty means SQLite in the test's directory.
  absl::StatusOr<ServiceProcess> StartIdentity(
      int receiver_port, const std::string& database = "") {
    ++starts_;
    return ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/identity/lotse_identity"),
        {"--listen=127.0.0.1:0", absl::StrCat("--tls_dir=", pki_),
         absl::StrCat("--database=",
                      database.empty()
                          ? absl::StrCat("sqlite:", dir_, "/identity.db")
                          : database),
         absl::StrCat("--event_destinations=probe=127.0.0.1:", receiver_port),
         "--drain_grace=100ms", "--shutdown_deadline=1s"},
        absl::StrCat(dir_, "/identity-", starts_, ".log"));
  }

  grpc::Status Register(int port, const std::string& id) {
    auto creds = server::ClientCredentialsFromDir(pki_, "lotse-admin");
    EXPECT_TRUE(creds.ok());
    auto stub = identity::v1::IdentityService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    context.AddMetadata("x-lotse-actor", "admin-1");
    context.AddMetadata("x-lotse-purpose", "registry");
    identity::v1::RegisterAgencyRequest request;
    request.set_request_id(absl::StrCat("register-", id));
    request.set_agency_id(id);
    request.mutable_agency()->set_display_name(absl::StrCat("Agency ", id));
    request.mutable_agency()->set_legal_domain(type::v1::LEGAL_DOMAIN_KOMMUNE);
    request.mutable_agency()->set_municipality_code("05315000");
    request.mutable_agency()->set_certificate_identity(id);
    identity::v1::Agency response;
    return stub->RegisterAgency(&context, request, &response);
  }

  std::string pki_;
  std::string dir_;
  int starts_ = 0;
};

TEST_F(EventDeliveryE2eTest, OutboxReachesTheReceiverAcrossOutagesAndKill9) {
  auto receiver_db = NewTestDatabase(storage::Dialect::kSqlite);
  ASSERT_TRUE(receiver_db.ok()) << receiver_db.status();
  TlsReceiver receiver(pki_, **receiver_db);
  receiver.Start(0);
  const int receiver_port = receiver.port();
  ASSERT_NE(receiver_port, 0);

  // The receiver is down: the registration commits and waits in the outbox.
  auto identity = StartIdentity(receiver_port);
  ASSERT_TRUE(identity.ok()) << identity.status();
  absl::StatusOr<int> identity_port = identity->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(identity_port.ok()) << identity->ReadLog();
  grpc::Status registered = Register(*identity_port, "kim-testdorf");
  ASSERT_TRUE(registered.ok()) << registered.error_message();

  // kill -9 before anything could be delivered; restart; receiver comes up.
  identity->Signal(SIGKILL);
  ASSERT_TRUE(identity->WaitExit(absl::Seconds(10)).ok());
  EXPECT_TRUE(receiver.agencies().empty());
  auto restarted = StartIdentity(receiver_port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  identity_port = restarted->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(identity_port.ok()) << restarted->ReadLog();
  receiver.set_down(false);

  // The bootstrap admin's registration and ours, each exactly once.
  ASSERT_TRUE(Eventually([&] { return receiver.agencies().size() >= 2; },
                         absl::Seconds(60)))
      << restarted->ReadLog();
  grpc::Status second = Register(*identity_port, "kim-zweitdorf");
  ASSERT_TRUE(second.ok()) << second.error_code() << " "
                           << second.error_message() << "\n"
                           << restarted->ReadLog();
  ASSERT_TRUE(Eventually([&] { return receiver.agencies().size() >= 3; },
                         absl::Seconds(30)));
  absl::SleepFor(absl::Milliseconds(300));
  // Order holds per ordering key (per agency), not across agencies.
  EXPECT_THAT(receiver.agencies(),
              ::testing::UnorderedElementsAre(
                  "Lotse administration (bootstrap)", "Agency kim-testdorf",
                  "Agency kim-zweitdorf"));
  // Delivered with identity's own service certificate.
  EXPECT_FALSE(receiver.callers().empty());
  for (const std::string& caller : receiver.callers()) {
    EXPECT_EQ(caller, "svc-identity/SERVICE");
  }
  restarted->Signal(SIGTERM);
  EXPECT_EQ(restarted->WaitExit(absl::Seconds(10)).value_or(-1), 0);
}

// Two replicas over one database, both configured to relay: one takes the
// lead and delivers what either commits; when it is killed, the other takes
// over within its standby retry (5 s) and delivers the rest.
// On PostgreSQL the lead is an advisory lock of the leader's connection,
// which the server frees when the killed process's connection drops.
class RelayFailoverE2eTest
    : public EventDeliveryE2eTest,
      public ::testing::WithParamInterface<storage::Dialect> {};

TEST_P(RelayFailoverE2eTest, OneReplicaRelaysAndTheOtherTakesOverAfterKill9) {
  absl::StatusOr<std::string> database = NewTestDatabaseUrl(GetParam());
  ASSERT_TRUE(database.ok()) << database.status();
  auto receiver_db = NewTestDatabase(storage::Dialect::kSqlite);
  ASSERT_TRUE(receiver_db.ok()) << receiver_db.status();
  TlsReceiver receiver(pki_, **receiver_db);
  receiver.Start(0);
  receiver.set_down(false);
  const std::string took_lead = "\"msg\":\"event relay took the lead\"";

  auto first = StartIdentity(receiver.port(), *database);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<int> first_port = first->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(first_port.ok()) << first->ReadLog();
  ASSERT_TRUE(Eventually(
      [&] { return first->ReadLog().find(took_lead) != std::string::npos; },
      absl::Seconds(10)))
      << first->ReadLog();
  auto second = StartIdentity(receiver.port(), *database);
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<int> second_port = second->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(second_port.ok()) << second->ReadLog();

  // A registration through the standby reaches the receiver too, sent by
  // the leader (at its next poll).
  grpc::Status registered = Register(*second_port, "kim-standbydorf");
  ASSERT_TRUE(registered.ok()) << registered.error_message();
  ASSERT_TRUE(Eventually([&] { return receiver.agencies().size() >= 2; },
                         absl::Seconds(30)))
      << first->ReadLog();
  EXPECT_EQ(second->ReadLog().find(took_lead), std::string::npos)
      << second->ReadLog();

  first->Signal(SIGKILL);
  ASSERT_TRUE(first->WaitExit(absl::Seconds(10)).ok());
  registered = Register(*second_port, "kim-nachfolgedorf");
  ASSERT_TRUE(registered.ok()) << registered.error_message();
  ASSERT_TRUE(Eventually([&] { return receiver.agencies().size() >= 3; },
                         absl::Seconds(30)))
      << second->ReadLog();
  EXPECT_NE(second->ReadLog().find(took_lead), std::string::npos);
  EXPECT_THAT(receiver.agencies(),
              ::testing::UnorderedElementsAre(
                  "Lotse administration (bootstrap)", "Agency kim-standbydorf",
                  "Agency kim-nachfolgedorf"));
  second->Signal(SIGTERM);
  EXPECT_EQ(second->WaitExit(absl::Seconds(10)).value_or(-1), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, RelayFailoverE2eTest,
                         ::testing::Values(storage::Dialect::kSqlite,
                                           storage::Dialect::kPostgres),
                         DialectParamName());

}  // namespace
}  // namespace lotse::testing
