#include "services/identity/domain/consent.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/api/text.h"
#include "common/api/time.h"
#include "lotse/type/v1/data_category.pb.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/domain/agency.h"

namespace lotse::identity {
namespace {

constexpr char kPurposeAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
// Evidence signed "now" on a caseworker's machine may reach us slightly
// ahead of our clock; a declaration further in the future is a typo.
constexpr absl::Duration kClockSkew = absl::Minutes(5);

std::string DomainOf(int recipient_legal_domain) {
  return std::string(
      LegalDomainName(static_cast<LegalDomain>(recipient_legal_domain)));
}

}  // namespace

bool ValidTimestamp(const google::protobuf::Timestamp& ts) {
  return ts.seconds() >= -62135596800 && ts.seconds() <= 253402300799 &&
         ts.nanos() >= 0 && ts.nanos() <= 999999999;
}

void ValidateDataCategories(
    const google::protobuf::RepeatedField<int>& categories,
    const std::string& field, bool forbid_private,
    FieldViolations* violations) {
  std::set<int> seen;
  for (int i = 0; i < categories.size(); ++i) {
    const int value = categories.Get(i);
    const std::string item = absl::StrCat(field, "[", i, "]");
    if (value == type::v1::DATA_CATEGORY_UNSPECIFIED) {
      violations->Add(item, "must be a specified data category");
    } else if (!type::v1::DataCategory_IsValid(value)) {
      violations->Add(item, absl::StrCat("unknown data category ", value));
    } else if (forbid_private &&
               value == type::v1::DATA_CATEGORY_PRIVATE_NOTES) {
      violations->Add(item,
                      "PRIVATE_NOTES cannot be opened by a consent: only "
                      "the writing agency ever reads them");
    } else if (!seen.insert(value).second) {
      violations->Add(item, "is repeated");
    }
  }
}

bool ValidatePurpose(absl::string_view purpose, const std::string& field,
                     FieldViolations* violations) {
  return api::ValidateToken(purpose, field, 1, 64, kPurposeAlphabet,
                            "[a-z0-9-]", violations);
}

void ValidateConsentEvidence(const v1::ConsentEvidence& evidence, bool present,
                             const std::string& field, bool for_withdrawal,
                             absl::Time now, FieldViolations* violations) {
  if (!present) {
    violations->Add(field, "is required");
    return;
  }
  const int form = evidence.form();
  if (form == v1::CONSENT_FORM_UNSPECIFIED) {
    violations->Add(field + ".form", "is required");
  } else if (!v1::ConsentForm_IsValid(form)) {
    violations->Add(field + ".form",
                    absl::StrCat("unknown consent form ", form));
  } else if (!for_withdrawal && form == v1::CONSENT_FORM_ORAL_DOCUMENTED) {
    violations->Add(field + ".form",
                    "oral consent is not permitted in this deployment");
  }
  api::ValidateText(evidence.document_reference(),
                    field + ".document_reference", {1, 200, false}, violations);
  if (!evidence.has_declare_time()) {
    violations->Add(field + ".declare_time", "is required");
  } else if (!ValidTimestamp(evidence.declare_time())) {
    violations->Add(field + ".declare_time", "is not a valid timestamp");
  } else if (api::FromTimestamp(evidence.declare_time()) > now + kClockSkew) {
    violations->Add(field + ".declare_time", "must not be in the future");
  }
}

bool RecordsOrReceivesConsent(const v1::Consent& fields,
                              absl::string_view agency_id,
                              absl::string_view legal_domain) {
  const std::string name = AgencyResourceName(agency_id);
  if (fields.recording_agency() == name) return true;
  if (fields.recipient_case() == v1::Consent::kRecipientAgency) {
    return fields.recipient_agency() == name;
  }
  return DomainOf(fields.recipient_legal_domain()) == legal_domain;
}

bool ConsentForSelf(const v1::Consent& consent,
                    absl::string_view recipient_agency_id,
                    absl::string_view agency_id,
                    absl::string_view legal_domain) {
  if (consent.recipient_case() == v1::Consent::kRecipientAgency) {
    return recipient_agency_id == agency_id;
  }
  return DomainOf(consent.recipient_legal_domain()) == legal_domain;
}

}  // namespace lotse::identity
