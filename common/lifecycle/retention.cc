#include "common/lifecycle/retention.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "lotse/type/v1/data_category.pb.h"

namespace lotse::lifecycle {

const std::vector<ResourceKind>& KnownResourceKinds() {
  static const auto* kinds = new std::vector<ResourceKind>{
      {"person-revision",
       "identity",
       "CORE_IDENTITY",
       {"SUPERSEDED"},
       "A former version of a person's core record; SUPERSEDED: when a "
       "correction replaced it."},
      {"residence-status",
       "identity",
       "RESIDENCE_STATUS",
       {"SUPERSEDED", "END"},
       "A residence status of a person; SUPERSEDED: when a newer status was "
       "recorded; END: its valid_until."},
      {"consent",
       "identity",
       "CORE_IDENTITY",
       {"END"},
       "A consent a person gave; END: when it was withdrawn or expired."},
      {"case",
       "cases",
       "CASE_STATUS",
       {"CLOSE"},
       "A case with its plan, steps and referrals; CLOSE: when it was "
       "closed."},
      {"note",
       "cases",
       "PRIVATE_NOTES",
       {"CLOSE"},
       "An agency's private note on a case or step; CLOSE: when its case "
       "was closed."},
      {"booking",
       "courses",
       "LANGUAGE",
       {"END"},
       "A course booking; END: when it was cancelled or expired or its "
       "course finished."},
      {"waitlist-entry",
       "courses",
       "LANGUAGE",
       {"END"},
       "A place on a course's waitlist; END: when it was left, promoted or "
       "removed."},
      {"attendance",
       "courses",
       "LANGUAGE",
       {"END"},
       "The attendance recorded for a booking; END: when its course "
       "finished."},
      {"course-result",
       "courses",
       "LANGUAGE",
       {"CREATE"},
       "A course or exam result; CREATE: when it was recorded."},
      {"entitlement",
       "courses",
       "LANGUAGE",
       {"END"},
       "A course entitlement or obligation; END: when it was revoked or its "
       "valid_until passed."},
      {"candidate-profile",
       "placement",
       "EMPLOYMENT",
       {"LAST_CHANGE"},
       "A candidate profile; LAST_CHANGE: when it was last changed."},
      {"placement",
       "placement",
       "EMPLOYMENT",
       {"END"},
       "A placement of a candidate; END: when it ended (hired, rejected or "
       "withdrawn)."},
      {"offer",
       "placement",
       "EMPLOYMENT",
       {"WITHDRAW"},
       "A job offer or apprenticeship place; WITHDRAW: when it was "
       "withdrawn."},
      {"audit-record",
       "*",
       "AUDIT",
       {"CREATE"},
       "A record of either audit chain of a service; CREATE: when the "
       "access it records happened."},
  };
  return *kinds;
}

namespace {

// Upper bounds on a period, far beyond any retention duty, so that the
// civil-time arithmetic below never leaves its range.
constexpr int64_t kMaxDays = 365 * 1000;
constexpr int64_t kMaxMonths = 12 * 1000;
constexpr int64_t kMaxYears = 1000;
constexpr size_t kMaxBasisLength = 200;

const ResourceKind* FindKind(absl::string_view name) {
  for (const ResourceKind& kind : KnownResourceKinds()) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

bool IsKnownCategory(absl::string_view name) {
  if (name == "AUDIT") return true;
  lotse::type::v1::DataCategory value;
  return !name.empty() && name != "UNSPECIFIED" &&
         lotse::type::v1::DataCategory_Parse(
             absl::StrCat("DATA_CATEGORY_", name), &value);
}

// `civil` moved by `months` calendar months; a day past the end of the
// target month becomes its last day (31 March minus one month is 28 or 29
// February), so the result never spills into the following month.
absl::CivilSecond AddMonths(absl::CivilSecond civil, int64_t months) {
  const absl::CivilMonth month = absl::CivilMonth(civil) + months;
  const int days_in_month =
      static_cast<int>(absl::CivilDay(month + 1) - absl::CivilDay(month));
  return absl::CivilSecond(month.year(), month.month(),
                           std::min(civil.day(), days_in_month), civil.hour(),
                           civil.minute(), civil.second());
}

// `t` moved by `sign` times the rule's period, in UTC calendar terms.
absl::Time Shift(const RetentionRule& rule, absl::Time t, int sign) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return t;
  const absl::CivilSecond civil = absl::ToCivilSecond(t, absl::UTCTimeZone());
  // The sub-second part, which civil seconds drop.
  const absl::Duration fraction =
      t - absl::FromCivil(civil, absl::UTCTimeZone());
  absl::CivilSecond moved = civil;
  if (rule.days != 0) {
    const absl::CivilDay day = absl::CivilDay(civil) + sign * rule.days;
    moved = absl::CivilSecond(day.year(), day.month(), day.day(), civil.hour(),
                              civil.minute(), civil.second());
  } else if (rule.months != 0) {
    moved = AddMonths(civil, sign * static_cast<int64_t>(rule.months));
  } else if (rule.years != 0) {
    moved = AddMonths(civil, sign * static_cast<int64_t>(rule.years) * 12);
  }
  return absl::FromCivil(moved, absl::UTCTimeZone()) + fraction;
}

// One `key=value` or bare word of a rule line.
struct Token {
  std::string key;    // empty for a bare word
  std::string value;  // the word, or the value without its quotes
};

// Splits a line (comment already removed) into words; a value may be quoted
// with '"' to hold blanks, and runs to the next '"'.
absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view line) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < line.size()) {
    if (absl::ascii_isspace(static_cast<unsigned char>(line[i]))) {
      ++i;
      continue;
    }
    Token token;
    std::string word;
    bool quoted = false;
    while (i < line.size() &&
           !absl::ascii_isspace(static_cast<unsigned char>(line[i]))) {
      if (line[i] == '"') {
        const size_t close = line.find('"', i + 1);
        if (close == absl::string_view::npos) {
          return absl::InvalidArgumentError("unterminated quote");
        }
        absl::StrAppend(&word, line.substr(i + 1, close - i - 1));
        quoted = true;
        i = close + 1;
        continue;
      }
      if (line[i] == '=' && token.key.empty() && !quoted) {
        token.key = std::move(word);
        word.clear();
        if (token.key.empty()) {
          return absl::InvalidArgumentError("'=' without a key");
        }
        ++i;
        continue;
      }
      word.push_back(line[i]);
      ++i;
    }
    token.value = std::move(word);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// Parses "<N>d", "<N>m" or "<N>y" into `rule`.
absl::Status ParsePeriod(absl::string_view text, RetentionRule& rule) {
  if (text.empty()) {
    return absl::InvalidArgumentError("keep is empty");
  }
  const char unit = text.back();
  absl::string_view number = text.substr(0, text.size() - 1);
  int64_t n = 0;
  const bool digits =
      !number.empty() &&
      std::all_of(number.begin() + (number[0] == '-' ? 1 : 0), number.end(),
                  [](char c) { return absl::ascii_isdigit(c); }) &&
      number != "-";
  if ((unit != 'd' && unit != 'm' && unit != 'y') || !digits ||
      !absl::SimpleAtoi(number, &n)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "keep=", text,
        " is not a period; write a whole number and d, m or y, e.g. 3y"));
  }
  if (n < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep must be at least 1, not ", number));
  }
  const int64_t max = unit == 'd'   ? kMaxDays
                      : unit == 'm' ? kMaxMonths
                                    : kMaxYears;
  if (n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep=", text, " is longer than 1000 years"));
  }
  rule.days = unit == 'd' ? static_cast<int>(n) : 0;
  rule.months = unit == 'm' ? static_cast<int>(n) : 0;
  rule.years = unit == 'y' ? static_cast<int>(n) : 0;
  return absl::OkStatus();
}

// Parses one non-empty rule line (comment removed).
absl::StatusOr<RetentionRule> ParseRule(absl::string_view line) {
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(line);
  if (!tokens.ok()) return tokens.status();
  if ((*tokens)[0].key.empty() && (*tokens)[0].value != "retain") {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected a line \"retain <kind> ...\", not ", (*tokens)[0].value));
  }
  if (!(*tokens)[0].key.empty()) {
    return absl::InvalidArgumentError("expected a line \"retain <kind> ...\"");
  }
  if (tokens->size() < 2 || !(*tokens)[1].key.empty()) {
    return absl::InvalidArgumentError("retain needs a kind");
  }
  RetentionRule rule;
  rule.kind = (*tokens)[1].value;
  const ResourceKind* kind = FindKind(rule.kind);
  if (kind == nullptr) {
    std::vector<std::string> names;
    for (const ResourceKind& k : KnownResourceKinds()) names.push_back(k.name);
    return absl::InvalidArgumentError(
        absl::StrCat("unknown kind ", rule.kind,
                     " (known kinds: ", absl::StrJoin(names, ", "), ")"));
  }
  std::set<std::string> seen;
  std::optional<std::string> keep, category, anchor, basis, erasure;
  for (size_t i = 2; i < tokens->size(); ++i) {
    Token& token = (*tokens)[i];
    if (token.key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected word ", token.value, "; settings are written key=value"));
    }
    if (!seen.insert(token.key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(token.key, " is given twice"));
    }
    std::optional<std::string>* slot = token.key == "keep"       ? &keep
                                       : token.key == "category" ? &category
                                       : token.key == "from"     ? &anchor
                                       : token.key == "basis"    ? &basis
                                       : token.key == "erasure"  ? &erasure
                                                                 : nullptr;
    if (slot == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key ", token.key,
                       " (known keys: category, keep, from, erasure, basis)"));
    }
    *slot = std::move(token.value);
  }

  if (!category.has_value() || category->empty()) {
    return absl::InvalidArgumentError("category is missing");
  }
  if (!IsKnownCategory(*category)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown category ", *category));
  }
  if (*category != kind->category) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind ", kind->name, " is of category ", kind->category,
                     ", not ", *category));
  }
  rule.category = *category;

  if (!keep.has_value()) {
    return absl::InvalidArgumentError("keep is missing");
  }
  if (absl::Status s = ParsePeriod(*keep, rule); !s.ok()) return s;

  if (!anchor.has_value() || anchor->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "from is missing; kind ", kind->name,
        " allows from=", absl::StrJoin(kind->anchors, " or from=")));
  }
  if (std::find(kind->anchors.begin(), kind->anchors.end(), *anchor) ==
      kind->anchors.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind ", kind->name, " allows from=",
        absl::StrJoin(kind->anchors, " or from="), ", not ", *anchor));
  }
  rule.anchor = *anchor;

  if (erasure.has_value()) {
    if (*erasure == "keep") {
      rule.keep_on_erasure = true;
    } else if (*erasure != "erase") {
      return absl::InvalidArgumentError(
          absl::StrCat("erasure must be erase or keep, not ", *erasure));
    }
  }

  if (!basis.has_value()) {
    return absl::InvalidArgumentError(
        "basis is missing; name the legal reference, basis=\"...\"");
  }
  if (absl::StripAsciiWhitespace(*basis).empty()) {
    return absl::InvalidArgumentError("basis is empty");
  }
  if (basis->size() > kMaxBasisLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("basis is longer than ", kMaxBasisLength, " characters"));
  }
  rule.basis = *basis;
  return rule;
}

}  // namespace

absl::Time RetentionRule::Cutoff(absl::Time now) const {
  return Shift(*this, now, -1);
}

absl::Time RetentionRule::DueAt(absl::Time anchor_time) const {
  return Shift(*this, anchor_time, +1);
}

std::string RetentionRule::PeriodText() const {
  if (days != 0) return absl::StrCat(days, "d");
  if (months != 0) return absl::StrCat(months, "m");
  if (years != 0) return absl::StrCat(years, "y");
  return "";
}

absl::StatusOr<RetentionRules> RetentionRules::Parse(absl::string_view text) {
  RetentionRules rules;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    // A '#' outside quotes starts a comment.
    bool in_quote = false;
    size_t end = line.size();
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '"') in_quote = !in_quote;
      if (line[i] == '#' && !in_quote) {
        end = i;
        break;
      }
    }
    line = absl::StripAsciiWhitespace(line.substr(0, end));
    if (line.empty()) continue;
    absl::StatusOr<RetentionRule> rule = ParseRule(line);
    if (!rule.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", number, ": ", rule.status().message()));
    }
    if (rules.Find(rule->kind) != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", number, ": duplicate rule for kind ", rule->kind,
          " (first on line ", rules.Find(rule->kind)->line, ")"));
    }
    rule->line = number;
    rules.rules_.push_back(*std::move(rule));
  }
  return rules;
}

absl::StatusOr<RetentionRules> RetentionRules::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read retention rules ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::NotFoundError(
        absl::StrCat("cannot read retention rules ", path));
  }
  absl::StatusOr<RetentionRules> rules = Parse(text.str());
  if (!rules.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", rules.status().message()));
  }
  return rules;
}

const RetentionRule* RetentionRules::Find(absl::string_view kind) const {
  for (const RetentionRule& rule : rules_) {
    if (rule.kind == kind) return &rule;
  }
  return nullptr;
}

}  // namespace lotse::lifecycle
