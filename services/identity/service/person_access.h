// What identity knows of an agency's standing towards a person, and the
// access decisions it makes from that (DESIGN.md section 4). Every identity
// RPC that shows or changes a person's data decides through here, so that
// GetPerson, the consent RPCs, search and CheckAccess can never disagree
// about who may read what.
//
// The facts identity holds itself, for one agency and one person:
//   - it created the person record: OWNER of CORE_IDENTITY and CONTACT;
//   - it recorded a residence status of the person: OWNER of
//     RESIDENCE_STATUS;
//   - it holds a linked agency id for the person: AGENCY_ID_HOLDER;
//   - the relations other services told identity of through their events
//     (case owner or participant, serving the person; relation_store.h);
//   - the person's consents, in any state (the policy picks the ones that
//     apply).
// Nothing is cached: a withdrawal, an expiry or a closed case changes the
// very next decision.
#ifndef LOTSE_SERVICES_IDENTITY_SERVICE_PERSON_ACCESS_H_
#define LOTSE_SERVICES_IDENTITY_SERVICE_PERSON_ACCESS_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/agencies/registry.h"
#include "common/audit/audit_log.h"
#include "common/storage/database.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/domain/agency.h"
#include "services/identity/store/consent_store.h"

namespace lotse::identity {

// The policy's view of a stored consent (its state at a time:
// ConsentStateAt).
Consent ToPolicyConsent(const ConsentRecord& record);

// The agency a decision is about, as the policy needs it.
struct AccessSubject {
  std::string agency_id;
  LegalDomain domain = LegalDomain::kUnspecified;
  bool suspended = false;
};

// The subject of a decision about the calling agency (a resolved caller)
// or about an agency of the registry (CheckAccess asks about any).
AccessSubject SubjectOf(const agencies::LocalAgency& agency);
AccessSubject SubjectOf(const AgencyRecord& agency);

// The facts above for one (agency, person) pair.
struct Standing {
  std::vector<Relation> relations;
  bool created_person = false;
  bool recorded_residence = false;  // only loaded when asked for
  std::vector<Consent> consents;
};

// Loads the standing of agency `agency_id` towards person `person_id`
// (which must be a survivor: merges move relations, links and consents).
// `creating_agency` is the person record's ("agencies/{agency}").
// `with_residence` also reads whether the agency recorded a residence
// status (needed for RESIDENCE_STATUS decisions only).
absl::StatusOr<Standing> LoadStanding(storage::Transaction& tx,
                                      const std::string& person_id,
                                      const std::string& creating_agency,
                                      const std::string& agency_id,
                                      bool with_residence);

// The same for many persons at once, one query per kind of fact (search
// and duplicate results). Residence ownership is not loaded. Persons that
// do not exist get an empty standing.
absl::StatusOr<absl::flat_hash_map<std::string, Standing>> LoadStandings(
    storage::Transaction& tx, const std::vector<std::string>& person_ids,
    const std::string& agency_id);

// Decides whether `subject` may read `category` of person `person_id` for
// `purpose`, from `standing` plus the relations an asking Lotse service
// asserts (`asserted`; AGENCY_ID_HOLDER among them is ignored, identity
// knows it itself) and the asking service's word that the agency wrote the
// data (`wrote_data`, private notes).
AccessDecision DecideFromStanding(
    const AccessPolicy& policy, const AccessSubject& subject,
    const std::string& person_id, const Standing& standing,
    DataCategory category, const std::string& purpose,
    std::vector<Relation> asserted = {}, bool wrote_data = false,
    absl::Time now = absl::Now());

// The ground of an allowed `decision` as its audit record states it
// (OWNER, RULE with the rule's id, CONSENT with the consent's name).
audit::LegalBasis LegalBasisOf(const AccessDecision& decision);

// PERMISSION_DENIED carrying the decision's denial reason (without enum
// prefix); for NO_RELATION the message says how a relation comes about.
// The status depends on the decision's category and reason only.
absl::Status DeniedError(const AccessDecision& decision);

// What `subject` is told about a person it has no standing towards at all:
// DeniedError of the decision for an empty standing. Identity answers a
// request about a person that does not exist with exactly this, so that an
// agency cannot tell a person it may not see from no person (no existence
// oracle). When even an empty standing allows the read (a rule without a
// relation), there is nothing to hide: `not_found` is returned instead.
absl::Status RefusalWithoutStanding(const AccessPolicy& policy,
                                    const AccessSubject& subject,
                                    DataCategory category,
                                    const std::string& purpose,
                                    absl::Status not_found);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_SERVICE_PERSON_ACCESS_H_
