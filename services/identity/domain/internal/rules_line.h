// Splits one line of an access rules file into words and key=value fields.
// Knows nothing of categories or domains; AccessPolicy::Parse gives the
// words their meaning.
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_INTERNAL_RULES_LINE_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_INTERNAL_RULES_LINE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lotse::identity::internal {

struct RulesLine {
  // Tokens without '=', in order, e.g. {"rule", "core-identity.cases"}.
  std::vector<std::string> words;
  // key=value tokens, in order; a quoted value is stored without quotes.
  std::vector<std::pair<std::string, std::string>> fields;
};

// Whether `line` holds nothing to parse (blank, or a '#' comment).
bool IsBlankOrComment(absl::string_view line);

// Tokens are separated by blanks (space, tab, trailing '\r'). A token
// containing '=' is a field; its value may be quoted with '"' to contain
// blanks. INVALID_ARGUMENT (without a line number; the caller adds it) for
// an unterminated quote, a quote outside a value, an empty key or a
// duplicate key.
absl::StatusOr<RulesLine> SplitRulesLine(absl::string_view line);

}  // namespace lotse::identity::internal

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_INTERNAL_RULES_LINE_H_
