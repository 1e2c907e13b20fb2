#include "services/identity/domain/internal/rules_line.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lotse::identity::internal {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

}  // namespace

bool IsBlankOrComment(absl::string_view line) {
  for (char c : line) {
    if (IsBlank(c)) continue;
    return c == '#';
  }
  return true;
}

absl::StatusOr<RulesLine> SplitRulesLine(absl::string_view line) {
  RulesLine result;
  size_t pos = 0;
  while (true) {
    while (pos < line.size() && IsBlank(line[pos])) ++pos;
    if (pos == line.size()) break;

    size_t token_start = pos;
    while (pos < line.size() && !IsBlank(line[pos]) && line[pos] != '=' &&
           line[pos] != '"') {
      ++pos;
    }
    if (pos < line.size() && line[pos] == '"') {
      return absl::InvalidArgumentError(
          absl::StrCat("quote outside a key=\"value\" at column ", pos + 1));
    }
    absl::string_view head = line.substr(token_start, pos - token_start);
    if (pos == line.size() || line[pos] != '=') {
      result.words.emplace_back(head);
      continue;
    }

    // A field: head is the key, the value follows the '='.
    if (head.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'=' without a key at column ", pos + 1));
    }
    ++pos;
    std::string value;
    if (pos < line.size() && line[pos] == '"') {
      size_t close = line.find('"', pos + 1);
      if (close == absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("unterminated quoted value of '", head, "'"));
      }
      value = std::string(line.substr(pos + 1, close - pos - 1));
      pos = close + 1;
      if (pos < line.size() && !IsBlank(line[pos])) {
        return absl::InvalidArgumentError(
            absl::StrCat("text right after the closing quote of '", head, "'"));
      }
    } else {
      size_t value_start = pos;
      while (pos < line.size() && !IsBlank(line[pos])) {
        if (line[pos] == '"') {
          return absl::InvalidArgumentError(
              absl::StrCat("quote inside the unquoted value of '", head, "'"));
        }
        ++pos;
      }
      value = std::string(line.substr(value_start, pos - value_start));
    }
    for (const auto& [key, unused] : result.fields) {
      if (key == head) {
        return absl::InvalidArgumentError(
            absl::StrCat("key '", head, "' given twice"));
      }
    }
    result.fields.emplace_back(std::string(head), std::move(value));
  }
  return result;
}

}  // namespace lotse::identity::internal
