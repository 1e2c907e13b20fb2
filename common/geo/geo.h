// Postal-code centroids and distances between them, shared by the services
// that search or rank by place (courses: "within N km of a postal code";
// placement: distance between a workplace and a candidate's preferred
// places). Distances are measured between postal-code centres.
//
// No postal-code data set ships with Lotse and the services have no network
// for one, so distances use a small built-in table of the centres of German
// postal-code *areas* — the first three digits of the code (e.g. "507" for
// Köln-Nippes/-Ehrenfeld/-Longerich), the unit Deutsche Post routes by — for
// the demo region (Köln/Bonn, the Rhineland and the Ruhr) and the largest
// cities elsewhere. Coordinates are rounded to 0.01 degree (about 1 km); an
// area spans 5..20 km, so a distance is good to roughly ±10 km. Two codes of
// one area are 0 km apart.
//
// Callers derive a position from a postal code once, when the record is
// written, and store it, so searching never looks the table up per record.
// A record whose postal code is outside the table has no position: it can
// be found by municipality and by searches without a place, never by
// distance. How a request naming an unknown postal code is answered is the
// calling service's contract (courses: INVALID_ARGUMENT).
// A deployment outside the demo region replaces this table with the
// official centroid file of its region (a data change, not an API change).
#ifndef LOTSE_COMMON_GEO_GEO_H_
#define LOTSE_COMMON_GEO_GEO_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace lotse::geo {

struct GeoPoint {
  double lat = 0;  // degrees north
  double lon = 0;  // degrees east
};

// True for five ASCII digits.
bool IsPostalCodeSyntax(absl::string_view code);

// The centre of the postal-code area of `code` (five digits), or nullopt
// when the code is malformed or its area is not in the table.
std::optional<GeoPoint> PostalCodeCentre(absl::string_view code);

// Great-circle distance in kilometres (haversine, mean Earth radius).
double DistanceKm(const GeoPoint& a, const GeoPoint& b);

// A latitude/longitude box that contains every point within `km` of
// `centre` (used to narrow a distance search by index before the exact
// distance is computed).
struct GeoBox {
  double min_lat, max_lat, min_lon, max_lon;
};
GeoBox BoxAround(const GeoPoint& centre, double km);

}  // namespace lotse::geo

#endif  // LOTSE_COMMON_GEO_GEO_H_
