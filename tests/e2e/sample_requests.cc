#include "tests/e2e/sample_requests.h"

#include "absl/time/civil_time.h"
#include "absl/time/clock.h"

namespace lotse::testing {

type::v1::Date DateInDays(int days) {
  const absl::CivilDay day = absl::ToCivilDay(
      absl::Now() + absl::Hours(24) * days, absl::UTCTimeZone());
  type::v1::Date date;
  date.set_year(static_cast<int>(day.year()));
  date.set_month(day.month());
  date.set_day(day.day());
  return date;
}

identity::v1::Person SamplePerson(const std::string& given,
                                  const std::string& family, int birth_year) {
  identity::v1::Person person;
  identity::v1::PersonName* name = person.add_names();
  name->set_given_names(given);
  name->set_family_names(family);
  name->set_script("Latn");
  name->set_kind(identity::v1::NAME_KIND_CURRENT);
  person.mutable_birth_date()->set_year(birth_year);
  return person;
}

identity::v1::Person SamplePersonWithPapers(const std::string& given,
                                            const std::string& family,
                                            int birth_year) {
  identity::v1::Person person = SamplePerson(given, family, birth_year);
  person.mutable_birth_date()->set_month(5);
  person.mutable_birth_date()->set_day(17);
  return person;
}

identity::v1::RemitProof PapersOf(const identity::v1::Person& person) {
  identity::v1::RemitProof proof;
  identity::v1::IdentifyingAttributes* a = proof.mutable_attributes();
  *a->mutable_name() = person.names(0);
  *a->mutable_birth_date() = person.birth_date();
  a->set_birth_place(person.birth_place());
  return proof;
}

courses::v1::Course IntegrationCourse(const std::string& title) {
  courses::v1::Course c;
  c.set_title(title);
  c.set_kind(courses::v1::COURSE_KIND_INTEGRATION_GENERAL);
  c.set_target_level(type::v1::CEFR_LEVEL_B1);
  c.mutable_place()->set_postal_code("50667");
  c.mutable_place()->set_locality("Köln");
  c.mutable_place()->set_municipality_code("05315000");
  c.mutable_place()->set_street("Cäcilienstraße");
  *c.mutable_schedule()->mutable_start_date() = DateInDays(14);
  c.mutable_schedule()->add_weekdays(type::v1::DAY_OF_WEEK_MONDAY);
  c.mutable_schedule()->set_day_period(type::v1::DAY_PERIOD_MORNING);
  c.mutable_schedule()->set_units_per_week(20);
  c.mutable_schedule()->set_total_units(700);
  c.set_capacity(12);
  return c;
}

placement::v1::Offer WarehouseOffer(const std::string& title,
                                    type::v1::CefrLevel level, int positions) {
  placement::v1::Offer offer;
  offer.set_kind(placement::v1::OFFER_KIND_JOB);
  offer.set_title(title);
  offer.set_description("Kommissionieren, Waren annehmen und einlagern.");
  offer.set_occupation_code("51312");
  offer.set_employer_name("Rheinlager Logistik GmbH");
  offer.mutable_place()->set_street("Industriestraße");
  offer.mutable_place()->set_house_number("12");
  offer.mutable_place()->set_postal_code("50735");
  offer.mutable_place()->set_locality("Köln");
  offer.mutable_place()->set_municipality_code("05315000");
  offer.mutable_hours()->set_min_hours_per_week(30);
  offer.mutable_hours()->set_max_hours_per_week(40);
  offer.mutable_hours()->add_day_periods(type::v1::DAY_PERIOD_MORNING);
  *offer.mutable_start_date() = DateInDays(30);
  offer.set_required_language_level(level);
  offer.add_required_skills("Gabelstapler");
  offer.set_positions_total(positions);
  return offer;
}

}  // namespace lotse::testing
