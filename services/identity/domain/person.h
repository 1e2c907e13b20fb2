// The person record's rules (contract in
// proto/lotse/identity/v1/person.proto): which client-supplied values are
// acceptable, how a person maps to the duplicate matcher's MatchRecord, and
// the small value rules of person ids and agency-specific ids.
//
// The domain works directly on the generated lotse.identity.v1.Person
// message rather than on a parallel C++ struct: the record is nested
// (names, address, phone numbers), is stored as serialized proto bytes, and
// crosses the API unchanged, so a mirror struct would only add a second
// schema and two mappings to keep in step with the contract.
//
// Validators add one field violation per bad field (paths like
// "person.names[0].family_names") and never stop at the first, so a client
// learns all of them from one call. Descriptions never quote the value: it
// is personal data.
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_PERSON_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_PERSON_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "common/errors/status.h"
#include "lotse/identity/v1/person.pb.h"
#include "lotse/type/v1/date.pb.h"
#include "services/identity/domain/name_matching.h"

namespace lotse::identity {

inline constexpr int kMaxPersonNames = 20;
inline constexpr int kMaxNationalities = 10;
inline constexpr int kMaxPhoneNumbers = 5;
// Name fields, birth place and address lines, in characters (code points).
inline constexpr size_t kMaxNameChars = 200;
inline constexpr size_t kMaxEmailChars = 254;
inline constexpr size_t kMaxAgencyIdValueChars = 64;
inline constexpr int kMinBirthYear = 1900;

// Validates the client-supplied fields of `person` (names, birth_date,
// birth_place, birth_country_code, sex, nationality_codes,
// nationality_status, contact); output-only fields and names of kind
// NAME_KIND_ROMANIZED are ignored. `prefix` is
// the field path of the message in the request, e.g. "person" or "draft".
// `today` is the current date in Germany: birth dates after it are refused.
void ValidatePerson(const v1::Person& person, const std::string& prefix,
                    absl::CivilDay today, FieldViolations* violations);

// Brings the NAME_KIND_ROMANIZED entries of a validated `person` up to
// date: drops those it carries (they are the service's output; a client
// may send back what it read) and, when no other entry is in Latin script,
// appends one Latin entry of kind ROMANIZED per original-script entry, in
// their order, made by RomanizeName with the person's nationalities
// (romanization.h); entries that romanise alike are added once. Call it
// after validation and before storing or matching, whenever names or
// nationality_codes may have changed. INTERNAL if ICU fails; `person` may
// then have lost its romanised entries.
absl::Status AddRomanizedNames(v1::Person* person);

// The paths UpdatePersonRequest.update_mask may name.
bool IsUpdatablePersonPath(absl::string_view path);

// Copies the fields named by `paths` from `patch` into `*target` (repeated
// fields are replaced as a whole) and validates them with the rules of
// ValidatePerson under `prefix` ("person"). A path that is not updatable
// adds a violation for "update_mask.paths[i]"; an empty mask adds one for
// "update_mask". Only the named parts are validated, so a stored value that
// predates a tightened rule does not block an unrelated update.
void ApplyPersonUpdate(const v1::Person& patch,
                       const std::vector<std::string>& paths,
                       const std::string& prefix, absl::CivilDay today,
                       v1::Person* target, FieldViolations* violations);

// A partial birth date per lotse.type.v1.PartialDate, not after `today`.
void ValidateBirthDate(const lotse::type::v1::PartialDate& date,
                       const std::string& field, absl::CivilDay today,
                       FieldViolations* violations);

// The fields of `person` that duplicate detection compares. Names of any
// kind (current, birth, former, alias, romanised) all become spellings.
MatchRecord ToMatchRecord(const v1::Person& person);

// A record for SearchPersons' free-text `name_query` ("Muhammad Al Hassan",
// "محمد الحسن"): given and family names are not told apart, so every split
// of the words into given + family names becomes one spelling (the matcher
// tries swapped fields itself). A single word becomes a given name with no
// family name; the store widens such lookups (see PersonStore::Search).
MatchRecord SearchRecord(absl::string_view name_query,
                         const lotse::type::v1::PartialDate& birth_date);

// "persons/{id}"; ids are common/api/names.h ids.
std::string PersonResourceName(absl::string_view id);
// The id in "persons/{id}"; adds a violation for `field` and returns ""
// when `name` is not of that form.
std::string ParsePersonName(absl::string_view name, const std::string& field,
                            FieldViolations* violations);

// Agency-specific ids (AgencyId.value): compared after removing spaces and
// upper-casing (ASCII only; other characters are kept as they are).
std::string NormalizeAgencyIdValue(absl::string_view value);
// Kind must be a known, specified AgencyIdKind; value 1..64 printable
// characters (after normalisation), valid UTF-8, no control characters.
void ValidateAgencyIdInput(int kind, absl::string_view value,
                           const std::string& kind_field,
                           const std::string& value_field,
                           FieldViolations* violations);
// True for kinds that are unique nationwide (AZR number, BA customer
// number, BAMF file number); the others are unique per issuing agency.
bool IsNationalAgencyIdKind(v1::AgencyIdKind kind);
// Whether an agency of `legal_domain` ("JOBCENTER") may link ids of `kind`
// to persons: the domains that issue such ids (AZR numbers: immigration
// offices and BAMF; BA customer numbers: employment agencies and
// Jobcenters; municipal file numbers: KOMMUNE, JUGENDAMT, SOZIALAMT; ...),
// any domain but ADMINISTRATION for OTHER. False for unknown kinds.
bool MayLinkAgencyIdKind(v1::AgencyIdKind kind, absl::string_view legal_domain);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_PERSON_H_
