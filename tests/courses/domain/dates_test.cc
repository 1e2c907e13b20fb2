#include "services/courses/domain/dates.h"

#include "gtest/gtest.h"

namespace lotse::courses {
namespace {

TEST(DatesTest, DayNumbers) {
  type::v1::Date d;
  d.set_year(2026);
  d.set_month(2);
  d.set_day(31);
  EXPECT_FALSE(DayNumber(d));
  d.set_day(28);
  ASSERT_TRUE(DayNumber(d));
  type::v1::Date back = DateFromDay(*DayNumber(d));
  EXPECT_EQ(back.year(), 2026);
  EXPECT_EQ(back.month(), 2);
  EXPECT_EQ(back.day(), 28);
}

}  // namespace
}  // namespace lotse::courses
