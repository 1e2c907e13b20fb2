#include "common/api/text.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace lotse::api {
namespace {

constexpr absl::string_view kRequestIdAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

// Decodes the code point at text[*pos] and advances *pos. Returns false on
// a malformed sequence.
bool NextCodePoint(absl::string_view text, size_t* pos, uint32_t* cp) {
  const auto byte = [&](size_t i) {
    return static_cast<uint8_t>(text[*pos + i]);
  };
  const uint8_t b0 = byte(0);
  size_t len;
  uint32_t value;
  uint32_t min;
  if (b0 < 0x80) {
    *cp = b0;
    *pos += 1;
    return true;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, value = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, value = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, value = b0 & 0x07, min = 0x10000;
  } else {
    return false;
  }
  if (*pos + len > text.size()) return false;
  for (size_t i = 1; i < len; ++i) {
    const uint8_t b = byte(i);
    if ((b & 0xC0) != 0x80) return false;
    value = (value << 6) | (b & 0x3F);
  }
  // Overlong forms could smuggle a '/' or NUL past byte-level checks;
  // surrogates and values beyond U+10FFFF are not characters.
  if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
    return false;
  *cp = value;
  *pos += len;
  return true;
}

bool IsControl(uint32_t cp, bool allow_line_breaks) {
  if (allow_line_breaks && (cp == '\t' || cp == '\n' || cp == '\r'))
    return false;
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

bool IsWhitespace(uint32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0xA0 ||
         cp == 0x2007 || cp == 0x202F || cp == 0x3000 ||
         (cp >= 0x2000 && cp <= 0x200B);
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < text.size()) {
    if (!NextCodePoint(text, &pos, &cp)) return false;
  }
  return true;
}

size_t CodePointCount(absl::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if ((static_cast<uint8_t>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

bool ContainsControlCharacters(absl::string_view text, bool allow_line_breaks) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < text.size()) {
    if (!NextCodePoint(text, &pos, &cp)) return true;  // not text at all
    if (IsControl(cp, allow_line_breaks)) return true;
  }
  return false;
}

bool ValidateText(absl::string_view text, const std::string& field,
                  const TextRules& rules, FieldViolations* violations) {
  if (!IsValidUtf8(text)) {
    violations->Add(field, "must be valid UTF-8");
    return false;
  }
  const size_t chars = CodePointCount(text);
  if (chars == 0 && rules.min_chars > 0) {
    violations->Add(field, "is required");
    return false;
  }
  if (chars > 0 && chars < rules.min_chars) {
    violations->Add(field, absl::StrCat("must have at least ", rules.min_chars,
                                        " characters"));
    return false;
  }
  if (chars > rules.max_chars) {
    violations->Add(field, absl::StrCat("must have at most ", rules.max_chars,
                                        " characters"));
    return false;
  }
  if (ContainsControlCharacters(text, rules.allow_line_breaks)) {
    violations->Add(field, "must not contain control characters");
    return false;
  }
  if (rules.min_chars > 0) {
    bool blank = true;
    size_t pos = 0;
    uint32_t cp;
    while (blank && pos < text.size() && NextCodePoint(text, &pos, &cp)) {
      blank = IsWhitespace(cp);
    }
    if (blank) {
      violations->Add(field, "must not be blank");
      return false;
    }
  }
  return true;
}

bool ValidateToken(absl::string_view value, const std::string& field,
                   size_t min_len, size_t max_len, absl::string_view alphabet,
                   absl::string_view what, FieldViolations* violations) {
  if (value.empty() && min_len > 0) {
    violations->Add(field, "is required");
    return false;
  }
  bool ok = value.size() >= min_len && value.size() <= max_len;
  for (char c : value) {
    if (alphabet.find(c) == absl::string_view::npos) ok = false;
  }
  if (!ok) {
    violations->Add(field, absl::StrCat("must be ", min_len, "..", max_len,
                                        " characters of ", what));
  }
  return ok;
}

bool ValidateRequestId(absl::string_view request_id, const std::string& field,
                       FieldViolations* violations) {
  return ValidateToken(request_id, field, 1, 64, kRequestIdAlphabet,
                       "[A-Za-z0-9_-]", violations);
}

}  // namespace lotse::api
