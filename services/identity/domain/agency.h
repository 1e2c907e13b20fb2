// The agency registry's rules (DESIGN.md section 2; contract in
// proto/lotse/identity/v1/agency.proto): what an agency record holds and
// which values are acceptable. Free of storage and gRPC; the validators add
// field violations so a request reports all its bad fields at once.
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_AGENCY_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_AGENCY_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/errors/status.h"

namespace lotse::identity {

enum class AgencyState { kActive, kSuspended };

// One row of the registry. legal_domain is the short domain name as it
// appears in client certificates (OU) and audit rows, e.g. "KOMMUNE".
struct AgencyRecord {
  std::string id;  // the {agency} of "agencies/{agency}"
  std::string display_name;
  std::string legal_domain;
  std::string municipality_code;  // AGS, 8 digits, or empty
  std::string certificate_identity;
  AgencyState state = AgencyState::kActive;
  std::string suspension_reason;  // empty while active
  int64_t version = 1;            // +1 on every change; feeds the etag
  absl::Time create_time;
  absl::Time update_time;
};

// The legal domain that administers the registry.
inline constexpr char kAdministrationDomain[] = "ADMINISTRATION";

// "agencies/{id}".
std::string AgencyResourceName(absl::string_view id);

// The id in "agencies/{id}" if `name` has that form (common/api/names.h);
// otherwise adds a violation for `field` and returns "".
std::string ParseAgencyName(absl::string_view name, const std::string& field,
                            FieldViolations* violations);

// 3..63 characters of [a-z0-9-], starting with a letter, not ending with a
// hyphen (the id appears in DNS-like places: certificates, URIs).
bool ValidateAgencyId(absl::string_view id, const std::string& field,
                      FieldViolations* violations);

// Required, 1..200 characters of printable UTF-8.
bool ValidateDisplayName(absl::string_view display_name,
                         const std::string& field, FieldViolations* violations);

// Empty, or an official municipality key (AGS): exactly eight digits.
// Required (non-empty) when `legal_domain` is "KOMMUNE".
bool ValidateMunicipalityCode(absl::string_view code,
                              absl::string_view legal_domain,
                              const std::string& field,
                              FieldViolations* violations);

// Required, 1..256 characters of printable ASCII without spaces (a
// certificate CN, or a URI SAN such as "urn:lotse:agency:kim-koeln").
bool ValidateCertificateIdentity(absl::string_view identity,
                                 const std::string& field,
                                 FieldViolations* violations);

// Why an agency is suspended: required, 1..500 characters, no control
// characters other than line breaks.
bool ValidateSuspensionReason(absl::string_view reason,
                              const std::string& field,
                              FieldViolations* violations);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_AGENCY_H_
