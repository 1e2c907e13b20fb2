#include "services/identity/domain/remit_proof.h"

#include <vector>

namespace lotse::identity {
namespace {

// A name factor counts as matching from a typo's similarity upwards: the
// matcher weighs each name field 0.30 and a typo at 0.75 of that, a weak
// transliteration at only 0.20.
constexpr double kNameFieldWeight = 0.30;
constexpr double kMinNameSimilarity = 0.70;

const MatchReason* FindReason(const MatchResult& result, MatchFactor factor) {
  for (const MatchReason& reason : result.reasons) {
    if (reason.factor == factor) return &reason;
  }
  return nullptr;
}

bool NameFieldMatches(const MatchReason* reason) {
  return reason != nullptr && reason->method != MatchMethod::kMismatch &&
         reason->method != MatchMethod::kMissing &&
         reason->contribution >= kNameFieldWeight * kMinNameSimilarity - 1e-9;
}

bool RecordHasGivenNames(const MatchRecord& record) {
  for (const NameSpelling& spelling : record.names.spellings) {
    if (!spelling.given_names.empty()) return true;
  }
  return false;
}

bool FullDate(const BirthDate& date) {
  return date.year != 0 && date.month != 0 && date.day != 0;
}

// The presented full date agrees with every part the record knows.
bool Compatible(const BirthDate& presented, const BirthDate& record) {
  if (record.year != 0 && record.year != presented.year) return false;
  if (record.month != 0 && record.month != presented.month) return false;
  if (record.day != 0 && record.day != presented.day) return false;
  return true;
}

}  // namespace

absl::string_view AttributesOutcomeName(AttributesOutcome outcome) {
  switch (outcome) {
    case AttributesOutcome::kHold:
      return "HOLD";
    case AttributesOutcome::kNameDiffers:
      return "NAME_DIFFERS";
    case AttributesOutcome::kBirthDateDiffers:
      return "BIRTH_DATE_DIFFERS";
    case AttributesOutcome::kBirthPlaceMissing:
      return "BIRTH_PLACE_MISSING";
    case AttributesOutcome::kBirthPlaceDiffers:
      return "BIRTH_PLACE_DIFFERS";
    case AttributesOutcome::kRecordNotProvable:
      return "RECORD_NOT_PROVABLE";
  }
  return "UNKNOWN";
}

absl::StatusOr<AttributesOutcome> CheckIdentifyingAttributes(
    const DuplicateMatcher& matcher, const PresentedAttributes& presented,
    const MatchRecord& record) {
  const bool real_date =
      FullDate(record.birth_date) && !IsPlaceholderBirthDate(record.birth_date);
  if (!real_date && record.birth_place.empty()) {
    return AttributesOutcome::kRecordNotProvable;
  }

  MatchRecord query;
  query.names.spellings.push_back(presented.name);
  query.birth_date = presented.birth_date;
  query.birth_place = presented.birth_place;
  absl::StatusOr<MatchResult> result = matcher.Compare(query, record);
  if (!result.ok()) return result.status();

  if (!NameFieldMatches(FindReason(*result, MatchFactor::kFamilyNames))) {
    return AttributesOutcome::kNameDiffers;
  }
  if (RecordHasGivenNames(record) &&
      !NameFieldMatches(FindReason(*result, MatchFactor::kGivenNames))) {
    return AttributesOutcome::kNameDiffers;
  }

  if (real_date) {
    const BirthDate& r = record.birth_date;
    const BirthDate& p = presented.birth_date;
    if (r.year != p.year || r.month != p.month || r.day != p.day) {
      return AttributesOutcome::kBirthDateDiffers;
    }
    return AttributesOutcome::kHold;
  }
  if (!Compatible(presented.birth_date, record.birth_date)) {
    return AttributesOutcome::kBirthDateDiffers;
  }
  if (presented.birth_place.empty()) {
    return AttributesOutcome::kBirthPlaceMissing;
  }
  const MatchReason* place = FindReason(*result, MatchFactor::kBirthPlace);
  if (place == nullptr || place->contribution <= 0) {
    return AttributesOutcome::kBirthPlaceDiffers;
  }
  return AttributesOutcome::kHold;
}

}  // namespace lotse::identity
