#include "services/identity/domain/access_policy.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/identity/domain/internal/rules_line.h"

namespace lotse::identity {
namespace {

// Names indexed by enum value; index 0 is the unspecified value.
constexpr absl::string_view kDataCategoryNames[] = {
    "UNSPECIFIED", "CORE_IDENTITY", "RESIDENCE_STATUS", "LANGUAGE",
    "EMPLOYMENT",  "CASE_STATUS",   "PRIVATE_NOTES",    "HEALTH",
    "FAMILY",      "CONTACT"};
constexpr absl::string_view kLegalDomainNames[] = {
    "UNSPECIFIED",    "KOMMUNE",        "AUSLAENDERBEHOERDE", "BAMF",
    "JOBCENTER",      "ARBEITSAGENTUR", "KURSTRAEGER",        "KAMMER",
    "FREIER_TRAEGER", "JUGENDAMT",      "SOZIALAMT",          "ADMINISTRATION",
    "DATA_PROTECTION"};
constexpr absl::string_view kRelationNames[] = {
    "UNSPECIFIED", "CASE_OWNER", "CASE_PARTICIPANT", "AGENCY_ID_HOLDER",
    "SERVES_PERSON"};
constexpr absl::string_view kAccessBasisNames[] = {"UNSPECIFIED", "OWNER",
                                                   "LEGAL_BASIS", "CONSENT"};
constexpr absl::string_view kAccessDenialReasonNames[] = {
    "UNSPECIFIED",      "NO_LEGAL_BASIS",      "CONSENT_WITHDRAWN",
    "CONSENT_EXPIRED",  "PURPOSE_NOT_COVERED", "PRIVATE_TO_WRITER",
    "AGENCY_SUSPENDED", "NO_RELATION",         "CHECK_UNAVAILABLE"};
constexpr absl::string_view kConsentStateNames[] = {
    "UNSPECIFIED", "PENDING", "ACTIVE", "EXPIRED", "WITHDRAWN"};

template <typename Enum, size_t N>
absl::string_view NameOf(Enum value, const absl::string_view (&names)[N]) {
  auto index = static_cast<size_t>(value);
  // Values outside the enum can arrive through a cast from a proto number.
  return index < N ? names[index] : names[0];
}

template <typename Enum, size_t N>
std::optional<Enum> FromName(absl::string_view name,
                             const absl::string_view (&names)[N]) {
  for (size_t i = 1; i < N; ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

template <typename Enum, size_t N>
std::vector<Enum> AllSpecified(const absl::string_view (&)[N]) {
  std::vector<Enum> all;
  for (size_t i = 1; i < N; ++i) all.push_back(static_cast<Enum>(i));
  return all;
}

template <typename Enum, size_t N>
bool IsSpecified(Enum value, const absl::string_view (&)[N]) {
  auto index = static_cast<size_t>(value);
  return index > 0 && index < N;
}

template <typename T>
bool Contains(const std::vector<T>& values, const T& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// --- Parsing -------------------------------------------------------------

absl::Status LineError(absl::string_view source, int line,
                       absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ":", line, ": ", message));
}

bool IsValidRuleId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  if (!absl::ascii_islower(id[0]) && !absl::ascii_isdigit(id[0])) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '.' ||
           c == '-';
  });
}

// "ANY", or with allow_none "NONE", or a comma-separated list of domains.
absl::StatusOr<std::vector<LegalDomain>> ParseDomains(absl::string_view key,
                                                      absl::string_view value,
                                                      bool allow_none) {
  if (value == "ANY") return AllLegalDomains();
  if (value == "NONE") {
    if (allow_none) return std::vector<LegalDomain>{};
    return absl::InvalidArgumentError(
        absl::StrCat("'", key, "' cannot be NONE; leave the rule out"));
  }
  std::vector<LegalDomain> domains;
  for (absl::string_view name : absl::StrSplit(value, ',')) {
    if (name == "ANY" || name == "NONE") {
      return absl::InvalidArgumentError(
          absl::StrCat("'", name, "' must stand alone in '", key, "'"));
    }
    std::optional<LegalDomain> domain = LegalDomainFromName(name);
    if (!domain.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown legal domain \"", name, "\" in '", key, "'"));
    }
    if (Contains(domains, *domain)) {
      return absl::InvalidArgumentError(
          absl::StrCat("legal domain ", name, " listed twice in '", key, "'"));
    }
    domains.push_back(*domain);
  }
  return domains;
}

// "NONE" (no relation required) or a comma-separated list of relations.
absl::StatusOr<std::vector<Relation>> ParseRelations(absl::string_view value) {
  if (value == "NONE") return std::vector<Relation>{};
  std::vector<Relation> relations;
  for (absl::string_view name : absl::StrSplit(value, ',')) {
    std::optional<Relation> relation = RelationFromName(name);
    if (!relation.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown relation \"", name, "\" in 'relation'"));
    }
    if (Contains(relations, *relation)) {
      return absl::InvalidArgumentError(
          absl::StrCat("relation ", name, " listed twice"));
    }
    relations.push_back(*relation);
  }
  return relations;
}

absl::StatusOr<DataCategory> ParseCategory(absl::string_view name) {
  std::optional<DataCategory> category = DataCategoryFromName(name);
  if (!category.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown data category \"", name, "\""));
  }
  return *category;
}

// The fields of a line as a map; every one of `keys` is required and no
// other key is accepted.
absl::StatusOr<absl::flat_hash_map<std::string, std::string>> RequireFields(
    const internal::RulesLine& line, absl::string_view directive,
    const std::vector<absl::string_view>& keys) {
  absl::flat_hash_map<std::string, std::string> fields;
  for (const auto& [key, value] : line.fields) {
    if (!Contains(keys, absl::string_view(key))) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key '", key, "' for '", directive, "'"));
    }
    fields[key] = value;
  }
  for (absl::string_view key : keys) {
    if (!fields.contains(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", directive, "' needs ", key, "=..."));
    }
  }
  return fields;
}

// --- Deciding ------------------------------------------------------------

bool HasRelation(const std::vector<Relation>& held, Relation wanted) {
  if (Contains(held, wanted)) return true;
  // Owning a case is participating in it (access_check.proto).
  return wanted == Relation::kCaseParticipant &&
         Contains(held, Relation::kCaseOwner);
}

bool SatisfiesRelations(const std::vector<Relation>& required,
                        const std::vector<Relation>& held) {
  if (required.empty()) return true;
  return std::any_of(required.begin(), required.end(), [&](Relation wanted) {
    return HasRelation(held, wanted);
  });
}

// Lower is more helpful to the caller: the denial closest to an allowance.
int DenialRank(AccessDenialReason reason) {
  switch (reason) {
    case AccessDenialReason::kConsentWithdrawn:
      return 0;
    case AccessDenialReason::kConsentExpired:
      return 1;
    case AccessDenialReason::kPurposeNotCovered:
      return 2;
    case AccessDenialReason::kNoRelation:
      return 3;
    default:
      return 4;
  }
}

bool ConsentNamesRecipient(const Consent& consent,
                           const AccessRequest& request) {
  if (!consent.recipient_agency.empty()) {
    return consent.recipient_agency == request.agency_id;
  }
  return consent.recipient_legal_domain != LegalDomain::kUnspecified &&
         consent.recipient_legal_domain == request.legal_domain;
}

}  // namespace

absl::string_view DataCategoryName(DataCategory category) {
  return NameOf(category, kDataCategoryNames);
}
absl::string_view LegalDomainName(LegalDomain domain) {
  return NameOf(domain, kLegalDomainNames);
}
absl::string_view RelationName(Relation relation) {
  return NameOf(relation, kRelationNames);
}
absl::string_view AccessBasisName(AccessBasis basis) {
  return NameOf(basis, kAccessBasisNames);
}
absl::string_view AccessDenialReasonName(AccessDenialReason reason) {
  return NameOf(reason, kAccessDenialReasonNames);
}
absl::string_view ConsentStateName(ConsentState state) {
  return NameOf(state, kConsentStateNames);
}

std::optional<DataCategory> DataCategoryFromName(absl::string_view name) {
  return FromName<DataCategory>(name, kDataCategoryNames);
}
std::optional<LegalDomain> LegalDomainFromName(absl::string_view name) {
  return FromName<LegalDomain>(name, kLegalDomainNames);
}
std::optional<Relation> RelationFromName(absl::string_view name) {
  return FromName<Relation>(name, kRelationNames);
}
std::optional<AccessBasis> AccessBasisFromName(absl::string_view name) {
  return FromName<AccessBasis>(name, kAccessBasisNames);
}
std::optional<AccessDenialReason> AccessDenialReasonFromName(
    absl::string_view name) {
  return FromName<AccessDenialReason>(name, kAccessDenialReasonNames);
}
std::optional<ConsentState> ConsentStateFromName(absl::string_view name) {
  return FromName<ConsentState>(name, kConsentStateNames);
}

std::vector<DataCategory> AllDataCategories() {
  return AllSpecified<DataCategory>(kDataCategoryNames);
}
std::vector<LegalDomain> AllLegalDomains() {
  return AllSpecified<LegalDomain>(kLegalDomainNames);
}

ConsentState ConsentStateAt(const Consent& consent, absl::Time now) {
  if (consent.withdraw_time.has_value() && *consent.withdraw_time <= now) {
    return ConsentState::kWithdrawn;
  }
  if (now < consent.valid_from) return ConsentState::kPending;
  if (now >= consent.valid_until) return ConsentState::kExpired;
  return ConsentState::kActive;
}

// One pass over the file's lines with one branch per directive
// ('category', 'rule'): kept in one piece so that the grammar the header
// documents reads top to bottom in one place, next to the line numbers its
// errors name.
absl::StatusOr<AccessPolicy> AccessPolicy::Parse(
    absl::string_view text, absl::string_view source_name) {
  static_assert(std::size(kDataCategoryNames) == kCategorySlots);
  AccessPolicy policy;
  absl::flat_hash_map<std::string, int> rule_lines;  // id -> line
  std::array<int, kCategorySlots> category_lines{};  // 0: not declared

  int line_number = 0;
  for (absl::string_view raw_line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (internal::IsBlankOrComment(raw_line)) continue;
    auto error = [&](absl::string_view message) {
      return LineError(source_name, line_number, message);
    };

    absl::StatusOr<internal::RulesLine> line =
        internal::SplitRulesLine(raw_line);
    if (!line.ok()) return error(line.status().message());
    if (line->words.empty()) {
      return error("a line must start with 'category' or 'rule'");
    }
    const std::string& directive = line->words[0];

    if (directive == "category") {
      if (line->words.size() < 2) return error("'category' needs a name");
      absl::StatusOr<DataCategory> category = ParseCategory(line->words[1]);
      if (!category.ok()) return error(category.status().message());
      bool is_private = false;
      for (size_t i = 2; i < line->words.size(); ++i) {
        if (line->words[i] != "private" || is_private) {
          return error(absl::StrCat("unexpected word \"", line->words[i],
                                    "\" (only 'private' may follow)"));
        }
        is_private = true;
      }
      auto fields = RequireFields(*line, directive, {"writers"});
      if (!fields.ok()) return error(fields.status().message());
      auto writers = ParseDomains("writers", (*fields)["writers"],
                                  /*allow_none=*/true);
      if (!writers.ok()) return error(writers.status().message());

      auto slot = static_cast<size_t>(*category);
      if (category_lines[slot] != 0) {
        return error(absl::StrCat("category ", line->words[1],
                                  " already declared on line ",
                                  category_lines[slot]));
      }
      // The contract (data_category.proto) promises that no rule and no
      // consent opens private notes; a rules file cannot weaken that.
      if (*category == DataCategory::kPrivateNotes && !is_private) {
        return error("PRIVATE_NOTES must be declared 'private'");
      }
      category_lines[slot] = line_number;
      CategoryPolicy& declared = policy.categories_[slot];
      declared.is_private = is_private;
      declared.writers = *std::move(writers);
    } else if (directive == "rule") {
      if (line->words.size() != 2) {
        return error("'rule' needs exactly one rule id before its fields");
      }
      const std::string& id = line->words[1];
      if (!IsValidRuleId(id)) {
        return error(absl::StrCat("invalid rule id \"", id,
                                  "\" (1..64 of [a-z0-9.-], starting with a "
                                  "letter or digit)"));
      }
      if (auto it = rule_lines.find(id); it != rule_lines.end()) {
        return error(absl::StrCat("duplicate rule id \"", id,
                                  "\" (first on line ", it->second, ")"));
      }
      auto fields = RequireFields(*line, directive,
                                  {"category", "readers", "relation", "basis"});
      if (!fields.ok()) return error(fields.status().message());
      absl::StatusOr<DataCategory> category =
          ParseCategory((*fields)["category"]);
      if (!category.ok()) return error(category.status().message());
      auto readers = ParseDomains("readers", (*fields)["readers"],
                                  /*allow_none=*/false);
      if (!readers.ok()) return error(readers.status().message());
      auto relations = ParseRelations((*fields)["relation"]);
      if (!relations.ok()) return error(relations.status().message());
      std::string basis(absl::StripAsciiWhitespace((*fields)["basis"]));
      if (basis.empty()) return error("'basis' must not be empty");

      rule_lines[id] = line_number;
      AccessRule rule;
      rule.id = id;
      rule.category = *category;
      rule.readers = *std::move(readers);
      rule.required_relations = *std::move(relations);
      rule.basis = std::move(basis);
      rule.line = line_number;
      policy.rules_.push_back(std::move(rule));
    } else {
      return error(absl::StrCat("unknown directive \"", directive,
                                "\" (expected 'category' or 'rule')"));
    }
  }

  // Checks that need the whole file: categories may be declared after the
  // rules that name them.
  for (DataCategory category : AllDataCategories()) {
    if (category_lines[static_cast<size_t>(category)] == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": no 'category' line for ",
                       DataCategoryName(category)));
    }
  }
  for (size_t i = 0; i < policy.rules_.size(); ++i) {
    const AccessRule& rule = policy.rules_[i];
    CategoryPolicy& category =
        policy.categories_[static_cast<size_t>(rule.category)];
    if (category.is_private) {
      return LineError(source_name, rule.line,
                       absl::StrCat("rule \"", rule.id, "\" names ",
                                    DataCategoryName(rule.category),
                                    ", which is private to its writer"));
    }
    category.rule_indexes.push_back(i);
  }
  return policy;
}

absl::StatusOr<AccessPolicy> AccessPolicy::LoadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    return absl::NotFoundError(
        absl::StrCat("cannot open access rules file ", path));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    return absl::UnavailableError(
        absl::StrCat("cannot read access rules file ", path));
  }
  return Parse(contents.str(), path);
}

AccessDecision AccessPolicy::Decide(const AccessRequest& request,
                                    absl::Time now) const {
  AccessDecision decision;
  decision.category = request.category;
  auto deny = [&](AccessDenialReason reason) {
    decision.denial_reason = reason;
    return decision;
  };
  auto allow = [&](AccessBasis basis) {
    decision.allowed = true;
    decision.basis = basis;
    return decision;
  };

  if (request.agency_suspended) {
    return deny(AccessDenialReason::kAgencySuspended);
  }
  if (!IsSpecified(request.category, kDataCategoryNames) ||
      !IsSpecified(request.legal_domain, kLegalDomainNames)) {
    return deny(AccessDenialReason::kNoLegalBasis);
  }
  if (request.legal_domain == LegalDomain::kDataProtection) {
    // Its work is the audit chains; no rule, consent or authorship opens
    // person data to it, not even in a private category.
    return deny(AccessDenialReason::kNoLegalBasis);
  }
  const CategoryPolicy& category =
      categories_[static_cast<size_t>(request.category)];
  if (category.is_private) {
    return request.caller_wrote_data
               ? allow(AccessBasis::kOwner)
               : deny(AccessDenialReason::kPrivateToWriter);
  }
  if (request.caller_wrote_data) return allow(AccessBasis::kOwner);

  AccessDenialReason best_reason = AccessDenialReason::kNoLegalBasis;
  auto consider = [&](AccessDenialReason reason) {
    if (DenialRank(reason) < DenialRank(best_reason)) best_reason = reason;
  };

  for (size_t index : category.rule_indexes) {
    const AccessRule& rule = rules_[index];
    if (!Contains(rule.readers, request.legal_domain)) continue;
    if (SatisfiesRelations(rule.required_relations, request.relations)) {
      decision.rule_id = rule.id;
      return allow(AccessBasis::kLegalBasis);
    }
    consider(AccessDenialReason::kNoRelation);
  }

  for (const Consent& consent : request.consents) {
    if (consent.person_id != request.person_id) continue;
    if (!Contains(consent.categories, request.category)) continue;
    if (!ConsentNamesRecipient(consent, request)) continue;
    if (!Contains(consent.purposes, request.purpose)) {
      consider(AccessDenialReason::kPurposeNotCovered);
      continue;
    }
    switch (ConsentStateAt(consent, now)) {
      case ConsentState::kActive:
        decision.consent = consent.name;
        return allow(AccessBasis::kConsent);
      case ConsentState::kWithdrawn:
        consider(AccessDenialReason::kConsentWithdrawn);
        break;
      case ConsentState::kExpired:
        consider(AccessDenialReason::kConsentExpired);
        break;
      default:  // pending: does not cover the access yet
        break;
    }
  }
  return deny(best_reason);
}

bool AccessPolicy::MayWrite(LegalDomain domain, DataCategory category) const {
  if (!IsSpecified(category, kDataCategoryNames)) return false;
  return Contains(categories_[static_cast<size_t>(category)].writers, domain);
}

bool AccessPolicy::IsPrivate(DataCategory category) const {
  if (!IsSpecified(category, kDataCategoryNames)) return false;
  return categories_[static_cast<size_t>(category)].is_private;
}

const AccessRule* AccessPolicy::FindRule(absl::string_view id) const {
  for (const AccessRule& rule : rules_) {
    if (rule.id == id) return &rule;
  }
  return nullptr;
}

}  // namespace lotse::identity
