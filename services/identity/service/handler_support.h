// What identity's handler files share besides AuditedCall: the audit trail
// of person data, reading a person for a call, and the access decisions a
// handler needs about the calling agency (person_access.h decides them).
// Internal to services/identity/service.
#ifndef LOTSE_SERVICES_IDENTITY_SERVICE_HANDLER_SUPPORT_H_
#define LOTSE_SERVICES_IDENTITY_SERVICE_HANDLER_SUPPORT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/agencies/audited_call.h"
#include "common/agencies/registry.h"
#include "common/events/outbox.h"
#include "common/server/request_context.h"
#include "common/storage/database.h"
#include "lotse/events/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/identity/v1/person.pb.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/domain/name_matching.h"
#include "services/identity/domain/person.h"
#include "services/identity/service/person_access.h"
#include "services/identity/store/person_store.h"
#include "services/identity/store/residence_store.h"

namespace lotse::identity {

// The data category of every record of the person RPCs.
inline constexpr char kCoreIdentity[] = "CORE_IDENTITY";

// Birth dates are judged against the calendar day in Germany, where the
// registrations happen; UTC would refuse a newborn for an hour or two.
absl::CivilDay TodayInGermany();

// The resource a request names, for the audit record of a call refused
// before its body ran: "persons/{id}" followed by `suffix` when `name`
// starts with a well-formed person name, else the collection "persons"
// (never unvalidated bytes).
std::string PersonTarget(absl::string_view name, absl::string_view suffix = "");

// Records on `call`'s trail that it read or wrote person data `resource`
// ("persons/x", or "persons" for the call itself), category CORE_IDENTITY;
// `reason` as for AuditedCall::TouchResource (MATCH_ONLY, UPDATED:...).
void AuditPerson(agencies::AuditedCall& call, std::string resource,
                 std::string reason = "");

// What an agency is told when a call about a person ended in `status`:
// for PERSON_NOT_FOUND, what it would hear about a person it has no
// standing towards for `category` (RefusalWithoutStanding), so it cannot
// tell the two apart; any other status unchanged. Lotse's services are
// told the truth. Apply after AuditedCall::Finish: the trail keeps what
// happened.
absl::Status HideAbsentPerson(const AccessPolicy& policy,
                              const server::RequestContext& rc,
                              const agencies::LocalAgency& caller,
                              DataCategory category, absl::Status status);

// PERMISSION_DENIED (WRONG_LEGAL_DOMAIN) for the agencies that never work
// with persons: the administering agency and the data-protection role
// (which reads audit chains, not personal data), so neither can register or
// search persons and so create a relation to them.
absl::Status RequireNotAdministration(const agencies::LocalAgency& caller);

// FAILED_PRECONDITION PERSON_MERGED naming the survivor of `lookup`.
absl::Status MergedError(const PersonLookup& lookup);

// The person `id` (a merged id resolves to its survivor), NOT_FOUND with
// reason PERSON_NOT_FOUND if it never existed. With `for_write`, a merged
// id is FAILED_PRECONDITION PERSON_MERGED naming the survivor.
absl::StatusOr<PersonLookup> FindPerson(storage::Transaction& tx,
                                        const DuplicateMatcher& matcher,
                                        const std::string& id, bool for_write);

// What `caller` may read of `person` (the survivor when the id was
// merged): CORE_IDENTITY decides whether it sees the person at all,
// CONTACT whether it sees the contact data too.
struct PersonAccess {
  AccessDecision core;
  AccessDecision contact;
};

absl::StatusOr<PersonAccess> DecidePersonAccess(
    storage::Transaction& tx, const AccessPolicy& policy,
    const server::RequestContext& rc, const agencies::LocalAgency& caller,
    const PersonLookup& person);

// The access decisions for a person the caller must be able to read:
// PERMISSION_DENIED with the core identity's denial reason otherwise.
absl::StatusOr<PersonAccess> RequireCoreIdentityRead(
    storage::Transaction& tx, const AccessPolicy& policy,
    const server::RequestContext& rc, const agencies::LocalAgency& caller,
    const PersonLookup& person);

// The record as `access` lets the caller see it: the contact is left out,
// and withheld_categories says so, unless CONTACT may be read. Listed
// whenever it is withheld, also for a record without contact data, so the
// list does not tell whether there is any.
void ShowTo(const PersonAccess& access, v1::Person* person);

// Decides whether `subject` may read `category` of `person` now for
// `purpose` (person_access.h), with the relations an asking service asserts
// and its word that the agency wrote the data (private notes).
absl::StatusOr<AccessDecision> DecideAccess(
    storage::Transaction& tx, const AccessPolicy& policy,
    const PersonLookup& person, const AccessSubject& subject,
    DataCategory category, const std::string& purpose,
    std::vector<Relation> asserted, bool wrote_data, absl::Time now);

// Requires that the caller may read `category` of `person`; services
// (not subject to per-domain rules) always may.
absl::Status RequireRead(storage::Transaction& tx, const AccessPolicy& policy,
                         const PersonLookup& person,
                         const agencies::LocalAgency& caller,
                         DataCategory category,
                         const server::RequestContext& rc);

// ResidenceStatusChanged announcing `record` as the person's current one.
v1::ResidenceStatusChanged ResidenceChanged(const ResidenceRecord& record);

// Enqueues `payload` from identity, ordered per person so that consumers
// apply one person's changes in order.
template <typename Payload>
absl::Status EnqueuePersonEvent(storage::Transaction& tx,
                                const std::string& person_id,
                                const Payload& payload) {
  lotse::events::v1::Event event;
  event.set_ordering_key(PersonResourceName(person_id));
  event.set_source("identity");
  event.mutable_payload()->PackFrom(payload);
  return events::EnqueueEvent(tx, std::move(event));
}

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_SERVICE_HANDLER_SUPPORT_H_
