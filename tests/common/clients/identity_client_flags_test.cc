// The --identity_* flags: what start-up refuses, and the breaker's metrics
// against an identity nobody answers for.
#include "common/clients/identity_client_flags.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/server/flags.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace lotse::clients {
namespace {

// The value of the metric `name` without labels in `registry`, or -1.
double MetricValue(prometheus::Registry& registry, const std::string& name) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name || family.metric.empty()) continue;
    const prometheus::ClientMetric& m = family.metric.front();
    return family.type == prometheus::MetricType::Gauge ? m.gauge.value
                                                        : m.counter.value;
  }
  return -1;
}

// A loopback port that was free a moment ago: nobody listens there.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

class IdentityClientFlagsTest : public ::testing::Test {
 protected:
  // Every flag this test sets is restored afterwards.
  absl::FlagSaver saver_;
};

TEST_F(IdentityClientFlagsTest, WrongBreakerValuesStopStartUpNamingTheFlag) {
  absl::SetFlag(&FLAGS_insecure_dev, true);
  absl::SetFlag(&FLAGS_identity_breaker_failures, -1);
  absl::StatusOr<std::unique_ptr<GrpcIdentityClient>> client =
      IdentityClientFromFlags("courses");
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(client.status().message().find("--identity_breaker_failures"),
            std::string::npos)
      << client.status();

  absl::SetFlag(&FLAGS_identity_breaker_failures, 5);
  absl::SetFlag(&FLAGS_identity_breaker_open_for, absl::ZeroDuration());
  client = IdentityClientFromFlags("courses");
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(client.status().message().find("--identity_breaker_open_for"),
            std::string::npos)
      << client.status();

  absl::SetFlag(&FLAGS_identity_breaker_open_for, absl::Seconds(1));
  absl::SetFlag(&FLAGS_identity_timeout, absl::Seconds(-1));
  client = IdentityClientFromFlags("courses");
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);

  absl::SetFlag(&FLAGS_identity_timeout, absl::Seconds(2));
  absl::SetFlag(&FLAGS_identity_target, "");
  client = IdentityClientFromFlags("courses");
  EXPECT_EQ(client.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(IdentityClientFlagsTest, TheBreakerIsSeenInTheMetrics) {
  absl::SetFlag(&FLAGS_insecure_dev, true);
  absl::SetFlag(&FLAGS_identity_target, absl::StrCat("127.0.0.1:", FreePort()));
  absl::SetFlag(&FLAGS_identity_breaker_failures, 2);
  absl::SetFlag(&FLAGS_identity_breaker_open_for, absl::Minutes(10));
  prometheus::Registry registry;
  absl::StatusOr<std::unique_ptr<GrpcIdentityClient>> client =
      IdentityClientFromFlags("courses", &registry);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(MetricValue(registry, "lotse_identity_breaker_open"), 0);
  EXPECT_EQ(MetricValue(registry, "lotse_identity_breaker_opened_total"), 0);

  // Two unanswered calls stop the asking; the third is refused at once.
  for (int i = 0; i < 3; ++i) {
    absl::Status s =
        (*client)
            ->GetAgency("agencies/kim-koeln", absl::Now() + absl::Seconds(10))
            .status();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << i << ": " << s;
  }
  EXPECT_EQ(MetricValue(registry, "lotse_identity_breaker_open"), 1);
  EXPECT_EQ(MetricValue(registry, "lotse_identity_breaker_opened_total"), 1);
}

}  // namespace
}  // namespace lotse::clients
