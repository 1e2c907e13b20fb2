#include "services/identity/domain/agency.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/api/names.h"
#include "common/api/text.h"

namespace lotse::identity {
namespace {

constexpr absl::string_view kAgencyPrefix = "agencies/";

}  // namespace

std::string AgencyResourceName(absl::string_view id) {
  return absl::StrCat(kAgencyPrefix, id);
}

std::string ParseAgencyName(absl::string_view name, const std::string& field,
                            FieldViolations* violations) {
  // Any id form (common/api/names.h); ValidateAgencyId is the stricter
  // rule for new registrations.
  return api::ParseNameId(name, api::kAgencyName, field, violations);
}

bool ValidateAgencyId(absl::string_view id, const std::string& field,
                      FieldViolations* violations) {
  if (id.empty()) {
    violations->Add(field, "is required");
    return false;
  }
  bool ok = id.size() >= 3 && id.size() <= 63 && absl::ascii_islower(id[0]) &&
            id.back() != '-';
  for (char c : id) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-')
      ok = false;
  }
  if (!ok) {
    violations->Add(field,
                    "must be 3..63 characters of [a-z0-9-], starting with a "
                    "letter and not ending with '-'");
  }
  return ok;
}

bool ValidateDisplayName(absl::string_view display_name,
                         const std::string& field,
                         FieldViolations* violations) {
  api::TextRules rules;
  rules.max_chars = 200;
  return api::ValidateText(display_name, field, rules, violations);
}

bool ValidateMunicipalityCode(absl::string_view code,
                              absl::string_view legal_domain,
                              const std::string& field,
                              FieldViolations* violations) {
  if (code.empty()) {
    if (legal_domain == "KOMMUNE") {
      violations->Add(field, "is required for KOMMUNE agencies");
      return false;
    }
    return true;
  }
  bool ok = code.size() == 8;
  for (char c : code) {
    if (!absl::ascii_isdigit(c)) ok = false;
  }
  if (!ok) violations->Add(field, "must be an AGS of exactly 8 digits");
  return ok;
}

bool ValidateCertificateIdentity(absl::string_view identity,
                                 const std::string& field,
                                 FieldViolations* violations) {
  if (identity.empty()) {
    violations->Add(field, "is required");
    return false;
  }
  bool ok = identity.size() <= 256;
  for (char c : identity) {
    if (c <= 0x20 || c >= 0x7F) ok = false;
  }
  if (!ok) {
    violations->Add(field,
                    "must be 1..256 printable ASCII characters without "
                    "spaces");
  }
  return ok;
}

bool ValidateSuspensionReason(absl::string_view reason,
                              const std::string& field,
                              FieldViolations* violations) {
  api::TextRules rules;
  rules.max_chars = 500;
  rules.allow_line_breaks = true;
  return api::ValidateText(reason, field, rules, violations);
}

}  // namespace lotse::identity
