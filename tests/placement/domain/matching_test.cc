// The matching rules of services/placement/domain/matching.h, one pair at a
// time: hard constraints, factor values, and the texts of Explain.
#include "services/placement/domain/matching.h"

#include <algorithm>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/placement/domain/kldb.h"
#include "tests/placement/domain/test_facts.h"

namespace lotse::placement {
namespace {

using ::lotse::placement::testing::Candidate;
using ::lotse::placement::testing::kStart;
using ::lotse::placement::testing::kToday;
using ::lotse::placement::testing::Offer;
using ::testing::HasSubstr;
using ::testing::Not;

const v1::ConstraintCheck& Check(const MatchExplanation& e,
                                 v1::ConstraintKind kind) {
  for (const v1::ConstraintCheck& c : e.constraints) {
    if (c.constraint() == kind) return c;
  }
  static const v1::ConstraintCheck* const kNone = new v1::ConstraintCheck;
  ADD_FAILURE() << "no constraint " << v1::ConstraintKind_Name(kind);
  return *kNone;
}

const v1::ScoreFactor& FactorOf(const MatchExplanation& e,
                                v1::ScoreFactorKind kind) {
  for (const v1::ScoreFactor& f : e.factors) {
    if (f.factor() == kind) return f;
  }
  static const v1::ScoreFactor* const kNone = new v1::ScoreFactor;
  ADD_FAILURE() << "no factor " << v1::ScoreFactorKind_Name(kind);
  return *kNone;
}

TEST(MatchingTest, WeightsSumToOne) {
  EXPECT_FLOAT_EQ(kOccupationWeight + kSkillsWeight + kQualificationsWeight +
                      kPlaceWeight + kHoursWeight + kAvailabilityWeight,
                  1.0f);
}

TEST(MatchingTest, BasePairIsEligibleWithKnownScore) {
  const MatchExplanation e = Explain(Candidate("p1"), Offer("o1"), kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_ELIGIBLE);
  // occupation 1, skills 1, qualifications 1 (none required), place 0.5 and
  // hours 0.5 (no preference), availability 1.
  EXPECT_NEAR(e.score, 0.35 + 0.20 + 0.10 + 0.10 + 0.05 + 0.05, 1e-6);
  ASSERT_EQ(e.factors.size(), 6u);
  double sum = 0;
  for (const v1::ScoreFactor& f : e.factors) {
    EXPECT_NEAR(f.contribution(), f.weight() * f.value(), 1e-6);
    sum += f.contribution();
  }
  EXPECT_NEAR(sum, e.score, 1e-5);
  // Two constraints: no recognition required.
  EXPECT_EQ(e.constraints.size(), 2u);
}

TEST(MatchingTest, WorkPermissionOutcomes) {
  OfferFacts offer = Offer("o1");
  CandidateFacts c = Candidate("p1");

  c.work_permission = type::v1::WORK_PERMISSION_NOT_PERMITTED;
  MatchExplanation e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_EXCLUDED);
  EXPECT_EQ(e.score, 0);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_WORK_PERMISSION).outcome(),
            v1::CONSTRAINT_OUTCOME_NOT_MET);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_WORK_PERMISSION).work_permission(),
            type::v1::WORK_PERMISSION_NOT_PERMITTED);

  c.work_permission = type::v1::WORK_PERMISSION_NEEDS_APPROVAL;
  e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_NEEDS_APPROVAL);
  EXPECT_GT(e.score, 0.5);
  EXPECT_THAT(Check(e, v1::CONSTRAINT_KIND_WORK_PERMISSION).explanation(),
              HasSubstr("approval"));

  c.work_permission = type::v1::WORK_PERMISSION_UNSPECIFIED;
  e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_UNVERIFIED);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_WORK_PERMISSION).outcome(),
            v1::CONSTRAINT_OUTCOME_UNKNOWN);

  c.work_permission = type::v1::WORK_PERMISSION_PERMITTED;
  c.work_permission_valid_until_day = kToday;  // valid through today
  EXPECT_EQ(Explain(c, offer, kToday).eligibility, v1::ELIGIBILITY_ELIGIBLE);
  c.work_permission_valid_until_day = kToday - 1;  // expired yesterday
  e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_UNVERIFIED);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_WORK_PERMISSION).outcome(),
            v1::CONSTRAINT_OUTCOME_UNKNOWN);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_WORK_PERMISSION).work_permission(),
            type::v1::WORK_PERMISSION_UNSPECIFIED);
  EXPECT_THAT(Check(e, v1::CONSTRAINT_KIND_WORK_PERMISSION).explanation(),
              HasSubstr("expired"));
}

TEST(MatchingTest, WithheldWorkPermissionIsNotUsed) {
  CandidateFacts c = Candidate("p1");
  c.work_permission = type::v1::WORK_PERMISSION_NOT_PERMITTED;
  const CandidateFacts seen = c.WithheldFor(/*see_residence=*/false,
                                            /*see_language=*/true);
  EXPECT_EQ(seen.work_permission, type::v1::WORK_PERMISSION_UNSPECIFIED);
  const MatchExplanation e = Explain(seen, Offer("o1"), kToday);
  // Not EXCLUDED: the caller may not see why it would be.
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_UNVERIFIED);
  const v1::ConstraintCheck& check =
      Check(e, v1::CONSTRAINT_KIND_WORK_PERMISSION);
  EXPECT_EQ(check.outcome(), v1::CONSTRAINT_OUTCOME_WITHHELD);
  EXPECT_EQ(check.work_permission(), type::v1::WORK_PERMISSION_UNSPECIFIED);
}

TEST(MatchingTest, CertifiedLevelMeetsEqualRequirementAndLowerDoesNot) {
  OfferFacts offer = Offer("o1");
  offer.required_language_level = type::v1::CEFR_LEVEL_B1;
  CandidateFacts c = Candidate("p1");

  c.certified_language_level = type::v1::CEFR_LEVEL_B1;
  MatchExplanation e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_ELIGIBLE);
  const v1::ConstraintCheck& met = Check(e, v1::CONSTRAINT_KIND_LANGUAGE_LEVEL);
  EXPECT_EQ(met.outcome(), v1::CONSTRAINT_OUTCOME_MET);
  EXPECT_EQ(met.candidate_level(), type::v1::CEFR_LEVEL_B1);
  EXPECT_EQ(met.required_level(), type::v1::CEFR_LEVEL_B1);
  EXPECT_EQ(met.level_source(), v1::LANGUAGE_LEVEL_SOURCE_COURSE_RESULT);
  EXPECT_EQ(met.explanation(),
            "B1 certified by course result; offer requires B1");

  c.certified_language_level = type::v1::CEFR_LEVEL_A2;
  e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_EXCLUDED);
  EXPECT_EQ(e.score, 0);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_LANGUAGE_LEVEL).outcome(),
            v1::CONSTRAINT_OUTCOME_NOT_MET);
}

TEST(MatchingTest, CertifiedLevelBeatsStatedLevel) {
  OfferFacts offer = Offer("o1");
  offer.required_language_level = type::v1::CEFR_LEVEL_B2;
  CandidateFacts c = Candidate("p1");
  c.stated_language_level = type::v1::CEFR_LEVEL_C1;
  c.certified_language_level = type::v1::CEFR_LEVEL_B1;
  // The certificate says B1, whatever the profile states.
  MatchExplanation e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_EXCLUDED);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_LANGUAGE_LEVEL).candidate_level(),
            type::v1::CEFR_LEVEL_B1);

  // Without a certificate the stated level is used.
  c.certified_language_level = type::v1::CEFR_LEVEL_UNSPECIFIED;
  e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_ELIGIBLE);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_LANGUAGE_LEVEL).level_source(),
            v1::LANGUAGE_LEVEL_SOURCE_PROFILE);

  // No level at all: unknown, not excluded.
  c.stated_language_level = type::v1::CEFR_LEVEL_UNSPECIFIED;
  e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_UNVERIFIED);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_LANGUAGE_LEVEL).outcome(),
            v1::CONSTRAINT_OUTCOME_UNKNOWN);
}

TEST(MatchingTest, WithheldLanguageIsNotUsed) {
  OfferFacts offer = Offer("o1");
  offer.required_language_level = type::v1::CEFR_LEVEL_C1;
  CandidateFacts c = Candidate("p1");
  c.certified_language_level = type::v1::CEFR_LEVEL_A1;  // would exclude
  const CandidateFacts seen = c.WithheldFor(/*see_residence=*/true,
                                            /*see_language=*/false);
  EXPECT_EQ(seen.EffectiveLanguageLevel().level,
            type::v1::CEFR_LEVEL_UNSPECIFIED);
  const MatchExplanation e = Explain(seen, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_UNVERIFIED);
  const v1::ConstraintCheck& check =
      Check(e, v1::CONSTRAINT_KIND_LANGUAGE_LEVEL);
  EXPECT_EQ(check.outcome(), v1::CONSTRAINT_OUTCOME_WITHHELD);
  EXPECT_EQ(check.candidate_level(), type::v1::CEFR_LEVEL_UNSPECIFIED);
  EXPECT_EQ(check.level_source(), v1::LANGUAGE_LEVEL_SOURCE_UNSPECIFIED);
  EXPECT_THAT(check.explanation(), Not(HasSubstr("A1")));

  // Without a requirement nothing is withheld from the decision.
  offer.required_language_level = type::v1::CEFR_LEVEL_UNSPECIFIED;
  EXPECT_EQ(Explain(seen, offer, kToday).eligibility, v1::ELIGIBILITY_ELIGIBLE);
}

TEST(MatchingTest, Recognition) {
  OfferFacts offer = Offer("o1");
  offer.occupation_code = "81302";  // nursing
  offer.recognition_required = true;
  CandidateFacts c = Candidate("p1");
  c.experience.clear();

  // No qualification in the occupation.
  MatchExplanation e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_EXCLUDED);
  EXPECT_EQ(Check(e, v1::CONSTRAINT_KIND_RECOGNITION).outcome(),
            v1::CONSTRAINT_OUTCOME_NOT_MET);

  struct Case {
    v1::RecognitionState state;
    v1::Eligibility expected;
  };
  for (const Case& test : {
           Case{v1::RECOGNITION_STATE_FULL, v1::ELIGIBILITY_ELIGIBLE},
           Case{v1::RECOGNITION_STATE_NOT_REQUIRED, v1::ELIGIBILITY_ELIGIBLE},
           Case{v1::RECOGNITION_STATE_PARTIAL, v1::ELIGIBILITY_UNVERIFIED},
           Case{v1::RECOGNITION_STATE_IN_PROGRESS, v1::ELIGIBILITY_UNVERIFIED},
           Case{v1::RECOGNITION_STATE_UNSPECIFIED, v1::ELIGIBILITY_UNVERIFIED},
           Case{v1::RECOGNITION_STATE_NOT_APPLIED, v1::ELIGIBILITY_EXCLUDED},
           Case{v1::RECOGNITION_STATE_REFUSED, v1::ELIGIBILITY_EXCLUDED},
       }) {
    // Same subgroup 8130x, another requirement level.
    c.qualifications = {{"81303", test.state}};
    EXPECT_EQ(Explain(c, offer, kToday).eligibility, test.expected)
        << v1::RecognitionState_Name(test.state);
  }

  // A full recognition in another subgroup does not count.
  c.qualifications = {{"81312", v1::RECOGNITION_STATE_FULL}};
  EXPECT_EQ(Explain(c, offer, kToday).eligibility, v1::ELIGIBILITY_EXCLUDED);
  // The best of several counts.
  c.qualifications = {{"81302", v1::RECOGNITION_STATE_REFUSED},
                      {"81302", v1::RECOGNITION_STATE_FULL}};
  e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_ELIGIBLE);
  EXPECT_EQ(e.constraints.size(), 3u);
  EXPECT_THAT(Check(e, v1::CONSTRAINT_KIND_RECOGNITION).explanation(),
              HasSubstr("recognised fully"));
}

TEST(MatchingTest, WorstConstraintWins) {
  OfferFacts offer = Offer("o1");
  CandidateFacts c = Candidate("p1");
  c.work_permission = type::v1::WORK_PERMISSION_NEEDS_APPROVAL;
  c.certified_language_level = type::v1::CEFR_LEVEL_UNSPECIFIED;
  EXPECT_EQ(Explain(c, offer, kToday).eligibility, v1::ELIGIBILITY_UNVERIFIED);
  c.certified_language_level = type::v1::CEFR_LEVEL_A1;  // below A2
  EXPECT_EQ(Explain(c, offer, kToday).eligibility, v1::ELIGIBILITY_EXCLUDED);
}

TEST(MatchingTest, OccupationByHierarchyAndMonths) {
  const OfferFacts offer = Offer("o1");  // 51312
  CandidateFacts c = Candidate("p1");
  auto occupation = [&](const std::string& code, int months) {
    c.experience = {{code, months}};
    return Evaluate(c, offer, kToday).factors.occupation;
  };
  EXPECT_FLOAT_EQ(occupation("51312", 36), 1.0f);
  EXPECT_FLOAT_EQ(occupation("51313", 36), 0.8f);   // same subgroup
  EXPECT_FLOAT_EQ(occupation("51322", 36), 0.5f);   // same group
  EXPECT_FLOAT_EQ(occupation("51412", 36), 0.25f);  // same main group
  EXPECT_FLOAT_EQ(occupation("52112", 36), 0.0f);
  EXPECT_FLOAT_EQ(occupation("51312", 0), 0.5f);
  EXPECT_FLOAT_EQ(occupation("51312", 18), 0.75f);
  EXPECT_GT(occupation("51312", 12), occupation("51313", 12));

  // A qualification counts as well as 0.8 of the same code.
  c.experience.clear();
  c.qualifications = {{"51312", v1::RECOGNITION_STATE_NOT_REQUIRED}};
  const MatchExplanation e = Explain(c, offer, kToday);
  EXPECT_FLOAT_EQ(FactorOf(e, v1::SCORE_FACTOR_KIND_OCCUPATION).value(), 0.8f);
  EXPECT_EQ(FactorOf(e, v1::SCORE_FACTOR_KIND_OCCUPATION).explanation(),
            "qualification in 51312 (same code)");

  c.qualifications.clear();
  c.experience = {{"51313", 36}};
  EXPECT_EQ(
      FactorOf(Explain(c, offer, kToday), v1::SCORE_FACTOR_KIND_OCCUPATION)
          .explanation(),
      "experience 36 months in 5131x (same subgroup)");
}

TEST(MatchingTest, SkillsShareAndNormalisation) {
  OfferFacts offer = Offer("o1");
  offer.required_skills = {"gabelstapler", "sap", "excel", "führerschein b"};
  CandidateFacts c = Candidate("p1");
  c.skills = {{NormaliseSkillLabel("  GabelStapler "), v1::SKILL_LEVEL_EXPERT},
              {NormaliseSkillLabel("SAP"), v1::SKILL_LEVEL_UNSPECIFIED},
              {NormaliseSkillLabel("FÜHRERSCHEIN   B"), v1::SKILL_LEVEL_BASIC}};
  const MatchExplanation e = Explain(c, offer, kToday);
  const v1::ScoreFactor& skills = FactorOf(e, v1::SCORE_FACTOR_KIND_SKILLS);
  EXPECT_FLOAT_EQ(skills.value(), (1 + 1 + 0.5f) / 4);
  EXPECT_EQ(skills.explanation(), "3 of 4 required skills (1 basic only)");

  EXPECT_EQ(NormaliseSkillLabel(" Ärztliche  HILFE "), "ärztliche hilfe");
  EXPECT_EQ(NormaliseSkillLabel("СВАРКА"), "сварка");

  offer.required_skills.clear();
  EXPECT_FLOAT_EQ(Evaluate(c, offer, kToday).factors.skills, 1.0f);
}

TEST(MatchingTest, QualificationsByRecognitionAndLevel) {
  OfferFacts offer = Offer("o1");
  offer.required_qualification_codes = {"51312", "52122"};
  CandidateFacts c = Candidate("p1");
  c.qualifications = {{"51312", v1::RECOGNITION_STATE_FULL},
                      {"52121", v1::RECOGNITION_STATE_PARTIAL}};
  // 1.0 for the first; the second is partial (0.7) at a lower level (x0.5).
  const MatchExplanation e = Explain(c, offer, kToday);
  const v1::ScoreFactor& q = FactorOf(e, v1::SCORE_FACTOR_KIND_QUALIFICATIONS);
  EXPECT_FLOAT_EQ(q.value(), (1.0f + 0.35f) / 2);
  EXPECT_THAT(q.explanation(), HasSubstr("1 of 2 required qualifications"));
}

TEST(MatchingTest, PlaceByPostalCodeDistanceAndMunicipality) {
  OfferFacts offer = Offer("o1");  // Köln 50667
  offer.postal_code = "53111";     // Bonn, about 25 km from Köln
  offer.place_centre = geo::PostalCodeCentre("53111");
  offer.municipality_code = "05314000";
  CandidateFacts c = Candidate("p1");

  EXPECT_FLOAT_EQ(Evaluate(c, offer, kToday).factors.place, kNeutralValue);

  PlaceFacts koeln;
  koeln.postal_code = "50667";
  koeln.centre = geo::PostalCodeCentre("50667");
  koeln.max_distance_km = 30;
  c.preferred_places = {koeln};
  MatchExplanation e = Explain(c, offer, kToday);
  const v1::ScoreFactor& within = FactorOf(e, v1::SCORE_FACTOR_KIND_PLACE);
  EXPECT_GT(within.value(), 0.7);
  EXPECT_LT(within.value(), 0.9);
  EXPECT_THAT(within.explanation(),
              HasSubstr("km from preferred postal code 50667"));

  c.preferred_places[0].max_distance_km = 20;  // Bonn is beyond
  const float beyond = Evaluate(c, offer, kToday).factors.place;
  EXPECT_LT(beyond, 0.5f);
  EXPECT_GT(beyond, 0.0f);
  c.preferred_places[0].max_distance_km = 5;  // twice the limit is passed
  EXPECT_FLOAT_EQ(Evaluate(c, offer, kToday).factors.place, 0.0f);

  PlaceFacts bonn;
  bonn.municipality_code = "05314000";
  c.preferred_places.push_back(bonn);
  e = Explain(c, offer, kToday);
  EXPECT_FLOAT_EQ(FactorOf(e, v1::SCORE_FACTOR_KIND_PLACE).value(), 1.0f);
  EXPECT_EQ(FactorOf(e, v1::SCORE_FACTOR_KIND_PLACE).explanation(),
            "in preferred municipality 05314000");

  // A postal code outside the table: only an equal code counts.
  offer.place_centre.reset();
  offer.postal_code = "99999";
  PlaceFacts unknown;
  unknown.postal_code = "99999";
  c.preferred_places = {unknown};
  EXPECT_FLOAT_EQ(Evaluate(c, offer, kToday).factors.place, 1.0f);
  c.preferred_places[0].postal_code = "99998";
  EXPECT_FLOAT_EQ(Evaluate(c, offer, kToday).factors.place, 0.0f);
}

TEST(MatchingTest, Hours) {
  HoursFacts offered{20, 30, 0};
  EXPECT_FLOAT_EQ(HoursValue(offered, {15, 30, 0}), 1.0f);
  EXPECT_FLOAT_EQ(HoursValue(offered, {25, 40, 0}), 0.75f);  // half inside
  EXPECT_FLOAT_EQ(HoursValue(offered, {0, 15, 0}), 0.2f);    // 5 h apart
  EXPECT_FLOAT_EQ(HoursValue(offered, {0, 5, 0}), 0.0f);
  EXPECT_FLOAT_EQ(HoursValue(offered, {}), kNeutralValue);
  const DayPeriodMask morning = 1 << type::v1::DAY_PERIOD_MORNING;
  const DayPeriodMask night = 1 << type::v1::DAY_PERIOD_NIGHT;
  offered.day_periods = morning | night;
  EXPECT_FLOAT_EQ(HoursValue(offered, {15, 30, morning}), 0.6f);
  EXPECT_FLOAT_EQ(HoursValue(offered, {15, 30, morning | night}), 1.0f);
  offered.day_periods = night;
  EXPECT_FLOAT_EQ(HoursValue(offered, {15, 30, morning}), 0.2f);

  OfferFacts offer = Offer("o1");
  offer.hours = {20, 30, night};
  CandidateFacts c = Candidate("p1");
  c.preferred_hours = {15, 30, morning};
  EXPECT_EQ(FactorOf(Explain(c, offer, kToday), v1::SCORE_FACTOR_KIND_HOURS)
                .explanation(),
            "hours 20–30 within preferred 15–30; works night, not a preferred "
            "part of the day");
}

TEST(MatchingTest, AvailabilityIsAFactorNotAnExclusion) {
  const OfferFacts offer = Offer("o1");
  CandidateFacts c = Candidate("p1");
  c.available_from_day = kStart + 45;
  const MatchExplanation e = Explain(c, offer, kToday);
  EXPECT_EQ(e.eligibility, v1::ELIGIBILITY_ELIGIBLE);
  EXPECT_FLOAT_EQ(FactorOf(e, v1::SCORE_FACTOR_KIND_AVAILABILITY).value(),
                  0.5f);
  EXPECT_EQ(FactorOf(e, v1::SCORE_FACTOR_KIND_AVAILABILITY).explanation(),
            "available 45 days after the start");
  c.available_from_day = kStart;
  EXPECT_FLOAT_EQ(Evaluate(c, offer, kToday).factors.availability, 1.0f);
}

TEST(MatchingTest, ExplanationsNameNoPerson) {
  const std::string person = "q7kz3mzs2yxw4upqrpkqyve3ha";
  CandidateFacts c = Candidate(person);
  PlaceFacts place;
  place.postal_code = "50667";
  place.centre = geo::PostalCodeCentre("50667");
  place.max_distance_km = 20;
  c.preferred_places = {place};
  c.qualifications = {{"51312", v1::RECOGNITION_STATE_PARTIAL}};
  c.available_from_day = kStart + 3;
  OfferFacts offer = Offer("o1");
  offer.recognition_required = true;
  offer.required_qualification_codes = {"51312"};
  for (const CandidateFacts& seen :
       {c, c.WithheldFor(false, false), c.WithheldFor(true, false)}) {
    const MatchExplanation e = Explain(seen, offer, kToday);
    for (const v1::ConstraintCheck& check : e.constraints) {
      EXPECT_FALSE(check.explanation().empty());
      EXPECT_THAT(check.explanation(), Not(HasSubstr(person)));
    }
    for (const v1::ScoreFactor& f : e.factors) {
      EXPECT_FALSE(f.explanation().empty());
      EXPECT_THAT(f.explanation(), Not(HasSubstr(person)));
    }
  }
}

TEST(MatchingTest, FactsFromProtos) {
  v1::Offer offer;
  offer.set_name("offers/abc");
  offer.set_kind(v1::OFFER_KIND_APPRENTICESHIP);
  offer.set_occupation_code("26112");
  offer.mutable_place()->set_postal_code("50667");
  offer.mutable_place()->set_municipality_code("05315000");
  offer.mutable_start_date()->set_year(2026);
  offer.mutable_start_date()->set_month(4);
  offer.mutable_start_date()->set_day(1);
  offer.add_required_skills(" SAP ");
  offer.mutable_hours()->add_day_periods(type::v1::DAY_PERIOD_EVENING);
  const OfferFacts o = OfferFactsFromProto(offer);
  EXPECT_EQ(o.offer_id, "abc");
  EXPECT_EQ(o.start_day, kStart);
  EXPECT_TRUE(o.place_centre.has_value());
  EXPECT_EQ(o.required_skills, std::vector<std::string>{"sap"});
  EXPECT_EQ(o.hours.day_periods, 1 << type::v1::DAY_PERIOD_EVENING);

  v1::CandidateProfile profile;
  profile.set_person("persons/xyz");
  profile.set_state(v1::CANDIDATE_STATE_INACTIVE);
  profile.set_certified_language_level(type::v1::CEFR_LEVEL_B1);
  profile.add_preferred_places()->set_postal_code("53111");
  const CandidateFacts c = CandidateFactsFromProfile(
      profile, type::v1::WORK_PERMISSION_PERMITTED, kToday + 10);
  EXPECT_EQ(c.person_id, "xyz");
  EXPECT_FALSE(c.active);
  EXPECT_EQ(c.EffectiveLanguageLevel().source,
            v1::LANGUAGE_LEVEL_SOURCE_COURSE_RESULT);
  ASSERT_EQ(c.preferred_places.size(), 1u);
  EXPECT_TRUE(c.preferred_places[0].centre.has_value());
  EXPECT_EQ(c.work_permission_valid_until_day, kToday + 10);

  type::v1::Date bad;
  bad.set_year(2026);
  bad.set_month(2);
  bad.set_day(30);
  EXPECT_FALSE(DayFromDate(bad));
  EXPECT_FALSE(DayFromDate(type::v1::Date()));
}

TEST(KldbTest, CodesAndPrefixes) {
  EXPECT_EQ(ParseOccupationCode("26112"), 26112);
  EXPECT_EQ(ParseOccupationCode("01104"), 1104);
  EXPECT_EQ(ParseOccupationCode("2611"), kNoOccupation);
  EXPECT_EQ(ParseOccupationCode("2611a"), kNoOccupation);
  EXPECT_EQ(CommonOccupationDigits(26112, 26113), 4);
  EXPECT_EQ(CommonOccupationDigits(26112, 26302), 2);
  EXPECT_EQ(CommonOccupationDigits(1104, 1204), 2);  // 011xx, 012xx
  EXPECT_EQ(CommonOccupationDigits(1104, 1109), 4);
  EXPECT_EQ(CommonOccupationDigits(26112, kNoOccupation), 0);
  EXPECT_EQ(OccupationPrefix(1104, 3), "011xx");
  EXPECT_EQ(RequirementLevel(26113), 3);
}

TEST(KldbTest, OnlyCodesOfTheClassificationAreKldbCodes) {
  const absl::Span<const int32_t> codes = Kldb2010Codes();
  // The 2020 revision has 1 301 occupation types, listed in order.
  EXPECT_EQ(codes.size(), 1301u);
  EXPECT_TRUE(std::is_sorted(codes.begin(), codes.end()));
  EXPECT_TRUE(IsKldb2010Code("51312"));   // warehouse and logistics
  EXPECT_TRUE(IsKldb2010Code("81302"));   // nursing
  EXPECT_TRUE(IsKldb2010Code("01104"));   // a leading zero
  EXPECT_TRUE(IsKldb2010Code("94794"));   // the last one
  EXPECT_FALSE(IsKldb2010Code("51301"));  // five digits, no such type
  EXPECT_FALSE(IsKldb2010Code("99999"));
  EXPECT_FALSE(IsKldb2010Code("00000"));
  EXPECT_FALSE(IsKldb2010Code("5131"));
  EXPECT_FALSE(IsKldb2010Code("5131x"));
  EXPECT_FALSE(IsKldb2010Code(""));
}

}  // namespace
}  // namespace lotse::placement
