#include "common/api/names.h"

#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lotse::api {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(NamesTest, NewIdsAreLowerCaseBase32AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<std::string> id = NewId();
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_EQ(id->size(), 26u);
    for (char c : *id) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) << *id;
    }
    EXPECT_TRUE(IsValidId(*id));
    EXPECT_TRUE(seen.insert(*id).second) << *id;
  }
}

TEST(NamesTest, IdsEverIssuedAreValid) {
  EXPECT_TRUE(IsValidId("abcdefghijklmnopqrstuvwxyz"));  // base32
  EXPECT_TRUE(IsValidId("Xk3_9-AbQzR0w7UvT2sYnA"));      // cases' base64url
  EXPECT_TRUE(IsValidId("kim-koeln"));                   // an agency
  EXPECT_TRUE(IsValidId("g-0123456789abcdef"));          // a goal
  EXPECT_TRUE(IsValidId(std::string(kMaxIdLength, 'a')));
  EXPECT_FALSE(IsValidId(std::string(kMaxIdLength + 1, 'a')));
  EXPECT_FALSE(IsValidId(""));
  for (const char* bad : {"a/b", "a b", "a.b", "a%2F", "ä", "a\n", "a=="}) {
    EXPECT_FALSE(IsValidId(bad)) << bad;
  }
}

TEST(NamesTest, MatchNameSplitsIdsInPatternOrder) {
  std::vector<std::string> ids;
  EXPECT_TRUE(MatchName("cases/Xk3_9-AbQz/steps/abc", kCaseStepName, &ids));
  EXPECT_THAT(ids, ElementsAre("Xk3_9-AbQz", "abc"));
  EXPECT_TRUE(MatchName("cases/c1/plan", "cases/{case}/plan", &ids));
  EXPECT_THAT(ids, ElementsAre("c1"));
  EXPECT_TRUE(MatchName("courses/a/bookings/b/result",
                        "courses/{course}/bookings/{booking}/result", &ids));
  EXPECT_THAT(ids, ElementsAre("a", "b"));
  EXPECT_TRUE(MatchName("persons/p", kPersonName));  // ids may be null
}

TEST(NamesTest, MatchNameRefusesOtherForms) {
  std::vector<std::string> ids = {"untouched"};
  for (const char* bad : {
           "",                         // nothing
           "cases/a/steps",            // too short
           "cases/a/steps/b/notes/c",  // too long
           "cases/a/steps/b/",         // trailing slash
           "/cases/a/steps/b",         // leading slash
           "cases//steps/b",           // empty id
           "cases/a/step/b",           // other collection
           "Cases/a/steps/b",          // collections are exact
           "cases/a/steps/b c",        // not the id alphabet
           "cases/a/steps/b%2Fc",      // no escapes
       }) {
    EXPECT_FALSE(MatchName(bad, kCaseStepName, &ids)) << bad;
  }
  EXPECT_THAT(ids, ElementsAre("untouched"));
}

TEST(NamesTest, ParseNameAddsOneViolationWithoutTheValue) {
  FieldViolations v;
  EXPECT_THAT(ParseName("cases/a/steps/b", kCaseStepName, "step", &v),
              ElementsAre("a", "b"));
  EXPECT_TRUE(v.empty());
  EXPECT_THAT(ParseName("", kCaseStepName, "step", &v), IsEmpty());
  EXPECT_THAT(ParseName("persons/secret name", kPersonName, "person", &v),
              IsEmpty());
  ASSERT_EQ(v.violations().size(), 2u);
  EXPECT_EQ(v.violations()[0].field, "step");
  EXPECT_EQ(v.violations()[0].description, "is required");
  EXPECT_EQ(v.violations()[1].field, "person");
  EXPECT_EQ(v.violations()[1].description,
            "must be a name \"persons/{person}\"");
}

TEST(NamesTest, ParseNameIdReturnsTheLastId) {
  FieldViolations v;
  EXPECT_EQ(ParseNameId("persons/p1", kPersonName, "person", &v), "p1");
  EXPECT_EQ(ParseNameId("cases/c1/plan", "cases/{case}/plan", "name", &v),
            "c1");
  EXPECT_EQ(ParseNameId("agencies/", kAgencyName, "agency", &v), "");
  EXPECT_EQ(v.violations().size(), 1u);
}

}  // namespace
}  // namespace lotse::api
