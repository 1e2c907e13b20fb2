#include "services/identity/domain/person.h"

#include <unicode/uchar.h>
#include <unicode/uloc.h>
#include <unicode/uscript.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api/names.h"
#include "common/api/text.h"
#include "services/identity/domain/agency.h"
#include "services/identity/domain/romanization.h"

namespace lotse::identity {
namespace {

using ::lotse::type::v1::PartialDate;

// Free text of the record: valid UTF-8, no control characters, at most
// `max_chars` after trimming; `required` refuses empty and blank values.
// Returns true when the value passed.
bool CheckText(absl::string_view text, const std::string& field,
               size_t max_chars, bool required, FieldViolations* violations) {
  api::TextRules rules;
  rules.min_chars = required ? 1 : 0;
  rules.max_chars = max_chars;
  // The contract counts "after trimming": surrounding spaces a form added
  // do not push a name over the limit. Control characters are checked on
  // the untrimmed text, so a trailing tab or newline is still refused.
  if (api::IsValidUtf8(text) && !api::ContainsControlCharacters(text)) {
    text = absl::StripAsciiWhitespace(text);
  }
  return api::ValidateText(text, field, rules, violations);
}

bool IsUpperAlpha(absl::string_view code, size_t len) {
  return code.size() == len &&
         std::all_of(code.begin(), code.end(),
                     [](char c) { return c >= 'A' && c <= 'Z'; });
}

// The ISO 3166-1 alpha-2 codes ICU knows (currently assigned ones), plus
// "XK", the code German registers use for Kosovo.
const absl::flat_hash_set<std::string>& CountryCodes() {
  static const auto* const codes = [] {
    auto* set = new absl::flat_hash_set<std::string>();
    for (const char* const* c = uloc_getISOCountries(); *c != nullptr; ++c) {
      set->insert(*c);
    }
    set->insert("XK");
    return set;
  }();
  return *codes;
}

// Adds a violation unless `code` is an assigned ISO 3166-1 alpha-2 code in
// upper case. Empty is accepted when `optional`.
void CheckCountryCode(absl::string_view code, const std::string& field,
                      bool optional, FieldViolations* violations) {
  if (code.empty()) {
    if (!optional) violations->Add(field, "is required");
    return;
  }
  if (!IsUpperAlpha(code, 2)) {
    violations->Add(field,
                    "must be an ISO 3166-1 alpha-2 code in upper case, "
                    "e.g. \"SY\"");
    return;
  }
  if (!CountryCodes().contains(std::string(code))) {
    violations->Add(field, "is not an assigned ISO 3166-1 alpha-2 code");
  }
}

bool IsLeapYear(int year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
  if (month == 2 && IsLeapYear(year)) return 29;
  return kDays[month - 1];
}

// The script code's ICU value, or USCRIPT_INVALID_CODE when `script` is not
// an ISO 15924 code of the form "Xxxx".
UScriptCode ParseScript(absl::string_view script) {
  if (script.size() != 4 || !absl::ascii_isupper(script[0]) ||
      !std::all_of(script.begin() + 1, script.end(),
                   [](char c) { return absl::ascii_islower(c); })) {
    return USCRIPT_INVALID_CODE;
  }
  const std::string code(script);
  const int value = u_getPropertyValueEnum(UCHAR_SCRIPT, code.c_str());
  if (value == UCHAR_INVALID_CODE) return USCRIPT_INVALID_CODE;
  return static_cast<UScriptCode>(value);
}

// True when every letter of `text` (valid UTF-8) belongs to `script`.
// Digits, spaces, punctuation (Common) and combining marks (Inherited) go
// with any script; Script_Extensions lets shared characters such as the
// Arabic comma count for each script that uses them.
bool IsInScript(absl::string_view text, UScriptCode script) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t length = static_cast<int32_t>(text.size());
  int32_t i = 0;
  while (i < length) {
    UChar32 cp;
    U8_NEXT(bytes, i, length, cp);
    if (cp < 0) return false;
    UErrorCode error = U_ZERO_ERROR;
    const UScriptCode own = uscript_getScript(cp, &error);
    if (U_FAILURE(error)) return false;
    if (own == USCRIPT_COMMON || own == USCRIPT_INHERITED) continue;
    if (!uscript_hasScript(cp, script)) return false;
  }
  return true;
}

void ValidateName(const v1::PersonName& name, const std::string& field,
                  FieldViolations* violations) {
  const std::string given_field = absl::StrCat(field, ".given_names");
  const std::string family_field = absl::StrCat(field, ".family_names");
  const bool given_ok = CheckText(name.given_names(), given_field,
                                  kMaxNameChars, false, violations);
  const bool family_ok = CheckText(name.family_names(), family_field,
                                   kMaxNameChars, false, violations);
  const bool given_blank =
      absl::StripAsciiWhitespace(name.given_names()).empty();
  const bool family_blank =
      absl::StripAsciiWhitespace(name.family_names()).empty();
  if (given_ok && family_ok && given_blank && family_blank) {
    violations->Add(family_field,
                    "is required when given_names is empty (a name needs "
                    "given or family names)");
  }
  if (!v1::NameKind_IsValid(name.kind())) {
    violations->Add(absl::StrCat(field, ".kind"), "is not a known NameKind");
  }
  const absl::string_view script_code =
      name.script().empty() ? absl::string_view("Latn") : name.script();
  const UScriptCode script = ParseScript(script_code);
  if (script == USCRIPT_INVALID_CODE) {
    violations->Add(absl::StrCat(field, ".script"),
                    "must be an ISO 15924 script code such as \"Latn\", "
                    "\"Arab\", \"Cyrl\" or \"Ethi\"");
    return;
  }
  if (given_ok && !IsInScript(name.given_names(), script)) {
    violations->Add(given_field, "is not written in the stated script");
  }
  if (family_ok && !IsInScript(name.family_names(), script)) {
    violations->Add(family_field, "is not written in the stated script");
  }
}

void ValidateNames(const v1::Person& person, const std::string& prefix,
                   FieldViolations* violations) {
  const std::string field = absl::StrCat(prefix, ".names");
  // Romanised entries are the service's own output: a client that sends
  // back a record it read must not fail on them, so they are skipped here
  // and made afresh by AddRomanizedNames.
  const int supplied = static_cast<int>(
      std::count_if(person.names().begin(), person.names().end(),
                    [](const v1::PersonName& name) {
                      return name.kind() != v1::NAME_KIND_ROMANIZED;
                    }));
  if (supplied == 0) {
    violations->Add(field,
                    "is required (at least one name; entries of kind "
                    "ROMANIZED are made by the service and do not count)");
    return;
  }
  if (supplied > kMaxPersonNames) {
    violations->Add(field, absl::StrCat("must have at most ", kMaxPersonNames,
                                        " entries besides ROMANIZED ones"));
    return;
  }
  for (int i = 0; i < person.names_size(); ++i) {
    if (person.names(i).kind() == v1::NAME_KIND_ROMANIZED) continue;
    ValidateName(person.names(i), absl::StrCat(field, "[", i, "]"), violations);
  }
}

bool IsLatinName(const v1::PersonName& name) {
  return name.script().empty() || name.script() == "Latn";
}

void ValidateBirthPlace(const v1::Person& person, const std::string& prefix,
                        FieldViolations* violations) {
  CheckText(person.birth_place(), absl::StrCat(prefix, ".birth_place"),
            kMaxNameChars, false, violations);
}

void ValidateBirthCountry(const v1::Person& person, const std::string& prefix,
                          FieldViolations* violations) {
  CheckCountryCode(person.birth_country_code(),
                   absl::StrCat(prefix, ".birth_country_code"), true,
                   violations);
}

void ValidateSex(const v1::Person& person, const std::string& prefix,
                 FieldViolations* violations) {
  if (!v1::Sex_IsValid(person.sex())) {
    violations->Add(absl::StrCat(prefix, ".sex"), "is not a known Sex");
  }
}

void ValidateNationalityCodes(const v1::Person& person,
                              const std::string& prefix,
                              FieldViolations* violations) {
  const std::string field = absl::StrCat(prefix, ".nationality_codes");
  if (person.nationality_codes_size() > kMaxNationalities) {
    violations->Add(field, absl::StrCat("must have at most ", kMaxNationalities,
                                        " entries"));
    return;
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < person.nationality_codes_size(); ++i) {
    const std::string& code = person.nationality_codes(i);
    const std::string item = absl::StrCat(field, "[", i, "]");
    CheckCountryCode(code, item, false, violations);
    if (!code.empty() && !seen.insert(code).second) {
      violations->Add(item, "repeats an earlier entry");
    }
  }
}

void ValidateNationalityStatus(const v1::Person& person,
                               const std::string& prefix,
                               FieldViolations* violations) {
  const std::string field = absl::StrCat(prefix, ".nationality_status");
  if (!v1::NationalityStatus_IsValid(person.nationality_status())) {
    violations->Add(field, "is not a known NationalityStatus");
    return;
  }
  switch (person.nationality_status()) {
    case v1::NATIONALITY_STATUS_KNOWN:
      if (person.nationality_codes_size() == 0) {
        violations->Add(absl::StrCat(prefix, ".nationality_codes"),
                        "is required when nationality_status is KNOWN");
      }
      break;
    case v1::NATIONALITY_STATUS_STATELESS:
    case v1::NATIONALITY_STATUS_UNCLARIFIED:
      if (person.nationality_codes_size() > 0) {
        violations->Add(absl::StrCat(prefix, ".nationality_codes"),
                        "must be empty when nationality_status is STATELESS "
                        "or UNCLARIFIED");
      }
      break;
    default:
      break;
  }
}

bool AllDigits(absl::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isdigit(c); });
}

void ValidateAddress(const lotse::type::v1::Address& address,
                     const std::string& field, FieldViolations* violations) {
  auto line = [&](absl::string_view value, absl::string_view name,
                  bool required) {
    return CheckText(value, absl::StrCat(field, ".", name), kMaxNameChars,
                     required, violations);
  };
  line(address.street(), "street", false);
  line(address.house_number(), "house_number", false);
  line(address.extra_line(), "extra_line", false);
  line(address.locality(), "locality", true);
  const bool postal_ok = line(address.postal_code(), "postal_code", true);
  CheckCountryCode(address.country_code(), absl::StrCat(field, ".country_code"),
                   true, violations);
  const bool germany =
      address.country_code().empty() || address.country_code() == "DE";
  if (postal_ok && germany &&
      !(address.postal_code().size() == 5 &&
        AllDigits(address.postal_code()))) {
    violations->Add(absl::StrCat(field, ".postal_code"),
                    "must be five digits for an address in Germany");
  }
  if (!address.municipality_code().empty() &&
      !(address.municipality_code().size() == 8 &&
        AllDigits(address.municipality_code()))) {
    violations->Add(absl::StrCat(field, ".municipality_code"),
                    "must be an official municipality key of eight digits");
  }
}

// E.164: "+", a country code not starting with 0, at most 15 digits.
bool IsE164(absl::string_view phone) {
  return phone.size() >= 3 && phone.size() <= 16 && phone[0] == '+' &&
         phone[1] >= '1' && phone[1] <= '9' && AllDigits(phone.substr(1));
}

// A deliberately loose address check: one "@", a non-empty local part of
// at most 64 characters, a domain of dot-separated labels. Deliverability
// is not ours to judge; the point is to keep garbage and control
// characters out of the record.
bool IsPlausibleEmail(absl::string_view email) {
  const size_t at = email.find('@');
  if (at == absl::string_view::npos || at == 0 || at > 64 ||
      email.find('@', at + 1) != absl::string_view::npos) {
    return false;
  }
  for (char c : email) {
    if (c == ' ' || c == ',' || c == ';' || c == '<' || c == '>') return false;
  }
  const absl::string_view domain = email.substr(at + 1);
  if (domain.find('.') == absl::string_view::npos) return false;
  for (absl::string_view label : absl::StrSplit(domain, '.')) {
    if (label.empty() || label.front() == '-' || label.back() == '-') {
      return false;
    }
  }
  return true;
}

void ValidateContactAddress(const v1::ContactData& contact,
                            const std::string& field,
                            FieldViolations* violations) {
  if (contact.has_address()) {
    ValidateAddress(contact.address(), absl::StrCat(field, ".address"),
                    violations);
  }
}

void ValidateContactPhones(const v1::ContactData& contact,
                           const std::string& field,
                           FieldViolations* violations) {
  const std::string phones = absl::StrCat(field, ".phone_numbers");
  if (contact.phone_numbers_size() > kMaxPhoneNumbers) {
    violations->Add(phones, absl::StrCat("must have at most ", kMaxPhoneNumbers,
                                         " entries"));
    return;
  }
  for (int i = 0; i < contact.phone_numbers_size(); ++i) {
    if (!IsE164(contact.phone_numbers(i))) {
      violations->Add(absl::StrCat(phones, "[", i, "]"),
                      "must be in E.164 format, e.g. \"+4915112345678\"");
    }
  }
}

void ValidateContactEmail(const v1::ContactData& contact,
                          const std::string& field,
                          FieldViolations* violations) {
  if (contact.email().empty()) return;
  const std::string email = absl::StrCat(field, ".email");
  if (CheckText(contact.email(), email, kMaxEmailChars, false, violations) &&
      !IsPlausibleEmail(contact.email())) {
    violations->Add(email, "is not an e-mail address");
  }
}

void ValidateContact(const v1::Person& person, const std::string& prefix,
                     FieldViolations* violations) {
  const std::string field = absl::StrCat(prefix, ".contact");
  ValidateContactAddress(person.contact(), field, violations);
  ValidateContactPhones(person.contact(), field, violations);
  ValidateContactEmail(person.contact(), field, violations);
}

BirthDate ToBirthDate(const PartialDate& date) {
  return BirthDate{date.year(), date.month(), date.day()};
}

}  // namespace

void ValidateBirthDate(const PartialDate& date, const std::string& field,
                       absl::CivilDay today, FieldViolations* violations) {
  const int year = date.year();
  const int month = date.month();
  const int day = date.day();
  if (year == 0 && month == 0 && day == 0) return;  // unknown
  if (year == 0) {
    violations->Add(field, "has a month or day but no year");
    return;
  }
  if (month == 0 && day != 0) {
    violations->Add(field, "has a day but no month");
    return;
  }
  if (year < kMinBirthYear || year > 9999) {
    violations->Add(field, absl::StrCat("year must be ", kMinBirthYear,
                                        "..9999, or 0 when unknown"));
    return;
  }
  if (month < 0 || month > 12) {
    violations->Add(field, "month must be 1..12, or 0 when unknown");
    return;
  }
  if (day < 0 || (month != 0 && day > DaysInMonth(year, month))) {
    violations->Add(field, "day does not exist in that month");
    return;
  }
  // Compare only as far as the date is known: a year-only date in the
  // current year is not in the future.
  const bool future =
      year > today.year() || (year == today.year() && month > today.month()) ||
      (year == today.year() && month == today.month() && day > today.day());
  if (future) violations->Add(field, "must not be in the future");
}

void ValidatePerson(const v1::Person& person, const std::string& prefix,
                    absl::CivilDay today, FieldViolations* violations) {
  ValidateNames(person, prefix, violations);
  ValidateBirthDate(person.birth_date(), absl::StrCat(prefix, ".birth_date"),
                    today, violations);
  ValidateBirthPlace(person, prefix, violations);
  ValidateBirthCountry(person, prefix, violations);
  ValidateSex(person, prefix, violations);
  ValidateNationalityCodes(person, prefix, violations);
  ValidateNationalityStatus(person, prefix, violations);
  ValidateContact(person, prefix, violations);
}

bool IsUpdatablePersonPath(absl::string_view path) {
  static constexpr absl::string_view kPaths[] = {
      "names",
      "birth_date",
      "birth_place",
      "birth_country_code",
      "sex",
      "nationality_codes",
      "nationality_status",
      "contact",
      "contact.address",
      "contact.phone_numbers",
      "contact.email",
  };
  return std::find(std::begin(kPaths), std::end(kPaths), path) !=
         std::end(kPaths);
}

void ApplyPersonUpdate(const v1::Person& patch,
                       const std::vector<std::string>& paths,
                       const std::string& prefix, absl::CivilDay today,
                       v1::Person* target, FieldViolations* violations) {
  if (paths.empty()) {
    violations->Add("update_mask", "is required");
    return;
  }
  bool nationality_touched = false;
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string& path = paths[i];
    if (!IsUpdatablePersonPath(path)) {
      violations->Add(absl::StrCat("update_mask.paths[", i, "]"),
                      "is not a field UpdatePerson can change");
      continue;
    }
    const std::string contact = absl::StrCat(prefix, ".contact");
    if (path == "names") {
      ValidateNames(patch, prefix, violations);
      *target->mutable_names() = patch.names();
    } else if (path == "birth_date") {
      ValidateBirthDate(patch.birth_date(), absl::StrCat(prefix, ".birth_date"),
                        today, violations);
      *target->mutable_birth_date() = patch.birth_date();
    } else if (path == "birth_place") {
      ValidateBirthPlace(patch, prefix, violations);
      target->set_birth_place(patch.birth_place());
    } else if (path == "birth_country_code") {
      ValidateBirthCountry(patch, prefix, violations);
      target->set_birth_country_code(patch.birth_country_code());
    } else if (path == "sex") {
      ValidateSex(patch, prefix, violations);
      target->set_sex(patch.sex());
    } else if (path == "nationality_codes") {
      ValidateNationalityCodes(patch, prefix, violations);
      *target->mutable_nationality_codes() = patch.nationality_codes();
      nationality_touched = true;
    } else if (path == "nationality_status") {
      target->set_nationality_status(patch.nationality_status());
      nationality_touched = true;
    } else if (path == "contact") {
      ValidateContact(patch, prefix, violations);
      *target->mutable_contact() = patch.contact();
    } else if (path == "contact.address") {
      ValidateContactAddress(patch.contact(), contact, violations);
      if (patch.contact().has_address()) {
        *target->mutable_contact()->mutable_address() =
            patch.contact().address();
      } else {
        target->mutable_contact()->clear_address();
      }
    } else if (path == "contact.phone_numbers") {
      ValidateContactPhones(patch.contact(), contact, violations);
      *target->mutable_contact()->mutable_phone_numbers() =
          patch.contact().phone_numbers();
    } else if (path == "contact.email") {
      ValidateContactEmail(patch.contact(), contact, violations);
      target->mutable_contact()->set_email(patch.contact().email());
    }
  }
  // Status and codes must agree in the result, whichever of them changed.
  if (nationality_touched) {
    ValidateNationalityStatus(*target, prefix, violations);
  }
}

absl::Status AddRomanizedNames(v1::Person* person) {
  google::protobuf::RepeatedPtrField<v1::PersonName> supplied;
  for (v1::PersonName& name : *person->mutable_names()) {
    if (name.kind() != v1::NAME_KIND_ROMANIZED) {
      *supplied.Add() = std::move(name);
    }
  }
  person->mutable_names()->Swap(&supplied);
  if (std::any_of(person->names().begin(), person->names().end(),
                  IsLatinName)) {
    return absl::OkStatus();
  }
  const std::vector<std::string> nationalities(
      person->nationality_codes().begin(), person->nationality_codes().end());
  absl::flat_hash_set<std::pair<std::string, std::string>> seen;
  const int originals = person->names_size();
  for (int i = 0; i < originals; ++i) {
    const v1::PersonName original = person->names(i);
    absl::StatusOr<std::string> given =
        RomanizeName(original.given_names(), original.script(), nationalities);
    if (!given.ok()) return given.status();
    absl::StatusOr<std::string> family =
        RomanizeName(original.family_names(), original.script(), nationalities);
    if (!family.ok()) return family.status();
    if (given->empty() && family->empty()) continue;
    // Two spellings of one name (a birth name equal to the current one)
    // romanise alike; one Latin entry says it.
    if (!seen.emplace(*given, *family).second) continue;
    v1::PersonName* romanized = person->add_names();
    romanized->set_given_names(*std::move(given));
    romanized->set_family_names(*std::move(family));
    romanized->set_script("Latn");
    romanized->set_kind(v1::NAME_KIND_ROMANIZED);
  }
  return absl::OkStatus();
}

MatchRecord ToMatchRecord(const v1::Person& person) {
  MatchRecord record;
  for (const v1::PersonName& name : person.names()) {
    record.names.spellings.push_back(
        NameSpelling{name.given_names(), name.family_names()});
  }
  record.birth_date = ToBirthDate(person.birth_date());
  record.birth_place = person.birth_place();
  record.nationality_codes.assign(person.nationality_codes().begin(),
                                  person.nationality_codes().end());
  record.sex = v1::Sex_IsValid(person.sex())
                   ? static_cast<RecordedSex>(person.sex())
                   : RecordedSex::kUnspecified;
  return record;
}

MatchRecord SearchRecord(absl::string_view name_query,
                         const PartialDate& birth_date) {
  // Bounded: a query of many words would otherwise multiply the lookups.
  constexpr size_t kMaxWords = 8;
  std::vector<std::string> words =
      absl::StrSplit(name_query, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (words.size() > kMaxWords) words.resize(kMaxWords);
  MatchRecord record;
  record.birth_date = ToBirthDate(birth_date);
  if (words.size() == 1) {
    record.names.spellings.push_back(NameSpelling{words[0], ""});
  }
  for (size_t split = 1; split < words.size(); ++split) {
    std::vector<std::string> given(words.begin(), words.begin() + split);
    std::vector<std::string> family(words.begin() + split, words.end());
    record.names.spellings.push_back(
        NameSpelling{absl::StrJoin(given, " "), absl::StrJoin(family, " ")});
  }
  return record;
}

std::string PersonResourceName(absl::string_view id) {
  return absl::StrCat("persons/", id);
}

std::string ParsePersonName(absl::string_view name, const std::string& field,
                            FieldViolations* violations) {
  return api::ParseNameId(name, api::kPersonName, field, violations);
}

std::string NormalizeAgencyIdValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == ' ') continue;
    out.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

void ValidateAgencyIdInput(int kind, absl::string_view value,
                           const std::string& kind_field,
                           const std::string& value_field,
                           FieldViolations* violations) {
  if (kind == v1::AGENCY_ID_KIND_UNSPECIFIED) {
    violations->Add(kind_field, "is required");
  } else if (!v1::AgencyIdKind_IsValid(kind)) {
    violations->Add(kind_field, "is not a known AgencyIdKind");
  }
  if (!api::IsValidUtf8(value)) {
    violations->Add(value_field, "must be valid UTF-8");
    return;
  }
  api::TextRules rules;
  rules.max_chars = kMaxAgencyIdValueChars;
  api::ValidateText(NormalizeAgencyIdValue(value), value_field, rules,
                    violations);
}

bool IsNationalAgencyIdKind(v1::AgencyIdKind kind) {
  return kind == v1::AGENCY_ID_KIND_AZR_NUMBER ||
         kind == v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER ||
         kind == v1::AGENCY_ID_KIND_BAMF_FILE_NUMBER;
}

bool MayLinkAgencyIdKind(v1::AgencyIdKind kind,
                         absl::string_view legal_domain) {
  auto any_of = [&](std::initializer_list<absl::string_view> domains) {
    return std::find(domains.begin(), domains.end(), legal_domain) !=
           domains.end();
  };
  switch (kind) {
    case v1::AGENCY_ID_KIND_AZR_NUMBER:
      return any_of({"AUSLAENDERBEHOERDE", "BAMF"});
    case v1::AGENCY_ID_KIND_BA_CUSTOMER_NUMBER:
      return any_of({"ARBEITSAGENTUR", "JOBCENTER"});
    case v1::AGENCY_ID_KIND_JOBCENTER_COMMUNITY_NUMBER:
      return any_of({"JOBCENTER"});
    case v1::AGENCY_ID_KIND_COURSE_PARTICIPANT_NUMBER:
      return any_of({"KURSTRAEGER"});
    case v1::AGENCY_ID_KIND_BAMF_FILE_NUMBER:
      return any_of({"BAMF"});
    case v1::AGENCY_ID_KIND_IMMIGRATION_FILE_NUMBER:
      return any_of({"AUSLAENDERBEHOERDE"});
    case v1::AGENCY_ID_KIND_MUNICIPAL_FILE_NUMBER:
      return any_of({"KOMMUNE", "JUGENDAMT", "SOZIALAMT"});
    case v1::AGENCY_ID_KIND_OTHER:
      return legal_domain != kAdministrationDomain;
    default:
      return false;
  }
}

}  // namespace lotse::identity
