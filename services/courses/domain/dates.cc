#include "services/courses/domain/dates.h"

#include "absl/time/civil_time.h"

namespace lotse::courses {

std::optional<int64_t> DayNumber(const type::v1::Date& date) {
  if (date.year() < 1900 || date.year() > 2200 || date.month() < 1 ||
      date.month() > 12 || date.day() < 1 || date.day() > 31) {
    return std::nullopt;
  }
  const absl::CivilDay day(date.year(), date.month(), date.day());
  // CivilDay normalises 31 February into March: refuse those.
  if (day.month() != date.month() || day.day() != date.day()) {
    return std::nullopt;
  }
  return day - absl::CivilDay(1970, 1, 1);
}

type::v1::Date DateFromDay(int64_t day) {
  const absl::CivilDay civil = absl::CivilDay(1970, 1, 1) + day;
  type::v1::Date out;
  out.set_year(static_cast<int32_t>(civil.year()));
  out.set_month(civil.month());
  out.set_day(civil.day());
  return out;
}

int64_t DayOf(absl::Time t) {
  return absl::ToCivilDay(t, absl::UTCTimeZone()) - absl::CivilDay(1970, 1, 1);
}

std::optional<int64_t> ValidateDate(const type::v1::Date& date, bool is_set,
                                    bool required, const std::string& field,
                                    FieldViolations* violations) {
  if (!is_set) {
    if (required) violations->Add(field, "is required");
    return std::nullopt;
  }
  std::optional<int64_t> day = DayNumber(date);
  if (!day) violations->Add(field, "is not a valid date");
  return day;
}

}  // namespace lotse::courses
