#include "common/api/etag.h"

#include <string>
#include <thread>
#include <vector>

#include "common/errors/status.h"
#include "gtest/gtest.h"

namespace lotse::api {
namespace {

TEST(EtagTest, OpaqueStableAndDistinct) {
  const std::string a1 = ComputeEtag("agencies/a", 1);
  EXPECT_EQ(a1, ComputeEtag("agencies/a", 1));
  EXPECT_NE(a1, ComputeEtag("agencies/a", 2));
  EXPECT_NE(a1, ComputeEtag("agencies/b", 1));
  EXPECT_EQ(a1.size(), 22u);
}

// Clients keep etags across restarts and releases: the value must never
// change for the same resource and version.
TEST(EtagTest, ValuesAreTheDocumentedHash) {
  EXPECT_EQ(ComputeEtag("agencies/a", 1), "wG3mzTlX9_l5D2agDWvHlg");
  EXPECT_EQ(ComputeEtag("cases/c1/steps/s9", -7), "ZlXNNuCd5MFM8kv1DLZAzA");
  EXPECT_EQ(ComputeEtag("", 0), "Uw7th9N2mdFLeNZdT3vpVw");
}

TEST(EtagTest, EachThreadComputesTheSameValues) {
  std::vector<std::string> seen(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, &seen] {
      std::string last;
      for (int i = 0; i < 1000; ++i) last = ComputeEtag("agencies/a", i % 2);
      seen[t] = last;
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& s : seen) EXPECT_EQ(s, ComputeEtag("agencies/a", 1));
}

TEST(EtagTest, StaleIsAbortedWithReason) {
  EXPECT_TRUE(CheckEtag("x", "x").ok());
  absl::Status stale = CheckEtag("x", "y");
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReasonOf(stale), "ETAG_MISMATCH");
}

}  // namespace
}  // namespace lotse::api
