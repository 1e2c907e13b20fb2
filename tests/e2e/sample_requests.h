// Valid resources the end-to-end tests create: one place to keep them in
// step with the contracts' validation.
#ifndef LOTSE_TESTS_E2E_SAMPLE_REQUESTS_H_
#define LOTSE_TESTS_E2E_SAMPLE_REQUESTS_H_

#include <string>

#include "lotse/courses/v1/course.pb.h"
#include "lotse/identity/v1/person.pb.h"
#include "lotse/placement/v1/offer.pb.h"
#include "lotse/type/v1/date.pb.h"

namespace lotse::testing {

// The calendar day `days` from now (UTC).
type::v1::Date DateInDays(int days);

// A person with one current Latin-script name and a birth year.
identity::v1::Person SamplePerson(const std::string& given,
                                  const std::string& family, int birth_year);

// SamplePerson born on 17 May of `birth_year`: a full date, so that an
// agency holding the person's papers can prove the person is in its remit.
identity::v1::Person SamplePersonWithPapers(const std::string& given,
                                            const std::string& family,
                                            int birth_year);

// What an agency with `person`'s papers presents to LinkAgencyId: the first
// name and the birth date.
identity::v1::RemitProof PapersOf(const identity::v1::Person& person);

// A general integration course to B1 in Köln, starting in 14 days on
// Monday mornings, 20 of 700 units a week, 12 seats.
courses::v1::Course IntegrationCourse(const std::string& title);

// A warehouse job in Köln (KldB 51312), 30–40 hours in the mornings, from
// 30 days on, needing `level` and a forklift skill.
placement::v1::Offer WarehouseOffer(const std::string& title,
                                    type::v1::CefrLevel level, int positions);

}  // namespace lotse::testing

#endif  // LOTSE_TESTS_E2E_SAMPLE_REQUESTS_H_
