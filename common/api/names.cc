#include "common/api/names.h"

#include <openssl/rand.h>

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lotse::api {
namespace {

constexpr char kIdAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool IsPlaceholder(absl::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// The segment of `text` from `*pos` to the next '/' (or the end); moves
// `*pos` past that '/'. Sets `*last` when no '/' followed.
absl::string_view NextSegment(absl::string_view text, size_t* pos, bool* last) {
  const size_t slash = text.find('/', *pos);
  absl::string_view segment;
  if (slash == absl::string_view::npos) {
    segment = text.substr(*pos);
    *pos = text.size();
    *last = true;
  } else {
    segment = text.substr(*pos, slash - *pos);
    *pos = slash + 1;
    *last = false;
  }
  return segment;
}

}  // namespace

absl::StatusOr<std::string> NewId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return absl::InternalError("no randomness available for a new id");
  }
  // 128 bits, 5 per character: 25 full characters and 3 bits in the 26th.
  std::string out;
  out.reserve(26);
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kIdAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kIdAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id) {
    if (!IsIdChar(c)) return false;
  }
  return true;
}

bool MatchName(absl::string_view name, absl::string_view pattern,
               std::vector<std::string>* ids) {
  std::vector<std::string> found;
  size_t name_pos = 0;
  size_t pattern_pos = 0;
  bool name_done = name.empty();
  bool pattern_done = pattern.empty();
  while (!pattern_done) {
    if (name_done) return false;
    const absl::string_view want =
        NextSegment(pattern, &pattern_pos, &pattern_done);
    const absl::string_view got = NextSegment(name, &name_pos, &name_done);
    if (IsPlaceholder(want)) {
      if (!IsValidId(got)) return false;
      found.emplace_back(got);
    } else if (got != want) {
      return false;
    }
  }
  if (!name_done) return false;
  if (ids != nullptr) *ids = std::move(found);
  return true;
}

std::vector<std::string> ParseName(absl::string_view name,
                                   absl::string_view pattern,
                                   const std::string& field,
                                   FieldViolations* violations) {
  if (name.empty()) {
    violations->Add(field, "is required");
    return {};
  }
  std::vector<std::string> ids;
  if (!MatchName(name, pattern, &ids)) {
    violations->Add(field, absl::StrCat("must be a name \"", pattern, "\""));
    return {};
  }
  return ids;
}

std::string ParseNameId(absl::string_view name, absl::string_view pattern,
                        const std::string& field, FieldViolations* violations) {
  std::vector<std::string> ids = ParseName(name, pattern, field, violations);
  if (ids.empty()) return "";
  return std::move(ids.back());
}

}  // namespace lotse::api
