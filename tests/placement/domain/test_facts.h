// Builders of offer and candidate facts for the placement domain tests: a
// plain offer and candidate that match on everything, which each test
// changes in the one respect it is about.
#ifndef LOTSE_TESTS_PLACEMENT_DOMAIN_TEST_FACTS_H_
#define LOTSE_TESTS_PLACEMENT_DOMAIN_TEST_FACTS_H_

#include <string>

#include "common/geo/geo.h"
#include "services/placement/domain/facts.h"

namespace lotse::placement::testing {

// 2026-03-01 and 2026-04-01 as day numbers.
inline constexpr int32_t kToday = 20513;
inline constexpr int32_t kStart = 20544;

// A job as warehouse specialist (KldB 51312) in Köln (50667), 30..40 h,
// needing A2 and two skills.
inline OfferFacts Offer(const std::string& id) {
  OfferFacts o;
  o.offer_id = id;
  o.kind = v1::OFFER_KIND_JOB;
  o.occupation_code = "51312";
  o.municipality_code = "05315000";
  o.postal_code = "50667";
  o.place_centre = geo::PostalCodeCentre("50667");
  o.hours = {30, 40, 0};
  o.start_day = kStart;
  o.required_language_level = type::v1::CEFR_LEVEL_A2;
  o.required_skills = {"gabelstapler", "sap"};
  o.positions_open = 1;
  return o;
}

// A candidate permitted to work, certified B1, 36 months in 51312, with
// both skills, no place or hours preference, available now.
inline CandidateFacts Candidate(const std::string& person_id) {
  CandidateFacts c;
  c.person_id = person_id;
  c.work_permission = type::v1::WORK_PERMISSION_PERMITTED;
  c.certified_language_level = type::v1::CEFR_LEVEL_B1;
  c.experience = {{"51312", 36}};
  c.skills = {{"gabelstapler", v1::SKILL_LEVEL_EXPERIENCED},
              {"sap", v1::SKILL_LEVEL_EXPERT}};
  return c;
}

}  // namespace lotse::placement::testing

#endif  // LOTSE_TESTS_PLACEMENT_DOMAIN_TEST_FACTS_H_
