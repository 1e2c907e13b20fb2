#include "services/identity/domain/name_matching.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/identity/labelled_pairs.h"
#include "tests/identity/test_matcher.h"
#include "tests/support/dev_pki.h"

namespace lotse::identity {
namespace {

using ::testing::Contains;

const DuplicateMatcher& Matcher() { return SharedTestMatcher(); }

MatchRecord Record(std::string given, std::string family, BirthDate date = {},
                   RecordedSex sex = RecordedSex::kUnspecified,
                   std::string place = "", std::string nationality = "") {
  MatchRecord record;
  record.names.spellings.push_back({std::move(given), std::move(family)});
  record.birth_date = date;
  record.sex = sex;
  record.birth_place = std::move(place);
  if (!nationality.empty()) record.nationality_codes.push_back(nationality);
  return record;
}

MatchResult CompareOrDie(const MatchRecord& a, const MatchRecord& b) {
  absl::StatusOr<MatchResult> result = Matcher().Compare(a, b);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : MatchResult{};
}

const MatchReason* FindReason(const MatchResult& result, MatchFactor factor) {
  for (const MatchReason& reason : result.reasons) {
    if (reason.factor == factor) return &reason;
  }
  return nullptr;
}

bool HasMethod(const MatchResult& result, MatchFactor factor,
               MatchMethod method) {
  for (const MatchReason& reason : result.reasons) {
    if (reason.factor == factor && reason.method == method) return true;
  }
  return false;
}

std::string Describe(const MatchResult& result) {
  std::ostringstream out;
  out << "score " << result.score << "\n";
  for (const MatchReason& reason : result.reasons) {
    out << "  factor " << static_cast<int>(reason.factor) << " method "
        << static_cast<int>(reason.method) << " " << reason.contribution << " ["
        << reason.query_value << " | " << reason.candidate_value << "] "
        << reason.explanation << "\n";
  }
  return out.str();
}

// Names only, same full date, same sex: isolates the name evidence.
double NameScore(const std::string& given_a, const std::string& family_a,
                 const std::string& given_b, const std::string& family_b) {
  const BirthDate date{1990, 5, 17};
  return CompareOrDie(Record(given_a, family_a, date, RecordedSex::kMale),
                      Record(given_b, family_b, date, RecordedSex::kMale))
      .score;
}

bool SameNames(const std::string& given_a, const std::string& family_a,
               const std::string& given_b, const std::string& family_b) {
  // Without any date evidence the names alone must make a possible
  // duplicate.
  const MatchResult result =
      CompareOrDie(Record(given_a, family_a, {1990, 0, 0}),
                   Record(given_b, family_b, {1990, 0, 0}));
  return result.score >= kPossibleDuplicateScore;
}

// --------------------------------------------------------------------------
// Normalisation.

TEST(NormalizeName, ScriptsBecomeLowerCaseAsciiParts) {
  auto parts = Matcher().NormalizeName("Abd al-Rahman");
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 1u);
  ASSERT_EQ((*parts)[0].size(), 1u);
  EXPECT_EQ((*parts)[0][0].text, "abdrahman");

  auto cyrillic = Matcher().NormalizeName("Олександр");
  ASSERT_TRUE(cyrillic.ok());
  EXPECT_EQ((*cyrillic)[0][0].text, "oleksandr");

  auto sharp = Matcher().NormalizeName("Ševčenko-Straße");
  ASSERT_TRUE(sharp.ok());
  ASSERT_EQ((*sharp)[0].size(), 2u);
  EXPECT_EQ((*sharp)[0][0].text, "shevchenko");
  EXPECT_EQ((*sharp)[0][1].text, "strasse");
}

TEST(NormalizeName, SameNameSameKeyAcrossSpellings) {
  auto key = [](const std::string& name) {
    auto parts = Matcher().NormalizeName(name);
    EXPECT_TRUE(parts.ok());
    return (*parts)[0][0].key;
  };
  EXPECT_EQ(key("Oleksandr"), key("Alexander"));
  EXPECT_EQ(key("Mohammed"), key("Muhammad"));
  EXPECT_EQ(key("Yusuf"), key("Youssef"));
  EXPECT_EQ(key("Shevchenko"), key("Schewtschenko"));
  EXPECT_EQ(key("Jafari"), key("Dschafari"));
}

TEST(NormalizeName, InvalidUtf8IsRejected) {
  auto parts = Matcher().NormalizeName(std::string("Ali\xC3\x28", 5));
  EXPECT_EQ(parts.status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<MatchResult> compared = Matcher().Compare(
      Record(std::string("\xFF\xFE", 2), "X"), Record("Ali", "Hassan"));
  EXPECT_EQ(compared.status().code(), absl::StatusCode::kInvalidArgument);
}

// --------------------------------------------------------------------------
// Names.

TEST(NameMatching, ArabicTransliterationVariants) {
  EXPECT_TRUE(SameNames("Mohammed", "Al-Hassan", "Muhammad", "Alhasan"));
  EXPECT_TRUE(SameNames("Mohamad", "Hassan", "Muhammed", "El Hassan"));
  EXPECT_TRUE(SameNames("Yusuf", "Khalil", "Youssef", "Chalil"));
  EXPECT_TRUE(SameNames("Jusuf", "Qasim", "Yousef", "Kassem"));
  EXPECT_TRUE(SameNames("Khaled", "Abdullah", "Chalid", "Abdallah"));
  const MatchResult result =
      CompareOrDie(Record("Mohammed", "Haddad"), Record("Muhammad", "Hadad"));
  EXPECT_TRUE(HasMethod(result, MatchFactor::kGivenNames,
                        MatchMethod::kTransliteration))
      << Describe(result);
}

TEST(NameMatching, PersianTransliterationVariants) {
  EXPECT_TRUE(SameNames("Hossein", "Rezaei", "Husain", "Rezai"));
  EXPECT_TRUE(SameNames("Fatemeh", "Mousavi", "Fatima", "Musawi"));
  EXPECT_TRUE(SameNames("Mehdi", "Jafari", "Mahdi", "Dschafari"));
}

TEST(NameMatching, CyrillicTransliterationVariants) {
  EXPECT_TRUE(
      SameNames("Oleksandr", "Shevchenko", "Aleksandr", "Schewtschenko"));
  EXPECT_TRUE(SameNames("Serhiy", "Kovalenko", "Sergej", "Kowalenko"));
  EXPECT_TRUE(SameNames("Yuriy", "Zhukov", "Juri", "Schukow"));
  EXPECT_TRUE(SameNames("Olha", "Tkachenko", "Olga", "Tkatschenko"));
}

TEST(NameMatching, TurkishTransliterationVariants) {
  EXPECT_TRUE(SameNames("Şahin", "Öztürk", "Schahin", "Oeztuerk"));
  EXPECT_TRUE(SameNames("Hüseyin", "Yılmaz", "Huseyin", "Yilmaz"));
  EXPECT_TRUE(SameNames("Ahmet", "Çelik", "Ahmed", "Tschelik"));
}

TEST(NameMatching, TigrinyaGeezScriptAndVariants) {
  // Ge'ez script against Latin spellings used in Eritrean papers.
  EXPECT_TRUE(SameNames("ዮሃንስ", "ተስፋይ", "Yohannes", "Tesfay"));
  EXPECT_TRUE(SameNames("Yohannes", "Tesfaye", "Johannes", "Tesfay"));
  EXPECT_TRUE(SameNames("Haile", "Gebremichael", "Haile", "Gebremikael"));
}

TEST(NameMatching, ArabicPersianCyrillicScriptAgainstLatin) {
  EXPECT_TRUE(SameNames("محمد", "الأحمد", "Mohammed", "Al-Ahmad"));
  EXPECT_TRUE(SameNames("يوسف", "منصور", "Yusuf", "Mansour"));
  EXPECT_TRUE(SameNames("حسین", "حسینی", "Hossein", "Hosseini"));
  EXPECT_TRUE(SameNames("فاطمة", "خليل", "Fatima", "Khalil"));
  EXPECT_TRUE(SameNames("Олена", "Коваленко", "Olena", "Kowalenko"));
  EXPECT_TRUE(SameNames("Сергій", "Шевченко", "Sergey", "Shevchenko"));
  const MatchResult result =
      CompareOrDie(Record("محمد", "حداد"), Record("Mohammed", "Haddad"));
  EXPECT_TRUE(HasMethod(result, MatchFactor::kGivenNames,
                        MatchMethod::kScriptConversion))
      << Describe(result);
}

TEST(NameMatching, UmlautsWrittenOut) {
  const MatchResult result =
      CompareOrDie(Record("Jürgen", "Müller"), Record("Juergen", "Mueller"));
  EXPECT_TRUE(HasMethod(result, MatchFactor::kFamilyNames,
                        MatchMethod::kUmlautSpelling))
      << Describe(result);
  EXPECT_TRUE(SameNames("Jürgen", "Weiß", "Juergen", "Weiss"));
  EXPECT_DOUBLE_EQ(
      NameScore("Jürgen", "Müller", "Juergen", "Mueller"),
      NameScore("Jürgen", "Müller", "Jürgen", "Müller") - 0.3 * 0.02);
}

TEST(NameMatching, SwappedGivenAndFamilyNames) {
  const MatchResult result =
      CompareOrDie(Record("Kovalenko", "Serhiy", {1980, 3, 4}),
                   Record("Serhiy", "Kovalenko", {1980, 3, 4}));
  EXPECT_TRUE(
      HasMethod(result, MatchFactor::kGivenNames, MatchMethod::kSwappedNames))
      << Describe(result);
  EXPECT_GE(result.score, kPossibleDuplicateScore);
  // Slightly lower than the same names in the right fields.
  EXPECT_LT(NameScore("Kovalenko", "Serhiy", "Serhiy", "Kovalenko"),
            NameScore("Serhiy", "Kovalenko", "Serhiy", "Kovalenko"));
}

// With given and family names swapped, each name of one record meets the
// other field of the other record. Which of the two crossed pairs counts
// as "given" and which as "family" depends only on which record is the
// query, so a pair must weigh the same under either label: the score may
// not change when the records change places.
TEST(NameMatching, SwappedNamesScoreTheSameEitherWay) {
  // One crossed pair agrees, the other does not.
  const MatchRecord a = Record("Amina", "Weber");
  const MatchRecord b = Record("Petrova", "Amina");
  const MatchResult ab = CompareOrDie(a, b);
  const MatchResult ba = CompareOrDie(b, a);
  ASSERT_TRUE(
      HasMethod(ab, MatchFactor::kGivenNames, MatchMethod::kSwappedNames))
      << Describe(ab);
  EXPECT_GT(ab.score, 0) << Describe(ab);
  EXPECT_NEAR(ab.score, ba.score, 1e-9) << Describe(ab) << Describe(ba);

  // Patronymic family names: the crossed pair holding the father's name
  // depends on which record has the fields swapped, which neither says.
  const MatchRecord c = Record("Tesfaye", "Gebremedhin", {1985, 3, 4},
                               RecordedSex::kMale, "", "ERI");
  const MatchRecord d = Record("Gebremedhin", "Tesfay", {1985, 3, 4},
                               RecordedSex::kMale, "", "ERI");
  const MatchResult cd = CompareOrDie(c, d);
  const MatchResult dc = CompareOrDie(d, c);
  EXPECT_NEAR(cd.score, dc.score, 1e-9) << Describe(cd) << Describe(dc);
}

TEST(NameMatching, MultiPartNames) {
  EXPECT_TRUE(SameNames("Abdul Rahman", "Haddad", "Abdulrahman", "Haddad"));
  EXPECT_TRUE(SameNames("Abd al-Rahman", "Haddad", "Abdulrahman", "Haddad"));
  EXPECT_TRUE(SameNames("Abdel Rahman", "Haddad", "عبد الرحمن", "حداد"));
  EXPECT_TRUE(SameNames("Nur ad-Din", "Hamid", "Nuruddin", "Hamid"));
  const MatchResult joined = CompareOrDie(Record("Abdul Rahman", "Haddad"),
                                          Record("Abdulrahman", "Haddad"));
  EXPECT_GT(FindReason(joined, MatchFactor::kGivenNames)->contribution, 0.25);
  // Extra given name on one side: still the same person, a little lower.
  EXPECT_TRUE(SameNames("Zainab Maryam", "Khalil", "Zainab", "Khalil"));
  EXPECT_LT(NameScore("Zainab Maryam", "Khalil", "Zainab", "Khalil"),
            NameScore("Zainab", "Khalil", "Zainab", "Khalil"));
  const MatchResult extra = CompareOrDie(Record("Zainab Maryam", "Khalil"),
                                         Record("Zainab", "Khalil"));
  EXPECT_THAT(FindReason(extra, MatchFactor::kGivenNames)->explanation,
              ::testing::HasSubstr("further name parts"));
}

TEST(NameMatching, Typo) {
  const MatchResult result = CompareOrDie(Record("Olexandr", "Kowaelnko"),
                                          Record("Oleksandr", "Kovalenko"));
  EXPECT_GE(result.score, kPossibleDuplicateScore) << Describe(result);
  const MatchResult transposed =
      CompareOrDie(Record("Fatima", "Masnour"), Record("Fatima", "Mansour"));
  EXPECT_TRUE(
      HasMethod(transposed, MatchFactor::kFamilyNames, MatchMethod::kTypo))
      << Describe(transposed);
}

TEST(NameMatching, ClearlyDifferentPeopleScoreLow) {
  EXPECT_LT(NameScore("Olena", "Kovalenko", "Mohammed", "Haddad"), 0.35);
  EXPECT_LT(NameScore("Fatima", "Hosseini", "Fatima", "Jafari"),
            kPossibleDuplicateScore);
  EXPECT_LT(NameScore("Mahdi", "Hosseini", "Fatemeh", "Hosseini"),
            kPossibleDuplicateScore);
  // Same consonants, different names.
  EXPECT_LT(NameScore("Hassan", "Khalil", "Hussein", "Khalil"),
            NameScore("Hossein", "Khalil", "Hussein", "Khalil"));
  const MatchResult different =
      CompareOrDie(Record("Olena", "Kovalenko", {1980, 3, 4},
                          RecordedSex::kFemale, "Kyiv", "UKR"),
                   Record("Mohammed", "Haddad", {1971, 9, 12},
                          RecordedSex::kMale, "Aleppo", "SYR"));
  EXPECT_EQ(different.score, 0.0) << Describe(different);
  EXPECT_EQ(different.strength, DuplicateStrength::kNone);
}

// --------------------------------------------------------------------------
// Birth dates.

MatchReason DateReason(BirthDate a, BirthDate b) {
  const MatchResult result =
      CompareOrDie(Record("Yusuf", "Haddad", a), Record("Yusuf", "Haddad", b));
  return *FindReason(result, MatchFactor::kBirthDate);
}

TEST(BirthDates, EqualAndDayMonthSwapped) {
  EXPECT_EQ(DateReason({1990, 5, 17}, {1990, 5, 17}).method,
            MatchMethod::kDateEqual);
  const MatchReason swapped = DateReason({1990, 5, 7}, {1990, 7, 5});
  EXPECT_EQ(swapped.method, MatchMethod::kDateDayMonthSwapped);
  EXPECT_GT(swapped.contribution, 0);
  const MatchResult strong =
      CompareOrDie(Record("Yusuf", "Haddad", {1990, 5, 7}, RecordedSex::kMale),
                   Record("Yousef", "Hadad", {1990, 7, 5}, RecordedSex::kMale));
  EXPECT_EQ(strong.strength, DuplicateStrength::kStrong) << Describe(strong);
}

TEST(BirthDates, PartialDates) {
  const MatchReason year_only = DateReason({1990, 0, 0}, {1990, 5, 17});
  EXPECT_EQ(year_only.method, MatchMethod::kDatePartialCompatible);
  EXPECT_GT(year_only.contribution, 0);
  const MatchReason year_month = DateReason({1990, 5, 0}, {1990, 5, 17});
  EXPECT_EQ(year_month.method, MatchMethod::kDatePartialCompatible);
  EXPECT_GT(year_month.contribution, year_only.contribution);
  EXPECT_EQ(DateReason({1990, 6, 0}, {1990, 5, 17}).method,
            MatchMethod::kMismatch);
  EXPECT_EQ(DateReason({0, 0, 0}, {1990, 5, 17}).method, MatchMethod::kMissing);
  EXPECT_EQ(DateReason({0, 0, 0}, {1990, 5, 17}).contribution, 0);
}

TEST(BirthDates, FirstOfJanuaryPlaceholderCountsAsYearOnly) {
  EXPECT_TRUE(IsPlaceholderBirthDate({1990, 1, 1}));
  EXPECT_FALSE(IsPlaceholderBirthDate({1990, 1, 2}));
  const MatchReason year_only = DateReason({1990, 0, 0}, {1990, 0, 0});
  const MatchReason both = DateReason({1990, 1, 1}, {1990, 1, 1});
  EXPECT_EQ(both.method, MatchMethod::kDatePlaceholderIgnored);
  EXPECT_GT(both.contribution, 0);
  EXPECT_DOUBLE_EQ(both.contribution, year_only.contribution);
  const MatchReason one = DateReason({1990, 1, 1}, {1990, 8, 21});
  EXPECT_EQ(one.method, MatchMethod::kDatePlaceholderIgnored);
  EXPECT_DOUBLE_EQ(one.contribution, year_only.contribution);
  // Less than a real date that agrees, and never more than the year.
  EXPECT_LT(both.contribution,
            DateReason({1990, 3, 4}, {1990, 3, 4}).contribution);
  // Same names, both 01.01., nothing else known: not strong.
  const MatchResult placeholder = CompareOrDie(
      Record("Fatima", "Hosseini", {1990, 1, 1}, RecordedSex::kFemale),
      Record("Fatima", "Hosseini", {1990, 1, 1}, RecordedSex::kFemale));
  EXPECT_NE(placeholder.strength, DuplicateStrength::kStrong);
  EXPECT_GE(placeholder.strength, DuplicateStrength::kLikely);
  // Names, year, birth place and nationality agree: strong, although the
  // day is a placeholder on one side and unknown on the other.
  const MatchResult corroborated =
      CompareOrDie(Record("Fatima", "Hosseini", {1990, 1, 1},
                          RecordedSex::kFemale, "Herat", "AFG"),
                   Record("Fatemeh", "Husseini", {1990, 0, 0},
                          RecordedSex::kFemale, "Harat", "AFG"));
  EXPECT_EQ(corroborated.strength, DuplicateStrength::kStrong)
      << Describe(corroborated);
  // The same names and year with different birth places: namesakes are
  // common, so not strong.
  const MatchResult elsewhere =
      CompareOrDie(Record("Fatima", "Hosseini", {1990, 1, 1},
                          RecordedSex::kFemale, "Herat", "AFG"),
                   Record("Fatima", "Hosseini", {1990, 0, 0},
                          RecordedSex::kFemale, "Kabul", "AFG"));
  EXPECT_NE(elsewhere.strength, DuplicateStrength::kStrong)
      << Describe(elsewhere);
  EXPECT_LT(FindReason(elsewhere, MatchFactor::kBirthDate)->contribution,
            FindReason(corroborated, MatchFactor::kBirthDate)->contribution);
  // Placeholder with a different family name: not a candidate.
  const MatchResult other_family = CompareOrDie(
      Record("Fatima", "Hosseini", {1990, 1, 1}, RecordedSex::kFemale),
      Record("Fatima", "Jafari", {1990, 1, 1}, RecordedSex::kFemale));
  EXPECT_LT(other_family.score, kPossibleDuplicateScore)
      << Describe(other_family);
  // Years apart still count against, placeholder or not.
  EXPECT_LT(DateReason({1990, 1, 1}, {1997, 1, 1}).contribution, -0.3);
}

TEST(BirthDates, YearsApartIsStrongEvidenceAgainst) {
  const MatchResult result = CompareOrDie(
      Record("Yusuf", "Haddad", {1990, 5, 17}, RecordedSex::kMale),
      Record("Yusuf", "Haddad", {1996, 5, 17}, RecordedSex::kMale));
  EXPECT_LT(result.score, kPossibleDuplicateScore) << Describe(result);
  EXPECT_EQ(FindReason(result, MatchFactor::kBirthDate)->method,
            MatchMethod::kMismatch);
}

// --------------------------------------------------------------------------
// Weaker factors and the result shape.

TEST(OtherFactors, PlaceSexNationality) {
  const MatchResult result =
      CompareOrDie(Record("Olena", "Kovalenko", {1980, 3, 4},
                          RecordedSex::kFemale, "Charkiw", "UKR"),
                   Record("Olena", "Kovalenko", {1980, 3, 4},
                          RecordedSex::kFemale, "Kharkiv", "UKR"));
  EXPECT_GT(FindReason(result, MatchFactor::kBirthPlace)->contribution, 0)
      << Describe(result);
  EXPECT_GT(FindReason(result, MatchFactor::kSex)->contribution, 0);
  EXPECT_GT(FindReason(result, MatchFactor::kNationality)->contribution, 0);
  EXPECT_EQ(result.strength, DuplicateStrength::kStrong);
  // Reasons are ordered by the size of their contribution.
  for (size_t i = 1; i < result.reasons.size(); ++i) {
    EXPECT_GE(std::abs(result.reasons[i - 1].contribution),
              std::abs(result.reasons[i].contribution));
  }
  const MatchResult other_sex = CompareOrDie(
      Record("Sascha", "Kovalenko", {1980, 0, 0}, RecordedSex::kFemale),
      Record("Sascha", "Kovalenko", {1980, 0, 0}, RecordedSex::kMale));
  EXPECT_LT(FindReason(other_sex, MatchFactor::kSex)->contribution, 0);
}

TEST(OtherFactors, ScoreStaysInRange) {
  const MatchResult result =
      CompareOrDie(Record("Olena", "Kovalenko", {1980, 3, 4},
                          RecordedSex::kFemale, "Kyiv", "UKR"),
                   Record("Olena", "Kovalenko", {1980, 3, 4},
                          RecordedSex::kFemale, "Kyiv", "UKR"));
  EXPECT_LE(result.score, 1.0);
  EXPECT_GE(result.score, kStrongDuplicateScore);
}

// --------------------------------------------------------------------------
// Rules of particular scripts and romanisations.

TEST(NameRules, SerbianLatinCyrillicAndGermanRegisterForms) {
  // D-stroke as dj, c-acute and -itsch, Serbian Cyrillic.
  EXPECT_GE(NameScore("Đorđe", "Petrović", "Djordje", "Petrowitsch"),
            kStrongDuplicateScore);
  EXPECT_GE(NameScore("Ђорђе", "Јовановић", "Djordje", "Jovanovic"),
            kStrongDuplicateScore);
  EXPECT_GE(NameScore("Вукашин", "Цветковић", "Vukasin", "Cvetkovic"),
            kStrongDuplicateScore);
  EXPECT_GE(NameScore("Dušan", "Čolić", "Duschan", "Tscholitsch"),
            kStrongDuplicateScore);
  // Diacritics dropped.
  EXPECT_GE(NameScore("Đorđe", "Živković", "Dorde", "Zivkovic"),
            kStrongDuplicateScore);
}

TEST(NameRules, TurkishLettersAgainstPlainAndGermanForms) {
  EXPECT_GE(NameScore("Çağlar", "Yılmaz", "Caglar", "Yilmaz"),
            kStrongDuplicateScore);
  EXPECT_GE(NameScore("Çiğdem", "Şahin", "Tschigdem", "Schahin"),
            kStrongDuplicateScore);
  // A Turkish letter in the family name makes the given name's c Turkish.
  EXPECT_GE(NameScore("Cemal", "Çakır", "Dschemal", "Tschakir"),
            kStrongDuplicateScore);
  // The soft g: written, dropped.
  EXPECT_GE(NameScore("Mustafa", "Erdoğan", "Mustafa", "Erdoan"),
            kStrongDuplicateScore);
  // Yilmaz and Yildiz stay different names.
  EXPECT_LT(NameScore("Mehmet", "Yılmaz", "Mehmet", "Yildiz"), 0.6);
}

TEST(NameRules, UkrainianAndRussianForms) {
  EXPECT_GE(NameScore("Олег", "Коваль", "Oleh", "Koval"),
            kStrongDuplicateScore);
  EXPECT_GE(NameScore("Ihor", "Melnyk", "Igor", "Melnik"),
            kStrongDuplicateScore);
  EXPECT_GE(NameScore("Halyna", "Shevchuk", "Galina", "Schewtschuk"),
            kStrongDuplicateScore);
  // Forms no spelling rule bridges: the other language's form of the name.
  EXPECT_GE(NameScore("Микола", "Бондар", "Nikolai", "Bondar"),
            kStrongDuplicateScore);
  EXPECT_GE(NameScore("Volodymyr", "Savchenko", "Wladimir", "Sawtschenko"),
            kStrongDuplicateScore);
  EXPECT_GE(NameScore("Heorhiy", "Rudenko", "Georgi", "Rudenko"),
            kStrongDuplicateScore);
  // ... but the equivalent form never stands in for another name.
  EXPECT_LT(NameScore("Mykola", "Bondar", "Mykhailo", "Bondar"),
            kPossibleDuplicateScore);
  // The swapped and varied form still shares a blocking key.
  const MatchRecord a = Record("Oleh", "Koval", {1980, 2, 3});
  const MatchRecord b = Record("Kowal", "Oleg", {1980, 2, 3});
  auto lookup = Matcher().LookupKeys(a.names, a.birth_date);
  auto index = Matcher().BlockingKeys(b.names, b.birth_date);
  ASSERT_TRUE(lookup.ok() && index.ok());
  bool shared = false;
  for (const std::string& key : *lookup) {
    shared |= std::find(index->begin(), index->end(), key) != index->end();
  }
  EXPECT_TRUE(shared);
}

TEST(NameRules, ArabicRomanisationTraditions) {
  EXPECT_GE(NameScore("Qasim", "Haidar", "Gassem", "Haydar"),
            kStrongDuplicateScore);  // q / g
  EXPECT_GE(NameScore("Hamza", "Othman", "Hamsa", "Osman"),
            kStrongDuplicateScore);  // th / s
  EXPECT_GE(NameScore("Wahid", "Ghanem", "Ouahid", "Ghanem"),
            kStrongDuplicateScore);  // ou
  EXPECT_GE(NameScore("Gamal", "Farouk", "Jamal", "Faruq"),
            kStrongDuplicateScore);  // g / j
  // One letter apart at the start is another name, not a typo.
  const MatchResult kamal =
      CompareOrDie(Record("Gamal", "Farouk", {1970, 0, 0}),
                   Record("Kamal", "Farouk", {1970, 0, 0}));
  EXPECT_EQ(FindReason(kamal, MatchFactor::kGivenNames)->method,
            MatchMethod::kMismatch);
  // Same consonants, other vowels: different names, counted against.
  const MatchResult hussein =
      CompareOrDie(Record("Hassan", "Ali"), Record("Hussein", "Ali"));
  EXPECT_LT(FindReason(hussein, MatchFactor::kGivenNames)->contribution, 0);
}

TEST(NameRules, SwappedLettersOnTopOfAVariant) {
  const MatchResult result = CompareOrDie(Record("Olena", "Schewstchenko"),
                                          Record("Olena", "Shevchenko"));
  EXPECT_EQ(FindReason(result, MatchFactor::kFamilyNames)->method,
            MatchMethod::kTypo);
  EXPECT_GE(NameScore("Yevhen", "Bondarenko", "Jewgen", "Bondraenko"), 0.7);
  EXPECT_GE(NameScore("Olena", "Kowalenko", "Olena", "Kwoalenko"), 0.7);
}

TEST(NameRules, OnlyALaterGivenNameAgreesIsWeakEvidence) {
  const MatchResult first = CompareOrDie(
      Record("Amina Mariam", "Haddad", {1990, 0, 0}, RecordedSex::kFemale),
      Record("Amina", "Haddad", {1990, 0, 0}, RecordedSex::kFemale));
  const MatchResult later = CompareOrDie(
      Record("Amina Mariam", "Haddad", {1990, 0, 0}, RecordedSex::kFemale),
      Record("Mariam", "Haddad", {1990, 0, 0}, RecordedSex::kFemale));
  EXPECT_LT(later.score, first.score - 0.1);
  EXPECT_LT(later.strength, DuplicateStrength::kLikely);
}

TEST(NameRules, PatronymicFamilyNamesCountLess) {
  const MatchRecord a = Record("Tesfaye", "Gebremedhin", {1985, 0, 0},
                               RecordedSex::kMale, "Asmara", "ERI");
  const MatchRecord b = Record("Tesfay", "Gebremedhin", {1985, 0, 0},
                               RecordedSex::kMale, "Asmara", "ERI");
  MatchRecord a_syr = a, b_syr = b;
  a_syr.nationality_codes = {"SYR"};
  b_syr.nationality_codes = {"SYR"};
  const MatchResult eritrean = CompareOrDie(a, b);
  const MatchResult other = CompareOrDie(a_syr, b_syr);
  EXPECT_LT(FindReason(eritrean, MatchFactor::kFamilyNames)->contribution,
            FindReason(other, MatchFactor::kFamilyNames)->contribution);
  // Without a full date a patronymic match is not strong.
  EXPECT_NE(eritrean.strength, DuplicateStrength::kStrong);
}

TEST(Explanations, EveryFactorNamesBothValues) {
  const MatchResult result =
      CompareOrDie(Record("Fatima", "Hosseini", {1990, 5, 17},
                          RecordedSex::kFemale, "Herat", "AFG"),
                   Record("Hosseini", "Fatemeh", {1990, 5, 17},
                          RecordedSex::kMale, "Harat", "AFG"));
  const MatchReason* sex = FindReason(result, MatchFactor::kSex);
  ASSERT_NE(sex, nullptr);
  EXPECT_EQ(sex->query_value, "female");
  EXPECT_EQ(sex->candidate_value, "male");
  for (const MatchReason& reason : result.reasons) {
    EXPECT_FALSE(reason.query_value.empty()) << reason.explanation;
    EXPECT_FALSE(reason.candidate_value.empty()) << reason.explanation;
  }
  // Swapped: each name reason pairs the query's field with the
  // candidate's field it was matched against.
  ASSERT_TRUE(
      HasMethod(result, MatchFactor::kGivenNames, MatchMethod::kSwappedNames));
  for (const MatchReason& reason : result.reasons) {
    if (reason.method == MatchMethod::kSwappedNames) continue;
    if (reason.factor == MatchFactor::kGivenNames) {
      EXPECT_EQ(reason.query_value, "Fatima");
      EXPECT_EQ(reason.candidate_value, "Fatemeh");
    }
    if (reason.factor == MatchFactor::kFamilyNames) {
      EXPECT_EQ(reason.query_value, "Hosseini");
      EXPECT_EQ(reason.candidate_value, "Hosseini");
    }
  }
}

// --------------------------------------------------------------------------
// Labelled pairs: the shared sample and training set, and this tree's own
// pairs built from the rules of each script and romanisation (names neither
// shared file contains).

std::vector<LabelledPair> LoadPairs(const std::string& path) {
  absl::StatusOr<std::vector<LabelledPair>> pairs = LoadLabelledPairs(path);
  EXPECT_TRUE(pairs.ok()) << pairs.status()
                          << " (the shared files are expected in "
                             "/work/shared/data next to the repository)";
  return pairs.ok() ? *std::move(pairs) : std::vector<LabelledPair>{};
}

std::vector<LabelledPair> LoadSample() {
  return LoadPairs(testing::SourceDir() + "/../shared/data/names-sample.tsv");
}

struct Quality {
  int true_positives = 0, false_positives = 0, false_negatives = 0,
      true_negatives = 0;
  double recall() const {
    return true_positives /
           static_cast<double>(std::max(1, true_positives + false_negatives));
  }
  double precision() const {
    return true_positives /
           static_cast<double>(std::max(1, true_positives + false_positives));
  }
};

bool ShareLookupKey(const MatchRecord& query, const MatchRecord& stored);

// Recall and precision at each level as the service decides: found means
// reachable through the blocking keys and at or above the level.
struct LevelQuality {
  Quality possible, likely, strong;
};

LevelQuality Measure(const std::vector<LabelledPair>& pairs,
                     const std::string& name) {
  LevelQuality quality;
  for (const LabelledPair& pair : pairs) {
    const MatchResult result = CompareOrDie(pair.a, pair.b);
    const bool reachable = ShareLookupKey(pair.a, pair.b);
    for (auto [level, counts] :
         {std::pair{DuplicateStrength::kPossible, &quality.possible},
          std::pair{DuplicateStrength::kLikely, &quality.likely},
          std::pair{DuplicateStrength::kStrong, &quality.strong}}) {
      const bool found = reachable && result.strength >= level;
      (pair.same
           ? (found ? counts->true_positives : counts->false_negatives)
           : (found ? counts->false_positives : counts->true_negatives))++;
      if (level == DuplicateStrength::kPossible && found != pair.same) {
        std::cout << name << ": " << (pair.same ? "missed " : "false ")
                  << pair.id << " (" << pair.kind << ") " << Describe(result);
      }
    }
  }
  for (auto [label, counts] : {std::pair{"possible", &quality.possible},
                               std::pair{"likely", &quality.likely},
                               std::pair{"strong", &quality.strong}}) {
    std::cout << name << " " << label << ": recall " << counts->recall()
              << ", precision " << counts->precision() << " (TP "
              << counts->true_positives << ", FP " << counts->false_positives
              << ", FN " << counts->false_negatives << ")\n";
  }
  return quality;
}

// Every labelled pair, training and held-out.
std::vector<LabelledPair> TrainAndHeldoutPairs() {
  std::vector<LabelledPair> pairs =
      LoadPairs(testing::SourceDir() + "/../shared/data/names-train.tsv");
  const std::vector<LabelledPair> heldout = LoadPairs(
      testing::SourceDir() + "/tests/identity/domain/data/names-heldout.tsv");
  pairs.insert(pairs.end(), heldout.begin(), heldout.end());
  return pairs;
}

// Score is Compare's score without the reasons, on every pair.
TEST(LabelledPairs, ScoreEqualsComparesScore) {
  const std::vector<LabelledPair> pairs = TrainAndHeldoutPairs();
  ASSERT_GT(pairs.size(), 4000u);
  int compared = 0;
  for (const LabelledPair& pair : pairs) {
    absl::StatusOr<PreparedRecord> a = Matcher().Prepare(pair.a);
    absl::StatusOr<PreparedRecord> b = Matcher().Prepare(pair.b);
    ASSERT_TRUE(a.ok() && b.ok()) << pair.id;
    const MatchResult full = Matcher().Compare(*a, *b);
    EXPECT_EQ(Matcher().Score(*a, *b), full.score) << pair.id;
    EXPECT_FALSE(full.reasons.empty()) << pair.id;
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(pairs.size()));
}

// The score does not depend on which record is the query, on every pair
// (swapped names, several parts with ties, places, dates).
TEST(LabelledPairs, ScoreIsSymmetric) {
  const std::vector<LabelledPair> pairs = TrainAndHeldoutPairs();
  ASSERT_GT(pairs.size(), 4000u);
  for (const LabelledPair& pair : pairs) {
    absl::StatusOr<PreparedRecord> a = Matcher().Prepare(pair.a);
    absl::StatusOr<PreparedRecord> b = Matcher().Prepare(pair.b);
    ASSERT_TRUE(a.ok() && b.ok()) << pair.id;
    EXPECT_NEAR(Matcher().Score(*a, *b), Matcher().Score(*b, *a), 1e-9)
        << pair.id << "\n"
        << Describe(Matcher().Compare(*a, *b))
        << Describe(Matcher().Compare(*b, *a));
  }
}

// Tuned on the training set.
TEST(LabelledPairs, TrainingSetAtEachLevel) {
  const std::vector<LabelledPair> pairs =
      LoadPairs(testing::SourceDir() + "/../shared/data/names-train.tsv");
  ASSERT_GT(pairs.size(), 2000u);
  const LevelQuality q = Measure(pairs, "names-train.tsv");
  EXPECT_GE(q.possible.recall(), 0.99);
  EXPECT_GE(q.possible.precision(), 0.99);
  EXPECT_GE(q.likely.recall(), 0.98);
  EXPECT_GE(q.likely.precision(), 0.998);
  EXPECT_GE(q.strong.recall(), 0.80);
  EXPECT_GE(q.strong.precision(), 0.999);
}

// Checked on the sample, which tuning did not look at.
TEST(LabelledPairs, SampleAtEachLevel) {
  const std::vector<LabelledPair> pairs = LoadSample();
  ASSERT_GT(pairs.size(), 250u);
  const LevelQuality q = Measure(pairs, "names-sample.tsv");
  EXPECT_GE(q.possible.recall(), 0.97);
  EXPECT_GE(q.possible.precision(), 0.99);
  EXPECT_GE(q.likely.precision(), 0.995);
  EXPECT_GE(q.strong.recall(), 0.80);
  EXPECT_GE(q.strong.precision(), 0.999);
}

// Pairs from a generator written apart from the matcher
// (data/gen_heldout.py): other name pools (Serbian, Croatian, Bosnian,
// Turkish, Kurdish, Egyptian, Sudanese, Moroccan, Persian, Dari, Russian,
// Belarusian, Tigrinya, Amharic, Somali) and their romanisation rules.
TEST(LabelledPairs, SeparatelyGeneratedPairsAtEachLevel) {
  const std::vector<LabelledPair> pairs = LoadPairs(
      testing::SourceDir() + "/tests/identity/domain/data/names-heldout.tsv");
  ASSERT_GT(pairs.size(), 1000u);
  const LevelQuality q = Measure(pairs, "names-heldout.tsv");
  EXPECT_GE(q.possible.recall(), 0.955);
  EXPECT_GE(q.possible.precision(), 0.99);
  EXPECT_GE(q.likely.precision(), 0.998);
  EXPECT_GE(q.strong.recall(), 0.80);
  EXPECT_GE(q.strong.precision(), 0.999);
}

// Serbian and Croatian (Latin, Cyrillic, German register forms), Turkish
// letters and their German spellings, Arabic romanisations (q/g, th/s,
// French ou, Egyptian g), Persian script, Ukrainian against Russian forms,
// swapped letters, swapped names with variants, Tigrinya patronymics, and
// the traps: siblings, placeholders, a later given name, names one letter
// or one vowel apart.
TEST(LabelledPairs, RulePairsAtEachLevel) {
  const std::vector<LabelledPair> pairs = LoadPairs(
      testing::SourceDir() + "/tests/identity/domain/data/names-rules.tsv");
  ASSERT_GT(pairs.size(), 50u);
  const LevelQuality q = Measure(pairs, "names-rules.tsv");
  EXPECT_GE(q.possible.recall(), 0.94);
  EXPECT_GE(q.likely.precision(), 1.0);
  EXPECT_GE(q.strong.recall(), 0.90);
  EXPECT_GE(q.strong.precision(), 1.0);
}

// --------------------------------------------------------------------------
// Blocking keys.

bool ShareLookupKey(const MatchRecord& query, const MatchRecord& stored) {
  absl::StatusOr<std::vector<std::string>> lookup =
      Matcher().LookupKeys(query.names, query.birth_date);
  absl::StatusOr<std::vector<std::string>> index =
      Matcher().BlockingKeys(stored.names, stored.birth_date);
  EXPECT_TRUE(lookup.ok() && index.ok());
  if (!lookup.ok() || !index.ok()) return false;
  for (const std::string& key : *lookup) {
    if (std::find(index->begin(), index->end(), key) != index->end()) {
      return true;
    }
  }
  return false;
}

TEST(LabelledSample, EverySamePairSharesABlockingKey) {
  const std::vector<LabelledPair> pairs = LoadSample();
  ASSERT_FALSE(pairs.empty());
  int same = 0, found = 0, different = 0, different_found = 0;
  size_t max_keys = 0, total_keys = 0, records = 0;
  for (const LabelledPair& pair : pairs) {
    const bool shared =
        ShareLookupKey(pair.a, pair.b) && ShareLookupKey(pair.b, pair.a);
    if (pair.same) {
      ++same;
      if (shared) {
        ++found;
      } else {
        std::cout << "blocking misses " << pair.id << "\n";
      }
    } else {
      ++different;
      if (shared) ++different_found;
    }
    for (const MatchRecord* record : {&pair.a, &pair.b}) {
      auto keys = Matcher().BlockingKeys(record->names, record->birth_date);
      ASSERT_TRUE(keys.ok());
      max_keys = std::max(max_keys, keys->size());
      total_keys += keys->size();
      ++records;
    }
  }
  std::cout << "blocking recall " << found << "/" << same << " = "
            << found / static_cast<double>(same) << "; different pairs sharing "
            << "a key: " << different_found << "/" << different
            << "; index keys per record: mean "
            << total_keys / static_cast<double>(records) << ", max " << max_keys
            << "\n";
  EXPECT_EQ(found, same);
}

TEST(BlockingKeys, YearWindowAndUnknownYears) {
  const PersonNames names{{{"Olena", "Kovalenko"}}};
  auto index = Matcher().BlockingKeys(names, {1980, 3, 4});
  ASSERT_TRUE(index.ok());
  EXPECT_THAT(*index, Contains("ALN|K@1980"));
  EXPECT_THAT(*index, Contains("KLNK|A@*"));
  auto lookup = Matcher().LookupKeys(names, {1981, 0, 0});
  ASSERT_TRUE(lookup.ok());
  EXPECT_THAT(*lookup, Contains("ALN|K@1980"));
  EXPECT_THAT(*lookup, Contains("ALN|K@?"));
  auto unknown = Matcher().LookupKeys(names, {});
  ASSERT_TRUE(unknown.ok());
  EXPECT_THAT(*unknown, Contains("ALN|K@*"));
  // A different person does not share a key.
  auto other = Matcher().BlockingKeys(PersonNames{{{"Mohammed", "Haddad"}}},
                                      {1980, 3, 4});
  ASSERT_TRUE(other.ok());
  for (const std::string& key : *lookup) {
    EXPECT_THAT(*other, ::testing::Not(Contains(key)));
  }
}

// The stored prepared form compares exactly like the record it came from,
// and keys derived from it are those derived from the names.
TEST(PreparedForm, RoundTripComparesAlike) {
  MatchRecord stored = Record("محمد عبد الرحمن", "الحسن", {1990, 3, 15});
  stored.names.spellings.push_back({"Mohammed Abdul Rahman", "Al-Hassan"});
  stored.birth_place = "Halab";
  stored.nationality_codes = {"sy"};
  stored.sex = RecordedSex::kMale;
  const std::vector<MatchRecord> queries = {
      Record("Muhammad Abdulrahman", "Alhassan", {1990, 3, 15}),
      Record("Олександр", "Коваленко", {1985, 0, 0}),
      Record("Mohamed", "El Hasan", {1990, 15, 3}), Record("", "Hassan", {})};
  auto prepared = Matcher().Prepare(stored);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  const std::string bytes = Matcher().EncodePrepared(*prepared);
  auto decoded = Matcher().DecodePrepared(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(Matcher().EncodePrepared(*decoded), bytes);
  for (const MatchRecord& q : queries) {
    auto query = Matcher().Prepare(q);
    ASSERT_TRUE(query.ok());
    const MatchResult direct = Matcher().Compare(*query, *prepared);
    const MatchResult via_bytes = Matcher().Compare(*query, *decoded);
    EXPECT_EQ(direct.score, via_bytes.score);
    EXPECT_EQ(Describe(direct), Describe(via_bytes));
  }
  auto keys = Matcher().BlockingKeys(stored.names, stored.birth_date);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(Matcher().BlockingKeys(*decoded), *keys);
  auto lookup = Matcher().LookupKeys(stored.names, stored.birth_date);
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(Matcher().LookupKeys(*decoded), *lookup);
}

TEST(PreparedForm, OtherVersionsAndDamageAreRefused) {
  auto prepared = Matcher().Prepare(Record("Olena", "Kovalenko", {1980, 3, 4}));
  ASSERT_TRUE(prepared.ok());
  std::string bytes = Matcher().EncodePrepared(*prepared);
  std::string newer = bytes;
  newer[0] = static_cast<char>(newer[0] + 1);
  EXPECT_EQ(Matcher().DecodePrepared(newer).status().code(),
            absl::StatusCode::kFailedPrecondition);
  for (size_t cut :
       {size_t{2}, size_t{9}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_EQ(Matcher().DecodePrepared(bytes.substr(0, cut)).status().code(),
              absl::StatusCode::kDataLoss)
        << cut;
  }
  EXPECT_EQ(Matcher().DecodePrepared(bytes + "x").status().code(),
            absl::StatusCode::kDataLoss);
  // A spelling count far beyond what the bytes could hold.
  std::string huge =
      absl::StrCat(bytes.substr(0, 1), "\xff\xff\xff\xff\x0f", bytes.substr(2));
  EXPECT_EQ(Matcher().DecodePrepared(huge).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(Matcher, ThreadSafeConcurrentUse) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&failures] {
      for (int i = 0; i < 50; ++i) {
        auto result = Matcher().Compare(Record("Олександр", "Шевченко"),
                                        Record("Oleksandr", "Shevchenko"));
        if (!result.ok() || result->score < kPossibleDuplicateScore) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace lotse::identity
