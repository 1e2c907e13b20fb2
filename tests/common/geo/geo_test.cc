#include "common/geo/geo.h"

#include "gtest/gtest.h"

namespace lotse::geo {
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

}  // namespace
}  // namespace lotse::geo
