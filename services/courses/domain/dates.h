// Calendar days of the courses service: lotse.type.v1.Date <-> day numbers
// (days since 1970-01-01), which the store keeps and compares. "Today" is
// the UTC civil day of the service's clock.
#ifndef LOTSE_SERVICES_COURSES_DOMAIN_DATES_H_
#define LOTSE_SERVICES_COURSES_DOMAIN_DATES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/api/dates.h"
#include "common/errors/status.h"
#include "lotse/type/v1/date.pb.h"

namespace lotse::courses {

// Day numbers and dates: common/api/dates.h.
using api::DateFromDay;
using api::DayNumber;
using api::DayOf;

// Validates a date field: `required` and unset adds "is required"; an
// impossible date adds "is not a valid date". Returns the day number or
// nullopt.
std::optional<int64_t> ValidateDate(const type::v1::Date& date, bool is_set,
                                    bool required, const std::string& field,
                                    FieldViolations* violations);

}  // namespace lotse::courses

#endif  // LOTSE_SERVICES_COURSES_DOMAIN_DATES_H_
