#include "services/identity/domain/person.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lotse::identity {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const absl::CivilDay kToday(2024, 6, 15);

v1::Person ValidPerson() {
  v1::Person p;
  v1::PersonName* latin = p.add_names();
  latin->set_given_names("Abdul Rahman");
  latin->set_family_names("Al-Hassan");
  latin->set_script("Latn");
  latin->set_kind(v1::NAME_KIND_CURRENT);
  v1::PersonName* arabic = p.add_names();
  arabic->set_given_names("عبد الرحمن");
  arabic->set_family_names("الحسن");
  arabic->set_script("Arab");
  p.mutable_birth_date()->set_year(1990);
  p.mutable_birth_date()->set_month(7);
  p.mutable_birth_date()->set_day(14);
  p.set_birth_place("Aleppo");
  p.set_birth_country_code("SY");
  p.set_sex(v1::SEX_MALE);
  p.add_nationality_codes("SY");
  p.set_nationality_status(v1::NATIONALITY_STATUS_KNOWN);
  lotse::type::v1::Address* a = p.mutable_contact()->mutable_address();
  a->set_street("Kasernenstrasse");
  a->set_house_number("12a");
  a->set_postal_code("40213");
  a->set_locality("Düsseldorf");
  a->set_municipality_code("05111000");
  p.mutable_contact()->add_phone_numbers("+4915112345678");
  p.mutable_contact()->set_email("abdul@example.org");
  return p;
}

std::vector<FieldViolation> Violations(const v1::Person& p) {
  FieldViolations v;
  ValidatePerson(p, "person", kToday, &v);
  return v.violations();
}

// The single field the violations name (expects exactly one).
std::string OnlyField(const v1::Person& p) {
  const std::vector<FieldViolation> v = Violations(p);
  EXPECT_THAT(v, SizeIs(1));
  return v.empty() ? "" : v[0].field;
}

TEST(ValidatePersonTest, ValidPersonHasNoViolations) {
  EXPECT_THAT(Violations(ValidPerson()), IsEmpty());
}

TEST(ValidatePersonTest, MinimalPersonIsValid) {
  v1::Person p;
  p.add_names()->set_family_names("Kovalenko");
  EXPECT_THAT(Violations(p), IsEmpty());
}

TEST(ValidatePersonTest, NamesRequired) {
  v1::Person p = ValidPerson();
  p.clear_names();
  EXPECT_EQ(OnlyField(p), "person.names");
}

TEST(ValidatePersonTest, InvalidUtf8InName) {
  v1::Person p = ValidPerson();
  p.mutable_names(0)->set_family_names("Al\xC3\x28Hassan");
  EXPECT_EQ(OnlyField(p), "person.names[0].family_names");
  p = ValidPerson();
  p.mutable_names(0)->set_given_names("\xC0\xAF");  // overlong '/'
  EXPECT_EQ(OnlyField(p), "person.names[0].given_names");
}

TEST(ValidatePersonTest, ControlCharacters) {
  v1::Person p = ValidPerson();
  p.mutable_names(1)->set_given_names("عبد\nالرحمن");
  EXPECT_EQ(OnlyField(p), "person.names[1].given_names");
  p = ValidPerson();
  p.mutable_names(0)->set_family_names(std::string("Al\0Hassan", 9));
  EXPECT_EQ(OnlyField(p), "person.names[0].family_names");
  p = ValidPerson();
  p.set_birth_place("Alep\x7Fpo");
  EXPECT_EQ(OnlyField(p), "person.birth_place");
  p = ValidPerson();
  p.mutable_names(0)->set_family_names("Al\xC2\x85Hassan");  // C1 NEL
  EXPECT_EQ(OnlyField(p), "person.names[0].family_names");
}

TEST(ValidatePersonTest, EmptyOrBlankName) {
  v1::Person p = ValidPerson();
  p.mutable_names(0)->clear_given_names();
  p.mutable_names(0)->clear_family_names();
  EXPECT_EQ(OnlyField(p), "person.names[0].family_names");
  p = ValidPerson();
  p.mutable_names(0)->set_given_names("   ");
  p.mutable_names(0)->set_family_names(" ");
  EXPECT_THAT(Violations(p), SizeIs(1));
}

TEST(ValidatePersonTest, NameLengthInCharacters) {
  v1::Person p = ValidPerson();
  p.mutable_names(0)->set_family_names(std::string(200, 'a'));
  EXPECT_THAT(Violations(p), IsEmpty());
  p.mutable_names(0)->set_family_names(std::string(201, 'a'));
  EXPECT_EQ(OnlyField(p), "person.names[0].family_names");
  // 200 two-byte characters are 400 bytes but 200 characters: allowed.
  std::string umlauts;
  for (int i = 0; i < 200; ++i) umlauts += "ü";
  p.mutable_names(0)->set_family_names(umlauts);
  EXPECT_THAT(Violations(p), IsEmpty());
  // Surrounding spaces are trimmed before counting.
  p.mutable_names(0)->set_family_names("  " + std::string(200, 'a') + " ");
  EXPECT_THAT(Violations(p), IsEmpty());
}

TEST(ValidatePersonTest, TooManyNames) {
  v1::Person p = ValidPerson();
  while (p.names_size() <= kMaxPersonNames) *p.add_names() = p.names(0);
  EXPECT_EQ(OnlyField(p), "person.names");
}

TEST(ValidatePersonTest, OriginalScriptAloneIsValid) {
  v1::Person p = ValidPerson();
  p.mutable_names()->DeleteSubrange(0, 1);
  EXPECT_THAT(Violations(p), IsEmpty());
}

TEST(ValidatePersonTest, RomanizedEntriesAreIgnored) {
  // What the service made and a client sends back is not checked, even if
  // it would not pass (here: text not in the stated script).
  v1::Person p = ValidPerson();
  v1::PersonName* romanized = p.add_names();
  romanized->set_given_names("عبد");
  romanized->set_script("Latn");
  romanized->set_kind(v1::NAME_KIND_ROMANIZED);
  EXPECT_THAT(Violations(p), IsEmpty());
  // Nor does it count as a name or against the limit.
  v1::Person only_romanized;
  *only_romanized.add_names() = *romanized;
  EXPECT_EQ(OnlyField(only_romanized), "person.names");
  v1::Person many = ValidPerson();
  while (many.names_size() < kMaxPersonNames) *many.add_names() = many.names(0);
  *many.add_names() = *romanized;
  EXPECT_THAT(Violations(many), IsEmpty());
}

TEST(AddRomanizedNamesTest, AddsALatinSpellingWhenThereIsNone) {
  v1::Person p;
  v1::PersonName* ukrainian = p.add_names();
  ukrainian->set_given_names("Олександр");
  ukrainian->set_family_names("Шевченко");
  ukrainian->set_script("Cyrl");
  ukrainian->set_kind(v1::NAME_KIND_CURRENT);
  // The same spelling again as birth name: romanised once.
  *p.add_names() = *ukrainian;
  p.mutable_names(1)->set_kind(v1::NAME_KIND_BIRTH);
  p.add_nationality_codes("UA");
  ASSERT_TRUE(AddRomanizedNames(&p).ok());
  ASSERT_EQ(p.names_size(), 3);
  EXPECT_EQ(p.names(2).given_names(), "Oleksandr");
  EXPECT_EQ(p.names(2).family_names(), "Shevchenko");
  EXPECT_EQ(p.names(2).script(), "Latn");
  EXPECT_EQ(p.names(2).kind(), v1::NAME_KIND_ROMANIZED);
  // Made afresh, not added twice.
  ASSERT_TRUE(AddRomanizedNames(&p).ok());
  EXPECT_EQ(p.names_size(), 3);
  // A record with its own Latin name gets none, and loses any it was sent.
  v1::Person latin = ValidPerson();
  *latin.add_names() = p.names(2);
  ASSERT_TRUE(AddRomanizedNames(&latin).ok());
  ASSERT_EQ(latin.names_size(), 2);
  EXPECT_EQ(latin.names(0).given_names(), "Abdul Rahman");
  EXPECT_EQ(latin.names(1).script(), "Arab");
}

TEST(AddRomanizedNamesTest, NationalityChoosesTheRules) {
  v1::Person p;
  v1::PersonName* name = p.add_names();
  name->set_given_names("Григорій");
  name->set_script("Cyrl");
  p.add_nationality_codes("UA");
  ASSERT_TRUE(AddRomanizedNames(&p).ok());
  ASSERT_EQ(p.names_size(), 2);
  EXPECT_EQ(p.names(1).given_names(), "Hryhoriy");
  EXPECT_EQ(p.names(1).family_names(), "");
  p.set_nationality_codes(0, "RU");
  ASSERT_TRUE(AddRomanizedNames(&p).ok());
  ASSERT_EQ(p.names_size(), 2);
  EXPECT_NE(p.names(1).given_names(), "Hryhoriy");
}

TEST(ValidatePersonTest, ScriptChecked) {
  v1::Person p = ValidPerson();
  p.mutable_names(1)->set_script("Cyrl");  // Arabic text, claimed Cyrillic
  EXPECT_THAT(Violations(p), SizeIs(2));
  EXPECT_THAT(Violations(p), Contains(Field(&FieldViolation::field,
                                            "person.names[1].given_names")));
  p = ValidPerson();
  p.mutable_names(1)->set_script("arab");
  EXPECT_EQ(OnlyField(p), "person.names[1].script");
  p = ValidPerson();
  p.mutable_names(0)->set_script("Qqqq");  // unknown
  EXPECT_THAT(Violations(p), ElementsAre(Field(&FieldViolation::field,
                                               "person.names[0].script")));
  p = ValidPerson();
  v1::PersonName* cyrillic = p.add_names();
  cyrillic->set_given_names("Олександр");
  cyrillic->set_family_names("Коваленко");
  cyrillic->set_script("Cyrl");
  EXPECT_THAT(Violations(p), IsEmpty());
}

TEST(ValidatePersonTest, UnknownEnumValues) {
  v1::Person p = ValidPerson();
  p.set_sex(static_cast<v1::Sex>(17));
  EXPECT_EQ(OnlyField(p), "person.sex");
  p = ValidPerson();
  p.mutable_names(0)->set_kind(static_cast<v1::NameKind>(99));
  EXPECT_EQ(OnlyField(p), "person.names[0].kind");
  p = ValidPerson();
  p.set_nationality_status(static_cast<v1::NationalityStatus>(-1));
  EXPECT_EQ(OnlyField(p), "person.nationality_status");
}

TEST(ValidatePersonTest, BirthDates) {
  struct Case {
    int year, month, day;
    bool ok;
  };
  const Case cases[] = {
      {0, 0, 0, true},        // unknown
      {1990, 0, 0, true},     // year only
      {1990, 7, 0, true},     // year and month
      {2000, 2, 29, true},    // leap year (divisible by 400)
      {1996, 2, 29, true},    // leap year
      {1900, 1, 1, true},     // earliest
      {2024, 6, 15, true},    // today
      {2024, 6, 0, true},     // this month
      {2024, 0, 0, true},     // this year
      {1900, 2, 29, false},   // 1900 was not a leap year
      {2023, 2, 29, false},   // not a leap year
      {1990, 4, 31, false},   // April has 30 days
      {1990, 13, 1, false},   // month 13
      {1990, -1, 0, false},   // negative month
      {1990, 1, 32, false},   // day 32
      {1990, 0, 5, false},    // day without month
      {0, 5, 0, false},       // month without year
      {0, 0, 5, false},       // day without year
      {1899, 12, 31, false},  // before 1900
      {2024, 6, 16, false},   // tomorrow
      {2024, 7, 0, false},    // next month
      {2025, 0, 0, false},    // next year
      {10000, 1, 1, false},   // out of range
  };
  for (const Case& c : cases) {
    v1::Person p = ValidPerson();
    p.mutable_birth_date()->set_year(c.year);
    p.mutable_birth_date()->set_month(c.month);
    p.mutable_birth_date()->set_day(c.day);
    SCOPED_TRACE(absl::StrCat(c.year, "-", c.month, "-", c.day));
    if (c.ok) {
      EXPECT_THAT(Violations(p), IsEmpty());
    } else {
      EXPECT_EQ(OnlyField(p), "person.birth_date");
    }
  }
}

TEST(ValidatePersonTest, Nationalities) {
  v1::Person p = ValidPerson();
  p.set_nationality_codes(0, "SYR");  // alpha-3: the contract wants alpha-2
  EXPECT_EQ(OnlyField(p), "person.nationality_codes[0]");
  p.set_nationality_codes(0, "sy");
  EXPECT_EQ(OnlyField(p), "person.nationality_codes[0]");
  p.set_nationality_codes(0, "QQ");  // not assigned
  EXPECT_EQ(OnlyField(p), "person.nationality_codes[0]");
  p.set_nationality_codes(0, "XK");  // Kosovo, as German registers write it
  EXPECT_THAT(Violations(p), IsEmpty());
  p.add_nationality_codes("XK");
  EXPECT_EQ(OnlyField(p), "person.nationality_codes[1]");

  p = ValidPerson();
  p.clear_nationality_codes();
  for (const char* code :
       {"SY", "IQ", "AF", "ER", "UA", "TR", "IR", "DE", "FR", "IT", "ES"}) {
    p.add_nationality_codes(code);
  }
  EXPECT_EQ(OnlyField(p), "person.nationality_codes");

  p = ValidPerson();
  p.set_nationality_status(v1::NATIONALITY_STATUS_STATELESS);
  EXPECT_EQ(OnlyField(p), "person.nationality_codes");
  p.clear_nationality_codes();
  EXPECT_THAT(Violations(p), IsEmpty());
  p.set_nationality_status(v1::NATIONALITY_STATUS_KNOWN);
  EXPECT_EQ(OnlyField(p), "person.nationality_codes");
}

TEST(ValidatePersonTest, BirthCountry) {
  v1::Person p = ValidPerson();
  p.set_birth_country_code("Syria");
  EXPECT_EQ(OnlyField(p), "person.birth_country_code");
  p.set_birth_country_code("");
  EXPECT_THAT(Violations(p), IsEmpty());
}

TEST(ValidatePersonTest, BirthPlaceLength) {
  v1::Person p = ValidPerson();
  p.set_birth_place(std::string(201, 'x'));
  EXPECT_EQ(OnlyField(p), "person.birth_place");
}

TEST(ValidatePersonTest, Contact) {
  v1::Person p = ValidPerson();
  p.mutable_contact()->set_phone_numbers(0, "0151 12345678");
  EXPECT_EQ(OnlyField(p), "person.contact.phone_numbers[0]");
  p = ValidPerson();
  p.mutable_contact()->set_phone_numbers(0, "+49151123456789012");  // > 15
  EXPECT_EQ(OnlyField(p), "person.contact.phone_numbers[0]");
  p = ValidPerson();
  for (int i = 0; i < kMaxPhoneNumbers; ++i) {
    p.mutable_contact()->add_phone_numbers("+4930123456");
  }
  EXPECT_EQ(OnlyField(p), "person.contact.phone_numbers");
  for (const char* bad : {"no-at-sign", "two@@example.org", "a@localhost",
                          "a b@example.org", "@example.org", "a@-x.org"}) {
    p = ValidPerson();
    p.mutable_contact()->set_email(bad);
    SCOPED_TRACE(bad);
    EXPECT_EQ(OnlyField(p), "person.contact.email");
  }
  p = ValidPerson();
  p.mutable_contact()->set_email(std::string(250, 'a') + "@x.de");
  EXPECT_EQ(OnlyField(p), "person.contact.email");
  p = ValidPerson();
  p.mutable_contact()->mutable_address()->set_postal_code("4021");
  EXPECT_EQ(OnlyField(p), "person.contact.address.postal_code");
  p = ValidPerson();
  p.mutable_contact()->mutable_address()->clear_locality();
  EXPECT_EQ(OnlyField(p), "person.contact.address.locality");
  p = ValidPerson();
  p.mutable_contact()->mutable_address()->set_street(std::string(201, 's'));
  EXPECT_EQ(OnlyField(p), "person.contact.address.street");
  p = ValidPerson();
  p.mutable_contact()->mutable_address()->set_extra_line("c/o\tX");
  EXPECT_EQ(OnlyField(p), "person.contact.address.extra_line");
  p = ValidPerson();
  p.mutable_contact()->mutable_address()->set_municipality_code("5111000");
  EXPECT_EQ(OnlyField(p), "person.contact.address.municipality_code");
  p = ValidPerson();
  p.mutable_contact()->mutable_address()->set_country_code("AT");
  p.mutable_contact()->mutable_address()->set_postal_code("1010");
  EXPECT_THAT(Violations(p), IsEmpty());  // five digits only for Germany
}

TEST(ValidatePersonTest, ReportsEveryBadFieldAtOnce) {
  v1::Person p = ValidPerson();
  p.mutable_names(0)->set_family_names(std::string(300, 'a'));
  p.set_sex(static_cast<v1::Sex>(9));
  p.mutable_birth_date()->set_month(14);
  p.mutable_contact()->set_email("x");
  EXPECT_THAT(Violations(p), SizeIs(4));
}

TEST(ValidatePersonTest, DescriptionsDoNotQuoteValues) {
  v1::Person p = ValidPerson();
  p.mutable_names(0)->set_family_names("Secretname\x01");
  for (const FieldViolation& v : Violations(p)) {
    EXPECT_EQ(v.description.find("Secretname"), std::string::npos);
  }
}

TEST(ApplyPersonUpdateTest, AppliesAndValidatesOnlyMaskedFields) {
  v1::Person stored = ValidPerson();
  v1::Person patch;
  patch.set_birth_place("Damascus");
  patch.set_sex(static_cast<v1::Sex>(42));  // not in the mask: ignored
  FieldViolations v;
  ApplyPersonUpdate(patch, {"birth_place"}, "person", kToday, &stored, &v);
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(stored.birth_place(), "Damascus");
  EXPECT_EQ(stored.sex(), v1::SEX_MALE);
}

TEST(ApplyPersonUpdateTest, RejectsBadPathsAndValues) {
  v1::Person stored = ValidPerson();
  v1::Person patch;
  patch.mutable_birth_date()->set_year(2030);
  FieldViolations v;
  ApplyPersonUpdate(patch, {"birth_date", "etag", "name"}, "person", kToday,
                    &stored, &v);
  std::vector<std::string> fields;
  for (const FieldViolation& f : v.violations()) fields.push_back(f.field);
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("person.birth_date",
                                                      "update_mask.paths[1]",
                                                      "update_mask.paths[2]"));
  FieldViolations empty_mask;
  ApplyPersonUpdate(patch, {}, "person", kToday, &stored, &empty_mask);
  EXPECT_THAT(empty_mask.violations(),
              ElementsAre(Field(&FieldViolation::field, "update_mask")));
}

TEST(ApplyPersonUpdateTest, NationalityStatusAndCodesMustAgree) {
  v1::Person stored = ValidPerson();
  v1::Person patch;
  patch.set_nationality_status(v1::NATIONALITY_STATUS_STATELESS);
  FieldViolations v;
  ApplyPersonUpdate(patch, {"nationality_status"}, "person", kToday, &stored,
                    &v);
  EXPECT_FALSE(v.empty());
  stored = ValidPerson();
  FieldViolations ok;
  ApplyPersonUpdate(patch, {"nationality_status", "nationality_codes"},
                    "person", kToday, &stored, &ok);
  EXPECT_TRUE(ok.empty());
  EXPECT_EQ(stored.nationality_codes_size(), 0);
}

TEST(MatchRecordTest, MapsAllSpellingsAndBirthData) {
  const MatchRecord r = ToMatchRecord(ValidPerson());
  ASSERT_THAT(r.names.spellings, SizeIs(2));
  EXPECT_EQ(r.names.spellings[0].given_names, "Abdul Rahman");
  EXPECT_EQ(r.names.spellings[1].family_names, "الحسن");
  EXPECT_EQ(r.birth_date.year, 1990);
  EXPECT_EQ(r.birth_date.month, 7);
  EXPECT_EQ(r.birth_date.day, 14);
  EXPECT_EQ(r.birth_place, "Aleppo");
  EXPECT_EQ(r.sex, RecordedSex::kMale);
  EXPECT_THAT(r.nationality_codes, ElementsAre("SY"));
}

TEST(MatchRecordTest, SearchRecordSplitsWords) {
  const MatchRecord r = SearchRecord("Muhammad  Al Hassan", {});
  ASSERT_THAT(r.names.spellings, SizeIs(2));
  EXPECT_EQ(r.names.spellings[0].given_names, "Muhammad");
  EXPECT_EQ(r.names.spellings[0].family_names, "Al Hassan");
  EXPECT_EQ(r.names.spellings[1].given_names, "Muhammad Al");
  EXPECT_EQ(r.names.spellings[1].family_names, "Hassan");
  const MatchRecord one = SearchRecord("Oleksandr", {});
  ASSERT_THAT(one.names.spellings, SizeIs(1));
  EXPECT_EQ(one.names.spellings[0].family_names, "");
}

TEST(PersonIdTest, NamesAndIds) {
  FieldViolations v;
  const std::string id = "abcdefghijklmnopqrstuvwxyz";
  EXPECT_EQ(ParsePersonName(PersonResourceName(id), "name", &v), id);
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(ParsePersonName("persons/1/x", "name", &v), "");
  EXPECT_EQ(ParsePersonName("agencies/" + id, "name", &v), "");
  EXPECT_EQ(ParsePersonName("", "name", &v), "");
  EXPECT_THAT(v.violations(), SizeIs(3));
}

TEST(AgencyIdTest, NormalisationAndValidation) {
  EXPECT_EQ(NormalizeAgencyIdValue(" ab 12-c "), "AB12-C");
  FieldViolations v;
  ValidateAgencyIdInput(v1::AGENCY_ID_KIND_AZR_NUMBER, "123 456", "kind",
                        "value", &v);
  EXPECT_TRUE(v.empty());
  ValidateAgencyIdInput(v1::AGENCY_ID_KIND_UNSPECIFIED, "1", "kind", "value",
                        &v);
  ValidateAgencyIdInput(77, "1", "kind", "value", &v);
  ValidateAgencyIdInput(v1::AGENCY_ID_KIND_OTHER, "   ", "kind", "value", &v);
  ValidateAgencyIdInput(v1::AGENCY_ID_KIND_OTHER, std::string(65, '1'), "kind",
                        "value", &v);
  ValidateAgencyIdInput(v1::AGENCY_ID_KIND_OTHER, "a\x01", "kind", "value", &v);
  ValidateAgencyIdInput(v1::AGENCY_ID_KIND_OTHER, "\xFF", "kind", "value", &v);
  EXPECT_THAT(v.violations(), SizeIs(6));
  EXPECT_TRUE(IsNationalAgencyIdKind(v1::AGENCY_ID_KIND_AZR_NUMBER));
  EXPECT_FALSE(
      IsNationalAgencyIdKind(v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER));
}

TEST(AgencyIdTest, OnlyTheIssuingDomainsLinkAKind) {
  EXPECT_TRUE(MayLinkAgencyIdKind(v1::AGENCY_ID_KIND_AZR_NUMBER, "BAMF"));
  EXPECT_FALSE(MayLinkAgencyIdKind(v1::AGENCY_ID_KIND_AZR_NUMBER, "KOMMUNE"));
  EXPECT_TRUE(MayLinkAgencyIdKind(v1::AGENCY_ID_KIND_MUNICIPAL_FILE_NUMBER,
                                  "JUGENDAMT"));
  EXPECT_FALSE(MayLinkAgencyIdKind(
      v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER, "ARBEITSAGENTUR"));
  EXPECT_TRUE(MayLinkAgencyIdKind(v1::AGENCY_ID_KIND_OTHER, "KURSTRAEGER"));
  EXPECT_FALSE(MayLinkAgencyIdKind(v1::AGENCY_ID_KIND_OTHER, "ADMINISTRATION"));
  EXPECT_FALSE(MayLinkAgencyIdKind(v1::AGENCY_ID_KIND_UNSPECIFIED, "BAMF"));
}

}  // namespace
}  // namespace lotse::identity
