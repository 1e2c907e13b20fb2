// The per-RPC metrics keep a bounded number of method labels: a client
// calling made-up methods cannot grow the process's metrics without end.
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/server/internal/call_observer.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace lotse::server::internal {
namespace {

std::set<std::string> MethodLabels(prometheus::Registry& registry) {
  std::set<std::string> out;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != "lotse_rpc_calls_total") continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      for (const prometheus::ClientMetric::Label& l : metric.label) {
        if (l.name == "method") out.insert(l.value);
      }
    }
  }
  return out;
}

TEST(RpcMetricsTest, MethodLabelsAreBounded) {
  prometheus::Registry registry;
  RpcMetrics metrics("test", registry);
  metrics.Record("/lotse.x.v1.X/Known", grpc::StatusCode::OK, 0.001);
  for (size_t i = 0; i < 3 * RpcMetrics::kMaxMethodLabels; ++i) {
    metrics.Record(absl::StrCat("/made.up/Method", i),
                   grpc::StatusCode::UNIMPLEMENTED, 0.001);
  }
  // A method seen before the table filled keeps its own label.
  metrics.Record("/lotse.x.v1.X/Known", grpc::StatusCode::OK, 0.001);
  const std::set<std::string> labels = MethodLabels(registry);
  EXPECT_EQ(labels.size(), RpcMetrics::kMaxMethodLabels + 1);
  EXPECT_TRUE(labels.count("/lotse.x.v1.X/Known"));
  EXPECT_TRUE(labels.count(RpcMetrics::kOtherMethod));
  EXPECT_FALSE(labels.count(
      absl::StrCat("/made.up/Method", 2 * RpcMetrics::kMaxMethodLabels)));
}

}  // namespace
}  // namespace lotse::server::internal
