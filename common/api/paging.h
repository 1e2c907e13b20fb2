// Page sizes and page tokens of List RPCs (DESIGN.md section 6).
//
// A page token carries the sort key of the last item returned (keyset
// paging: the next page starts strictly after it, so concurrent inserts and
// deletes never make a page repeat or skip an item that existed throughout)
// and a fingerprint of the request's filter fields, so a token is only
// accepted with the filters it was issued for. It is integrity-checked, so
// garbage or a truncated token is INVALID_ARGUMENT rather than a silently
// wrong page. It is NOT secret or signed: a client could forge one from a
// key it knows, so never put anything into a token the caller may not see
// anyway, and still apply all access checks to every page.
#ifndef LOTSE_COMMON_API_PAGING_H_
#define LOTSE_COMMON_API_PAGING_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/errors/status.h"

namespace lotse::api {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 500;

// 0 means kDefaultPageSize; values above kMaxPageSize are clamped to it;
// a negative value adds a violation for `field` and returns 0.
int NormalizePageSize(int32_t page_size, const std::string& field,
                      FieldViolations* violations);

// A page token continuing after `last_key`, valid only with
// `filter_fingerprint` (any bytes that identify the request's filter
// fields; see FilterFingerprint).
std::string EncodePageToken(absl::string_view filter_fingerprint,
                            absl::string_view last_key);

// The last key carried by `token`. An empty token means the first page and
// yields "". A token that does not decode, fails its check or was issued
// for other filters adds a violation for `field` and yields "".
std::string DecodePageToken(absl::string_view token,
                            absl::string_view filter_fingerprint,
                            const std::string& field,
                            FieldViolations* violations);

}  // namespace lotse::api

#endif  // LOTSE_COMMON_API_PAGING_H_
