// Calendar dates at the API edge: lotse.type.v1.Date <-> day numbers (days
// since 1970-01-01), the form the stores keep, index and compare. "Today"
// is the UTC civil day.
#ifndef LOTSE_COMMON_API_DATES_H_
#define LOTSE_COMMON_API_DATES_H_

#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "lotse/type/v1/date.pb.h"

namespace lotse::api {

// The day number of a real calendar date with a year in 1900..2200;
// nullopt otherwise (an unset date, 31 February, month 13, ...).
std::optional<int64_t> DayNumber(const type::v1::Date& date);

// The date of day number `day`.
type::v1::Date DateFromDay(int64_t day);

// The day number of the UTC civil day `t` falls in.
int64_t DayOf(absl::Time t);

}  // namespace lotse::api

#endif  // LOTSE_COMMON_API_DATES_H_
