#include "services/placement/domain/kldb.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace lotse::placement {

int32_t ParseOccupationCode(absl::string_view code) {
  if (code.size() != 5) return kNoOccupation;
  int32_t value = 0;
  for (char c : code) {
    if (c < '0' || c > '9') return kNoOccupation;
    value = value * 10 + (c - '0');
  }
  return value;
}

bool IsKldb2010Code(absl::string_view code) {
  const int32_t value = ParseOccupationCode(code);
  if (value == kNoOccupation) return false;
  const absl::Span<const int32_t> codes = Kldb2010Codes();
  return std::binary_search(codes.begin(), codes.end(), value);
}

std::string OccupationPrefix(int32_t code, int digits) {
  if (code < 0) return "?";
  std::string text = absl::StrFormat("%05d", code);
  for (int i = digits; i < 5; ++i) text[i] = 'x';
  return text;
}

}  // namespace lotse::placement
