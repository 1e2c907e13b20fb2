// The facts matching works on: compact, protobuf-free copies of an offer and
// of a candidate (profile plus the residence facts from identity and the
// certified language level from the courses service).
//
// The service builds them from its rows (OfferFactsFromProto,
// CandidateFactsFromProfile) whenever an offer, a profile or a person's
// facts change, and keeps them in the MatchIndex. Matching never reads a
// proto or the database per offer; it only compares these values.
//
// Days are day numbers: days since 1970-01-01 (UTC civil days).
#ifndef LOTSE_SERVICES_PLACEMENT_DOMAIN_FACTS_H_
#define LOTSE_SERVICES_PLACEMENT_DOMAIN_FACTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/geo/geo.h"
#include "lotse/placement/v1/candidate.pb.h"
#include "lotse/placement/v1/matching.pb.h"
#include "lotse/placement/v1/offer.pb.h"
#include "lotse/type/v1/date.pb.h"
#include "lotse/type/v1/language.pb.h"
#include "lotse/type/v1/work.pb.h"

namespace lotse::placement {

// The day number of a valid calendar date, nullopt otherwise (also for an
// unset Date, whose fields are 0).
std::optional<int32_t> DayFromDate(const type::v1::Date& date);
// The UTC civil day of `t`: what "today" is for expiry checks.
int32_t DayOf(absl::Time t);

// Skill labels are compared case-insensitively (contract of
// Offer.required_skills): trims, collapses inner whitespace and lowercases
// ASCII, Latin-1 (Ä, Ö, Ü, É, ...) and basic Cyrillic letters, the scripts
// the labels of this deployment are written in. Other characters stay as
// written.
std::string NormaliseSkillLabel(absl::string_view label);

// One bit per lotse.type.v1.DayPeriod (bit n for enum value n); 0 = any.
using DayPeriodMask = uint8_t;
DayPeriodMask DayPeriodMaskOf(
    const google::protobuf::RepeatedField<int>& day_periods);

// Weekly hours offered or wanted; max_per_week 0 = not stated.
struct HoursFacts {
  float min_per_week = 0;
  float max_per_week = 0;
  DayPeriodMask day_periods = 0;
};

// An OPEN offer, as matching sees it. Offers carry no personal data.
struct OfferFacts {
  std::string offer_id;  // the {offer} of "offers/{offer}"
  v1::OfferKind kind = v1::OFFER_KIND_UNSPECIFIED;
  std::string occupation_code;    // KldB 2010, five digits, e.g. "26112"
  std::string municipality_code;  // AGS, eight digits
  std::string postal_code;        // five digits
  // Centre of the postal-code area (geo::PostalCodeCentre); absent when the
  // code is outside the table, then only municipality and exact postal
  // code comparisons are possible.
  std::optional<geo::GeoPoint> place_centre;
  HoursFacts hours;
  int32_t start_day = 0;
  type::v1::CefrLevel required_language_level =
      type::v1::CEFR_LEVEL_UNSPECIFIED;
  std::vector<std::string> required_skills;  // NormaliseSkillLabel'ed
  std::vector<std::string> required_qualification_codes;  // KldB codes
  bool recognition_required = false;
  int32_t positions_open = 0;
  absl::Time create_time = absl::InfinitePast();
};

struct ExperienceFacts {
  std::string occupation_code;  // KldB 2010
  int32_t months = 0;
};

struct SkillFacts {
  std::string label;  // NormaliseSkillLabel'ed
  v1::SkillLevel level = v1::SKILL_LEVEL_UNSPECIFIED;
};

struct QualificationFacts {
  std::string occupation_code;  // KldB code of the reference occupation
  v1::RecognitionState recognition = v1::RECOGNITION_STATE_UNSPECIFIED;
};

// A preferred place: a municipality, or a postal code with a radius.
struct PlaceFacts {
  std::string municipality_code;        // set for a municipality ...
  std::string postal_code;              // ... or this, with max_distance_km
  std::optional<geo::GeoPoint> centre;  // of postal_code, if in the table
  int32_t max_distance_km = 0;
};

// The language level matching uses, and where it came from.
struct LanguageLevel {
  type::v1::CefrLevel level = type::v1::CEFR_LEVEL_UNSPECIFIED;
  v1::LanguageLevelSource source = v1::LANGUAGE_LEVEL_SOURCE_UNSPECIFIED;
};

// A candidate, as matching sees it (not the proto of the same name, which
// reports a few of these facts back to the caller).
//
// The stored copy holds everything; a call uses WithheldFor(...) so that
// facts of a category the caller may not read are neither used nor shown.
struct CandidateFacts {
  std::string person_id;  // the {person} of "candidates/{person}"
  bool active = true;
  std::vector<v1::OfferKind> wanted_kinds;  // empty = any kind

  // Category RESIDENCE_STATUS, from identity.
  type::v1::WorkPermission work_permission =
      type::v1::WORK_PERMISSION_UNSPECIFIED;
  // Last day of the residence title the permission rests on; after it the
  // permission is unknown (identity may not have the renewal yet).
  std::optional<int32_t> work_permission_valid_until_day;
  // The caller may not see RESIDENCE_STATUS: the permission above is blank
  // and the constraint is WITHHELD rather than UNKNOWN.
  bool residence_withheld = false;

  // Category LANGUAGE. The highest level certified by a course result
  // (courses service event) wins over the level stated in the profile.
  type::v1::CefrLevel certified_language_level =
      type::v1::CEFR_LEVEL_UNSPECIFIED;
  type::v1::CefrLevel stated_language_level = type::v1::CEFR_LEVEL_UNSPECIFIED;
  bool language_withheld = false;

  // Category EMPLOYMENT (the caller always may read it, or it would not
  // match this candidate at all).
  std::vector<ExperienceFacts> experience;
  std::vector<SkillFacts> skills;
  std::vector<QualificationFacts> qualifications;
  std::vector<PlaceFacts> preferred_places;  // empty = anywhere
  HoursFacts preferred_hours;
  std::optional<int32_t> available_from_day;  // unset = immediately

  // The certified level if there is one, else the stated one; blank when
  // language is withheld.
  LanguageLevel EffectiveLanguageLevel() const;

  // A copy for one caller: with see_residence false the work permission is
  // blanked and marked withheld, with see_language false both language
  // levels. Facts already withheld stay withheld.
  CandidateFacts WithheldFor(bool see_residence, bool see_language) const;
};

// Builds the facts of an offer (any state; the index only holds OPEN ones).
// `offer.name` must be "offers/{id}".
OfferFacts OfferFactsFromProto(const v1::Offer& offer);

// Builds the facts of a candidate from the profile and identity's residence
// facts (permission UNSPECIFIED when none are recorded; valid_until unset
// when unlimited or unknown). `profile.person` must be "persons/{id}".
CandidateFacts CandidateFactsFromProfile(
    const v1::CandidateProfile& profile,
    type::v1::WorkPermission work_permission,
    std::optional<int32_t> work_permission_valid_until_day);

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_DOMAIN_FACTS_H_
