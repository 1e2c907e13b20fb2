#include "services/placement/domain/matching.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "services/placement/domain/kldb.h"

namespace lotse::placement {
namespace {

// "B1" for CEFR_LEVEL_B1, "none" for UNSPECIFIED.
std::string LevelName(type::v1::CefrLevel level) {
  if (level == type::v1::CEFR_LEVEL_UNSPECIFIED) return "none";
  absl::string_view name = type::v1::CefrLevel_Name(level);
  absl::ConsumePrefix(&name, "CEFR_LEVEL_");
  return std::string(name);
}

std::string RecognitionName(v1::RecognitionState state) {
  switch (state) {
    case v1::RECOGNITION_STATE_FULL:
      return "recognised fully";
    case v1::RECOGNITION_STATE_NOT_REQUIRED:
      return "no recognition needed";
    case v1::RECOGNITION_STATE_PARTIAL:
      return "recognised partly";
    case v1::RECOGNITION_STATE_IN_PROGRESS:
      return "recognition in progress";
    case v1::RECOGNITION_STATE_NOT_APPLIED:
      return "recognition not applied for";
    case v1::RECOGNITION_STATE_REFUSED:
      return "recognition refused";
    default:
      return "recognition not recorded";
  }
}

const char* SimilarityName(int common_digits) {
  switch (common_digits) {
    case 5:
      return "same code";
    case 4:
      return "same subgroup";
    case 3:
      return "same group";
    case 2:
      return "same main group";
    default:
      return "different occupation";
  }
}

std::string Hours(float value) { return absl::StrFormat("%g", value); }

std::string PeriodNames(DayPeriodMask mask) {
  static constexpr const char* kNames[] = {"", "morning", "afternoon",
                                           "evening", "night"};
  std::string out;
  for (int period = 1; period <= 4; ++period) {
    if (mask & (1 << period)) {
      absl::StrAppend(&out, out.empty() ? "" : ", ", kNames[period]);
    }
  }
  return out;
}

// Texts of the explanation, filled only by Explain.
struct Texts {
  std::string work_permission;
  std::string language;
  std::string recognition;
  std::string occupation;
  std::string skills;
  std::string qualifications;
  std::string place;
  std::string hours;
  std::string availability;
};

struct Constraints {
  v1::ConstraintOutcome work_permission = v1::CONSTRAINT_OUTCOME_UNSPECIFIED;
  v1::ConstraintOutcome language = v1::CONSTRAINT_OUTCOME_UNSPECIFIED;
  // UNSPECIFIED when the offer requires no recognition.
  v1::ConstraintOutcome recognition = v1::CONSTRAINT_OUTCOME_UNSPECIFIED;
  type::v1::WorkPermission permission_used =
      type::v1::WORK_PERMISSION_UNSPECIFIED;
  LanguageLevel level_used;
};

// The best recognition state among the candidate's qualifications in the
// offer's occupation subgroup (or a required qualification's); nullopt when
// none is in it.
std::optional<v1::RecognitionState> BestRecognition(const CandidateFacts& c,
                                                    const OfferFacts& o) {
  const int32_t occupation = ParseOccupationCode(o.occupation_code);
  std::vector<int32_t> subgroups;
  if (occupation >= 0) subgroups.push_back(occupation / 10);
  for (const std::string& code : o.required_qualification_codes) {
    const int32_t required = ParseOccupationCode(code);
    if (required >= 0) subgroups.push_back(required / 10);
  }
  std::optional<v1::RecognitionState> best;
  for (const QualificationFacts& q : c.qualifications) {
    const int32_t code = ParseOccupationCode(q.occupation_code);
    if (code < 0) continue;
    if (std::find(subgroups.begin(), subgroups.end(), code / 10) ==
        subgroups.end()) {
      continue;
    }
    if (!best || RecognitionRank(q.recognition) > RecognitionRank(*best)) {
      best = q.recognition;
    }
  }
  return best;
}

// The explanation of each outcome in `out`, in words a caseworker reads.
void DescribeConstraints(
    const Constraints& out, const CandidateFacts& c, const OfferFacts& o,
    const std::optional<v1::RecognitionState>& best_recognition, int32_t today,
    Texts* texts) {
  const LanguageLevel& level = out.level_used;
  switch (out.work_permission) {
    case v1::CONSTRAINT_OUTCOME_MET:
      texts->work_permission = "employment permitted";
      break;
    case v1::CONSTRAINT_OUTCOME_NEEDS_APPROVAL:
      texts->work_permission =
          "employment needs the approval of the immigration office";
      break;
    case v1::CONSTRAINT_OUTCOME_NOT_MET:
      texts->work_permission = "employment not permitted";
      break;
    case v1::CONSTRAINT_OUTCOME_WITHHELD:
      texts->work_permission =
          "residence status withheld from the caller; not used";
      break;
    default:
      texts->work_permission =
          c.work_permission_valid_until_day &&
                  *c.work_permission_valid_until_day < today
              ? absl::StrCat("residence title expired ",
                             today - *c.work_permission_valid_until_day,
                             " days ago; permission unknown")
              : "no residence status recorded; permission unknown";
  }

  const std::string required = LevelName(o.required_language_level);
  const std::string source =
      level.source == v1::LANGUAGE_LEVEL_SOURCE_COURSE_RESULT
          ? "certified by course result"
          : "stated in profile";
  switch (out.language) {
    case v1::CONSTRAINT_OUTCOME_MET:
      texts->language =
          o.required_language_level == type::v1::CEFR_LEVEL_UNSPECIFIED
              ? "offer requires no German level"
              : absl::StrCat(LevelName(level.level), " ", source,
                             "; offer requires ", required);
      break;
    case v1::CONSTRAINT_OUTCOME_NOT_MET:
      texts->language = absl::StrCat(LevelName(level.level), " ", source,
                                     "; offer requires ", required);
      break;
    case v1::CONSTRAINT_OUTCOME_WITHHELD:
      texts->language = absl::StrCat(
          "language level withheld from the caller; offer requires ", required);
      break;
    default:
      texts->language =
          absl::StrCat("no language level known; offer requires ", required);
  }

  if (o.recognition_required) {
    texts->recognition =
        best_recognition
            ? absl::StrCat("best qualification in the occupation: ",
                           RecognitionName(*best_recognition),
                           "; offer requires full recognition")
            : "no qualification in the occupation; offer requires full "
              "recognition";
  }
}

Constraints CheckConstraints(const CandidateFacts& c, const OfferFacts& o,
                             int32_t today, Texts* texts) {
  Constraints out;
  out.work_permission = WorkPermissionOutcome(c.work_permission,
                                              c.work_permission_valid_until_day,
                                              c.residence_withheld, today);
  if (out.work_permission != v1::CONSTRAINT_OUTCOME_UNKNOWN &&
      out.work_permission != v1::CONSTRAINT_OUTCOME_WITHHELD) {
    out.permission_used = c.work_permission;
  }
  const LanguageLevel level = c.EffectiveLanguageLevel();
  out.language = LanguageOutcome(level.level, c.language_withheld,
                                 o.required_language_level);
  out.level_used = level;

  std::optional<v1::RecognitionState> best_recognition;
  if (o.recognition_required) {
    best_recognition = BestRecognition(c, o);
    out.recognition = RecognitionOutcome(best_recognition);
  }
  if (texts != nullptr) {
    DescribeConstraints(out, c, o, best_recognition, today, texts);
  }
  return out;
}

struct PlaceChoice {
  float value = 0;
  int index = -1;  // into preferred_places
  float km = -1;   // -1 unknown or by municipality
};

// The best of the candidate's experience and qualifications in the
// offer's occupation: its value, how many code digits it shares with the
// occupation, and its months of experience (-1: from a qualification).
struct OccupationScore {
  float value = 0;
  int digits = 0;
  int months = -1;
};

OccupationScore ScoreOccupation(const CandidateFacts& c, int32_t occupation) {
  OccupationScore best;
  for (const ExperienceFacts& e : c.experience) {
    const int digits = CommonOccupationDigits(
        occupation, ParseOccupationCode(e.occupation_code));
    const float value =
        OccupationSimilarity(digits) * ExperienceWeight(e.months);
    if (value > best.value) best = {value, digits, e.months};
  }
  for (const QualificationFacts& q : c.qualifications) {
    const int digits = CommonOccupationDigits(
        occupation, ParseOccupationCode(q.occupation_code));
    const float value =
        OccupationSimilarity(digits) * kQualificationAsExperience;
    if (value > best.value) best = {value, digits, -1};
  }
  return best;
}

// A factor scored over the offer's requirements: its value, how many
// requirements were met fully and how many only partly.
struct RequirementScore {
  float value = 0;
  int full = 0;
  int partial = 0;
};

// Skills: "full" counts the required skills the candidate has at all,
// "partial" those it has at a basic level only.
RequirementScore ScoreSkills(const CandidateFacts& c, const OfferFacts& o) {
  RequirementScore out;
  if (o.required_skills.empty()) {
    out.value = 1.0f;
    return out;
  }
  float credit = 0;
  for (const std::string& required : o.required_skills) {
    float best = 0;
    for (const SkillFacts& s : c.skills) {
      if (s.label == required) best = std::max(best, SkillCredit(s.level));
    }
    if (best > 0) ++out.full;
    if (best > 0 && best < 1.0f) ++out.partial;
    credit += best;
  }
  out.value = credit / static_cast<float>(o.required_skills.size());
  return out;
}

RequirementScore ScoreQualifications(const CandidateFacts& c,
                                     const OfferFacts& o) {
  RequirementScore out;
  if (o.required_qualification_codes.empty()) {
    out.value = 1.0f;
    return out;
  }
  float credit = 0;
  for (const std::string& required_code : o.required_qualification_codes) {
    const int32_t required = ParseOccupationCode(required_code);
    float best = 0;
    for (const QualificationFacts& q : c.qualifications) {
      const int32_t code = ParseOccupationCode(q.occupation_code);
      if (required < 0 || code < 0 || code / 10 != required / 10) continue;
      best = std::max(best, QualificationCredit(
                                q.recognition, RequirementLevel(code) >=
                                                   RequirementLevel(required)));
    }
    if (best >= 1.0f) ++out.full;
    if (best > 0 && best < 1.0f) ++out.partial;
    credit += best;
  }
  out.value =
      credit / static_cast<float>(o.required_qualification_codes.size());
  return out;
}

// The candidate's preferred place that suits the offer best (the first of
// equals).
PlaceChoice ScorePlace(const CandidateFacts& c, const OfferFacts& o) {
  PlaceChoice place;
  if (c.preferred_places.empty()) {
    place.value = kNeutralValue;
    return place;
  }
  for (size_t i = 0; i < c.preferred_places.size(); ++i) {
    const PlaceFacts& p = c.preferred_places[i];
    float value = 0;
    float km = -1;
    if (!p.municipality_code.empty()) {
      value = p.municipality_code == o.municipality_code ? 1.0f : 0.0f;
    } else {
      if (p.centre && o.place_centre) {
        km = static_cast<float>(geo::DistanceKm(*p.centre, *o.place_centre));
      } else if (!p.postal_code.empty() && p.postal_code == o.postal_code) {
        km = 0;
      }
      if (km >= 0) value = PlaceValueAtDistance(km, p.max_distance_km);
    }
    if (place.index < 0 || value > place.value) {
      place = {value, static_cast<int>(i), km};
    }
  }
  return place;
}

std::string OccupationText(int32_t occupation, const OccupationScore& best) {
  if (best.value <= 0) {
    return absl::StrCat("no experience or qualification in main group ",
                        OccupationPrefix(occupation, 2));
  }
  if (best.months >= 0) {
    return absl::StrCat("experience ", best.months, " months in ",
                        OccupationPrefix(occupation, best.digits), " (",
                        SimilarityName(best.digits), ")");
  }
  return absl::StrCat("qualification in ",
                      OccupationPrefix(occupation, best.digits), " (",
                      SimilarityName(best.digits), ")");
}

std::string SkillsText(const OfferFacts& o, const RequirementScore& skills) {
  if (o.required_skills.empty()) return "no skills required";
  std::string text = absl::StrCat(skills.full, " of ", o.required_skills.size(),
                                  " required skills");
  if (skills.partial > 0) {
    absl::StrAppend(&text, " (", skills.partial, " basic only)");
  }
  return text;
}

std::string QualificationsText(const OfferFacts& o,
                               const RequirementScore& quals) {
  if (o.required_qualification_codes.empty()) {
    return "no qualifications required";
  }
  std::string text =
      absl::StrCat(quals.full, " of ", o.required_qualification_codes.size(),
                   " required qualifications fully");
  if (quals.partial > 0) {
    absl::StrAppend(&text, ", ", quals.partial,
                    " partly (recognition or level)");
  }
  return text;
}

std::string PlaceText(const CandidateFacts& c, const PlaceChoice& place) {
  if (c.preferred_places.empty()) return "no preferred places";
  const PlaceFacts& p = c.preferred_places[place.index];
  if (!p.municipality_code.empty()) {
    return place.value > 0
               ? absl::StrCat("in preferred municipality ", p.municipality_code)
               : absl::StrCat(
                     "outside the preferred places, e.g. "
                     "municipality ",
                     p.municipality_code);
  }
  if (place.km < 0) {
    return absl::StrCat("distance to preferred postal code ", p.postal_code,
                        " unknown");
  }
  return absl::StrCat(std::lround(place.km), " km from preferred postal code ",
                      p.postal_code, " (up to ", p.max_distance_km,
                      " km wanted)");
}

std::string HoursText(const HoursFacts& oh, const HoursFacts& wh) {
  std::string text;
  if (oh.max_per_week <= 0) {
    text = "offer states no hours";
  } else if (wh.max_per_week <= 0) {
    text = absl::StrCat("hours ", Hours(oh.min_per_week), "–",
                        Hours(oh.max_per_week), "; no preferred hours");
  } else {
    const bool within = oh.min_per_week >= wh.min_per_week &&
                        oh.max_per_week <= wh.max_per_week;
    const bool apart =
        oh.max_per_week < wh.min_per_week || oh.min_per_week > wh.max_per_week;
    text = absl::StrCat(
        "hours ", Hours(oh.min_per_week), "–", Hours(oh.max_per_week),
        within  ? " within"
        : apart ? " outside"
                : " partly within",
        " preferred ", Hours(wh.min_per_week), "–", Hours(wh.max_per_week));
  }
  if (oh.day_periods != 0 && wh.day_periods != 0 &&
      (oh.day_periods & ~wh.day_periods) != 0) {
    absl::StrAppend(&text, "; works ",
                    PeriodNames(oh.day_periods & ~wh.day_periods),
                    ", not a preferred part of the day");
  }
  return text;
}

std::string AvailabilityText(const CandidateFacts& c, const OfferFacts& o) {
  if (!c.available_from_day || *c.available_from_day <= o.start_day) {
    return "available by the start";
  }
  return absl::StrCat("available ", *c.available_from_day - o.start_day,
                      " days after the start");
}

FactorValues ScoreFactors(const CandidateFacts& c, const OfferFacts& o,
                          Texts* texts) {
  const int32_t occupation = ParseOccupationCode(o.occupation_code);
  const OccupationScore best = ScoreOccupation(c, occupation);
  const RequirementScore skills = ScoreSkills(c, o);
  const RequirementScore quals = ScoreQualifications(c, o);
  const PlaceChoice place = ScorePlace(c, o);
  FactorValues v;
  v.occupation = best.value;
  v.skills = skills.value;
  v.qualifications = quals.value;
  v.place = place.value;
  v.hours = HoursValue(o.hours, c.preferred_hours);
  v.availability = AvailabilityValue(o.start_day, c.available_from_day);
  if (texts == nullptr) return v;
  texts->occupation = OccupationText(occupation, best);
  texts->skills = SkillsText(o, skills);
  texts->qualifications = QualificationsText(o, quals);
  texts->place = PlaceText(c, place);
  texts->hours = HoursText(o.hours, c.preferred_hours);
  texts->availability = AvailabilityText(c, o);
  return v;
}

MatchOutcome EvaluatePair(const CandidateFacts& c, const OfferFacts& o,
                          int32_t today, Constraints* constraints,
                          Texts* texts) {
  *constraints = CheckConstraints(c, o, today, texts);
  MatchOutcome out;
  out.eligibility = Worse(EligibilityOf(constraints->work_permission),
                          EligibilityOf(constraints->language));
  if (o.recognition_required) {
    out.eligibility =
        Worse(out.eligibility, EligibilityOf(constraints->recognition));
  }
  out.factors = ScoreFactors(c, o, texts);
  out.score = out.eligibility == v1::ELIGIBILITY_EXCLUDED
                  ? 0.0f
                  : WeightedScore(out.factors);
  return out;
}

v1::ScoreFactor Factor(v1::ScoreFactorKind kind, float weight, float value,
                       std::string explanation) {
  v1::ScoreFactor f;
  f.set_factor(kind);
  f.set_weight(weight);
  f.set_value(value);
  f.set_contribution(static_cast<double>(weight * value));
  f.set_explanation(std::move(explanation));
  return f;
}

}  // namespace

v1::ConstraintOutcome WorkPermissionOutcome(
    type::v1::WorkPermission permission, std::optional<int32_t> valid_until_day,
    bool withheld, int32_t today) {
  if (withheld) return v1::CONSTRAINT_OUTCOME_WITHHELD;
  if (valid_until_day && *valid_until_day < today) {
    return v1::CONSTRAINT_OUTCOME_UNKNOWN;
  }
  switch (permission) {
    case type::v1::WORK_PERMISSION_PERMITTED:
      return v1::CONSTRAINT_OUTCOME_MET;
    case type::v1::WORK_PERMISSION_NEEDS_APPROVAL:
      return v1::CONSTRAINT_OUTCOME_NEEDS_APPROVAL;
    case type::v1::WORK_PERMISSION_NOT_PERMITTED:
      return v1::CONSTRAINT_OUTCOME_NOT_MET;
    default:
      return v1::CONSTRAINT_OUTCOME_UNKNOWN;
  }
}

v1::ConstraintOutcome LanguageOutcome(type::v1::CefrLevel candidate_level,
                                      bool withheld,
                                      type::v1::CefrLevel required_level) {
  if (required_level == type::v1::CEFR_LEVEL_UNSPECIFIED) {
    return v1::CONSTRAINT_OUTCOME_MET;
  }
  if (withheld) return v1::CONSTRAINT_OUTCOME_WITHHELD;
  if (candidate_level == type::v1::CEFR_LEVEL_UNSPECIFIED) {
    return v1::CONSTRAINT_OUTCOME_UNKNOWN;
  }
  // CefrLevel values are ordered (language.proto).
  return candidate_level >= required_level ? v1::CONSTRAINT_OUTCOME_MET
                                           : v1::CONSTRAINT_OUTCOME_NOT_MET;
}

int RecognitionRank(v1::RecognitionState state) {
  switch (state) {
    case v1::RECOGNITION_STATE_FULL:
    case v1::RECOGNITION_STATE_NOT_REQUIRED:
      return 6;
    case v1::RECOGNITION_STATE_PARTIAL:
      return 5;
    case v1::RECOGNITION_STATE_IN_PROGRESS:
      return 4;
    case v1::RECOGNITION_STATE_NOT_APPLIED:
      return 2;
    case v1::RECOGNITION_STATE_REFUSED:
      return 1;
    default:  // not recorded
      return 3;
  }
}

v1::ConstraintOutcome RecognitionOutcome(
    std::optional<v1::RecognitionState> best_state) {
  if (!best_state) return v1::CONSTRAINT_OUTCOME_NOT_MET;
  const int rank = RecognitionRank(*best_state);
  if (rank >= 6) return v1::CONSTRAINT_OUTCOME_MET;
  if (rank >= 3) return v1::CONSTRAINT_OUTCOME_UNKNOWN;
  return v1::CONSTRAINT_OUTCOME_NOT_MET;
}

v1::Eligibility EligibilityOf(v1::ConstraintOutcome outcome) {
  switch (outcome) {
    case v1::CONSTRAINT_OUTCOME_MET:
      return v1::ELIGIBILITY_ELIGIBLE;
    case v1::CONSTRAINT_OUTCOME_NEEDS_APPROVAL:
      return v1::ELIGIBILITY_NEEDS_APPROVAL;
    case v1::CONSTRAINT_OUTCOME_NOT_MET:
      return v1::ELIGIBILITY_EXCLUDED;
    default:
      return v1::ELIGIBILITY_UNVERIFIED;
  }
}

bool WantsKind(const CandidateFacts& candidate, v1::OfferKind kind) {
  return candidate.wanted_kinds.empty() ||
         std::find(candidate.wanted_kinds.begin(), candidate.wanted_kinds.end(),
                   kind) != candidate.wanted_kinds.end();
}

float QualificationCredit(v1::RecognitionState state, bool level_reached) {
  float credit;
  switch (state) {
    case v1::RECOGNITION_STATE_FULL:
    case v1::RECOGNITION_STATE_NOT_REQUIRED:
      credit = 1.0f;
      break;
    case v1::RECOGNITION_STATE_PARTIAL:
      credit = 0.7f;
      break;
    case v1::RECOGNITION_STATE_IN_PROGRESS:
      credit = 0.5f;
      break;
    case v1::RECOGNITION_STATE_REFUSED:
      credit = 0.1f;
      break;
    default:  // not recorded, NOT_APPLIED
      credit = 0.4f;
  }
  return level_reached ? credit : 0.5f * credit;
}

float HoursValue(const HoursFacts& offered, const HoursFacts& wanted) {
  float range;
  if (offered.max_per_week <= 0 || wanted.max_per_week <= 0) {
    range = kNeutralValue;
  } else {
    const float omin = std::min(offered.min_per_week, offered.max_per_week);
    const float omax = offered.max_per_week;
    const float wmin = std::min(wanted.min_per_week, wanted.max_per_week);
    const float wmax = wanted.max_per_week;
    const float overlap = std::min(omax, wmax) - std::max(omin, wmin);
    if (omin >= wmin && omax <= wmax) {
      range = 1.0f;
    } else if (overlap >= 0) {
      range = 0.5f + 0.5f * overlap / (omax - omin);
    } else {
      range = std::max(0.0f, 0.4f * (1.0f + overlap / 10.0f));
    }
  }
  float periods = 1.0f;
  if (offered.day_periods != 0 && wanted.day_periods != 0 &&
      (offered.day_periods & ~wanted.day_periods) != 0) {
    periods = (offered.day_periods & wanted.day_periods) != 0 ? 0.6f : 0.2f;
  }
  return range * periods;
}

MatchOutcome Evaluate(const CandidateFacts& candidate, const OfferFacts& offer,
                      int32_t today) {
  Constraints constraints;
  return EvaluatePair(candidate, offer, today, &constraints, nullptr);
}

MatchExplanation Explain(const CandidateFacts& candidate,
                         const OfferFacts& offer, int32_t today) {
  Constraints c;
  Texts texts;
  const MatchOutcome outcome =
      EvaluatePair(candidate, offer, today, &c, &texts);
  MatchExplanation out;
  out.eligibility = outcome.eligibility;
  out.score = outcome.score;

  v1::ConstraintCheck work;
  work.set_constraint(v1::CONSTRAINT_KIND_WORK_PERMISSION);
  work.set_outcome(c.work_permission);
  work.set_work_permission(c.permission_used);
  work.set_explanation(std::move(texts.work_permission));
  out.constraints.push_back(std::move(work));

  v1::ConstraintCheck language;
  language.set_constraint(v1::CONSTRAINT_KIND_LANGUAGE_LEVEL);
  language.set_outcome(c.language);
  language.set_required_level(offer.required_language_level);
  language.set_candidate_level(c.level_used.level);
  language.set_level_source(c.level_used.source);
  language.set_explanation(std::move(texts.language));
  out.constraints.push_back(std::move(language));

  if (offer.recognition_required) {
    v1::ConstraintCheck recognition;
    recognition.set_constraint(v1::CONSTRAINT_KIND_RECOGNITION);
    recognition.set_outcome(c.recognition);
    recognition.set_explanation(std::move(texts.recognition));
    out.constraints.push_back(std::move(recognition));
  }

  const FactorValues& v = outcome.factors;
  out.factors.push_back(Factor(v1::SCORE_FACTOR_KIND_OCCUPATION,
                               kOccupationWeight, v.occupation,
                               std::move(texts.occupation)));
  out.factors.push_back(Factor(v1::SCORE_FACTOR_KIND_SKILLS, kSkillsWeight,
                               v.skills, std::move(texts.skills)));
  out.factors.push_back(Factor(v1::SCORE_FACTOR_KIND_QUALIFICATIONS,
                               kQualificationsWeight, v.qualifications,
                               std::move(texts.qualifications)));
  out.factors.push_back(Factor(v1::SCORE_FACTOR_KIND_PLACE, kPlaceWeight,
                               v.place, std::move(texts.place)));
  out.factors.push_back(Factor(v1::SCORE_FACTOR_KIND_HOURS, kHoursWeight,
                               v.hours, std::move(texts.hours)));
  out.factors.push_back(Factor(v1::SCORE_FACTOR_KIND_AVAILABILITY,
                               kAvailabilityWeight, v.availability,
                               std::move(texts.availability)));
  return out;
}

void FillOfferMatch(const MatchExplanation& explanation, v1::OfferMatch* out) {
  out->set_eligibility(explanation.eligibility);
  out->set_score(explanation.score);
  out->mutable_constraints()->Clear();
  for (const v1::ConstraintCheck& c : explanation.constraints) {
    *out->add_constraints() = c;
  }
  out->mutable_factors()->Clear();
  for (const v1::ScoreFactor& f : explanation.factors) *out->add_factors() = f;
}

void FillCandidateMatch(const MatchExplanation& explanation,
                        v1::CandidateMatch* out) {
  out->set_eligibility(explanation.eligibility);
  out->set_score(explanation.score);
  out->mutable_constraints()->Clear();
  for (const v1::ConstraintCheck& c : explanation.constraints) {
    *out->add_constraints() = c;
  }
  out->mutable_factors()->Clear();
  for (const v1::ScoreFactor& f : explanation.factors) *out->add_factors() = f;
}

}  // namespace lotse::placement
