#include "common/geo/geo.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lotse::geo {
namespace {

struct AreaCentre {
  const char prefix[4];
  double lat;
  double lon;
};

// Postal-code areas (first three digits) and their approximate centres.
// Demo region first: Köln, Bonn, Rhein-Erft, Rhein-Sieg, Bergisches Land,
// Düsseldorf, Aachen, the Ruhr; then large cities elsewhere.
constexpr AreaCentre kAreas[] = {
    // Köln
    {"506", 50.94, 6.95},  // Innenstadt, Deutz
    {"507", 50.97, 6.92},  // Nippes, Ehrenfeld, Longerich
    {"508", 50.95, 6.88},  // Bickendorf, Lindenthal-West, Widdersdorf
    {"509", 50.91, 6.94},  // Sülz, Rodenkirchen, Zollstock
    {"510", 50.98, 7.05},  // Mülheim, Kalk, Porz
    {"511", 50.90, 7.08},  // Rath, Porz-Süd
    // Umland Köln
    {"501", 50.96, 6.75},  // Pulheim, Bergheim, Kerpen (Rhein-Erft)
    {"502", 50.92, 6.60},  // Elsdorf, Bedburg
    {"503", 50.87, 6.83},  // Hürth, Frechen, Brühl
    {"504", 51.00, 6.60},  // Grevenbroich-Süd, Rommerskirchen
    {"514", 51.03, 7.12},  // Bergisch Gladbach, Leverkusen-Ost
    {"513", 51.05, 7.00},  // Leverkusen
    {"515", 51.02, 7.37},  // Oberbergischer Kreis
    {"516", 50.98, 7.55},  // Gummersbach
    {"517", 50.90, 7.80},  // Wissen, Betzdorf
    {"532", 50.80, 7.20},  // Siegburg, Troisdorf
    {"531", 50.73, 7.10},  // Bonn
    {"533", 50.68, 7.00},  // Meckenheim, Rheinbach, Bornheim
    {"535", 50.55, 7.20},  // Remagen, Bad Neuenahr
    {"537", 50.78, 7.45},  // Eitorf, Hennef-Ost
    {"538", 50.60, 6.80},  // Euskirchen
    {"539", 50.68, 6.55},  // Zülpich, Mechernich
    // Aachen, Düren
    {"520", 50.77, 6.09},  // Aachen
    {"521", 50.77, 6.09},
    {"522", 50.78, 6.15},  // Stolberg, Eschweiler
    {"523", 50.80, 6.48},  // Düren
    {"524", 50.90, 6.35},  // Jülich
    {"525", 50.93, 6.05},  // Heinsberg-Süd, Übach-Palenberg
    // Düsseldorf, Neuss, Mönchengladbach, Krefeld, Wuppertal, Solingen
    {"402", 51.22, 6.78},  // Düsseldorf
    {"404", 51.25, 6.75},
    {"405", 51.20, 6.85},
    {"406", 51.17, 6.87},  // Düsseldorf-Süd, Hilden
    {"407", 51.17, 6.95},  // Langenfeld, Monheim
    {"408", 51.30, 6.85},  // Ratingen
    {"410", 51.19, 6.44},  // Mönchengladbach
    {"411", 51.18, 6.40},
    {"414", 51.20, 6.69},  // Neuss
    {"415", 51.09, 6.58},  // Grevenbroich, Dormagen
    {"477", 51.33, 6.56},  // Krefeld
    {"421", 51.26, 7.15},  // Wuppertal
    {"422", 51.26, 7.20},
    {"426", 51.17, 7.08},  // Solingen
    {"428", 51.18, 7.20},  // Remscheid
    // Ruhr
    {"450", 51.46, 7.01},  // Essen
    {"451", 51.45, 7.05},
    {"452", 51.42, 7.00},
    {"454", 51.43, 6.88},  // Mülheim an der Ruhr
    {"460", 51.47, 6.85},  // Oberhausen
    {"470", 51.43, 6.76},  // Duisburg
    {"471", 51.47, 6.77},
    {"472", 51.40, 6.75},
    {"448", 51.48, 7.22},  // Bochum
    {"447", 51.48, 7.21},
    {"441", 51.51, 7.47},  // Dortmund
    {"442", 51.51, 7.47},
    {"443", 51.52, 7.40},
    {"458", 51.51, 7.10},  // Gelsenkirchen
    {"581", 51.36, 7.47},  // Hagen
    // Münster, Bielefeld
    {"481", 51.96, 7.63},  // Münster
    {"336", 52.02, 8.53},  // Bielefeld
    // Large cities elsewhere
    {"101", 52.52, 13.40},  // Berlin-Mitte
    {"104", 52.53, 13.42},
    {"120", 52.48, 13.43},
    {"200", 53.55, 10.00},  // Hamburg
    {"221", 53.57, 10.05},
    {"603", 50.11, 8.68},  // Frankfurt am Main
    {"604", 50.12, 8.67},
    {"703", 48.78, 9.18},   // Stuttgart
    {"801", 48.14, 11.58},  // München
    {"803", 48.14, 11.55},
    {"804", 48.16, 11.58},
    {"904", 49.45, 11.08},  // Nürnberg
    {"010", 51.05, 13.74},  // Dresden
    {"041", 51.34, 12.37},  // Leipzig
    {"281", 53.08, 8.80},   // Bremen
    {"301", 52.37, 9.74},   // Hannover
};

constexpr double kEarthRadiusKm = 6371.0088;
constexpr double kPi = 3.14159265358979323846;

double Radians(double degrees) { return degrees * kPi / 180.0; }

}  // namespace

bool IsPostalCodeSyntax(absl::string_view code) {
  return code.size() == 5 && std::all_of(code.begin(), code.end(), [](char c) {
           return c >= '0' && c <= '9';
         });
}

std::optional<GeoPoint> PostalCodeCentre(absl::string_view code) {
  if (!IsPostalCodeSyntax(code)) return std::nullopt;
  for (const AreaCentre& area : kAreas) {
    if (std::memcmp(area.prefix, code.data(), 3) == 0) {
      return GeoPoint{area.lat, area.lon};
    }
  }
  return std::nullopt;
}

double DistanceKm(const GeoPoint& a, const GeoPoint& b) {
  const double dlat = Radians(b.lat - a.lat);
  const double dlon = Radians(b.lon - a.lon);
  const double h = std::sin(dlat / 2) * std::sin(dlat / 2) +
                   std::cos(Radians(a.lat)) * std::cos(Radians(b.lat)) *
                       std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthRadiusKm * std::asin(std::min(1.0, std::sqrt(h)));
}

GeoBox BoxAround(const GeoPoint& centre, double km) {
  // One degree of latitude is ~111.2 km everywhere; a degree of longitude
  // shrinks with cos(latitude). Widen slightly against rounding.
  const double dlat = km / 111.0 + 0.01;
  const double coslat = std::max(0.01, std::cos(Radians(centre.lat)));
  const double dlon = km / (111.0 * coslat) + 0.01;
  return GeoBox{centre.lat - dlat, centre.lat + dlat, centre.lon - dlon,
                centre.lon + dlon};
}

}  // namespace lotse::geo
