// The rules of consents that the RPCs share (DESIGN.md section 4; contract
// in proto/lotse/identity/v1/consent.proto): which requests are well-formed,
// who sees a consent without further rule, and that consent is never
// self-service. Free of storage and gRPC; the validators add field
// violations so a request reports all its bad fields at once.
#ifndef LOTSE_SERVICES_IDENTITY_DOMAIN_CONSENT_H_
#define LOTSE_SERVICES_IDENTITY_DOMAIN_CONSENT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/errors/status.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "lotse/identity/v1/consent.pb.h"

namespace lotse::identity {

// Whether `ts` lies in google.protobuf.Timestamp's documented range,
// 0001-01-01 to 9999-12-31, with nanos in [0, 1e9).
bool ValidTimestamp(const google::protobuf::Timestamp& ts);

// Adds violations for data categories that are unspecified, unknown,
// repeated or (when `forbid_private`) PRIVATE_NOTES, which no consent can
// open: only the writing agency ever reads them.
void ValidateDataCategories(
    const google::protobuf::RepeatedField<int>& categories,
    const std::string& field, bool forbid_private, FieldViolations* violations);

// A purpose as consents and CheckAccess name it: 1..64 characters of
// [a-z0-9-]. Adds a violation for `field` and returns false otherwise.
bool ValidatePurpose(absl::string_view purpose, const std::string& field,
                     FieldViolations* violations);

// Adds violations for the evidence a consent (or, with `for_withdrawal`,
// its withdrawal) rests on, judged at `now`: required (`present`), a known
// form (oral consent is not permitted for recording: no deployment setting
// allows it yet, so it fails safe), a document reference of 1..200
// characters, and a valid declare time at most a few minutes after `now`
// (a caseworker's clock may run slightly ahead).
void ValidateConsentEvidence(const v1::ConsentEvidence& evidence, bool present,
                             const std::string& field, bool for_withdrawal,
                             absl::Time now, FieldViolations* violations);

// Whether agency `agency_id` of `legal_domain` ("JOBCENTER") recorded the
// consent `fields` or is its recipient, by id or by domain: GetConsent and
// ListConsents show such a consent without further rule.
bool RecordsOrReceivesConsent(const v1::Consent& fields,
                              absl::string_view agency_id,
                              absl::string_view legal_domain);

// Whether recording `consent` would open data to the recording agency
// itself (`recipient_agency_id` is the parsed recipient_agency, if any).
// Consent is never self-service: the person's case owner or another agency
// acting for the person records it, never an agency it opens data to.
bool ConsentForSelf(const v1::Consent& consent,
                    absl::string_view recipient_agency_id,
                    absl::string_view agency_id,
                    absl::string_view legal_domain);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_DOMAIN_CONSENT_H_
