// Whether identifying attributes an agency presents prove that a person is
// already in its remit (DESIGN.md section 4: a relation may come "from proof
// that the agency already holds the person in its remit: identifying
// attributes it presents"). LinkAgencyId asks this before an agency without
// any relation to the person may link its own id and so become
// AGENCY_ID_HOLDER.
//
// Pure domain logic over the duplicate matcher: no storage, no gRPC.
//
// The attributes hold when both of these do:
//   - The name matches one of the record's names: the family-name factor
//     and, where the record has given names, the given-name factor each
//     match at least as closely as a typo (exact, transliteration, script
//     conversion, umlaut spelling, joined or split parts, swapped given and
//     family names, a small spelling difference); a mismatch or a missing
//     part fails.
//   - The birth data agrees exactly. The presented date must be a full date
//     (the caller validates this). When the record holds a full date that is
//     not the 1 January placeholder, both dates are equal. Otherwise the
//     presented date agrees with what the record knows, and the presented
//     birth place equals the record's (exactly or as a transliteration).
// A record with neither a full real date nor a birth place cannot be proven
// by attributes at all; the agency needs another basis (a referral by the
// case owner, an id another authority issued).
//
// Why this strict: the answer is the only thing standing between knowing a
// name and reading a person's record. Search never discloses birth data to
// an agency without a relation, so a full birth date is something the
// agency can only have from the person's own papers; and the caller limits
// how often an agency may try (a date must not be found by guessing).
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_REMIT_PROOF_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_REMIT_PROOF_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/identity/domain/name_matching.h"

namespace lotse::identity {

// What an agency presents (lotse.identity.v1.IdentifyingAttributes).
struct PresentedAttributes {
  NameSpelling name;
  BirthDate birth_date;     // year, month and day all set
  std::string birth_place;  // may be empty
};

// How a check ended. Only kHold opens anything; the other values are for
// tests and the operator's diagnosis and must never reach the caller, who
// would learn from them which attribute was wrong.
enum class AttributesOutcome {
  kHold,
  kNameDiffers,
  kBirthDateDiffers,
  // The record's date is partial or a placeholder, so the birth place is
  // needed, and none was presented.
  kBirthPlaceMissing,
  kBirthPlaceDiffers,
  // The record has neither a full real date nor a birth place.
  kRecordNotProvable,
};

absl::string_view AttributesOutcomeName(AttributesOutcome outcome);

// Checks `presented` against the stored `record` as described above.
// INVALID_ARGUMENT only for text that is not valid UTF-8 (the matcher's
// Prepare); never fails otherwise.
absl::StatusOr<AttributesOutcome> CheckIdentifyingAttributes(
    const DuplicateMatcher& matcher, const PresentedAttributes& presented,
    const MatchRecord& record);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_REMIT_PROOF_H_
