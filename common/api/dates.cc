#include "common/api/dates.h"

#include "absl/time/civil_time.h"

namespace lotse::api {
namespace {

const absl::CivilDay kEpoch(1970, 1, 1);

}  // namespace

std::optional<int64_t> DayNumber(const type::v1::Date& date) {
  if (date.year() < 1900 || date.year() > 2200 || date.month() < 1 ||
      date.month() > 12 || date.day() < 1 || date.day() > 31) {
    return std::nullopt;
  }
  const absl::CivilDay day(date.year(), date.month(), date.day());
  // CivilDay normalises 30 February into March; such dates do not exist.
  if (day.month() != date.month() || day.day() != date.day()) {
    return std::nullopt;
  }
  return day - kEpoch;
}

type::v1::Date DateFromDay(int64_t day) {
  const absl::CivilDay civil = kEpoch + day;
  type::v1::Date out;
  out.set_year(static_cast<int32_t>(civil.year()));
  out.set_month(civil.month());
  out.set_day(civil.day());
  return out;
}

int64_t DayOf(absl::Time t) {
  return absl::ToCivilDay(t, absl::UTCTimeZone()) - kEpoch;
}

}  // namespace lotse::api
