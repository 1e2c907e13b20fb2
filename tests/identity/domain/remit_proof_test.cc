#include "services/identity/domain/remit_proof.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace lotse::identity {
namespace {

class RemitProofTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto created = DuplicateMatcher::Create();
    ASSERT_TRUE(created.ok()) << created.status();
    matcher_ = created->release();
  }
  static void TearDownTestSuite() {
    delete matcher_;
    matcher_ = nullptr;
  }

  static MatchRecord Record(const std::string& given, const std::string& family,
                            BirthDate date, const std::string& place = "") {
    MatchRecord r;
    r.names.spellings.push_back({given, family});
    r.birth_date = date;
    r.birth_place = place;
    return r;
  }

  static std::string Check(const std::string& given, const std::string& family,
                           BirthDate date, const std::string& place,
                           const MatchRecord& record) {
    PresentedAttributes presented{{given, family}, date, place};
    absl::StatusOr<AttributesOutcome> outcome =
        CheckIdentifyingAttributes(*matcher_, presented, record);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return std::string(
        AttributesOutcomeName(outcome.value_or(AttributesOutcome::kHold)));
  }

  static DuplicateMatcher* matcher_;
};

DuplicateMatcher* RemitProofTest::matcher_ = nullptr;

const BirthDate kDate{1991, 3, 14};

TEST_F(RemitProofTest, NameAndFullDateFromThePapersHold) {
  const MatchRecord record = Record("Amira", "Haddad", kDate);
  EXPECT_EQ(Check("Amira", "Haddad", kDate, "", record), "HOLD");
  // Another office's transliteration and the original script hold too.
  EXPECT_EQ(Check("Amirah", "Hadad", kDate, "", record), "HOLD");
  EXPECT_EQ(Check("أميرة", "حداد", kDate, "", record), "HOLD");
}

TEST_F(RemitProofTest, AnyOtherDayFails) {
  const MatchRecord record = Record("Amira", "Haddad", kDate);
  EXPECT_EQ(Check("Amira", "Haddad", {1991, 3, 15}, "", record),
            "BIRTH_DATE_DIFFERS");
  // Day and month swapped is a common typo, and still no proof.
  EXPECT_EQ(Check("Amira", "Haddad", {1991, 14, 3}, "", record),
            "BIRTH_DATE_DIFFERS");
  EXPECT_EQ(Check("Amira", "Haddad", {1990, 3, 14}, "", record),
            "BIRTH_DATE_DIFFERS");
}

TEST_F(RemitProofTest, BothNamesMustMatch) {
  const MatchRecord record = Record("Amira", "Haddad", kDate);
  EXPECT_EQ(Check("Amira", "Nasser", kDate, "", record), "NAME_DIFFERS");
  EXPECT_EQ(Check("Leyla", "Haddad", kDate, "", record), "NAME_DIFFERS");
  // The family name alone is not enough when the record has given names.
  EXPECT_EQ(Check("", "Haddad", kDate, "", record), "NAME_DIFFERS");
  // A person without given names is proven by the family name.
  EXPECT_EQ(Check("", "Haddad", kDate, "", Record("", "Haddad", kDate)),
            "HOLD");
}

TEST_F(RemitProofTest, APartialOrPlaceholderDateNeedsTheBirthPlace) {
  const MatchRecord year_only =
      Record("Amira", "Haddad", {1991, 0, 0}, "Aleppo");
  EXPECT_EQ(Check("Amira", "Haddad", kDate, "", year_only),
            "BIRTH_PLACE_MISSING");
  EXPECT_EQ(Check("Amira", "Haddad", kDate, "Homs", year_only),
            "BIRTH_PLACE_DIFFERS");
  EXPECT_EQ(Check("Amira", "Haddad", kDate, "Aleppo", year_only), "HOLD");
  EXPECT_EQ(Check("Amira", "Haddad", {1992, 3, 14}, "Aleppo", year_only),
            "BIRTH_DATE_DIFFERS");

  const MatchRecord placeholder =
      Record("Amira", "Haddad", {1991, 1, 1}, "Aleppo");
  EXPECT_EQ(Check("Amira", "Haddad", {1991, 1, 1}, "", placeholder),
            "BIRTH_PLACE_MISSING");
  EXPECT_EQ(Check("Amira", "Haddad", {1991, 1, 1}, "Aleppo", placeholder),
            "HOLD");
}

TEST_F(RemitProofTest, ARecordWithoutDateOrPlaceCannotBeProven) {
  EXPECT_EQ(Check("Amira", "Haddad", kDate, "Aleppo",
                  Record("Amira", "Haddad", {1991, 0, 0})),
            "RECORD_NOT_PROVABLE");
  EXPECT_EQ(Check("Amira", "Haddad", {1991, 1, 1}, "Aleppo",
                  Record("Amira", "Haddad", {1991, 1, 1})),
            "RECORD_NOT_PROVABLE");
}

}  // namespace
}  // namespace lotse::identity
