#include "services/courses/domain/geo.h"

#include "gtest/gtest.h"
#include "services/courses/domain/dates.h"

namespace lotse::courses {
namespace {

TEST(GeoTest, KnownAreasAndDistances) {
  std::optional<GeoPoint> koeln = PostalCodeCentre("50667");
  std::optional<GeoPoint> bonn = PostalCodeCentre("53111");
  ASSERT_TRUE(koeln && bonn);
  // Köln - Bonn is about 25 km as the crow flies.
  EXPECT_NEAR(DistanceKm(*koeln, *bonn), 25, 6);
  EXPECT_EQ(DistanceKm(*koeln, *koeln), 0);
  EXPECT_FALSE(PostalCodeCentre("99999"));
  EXPECT_FALSE(PostalCodeCentre("5066"));
  EXPECT_FALSE(PostalCodeCentre("5066a"));
  GeoBox box = BoxAround(*koeln, 30);
  EXPECT_LT(box.min_lat, bonn->lat);
  EXPECT_GT(box.max_lat, koeln->lat);
}

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
