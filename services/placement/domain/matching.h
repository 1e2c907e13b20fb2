// The rules of matching a candidate and an offer: hard constraints, then a
// score over soft factors, with an explanation per constraint and factor.
//
// Hard constraints decide the Eligibility (lotse.placement.v1):
//
//   work permission (RESIDENCE_STATUS, from identity)
//     PERMITTED -> met; NEEDS_APPROVAL -> NEEDS_APPROVAL (shown, not
//     excluded); NOT_PERMITTED -> NOT_MET (EXCLUDED); unknown, or the
//     residence title expired before today -> UNKNOWN (UNVERIFIED);
//     withheld from the caller -> WITHHELD (UNVERIFIED, not used).
//   language level (LANGUAGE), only when the offer requires one
//     the certified course-result level, else the stated profile level;
//     level >= required -> met; below -> NOT_MET (EXCLUDED); no level ->
//     UNKNOWN, withheld -> WITHHELD (both UNVERIFIED).
//   recognition, only when the offer requires a recognised qualification
//     the best recognition state of the candidate's qualifications in the
//     offer's occupation subgroup (first four digits of its code, or of one
//     of its required qualification codes): FULL or NOT_REQUIRED -> met;
//     PARTIAL, IN_PROGRESS or not recorded -> UNKNOWN (UNVERIFIED: the
//     chamber has not (fully) decided, a caseworker should look);
//     NOT_APPLIED, REFUSED or no qualification there -> NOT_MET (EXCLUDED).
//
// The worst outcome wins, in the order ELIGIBLE < NEEDS_APPROVAL <
// UNVERIFIED < EXCLUDED. An EXCLUDED match has score 0 (contract).
//
// The score is the weighted sum of six factor values, each 0..1:
//
//   OCCUPATION      0.35  best of experience and qualifications in the
//                         offer's code: similarity (same code 1.0, subgroup
//                         0.8, group 0.5, main group 0.25, else 0) times a
//                         weight for the months (0.5 at 0 months rising to
//                         1.0 at 36); a qualification counts as 0.8.
//   SKILLS          0.20  share of the required skills the candidate has
//                         (BASIC counts half); 1.0 when none are required.
//   QUALIFICATIONS  0.10  mean over the required qualification codes of the
//                         best candidate qualification in the same subgroup,
//                         by recognition (FULL, NOT_REQUIRED 1.0; PARTIAL
//                         0.7; IN_PROGRESS 0.5; not recorded, NOT_APPLIED
//                         0.4; REFUSED 0.1), halved when its requirement
//                         level (5th digit) is below the required one; 1.0
//                         when none are required.
//   PLACE           0.20  best preferred place: the offer's municipality
//                         1.0; within max km of a preferred postal code
//                         1.0 falling to 0.7 at the limit, beyond it 0.5
//                         falling to 0 at twice the limit (at least 10 km
//                         beyond); no preferred place 0.5 (neutral: anywhere
//                         is fine, but a candidate who wants this place
//                         ranks higher).
//   HOURS           0.10  offered hours within the wanted range 1.0, partly
//                         0.5..1.0 by the share inside, apart 0.4 falling to
//                         0 at 10 h apart; times 0.6 when some offered parts
//                         of the day are not wanted, 0.2 when none are;
//                         0.5 when either side states no hours.
//   AVAILABILITY    0.05  available by the start 1.0, falling to 0 at 90
//                         days late; never an exclusion.
//
// Ranking order (see Eligibility in matching.proto): ELIGIBLE and
// NEEDS_APPROVAL together by score, then UNVERIFIED by score, then
// EXCLUDED; at equal score ELIGIBLE before NEEDS_APPROVAL, then the earlier
// start (offers) or availability (candidates), then the id.
//
// Evaluate() is the reference implementation without strings; MatchIndex
// has a faster one for whole scans and is tested to agree with it.
// Explain() adds the texts, for the few results returned. Texts name codes
// (occupation, postal, municipality), levels, counts and distances; never a
// name or a person id.
#ifndef LOTSE_SERVICES_PLACEMENT_DOMAIN_MATCHING_H_
#define LOTSE_SERVICES_PLACEMENT_DOMAIN_MATCHING_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "lotse/placement/v1/candidate.pb.h"
#include "lotse/placement/v1/matching.pb.h"
#include "lotse/type/v1/language.pb.h"
#include "lotse/type/v1/work.pb.h"
#include "services/placement/domain/facts.h"

namespace lotse::placement {

// ---- Weights (sum 1.0) -----------------------------------------------------

inline constexpr float kOccupationWeight = 0.35f;
inline constexpr float kSkillsWeight = 0.20f;
inline constexpr float kQualificationsWeight = 0.10f;
inline constexpr float kPlaceWeight = 0.20f;
inline constexpr float kHoursWeight = 0.10f;
inline constexpr float kAvailabilityWeight = 0.05f;

// Value of a factor on which one side states nothing (place, hours).
inline constexpr float kNeutralValue = 0.5f;

// ---- Hard constraints ------------------------------------------------------

v1::ConstraintOutcome WorkPermissionOutcome(
    type::v1::WorkPermission permission, std::optional<int32_t> valid_until_day,
    bool withheld, int32_t today);

v1::ConstraintOutcome LanguageOutcome(type::v1::CefrLevel candidate_level,
                                      bool withheld,
                                      type::v1::CefrLevel required_level);

// `best_state` is the best recognition state (RecognitionRank) among the
// candidate's qualifications in the offer's subgroups, nullopt if none.
// Call only for offers with recognition_required.
v1::ConstraintOutcome RecognitionOutcome(
    std::optional<v1::RecognitionState> best_state);

// Orders recognition states for "best of": FULL and NOT_REQUIRED highest,
// then PARTIAL, IN_PROGRESS, not recorded, NOT_APPLIED, REFUSED.
int RecognitionRank(v1::RecognitionState state);

// The eligibility one outcome implies (MET -> ELIGIBLE, NEEDS_APPROVAL ->
// NEEDS_APPROVAL, UNKNOWN/WITHHELD -> UNVERIFIED, NOT_MET -> EXCLUDED).
v1::Eligibility EligibilityOf(v1::ConstraintOutcome outcome);

// Worst of two (the enum values are in that order).
inline v1::Eligibility Worse(v1::Eligibility a, v1::Eligibility b) {
  return a > b ? a : b;
}

// The ranking tier: 0 ELIGIBLE and NEEDS_APPROVAL, 1 UNVERIFIED, 2 EXCLUDED.
inline int RankTier(v1::Eligibility e) {
  return e <= v1::ELIGIBILITY_NEEDS_APPROVAL ? 0
         : e == v1::ELIGIBILITY_UNVERIFIED   ? 1
                                             : 2;
}

// Whether the candidate wants offers of `kind` (no wanted kinds = any).
bool WantsKind(const CandidateFacts& candidate, v1::OfferKind kind);

// ---- Factor rules ----------------------------------------------------------

// By the number of leading digits two codes share (CommonOccupationDigits).
inline float OccupationSimilarity(int common_digits) {
  static constexpr float kByDigits[6] = {0.0f, 0.0f, 0.25f, 0.5f, 0.8f, 1.0f};
  return kByDigits[std::clamp(common_digits, 0, 5)];
}

// 0.5 at 0 months, rising linearly to 1.0 at 36 months and more.
inline float ExperienceWeight(int32_t months) {
  return 0.5f + 0.5f * static_cast<float>(std::clamp(months, 0, 36)) / 36.0f;
}

// What a qualification in the occupation counts as (like 22 months).
inline constexpr float kQualificationAsExperience = 0.8f;

// Credit of a required skill the candidate has at `level`.
inline float SkillCredit(v1::SkillLevel level) {
  return level == v1::SKILL_LEVEL_BASIC ? 0.5f : 1.0f;
}

// Credit of a qualification for a required code of its subgroup.
float QualificationCredit(v1::RecognitionState state, bool level_reached);

// Value of a preferred postal-code place `km` away with radius `max_km`.
inline float PlaceValueAtDistance(float km, int32_t max_km) {
  const float limit = static_cast<float>(std::max(max_km, 0));
  if (km <= limit) return limit > 0 ? 1.0f - 0.3f * (km / limit) : 1.0f;
  const float fade = std::max(limit, 10.0f);
  return 0.5f * std::max(0.0f, 1.0f - (km - limit) / fade);
}

float HoursValue(const HoursFacts& offered, const HoursFacts& wanted);

// `available_from_day` unset = immediately.
inline float AvailabilityValue(int32_t start_day,
                               std::optional<int32_t> available_from_day) {
  if (!available_from_day || *available_from_day <= start_day) return 1.0f;
  const float late = static_cast<float>(*available_from_day - start_day);
  return std::max(0.0f, 1.0f - late / 90.0f);
}

struct FactorValues {
  float occupation = 0;
  float skills = 0;
  float qualifications = 0;
  float place = 0;
  float hours = 0;
  float availability = 0;
};

// The weighted sum, 0..1, summed in one fixed order so every
// implementation gets the same float.
inline float WeightedScore(const FactorValues& v) {
  float score = kOccupationWeight * v.occupation;
  score += kSkillsWeight * v.skills;
  score += kQualificationsWeight * v.qualifications;
  score += kPlaceWeight * v.place;
  score += kHoursWeight * v.hours;
  score += kAvailabilityWeight * v.availability;
  return score;
}

// ---- Whole pairs -----------------------------------------------------------

struct MatchOutcome {
  v1::Eligibility eligibility = v1::ELIGIBILITY_UNSPECIFIED;
  float score = 0;  // 0 when EXCLUDED
  FactorValues factors;
};

// The reference evaluation of one pair, without texts. `today` is the day
// number expiry is checked against. Ignores kinds (a filter, not a rule).
MatchOutcome Evaluate(const CandidateFacts& candidate, const OfferFacts& offer,
                      int32_t today);

// Evaluate plus one ConstraintCheck per hard constraint (work permission
// and language level always, recognition when the offer requires it) and
// one ScoreFactor per factor, in the order of ScoreFactorKind.
struct MatchExplanation {
  v1::Eligibility eligibility = v1::ELIGIBILITY_UNSPECIFIED;
  double score = 0;
  std::vector<v1::ConstraintCheck> constraints;
  std::vector<v1::ScoreFactor> factors;
};
MatchExplanation Explain(const CandidateFacts& candidate,
                         const OfferFacts& offer, int32_t today);

// Copies eligibility, score, constraints and factors into a match (the
// caller fills offer / candidate and withheld).
void FillOfferMatch(const MatchExplanation& explanation, v1::OfferMatch* out);
void FillCandidateMatch(const MatchExplanation& explanation,
                        v1::CandidateMatch* out);

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_DOMAIN_MATCHING_H_
