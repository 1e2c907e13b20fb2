// Occupation codes of the German classification of occupations (KldB 2010)
// as matching compares them.
//
// A code has five digits and is hierarchical: the first digit is the
// occupational area, two digits the main group, three the group, four the
// subgroup; the fifth is the requirement level (1 helper, 2 specialist,
// 3 complex specialist, 4 expert). "26112" and "26113" are the same
// subgroup at two requirement levels; "26112" and "26302" share only the
// main group "26". Matching compares codes as integers (fixed width, so a
// leading zero, as in the military codes "01...", is kept by position).
#ifndef LOTSE_SERVICES_PLACEMENT_DOMAIN_KLDB_H_
#define LOTSE_SERVICES_PLACEMENT_DOMAIN_KLDB_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace lotse::placement {

// A code that is not five digits.
inline constexpr int32_t kNoOccupation = -1;

// The code as an integer, or kNoOccupation when it is not five digits.
int32_t ParseOccupationCode(absl::string_view code);

// Whether `code` is one of the occupation types of KldB 2010, revised
// version 2020 (kldb2010_codes.txt), e.g. "51312". Five digits that name
// no occupation type, such as "51301" or "99999", are not.
bool IsKldb2010Code(absl::string_view code);

// Every code of that list as an integer, ascending.
absl::Span<const int32_t> Kldb2010Codes();

// How many leading digits two codes share: 5 = same code, 4 = same
// subgroup, 3 = same group, 2 = same main group, 1 = same area, 0 = none
// (also when either is kNoOccupation).
inline int CommonOccupationDigits(int32_t a, int32_t b) {
  if (a < 0 || b < 0) return 0;
  if (a == b) return 5;
  if (a / 10 == b / 10) return 4;
  if (a / 100 == b / 100) return 3;
  if (a / 1000 == b / 1000) return 2;
  if (a / 10000 == b / 10000) return 1;
  return 0;
}

// The requirement level, the fifth digit (1..4; 0 or 9 in a few codes).
inline int RequirementLevel(int32_t code) { return code < 0 ? 0 : code % 10; }

// The first `digits` digits of a five-digit code followed by "x" for each
// dropped one, e.g. ("26112", 3) -> "261xx", for explanations.
std::string OccupationPrefix(int32_t code, int digits);

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_DOMAIN_KLDB_H_
