// Calendar days of the courses service: lotse.type.v1.Date <-> day numbers
// (days since 1970-01-01), which the store keeps and compares. "Today" is
// the UTC civil day of the service's clock.
#ifndef LOTSE_SERVICES_COURSES_DOMAIN_DATES_H_
#define LOTSE_SERVICES_COURSES_DOMAIN_DATES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/errors/status.h"
#include "lotse/type/v1/date.pb.h"

namespace lotse::courses {

// The day number of a valid calendar date; nullopt when year/month/day do
// not form one (year 1900..2200).
std::optional<int64_t> DayNumber(const type::v1::Date& date);

type::v1::Date DateFromDay(int64_t day);

// The UTC civil day of `t`.
int64_t DayOf(absl::Time t);

// Validates a date field: `required` and unset adds "is required"; an
// impossible date adds "is not a valid date". Returns the day number or
// nullopt.
std::optional<int64_t> ValidateDate(const type::v1::Date& date, bool is_set,
                                    bool required, const std::string& field,
                                    FieldViolations* violations);

}  // namespace lotse::courses

#endif  // LOTSE_SERVICES_COURSES_DOMAIN_DATES_H_
