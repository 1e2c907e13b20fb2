// Resource names and ids (DESIGN.md section 6): "persons/{person}",
// "cases/{case}/steps/{step}", "courses/{course}/bookings/{booking}".
//
// Every service checks every name it reads with MatchName / ParseName —
// its own resources' names and the names other services issued (a case
// step in a booking or placement, a person, an agency) — so that a name one
// service returns is accepted by every other.
//
// Ids. New ids are 26 characters of lower-case base32 ([a-z2-7], the RFC
// 4648 alphabet in lower case, no padding): 128 random bits, so ids are
// opaque and cannot be enumerated (NewId). Parsers accept 1..64 characters
// of [A-Za-z0-9_-], which covers every id ever issued: the base32 ids, the
// base64url ids the cases service issued before (22 characters, mixed
// case), and agency ids chosen at registration ([a-z0-9-]). Ids are
// case-sensitive: a service never changes the case of an id it was given.
#ifndef LOTSE_COMMON_API_NAMES_H_
#define LOTSE_COMMON_API_NAMES_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/errors/status.h"

namespace lotse::api {

inline constexpr size_t kMaxIdLength = 64;

// Names one service issues and others refer to.
inline constexpr char kPersonName[] = "persons/{person}";
inline constexpr char kAgencyName[] = "agencies/{agency}";
inline constexpr char kCaseStepName[] = "cases/{case}/steps/{step}";

// A new random id (see above). INTERNAL when the system has no randomness.
absl::StatusOr<std::string> NewId();

// Whether `id` is 1..kMaxIdLength characters of [A-Za-z0-9_-].
bool IsValidId(absl::string_view id);

// Whether `name` has the form of `pattern`: '/'-separated segments, where a
// pattern segment in braces ("{case}") stands for one id (IsValidId) and
// every other segment must appear exactly. On a match, `ids` (if not null)
// receives the ids in pattern order:
//   MatchName("cases/a/steps/b", kCaseStepName, &ids)  ->  {"a", "b"}
bool MatchName(absl::string_view name, absl::string_view pattern,
               std::vector<std::string>* ids = nullptr);

// MatchName for a request field. An empty `name` adds "is required" for
// `field`; a name not of the form adds a violation naming `pattern` (never
// the value). Returns the ids, or an empty vector with the violation.
std::vector<std::string> ParseName(absl::string_view name,
                                   absl::string_view pattern,
                                   const std::string& field,
                                   FieldViolations* violations);

// ParseName for names with one id ("persons/{person}", "cases/{case}/plan"):
// that id (the last one, if `pattern` has several), or "" with the
// violation.
std::string ParseNameId(absl::string_view name, absl::string_view pattern,
                        const std::string& field, FieldViolations* violations);

}  // namespace lotse::api

#endif  // LOTSE_COMMON_API_NAMES_H_
