// The documented PostgreSQL backup path, end to end: identity runs as a
// real process on a PostgreSQL database (the test server on loopback),
// writes happen, pg_dump takes a dump while it serves, more writes happen,
// the dump is restored with pg_restore into a fresh database, the service
// binary's mark-restored command is run on it, and identity starts on it:
// the data up to the dump is there, what came after is not, a create
// acknowledged before the dump answers its retry as the first time, and
// both audit chains verify.
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/e2e/calls.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::testing {
namespace {

using e2e::Call;
using e2e::Describe;

namespace idv1 = ::lotse::identity::v1;
namespace av1 = ::lotse::audit::v1;

// pg_dump / pg_restore of the newest installed PostgreSQL (the version
// tests/support/postgres.sh runs), else the ones on /usr/bin.
std::string PgTool(const std::string& tool) {
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string candidate = (entry.path() / "bin" / tool).string();
    int version = -1;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &version)) continue;
    if (std::filesystem::exists(candidate) && version > best_version) {
      best = candidate;
      best_version = version;
    }
  }
  return best.empty() ? absl::StrCat("/usr/bin/", tool) : best;
}

class PostgresRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-pgrestore.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
  }

  std::string Binary() const {
    return absl::StrCat(BinaryDir(), "/services/identity/lotse_identity");
  }

  void Start(const std::string& url) {
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        Binary(),
        {"--listen=127.0.0.1:0", absl::StrCat("--tls_dir=", pki_),
         absl::StrCat("--database=", url), "--drain_grace=100ms",
         "--shutdown_deadline=1s"},
        absl::StrCat(dir_, "/identity-", ++starts_, ".log"));
    ASSERT_TRUE(p.ok()) << p.status();
    absl::StatusOr<int> port = p->WaitServing(absl::Seconds(30));
    ASSERT_TRUE(port.ok()) << p->ReadLog();
    port_ = *port;
    process_ = std::make_unique<ServiceProcess>(*std::move(p));
  }

  void Stop() {
    process_->Signal(SIGTERM);
    EXPECT_EQ(process_->WaitExit(absl::Seconds(30)).value_or(-1), 0)
        << process_->ReadLog();
    process_.reset();
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), *creds);
  }

  grpc::Status CreatePerson(const std::string& given, const std::string& key,
                            idv1::Person* person) {
    idv1::CreatePersonRequest request;
    request.set_request_id(absl::StrCat("pg-restore-", key));
    *request.mutable_person() = SamplePerson(given, "Rahimi", 1987);
    request.set_confirm_new_person(true);
    auto stub = idv1::IdentityService::NewStub(Channel("kim-koeln"));
    return Call([&](grpc::ClientContext* c) {
      return stub->CreatePerson(c, request, person);
    });
  }

  grpc::Status GetPerson(const std::string& name) {
    idv1::GetPersonRequest request;
    request.set_name(name);
    idv1::Person person;
    auto stub = idv1::IdentityService::NewStub(Channel("kim-koeln"));
    return Call([&](grpc::ClientContext* c) {
      return stub->GetPerson(c, request, &person);
    });
  }

  CommandResult Run(const std::string& binary,
                    const std::vector<std::string>& args) {
    absl::StatusOr<CommandResult> r =
        RunCommand(binary, args, absl::Seconds(120));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult{};
  }

  std::string pki_;
  std::string dir_;
  std::unique_ptr<ServiceProcess> process_;
  int port_ = 0;
  int starts_ = 0;
};

TEST_F(PostgresRestoreTest, DumpRestoreMarkAndServe) {
  absl::StatusOr<std::string> live = NewTestDatabaseUrl(Dialect::kPostgres);
  ASSERT_TRUE(live.ok()) << live.status();
  Start(*live);
  ASSERT_FALSE(HasFailure());
  absl::StatusOr<ServiceProcess> seed =
      ServiceProcess::Start(absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
                            {absl::StrCat("--identity=127.0.0.1:", port_),
                             absl::StrCat("--tls_dir=", pki_)},
                            absl::StrCat(dir_, "/seed.log"));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
      << seed->ReadLog();

  idv1::Person kept;
  grpc::Status s = CreatePerson("Darya", "kept", &kept);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(GetPerson(kept.name()).ok());  // a read, on the read chain

  // The dump, taken while identity serves.
  const std::string dump = absl::StrCat(dir_, "/identity.dump");
  CommandResult r =
      Run(PgTool("pg_dump"), {"--format=custom", absl::StrCat("--file=", dump),
                              absl::StrCat("--dbname=", *live)});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  idv1::Person lost;
  s = CreatePerson("Kian", "lost", &lost);
  ASSERT_TRUE(s.ok()) << Describe(s);
  Stop();

  // Into a fresh database, as an operator would after losing the server.
  absl::StatusOr<std::string> fresh = NewTestDatabaseUrl(Dialect::kPostgres);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  r = Run(PgTool("pg_restore"), {"--no-owner", "--exit-on-error",
                                 absl::StrCat("--dbname=", *fresh), dump});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Run(Binary(), {"mark-restored", absl::StrCat("--database=", *fresh)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The file-based restore is refused on PostgreSQL, naming pg_restore.
  r = Run(Binary(), {"restore", absl::StrCat("--restore_from=", dump),
                     absl::StrCat("--database=", *fresh)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("pg_restore"), std::string::npos) << r.err;

  Start(*fresh);
  ASSERT_FALSE(HasFailure());
  s = GetPerson(kept.name());
  EXPECT_TRUE(s.ok()) << Describe(s);
  s = GetPerson(lost.name());
  EXPECT_FALSE(s.ok()) << "created after the dump, so not restored";
  idv1::Person retried;
  s = CreatePerson("Darya", "kept", &retried);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(retried.name(), kept.name());
  EXPECT_EQ(retried.etag(), kept.etag());

  auto audit = av1::AuditService::NewStub(Channel("dsb-nrw"));
  av1::VerifyAuditChainResponse verified;
  s = Call([&](grpc::ClientContext* c) {
    return audit->VerifyAuditChain(c, {}, &verified);
  });
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_EQ(verified.chains_size(), 2);
  for (const av1::ChainVerification& v : verified.chains()) {
    EXPECT_TRUE(v.intact()) << v.ShortDebugString();
    EXPECT_GT(v.records_checked(), 0) << v.ShortDebugString();
  }
  Stop();
}

}  // namespace
}  // namespace lotse::testing
