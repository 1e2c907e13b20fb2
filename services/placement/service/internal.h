// Shared by the handler files of the placement service: names, time and
// date conversions, errors, access checks with identity, output of stored
// records, events and request validation. Not a public API.
#ifndef LOTSE_SERVICES_PLACEMENT_SERVICE_INTERNAL_H_
#define LOTSE_SERVICES_PLACEMENT_SERVICE_INTERNAL_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/agencies/audited_call.h"
#include "common/agencies/registry.h"
#include "common/api/dates.h"
#include "common/api/names.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "common/server/request_context.h"
#include "common/storage/database.h"
#include "google/protobuf/timestamp.pb.h"
#include "lotse/identity/v1/access_check.pb.h"
#include "lotse/placement/v1/events.pb.h"
#include "lotse/type/v1/access.pb.h"
#include "lotse/type/v1/date.pb.h"
#include "services/placement/service/placement_service.h"
#include "services/placement/store/placement_store.h"

namespace lotse::placement {

// Audit category names.
inline constexpr char kEmployment[] = "EMPLOYMENT";
inline constexpr char kLanguage[] = "LANGUAGE";
inline constexpr char kResidence[] = "RESIDENCE_STATUS";

// --- names ---
std::string OfferName(absl::string_view id);
std::string CandidateName(absl::string_view person_id);
std::string PersonName(absl::string_view person_id);
std::string PlacementName(absl::string_view id);
std::string NoticeName(absl::string_view id);
// Name patterns for api::ParseNameId (common/api/names.h), which checks
// every name placement reads, its own and other services'.
inline constexpr char kOfferPattern[] = "offers/{offer}";
inline constexpr char kCandidatePattern[] = "candidates/{candidate}";
inline constexpr char kPlacementPattern[] = "placements/{placement}";
inline constexpr char kNoticePattern[] = "trainingTolerationNotices/{notice}";

// --- time and dates ---
// Timestamps: common/api/time.h (api::ToTimestamp, api::FromTimestamp).
int64_t ToMicros(absl::Time t);
// Day numbers and dates: common/api/dates.h (DayIndex is api::DayOf).
using api::DateFromDay;
using api::DayNumber;
inline int64_t DayIndex(absl::Time t) { return api::DayOf(t); }
// Adds a violation unless `date` is a real calendar date (required: set).
bool ValidateDate(const type::v1::Date& date, bool required,
                  const std::string& field, FieldViolations* violations);

// --- errors ---
absl::Status NotFound(absl::string_view reason, absl::string_view message);
absl::Status Precondition(absl::string_view reason, absl::string_view message);
absl::Status Denied(absl::string_view reason, absl::string_view message);
// PERMISSION_DENIED (WRONG_LEGAL_DOMAIN) unless the caller's legal domain
// is one of `domains`.
absl::Status RequireDomain(const agencies::LocalAgency& caller,
                           std::initializer_list<absl::string_view> domains,
                           absl::string_view what);
bool DomainIs(const agencies::LocalAgency& caller,
              std::initializer_list<absl::string_view> domains);

// --- access (identity) ---
// Identity's decisions for one person, by category.
struct AccessView {
  std::vector<identity::v1::AccessDecision> decisions;
  const identity::v1::AccessDecision* Find(type::v1::DataCategory c) const;
  bool Allowed(type::v1::DataCategory c) const;
  type::v1::AccessDenialReason Reason(type::v1::DataCategory c) const;
};
// Asks identity whether the caller of `call` may read `categories` of
// `person` ("persons/x") now; the ground of each allowed category goes on
// the call's records about the person. Must not be called inside a
// transaction. NOT_FOUND (PERSON_NOT_FOUND) for a person identity does not
// know; PERMISSION_DENIED CHECK_UNAVAILABLE when identity did not answer.
absl::StatusOr<AccessView> AskAccess(
    PlacementServiceImpl& service, agencies::AuditedCall& call,
    const std::string& person, std::vector<type::v1::DataCategory> categories,
    bool serves);
// Whether `caller` has standing towards `person` (identity's
// RequireStanding: it may read the person's core identity). The writes that
// make the caller serve the person (a candidate profile, a proposal) ask
// this first. PERMISSION_DENIED NO_RELATION otherwise, also for a person
// identity does not know; FAILED_PRECONDITION CHECK_UNAVAILABLE, like this
// service's other fresh checks, when identity did not answer.
absl::Status RequireStanding(PlacementServiceImpl& service,
                             const server::RequestContext& rc,
                             const agencies::LocalAgency& caller,
                             const std::string& person);
// AskAccess for several persons in one round trip (identity's calls are in
// flight together); answers in order. `serves[i]` belongs to persons[i].
std::vector<absl::StatusOr<AccessView>> AskAccessBatch(
    PlacementServiceImpl& service, agencies::AuditedCall& call,
    const std::vector<std::string>& persons, const std::vector<bool>& serves,
    const std::vector<type::v1::DataCategory>& categories);
// PERMISSION_DENIED with identity's reason for `category` unless allowed.
absl::Status RequireAllowed(const AccessView& view,
                            type::v1::DataCategory category);
// "NO_LEGAL_BASIS" from ACCESS_DENIAL_REASON_NO_LEGAL_BASIS.
std::string DenialReasonName(type::v1::AccessDenialReason reason);
type::v1::Withheld MakeWithheld(const std::string& field,
                                type::v1::DataCategory category,
                                type::v1::AccessDenialReason reason);

// --- output ---
void OfferOut(const OfferRow& row, v1::Offer* out);
// The profile with the certified level from `facts`; a merge redirect row
// must not be passed.
void CandidateOut(const CandidateRow& row,
                  const std::optional<PersonFacts>& facts,
                  v1::CandidateProfile* out);
// Clears the LANGUAGE fields of `profile` and lists them in `withheld`
// under `prefix` ("candidate_profile", "candidate_profiles[2]").
void WithholdLanguage(
    const std::string& prefix, type::v1::AccessDenialReason reason,
    v1::CandidateProfile* profile,
    google::protobuf::RepeatedPtrField<type::v1::Withheld>* withheld);
void PlacementOut(const PlacementRow& row, v1::Placement* out);
void NoticeOut(const NoticeRow& row, v1::TrainingTolerationNotice* out);

// --- events ---
// Enqueues `payload` (source "placement", ordering key `person`).
absl::Status Enqueue(storage::Transaction& tx,
                     const google::protobuf::Message& payload,
                     const std::string& person);
v1::PlacementContext ContextOf(const v1::Placement& p, const v1::Offer& offer);
// Ends an open placement in `to_state` (REJECTED / WITHDRAWN) with
// `reason`, stores it and emits PlacementStateChanged.
absl::Status EndPlacement(storage::Transaction& tx, PlacementRow* row,
                          const v1::Offer& offer, v1::PlacementState to_state,
                          v1::PlacementEndReason reason,
                          const std::string& comment, const std::string& agency,
                          const std::string& actor, absl::Time now);
bool IsOpenState(v1::PlacementState state);

// --- person resolution ---
// The person id a "candidates/{p}" / "persons/{p}" id stands for after
// merges, and the live profile there (not a redirect), if any.
struct ResolvedCandidate {
  std::string person_id;
  std::optional<CandidateRow> row;
  std::optional<PersonFacts> facts;
};
absl::StatusOr<ResolvedCandidate> ResolveCandidate(storage::Transaction& tx,
                                                   absl::string_view person_id);

// --- validation ---
// The field violation for a code that is not a KldB 2010 occupation code
// (IsKldb2010Code, domain/kldb.h).
inline constexpr char kNotKldbCode[] =
    "must be a KldB 2010 occupation code, e.g. \"51312\"";
// Validates the writable fields of an offer named in `paths` (all of them
// when `paths` is empty, as at creation) under `prefix` ("offer").
void ValidateOffer(const v1::Offer& offer,
                   const std::vector<std::string>& paths, bool creating,
                   int64_t today, FieldViolations* violations);
// Validates the writable fields of a profile named in `paths` (all when
// empty).
void ValidateProfile(const v1::CandidateProfile& p,
                     const std::vector<std::string>& paths,
                     FieldViolations* violations);
// Gives new qualifications an id, keeps the ids (and recognition data) of
// kept ones from `before`.
absl::Status AssignQualificationIds(const v1::CandidateProfile* before,
                                    v1::CandidateProfile* profile,
                                    FieldViolations* violations);

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_SERVICE_INTERNAL_H_
