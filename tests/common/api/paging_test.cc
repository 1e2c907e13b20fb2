#include "common/api/paging.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace lotse::api {
namespace {

TEST(PagingTest, PageSizeDefaultsClampsAndRejectsNegative) {
  FieldViolations v;
  EXPECT_EQ(NormalizePageSize(0, "page_size", &v), 50);
  EXPECT_EQ(NormalizePageSize(7, "page_size", &v), 7);
  EXPECT_EQ(NormalizePageSize(500, "page_size", &v), 500);
  EXPECT_EQ(NormalizePageSize(100000, "page_size", &v), 500);
  EXPECT_TRUE(v.empty());
  NormalizePageSize(-1, "page_size", &v);
  ASSERT_EQ(v.violations().size(), 1u);
  EXPECT_EQ(v.violations()[0].field, "page_size");
}

TEST(PagingTest, TokenRoundTrips) {
  FieldViolations v;
  EXPECT_EQ(DecodePageToken("", "f", "page_token", &v), "");
  const std::string token = EncodePageToken("filters", "kim-koeln");
  EXPECT_EQ(DecodePageToken(token, "filters", "page_token", &v), "kim-koeln");
  EXPECT_TRUE(v.empty());
}

TEST(PagingTest, GarbageTamperedAndForeignTokensAreRejected) {
  const std::string token = EncodePageToken("filters", "kim-koeln");
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(token, &raw));
  raw[raw.size() / 2] ^= 0x01;
  for (const std::string& bad :
       {std::string("garbage!"), std::string("AAAA"),
        absl::WebSafeBase64Escape(raw), token.substr(0, token.size() - 2)}) {
    FieldViolations v;
    EXPECT_EQ(DecodePageToken(bad, "filters", "page_token", &v), "") << bad;
    ASSERT_EQ(v.violations().size(), 1u) << bad;
    EXPECT_EQ(v.violations()[0].field, "page_token");
  }
  FieldViolations v;
  DecodePageToken(token, "other filters", "page_token", &v);
  EXPECT_EQ(v.violations().size(), 1u);
}

}  // namespace
}  // namespace lotse::api
