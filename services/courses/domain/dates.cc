#include "services/courses/domain/dates.h"

#include "absl/time/civil_time.h"

namespace lotse::courses {

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
