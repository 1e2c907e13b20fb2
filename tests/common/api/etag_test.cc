#include "common/api/etag.h"

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

TEST(EtagTest, StaleIsAbortedWithReason) {
  EXPECT_TRUE(CheckEtag("x", "x").ok());
  absl::Status stale = CheckEtag("x", "y");
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReasonOf(stale), "ETAG_MISMATCH");
}

}  // namespace
}  // namespace lotse::api
