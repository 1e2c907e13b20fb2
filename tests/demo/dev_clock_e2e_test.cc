// x-lotse-dev-time through a real service process: refused unless the
// service runs with --dev_clock, and then only an RFC 3339 time that is not
// in the future.
#include <signal.h>
#include <stdlib.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/request_context.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

class DevClockE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-devclock.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
  }

  // Starts identity (with `flags`) and returns its port, or 0.
  int StartIdentity(const std::string& name,
                    const std::vector<std::string>& flags) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0", absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=sqlite:", dir_, "/", name, ".db"),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto p = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/identity/lotse_identity"), args,
        absl::StrCat(dir_, "/", name, ".log"));
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return 0;
    absl::StatusOr<int> port = p->WaitServing(absl::Seconds(20));
    EXPECT_TRUE(port.ok()) << p->ReadLog();
    processes_.push_back(std::make_unique<ServiceProcess>(*std::move(p)));
    return port.ok() ? *port : 0;
  }

  void TearDown() override {
    for (auto& p : processes_) p->Signal(SIGTERM);
    for (auto& p : processes_) {
      EXPECT_EQ(p->WaitExit(absl::Seconds(10)).value_or(-1), 0);
    }
  }

  // ListAgencies as the administering agency, with `dev_time` unless empty.
  grpc::Status List(int port, const std::string& dev_time) {
    auto creds = server::ClientCredentialsFromDir(pki_, "lotse-admin");
    EXPECT_TRUE(creds.ok());
    auto stub = identity::v1::IdentityService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    context.AddMetadata(server::kActorMetadataKey, "e2e");
    context.AddMetadata(server::kPurposeMetadataKey, "agency-administration");
    if (!dev_time.empty()) {
      context.AddMetadata(server::kDevTimeMetadataKey, dev_time);
    }
    identity::v1::ListAgenciesRequest req;
    identity::v1::ListAgenciesResponse resp;
    return stub->ListAgencies(&context, req, &resp);
  }

  std::string pki_, dir_;
  std::vector<std::unique_ptr<ServiceProcess>> processes_;
};

TEST_F(DevClockE2eTest, HonouredOnlyWithTheFlagAndOnlyForThePast) {
  const std::string past =
      absl::FormatTime(absl::RFC3339_full, absl::Now() - absl::Hours(24 * 90),
                       absl::UTCTimeZone());
  const std::string future = absl::FormatTime(
      absl::RFC3339_full, absl::Now() + absl::Hours(1), absl::UTCTimeZone());

  const int plain = StartIdentity("plain", {});
  ASSERT_NE(plain, 0);
  EXPECT_TRUE(List(plain, "").ok());
  grpc::Status s = List(plain, past);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(s)).value_or(""), "DEV_CLOCK_DISABLED");

  const int dev = StartIdentity("dev", {"--dev_clock"});
  ASSERT_NE(dev, 0);
  EXPECT_TRUE(List(dev, past).ok());
  EXPECT_TRUE(List(dev, "").ok());
  for (const std::string& bad : {future, std::string("yesterday")}) {
    s = List(dev, bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(ReasonOf(FromGrpcStatus(s)).value_or(""), "INVALID_DEV_TIME")
        << bad;
  }
}

}  // namespace
}  // namespace lotse::testing
