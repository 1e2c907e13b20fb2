#include "common/api/text.h"

#include <string>

#include "gtest/gtest.h"

namespace lotse::api {
namespace {

TEST(TextTest, Utf8Validity) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("Köln محمد Олександр 𝄞"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("K\xc3\x28ln"));       // bad continuation
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
}

TEST(TextTest, CountsCodePointsNotBytes) {
  EXPECT_EQ(CodePointCount("Köln"), 4u);
  EXPECT_EQ(CodePointCount("محمد"), 4u);
}

TEST(TextTest, ControlCharacters) {
  EXPECT_TRUE(ContainsControlCharacters(std::string("a\0b", 3)));
  EXPECT_TRUE(ContainsControlCharacters("a\x7f"));
  EXPECT_TRUE(ContainsControlCharacters("a\xc2\x85"));  // C1 NEL
  EXPECT_TRUE(ContainsControlCharacters("a\nb"));
  EXPECT_FALSE(ContainsControlCharacters("a\nb", /*allow_line_breaks=*/true));
  EXPECT_FALSE(ContainsControlCharacters("Straße 1"));
}

TEST(TextTest, ValidateTextReportsOneViolationPerField) {
  TextRules rules;
  rules.max_chars = 5;
  FieldViolations v;
  EXPECT_TRUE(ValidateText("Köln", "ok", rules, &v));
  EXPECT_TRUE(ValidateText("Kölns", "five_chars_six_bytes", rules, &v));
  EXPECT_FALSE(ValidateText("", "empty", rules, &v));
  EXPECT_FALSE(ValidateText("  ", "blank", rules, &v));
  EXPECT_FALSE(ValidateText("abcdef", "long", rules, &v));
  EXPECT_FALSE(ValidateText("a\tb", "control", rules, &v));
  EXPECT_FALSE(ValidateText("\xff", "utf8", rules, &v));
  ASSERT_EQ(v.violations().size(), 5u);
  EXPECT_EQ(v.violations()[0].field, "empty");
  EXPECT_EQ(v.violations()[4].field, "utf8");
  rules.min_chars = 0;
  FieldViolations optional;
  EXPECT_TRUE(ValidateText("", "optional", rules, &optional));
  EXPECT_TRUE(optional.empty());
}

TEST(TextTest, RequestIds) {
  FieldViolations v;
  EXPECT_TRUE(ValidateRequestId("a-B_9", "id", &v));
  EXPECT_FALSE(ValidateRequestId("", "empty", &v));
  EXPECT_FALSE(ValidateRequestId("a b", "space", &v));
  EXPECT_FALSE(ValidateRequestId(std::string(65, 'a'), "long", &v));
  EXPECT_TRUE(ValidateRequestId(std::string(64, 'a'), "id", &v));
  EXPECT_EQ(v.violations().size(), 3u);
}

}  // namespace
}  // namespace lotse::api
