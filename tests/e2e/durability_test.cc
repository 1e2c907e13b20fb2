// "Nothing acknowledged is ever lost": writers keep CreatePerson calls in
// flight against the identity binary while it is killed with SIGKILL; after
// a restart on the same database every person whose creation was answered
// OK must be there, with the fields it was created with. Group commit
// answers many callers per transaction, so an OK sent before its batch
// committed would show up here as a missing person. On SQLite and on
// PostgreSQL (whose server stays up: the service process is what dies).
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::testing {
namespace {

class DurabilityTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-durability.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    absl::StatusOr<std::string> url = NewTestDatabaseUrl(GetParam());
    ASSERT_TRUE(url.ok()) << url.status();
    database_ = *url;
  }

  absl::StatusOr<ServiceProcess> StartIdentity() {
    ++starts_;
    return ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/identity/lotse_identity"),
        {"--listen=127.0.0.1:0", absl::StrCat("--tls_dir=", pki_),
         absl::StrCat("--database=", database_), "--drain_grace=100ms",
         "--shutdown_deadline=1s"},
        absl::StrCat(dir_, "/identity-", starts_, ".log"));
  }

  std::unique_ptr<identity::v1::IdentityService::Stub> Stub(
      int port, const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return identity::v1::IdentityService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds));
  }

  static void Prepare(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    context->AddMetadata("x-lotse-actor", "cw-1");
    context->AddMetadata("x-lotse-purpose", "registration");
  }

  static identity::v1::CreatePersonRequest Person(int writer, int n) {
    identity::v1::CreatePersonRequest request;
    request.set_request_id(absl::StrCat("durable-", writer, "-", n));
    // Confirmed: similar synthetic names must not be refused as duplicates.
    request.set_confirm_new_person(true);
    identity::v1::PersonName* name = request.mutable_person()->add_names();
    name->set_given_names(absl::StrCat("Writer", writer));
    name->set_family_names(absl::StrCat("Durable", n));
    name->set_script("Latn");
    name->set_kind(identity::v1::NAME_KIND_CURRENT);
    request.mutable_person()->mutable_birth_date()->set_year(1960 + n % 40);
    return request;
  }

  std::string pki_;
  std::string dir_;
  std::string database_;
  int starts_ = 0;
};

TEST_P(DurabilityTest, AcknowledgedCreatesSurviveKill9) {
  auto identity = StartIdentity();
  ASSERT_TRUE(identity.ok()) << identity.status();
  absl::StatusOr<int> port = identity->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << identity->ReadLog();
  // The demo agencies, kim-koeln among them.
  auto seed =
      ServiceProcess::Start(absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
                            {absl::StrCat("--identity=127.0.0.1:", *port),
                             absl::StrCat("--tls_dir=", pki_)},
                            absl::StrCat(dir_, "/seed.log"));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->WaitExit(absl::Seconds(30)).value_or(-1), 0)
      << seed->ReadLog();

  // Writers create persons one after the other until a call fails (the
  // process is gone); each keeps the name of every person answered OK.
  constexpr int kWriters = 8;
  absl::Mutex mu;
  std::vector<identity::v1::Person> acknowledged;
  std::atomic<int> failures_before_kill{0};
  std::atomic<bool> killed{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto stub = Stub(*port, "kim-koeln");
      for (int n = 0;; ++n) {
        grpc::ClientContext context;
        Prepare(&context);
        identity::v1::Person person;
        grpc::Status s = stub->CreatePerson(&context, Person(w, n), &person);
        if (!s.ok()) {
          if (!killed.load()) failures_before_kill.fetch_add(1);
          return;
        }
        absl::MutexLock lock(&mu);
        acknowledged.push_back(std::move(person));
      }
    });
  }
  // Kill once a fair number of creates were answered, with calls in flight.
  ASSERT_TRUE(Eventually(
      [&] {
        absl::MutexLock lock(&mu);
        return acknowledged.size() >= 200;
      },
      absl::Seconds(60)))
      << identity->ReadLog();
  killed.store(true);
  identity->Signal(SIGKILL);
  ASSERT_EQ(identity->WaitExit(absl::Seconds(10)).value_or(-1), 128 + SIGKILL);
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(failures_before_kill.load(), 0) << identity->ReadLog();

  auto restarted = StartIdentity();
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  port = restarted->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << restarted->ReadLog();
  auto stub = Stub(*port, "kim-koeln");
  int missing = 0;
  for (const identity::v1::Person& person : acknowledged) {
    grpc::ClientContext context;
    Prepare(&context);
    identity::v1::GetPersonRequest get;
    get.set_name(person.name());
    identity::v1::Person found;
    grpc::Status s = stub->GetPerson(&context, get, &found);
    if (!s.ok()) {
      ++missing;
      ADD_FAILURE() << person.name() << ": " << s.error_code() << " "
                    << s.error_message();
      continue;
    }
    EXPECT_EQ(found.etag(), person.etag()) << person.name();
    ASSERT_GT(found.names_size(), 0);
    EXPECT_EQ(found.names(0).family_names(), person.names(0).family_names());
  }
  EXPECT_EQ(missing, 0) << "of " << acknowledged.size() << " acknowledged";
  restarted->Signal(SIGTERM);
  EXPECT_EQ(restarted->WaitExit(absl::Seconds(10)).value_or(-1), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, DurabilityTest,
                         ::testing::Values(Dialect::kSqlite,
                                           Dialect::kPostgres),
                         DialectParamName());

}  // namespace
}  // namespace lotse::testing
