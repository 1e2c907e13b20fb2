// Validation of free text and identifiers in requests. Every check adds a
// field violation instead of returning early, so that one call reports all
// bad fields of a request.
//
// Lengths are counted in Unicode code points ("characters" in the
// contracts), never in bytes, so a limit means the same for "Koeln" and
// "Köln". Violation descriptions never quote the offending value: it may be
// personal data.
#ifndef LOTSE_COMMON_API_TEXT_H_
#define LOTSE_COMMON_API_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "common/errors/status.h"

namespace lotse::api {

// True when `text` is well-formed UTF-8: no overlong forms, no surrogates,
// nothing above U+10FFFF.
bool IsValidUtf8(absl::string_view text);

// The number of code points in well-formed UTF-8 `text`.
size_t CodePointCount(absl::string_view text);

// True when `text` (well-formed UTF-8) contains a C0 or C1 control
// character or DEL. Tab, CR and LF count as control characters too, unless
// `allow_line_breaks` is set (multi-line fields such as notes).
bool ContainsControlCharacters(absl::string_view text,
                               bool allow_line_breaks = false);

struct TextRules {
  size_t min_chars = 1;  // 0: the field is optional
  size_t max_chars = 200;
  bool allow_line_breaks = false;
};

// Adds a violation for `field` when `text` is not valid UTF-8, is shorter
// or longer than the rules allow, contains control characters, or is only
// whitespace where a value is required. Returns true when `text` passed.
bool ValidateText(absl::string_view text, const std::string& field,
                  const TextRules& rules, FieldViolations* violations);

// Adds a violation for `field` unless `value` has min_len..max_len
// characters, each of which occurs in `alphabet` (ASCII). `what` describes
// the allowed form for the message, e.g. "[A-Za-z0-9_-]". Returns true when
// `value` passed.
bool ValidateToken(absl::string_view value, const std::string& field,
                   size_t min_len, size_t max_len, absl::string_view alphabet,
                   absl::string_view what, FieldViolations* violations);

// The request_id rule of every create (1..64 characters of [A-Za-z0-9_-]).
bool ValidateRequestId(absl::string_view request_id, const std::string& field,
                       FieldViolations* violations);

}  // namespace lotse::api

#endif  // LOTSE_COMMON_API_TEXT_H_
