// AuditedCall: the transaction and audit scaffolding of one RPC of a
// service that keeps a local agency registry (registry.h). DESIGN.md
// section 4: every access to personal data, allowed or denied, is audited.
//
// Use:
//   AuditedCall call(env, rc, "CreateOffer", "offers");
//   absl::Status s = call.Read([&](Transaction& tx, const LocalAgency& me) {
//     ...; call.Touch("persons/x", "candidate", {"EMPLOYMENT"}); ... });
//   if (s.ok()) s = <ask identity, outside any transaction>;
//   if (s.ok()) s = call.Write([&](Transaction& tx, const LocalAgency& me) {
//     ...writes and outbox events... });
//   return call.Finish(s);
//
// Read() runs its body in a kReadOnly transaction; Write() runs its body and
// the call's audit records in one write phase (env.commit_write, e.g. the
// runtime's group committer), so a write and its audit trail commit
// together or not at all. Both resolve the caller first (ResolveCaller);
// Write() skips that when a Read() of the same call already did. A caller
// the local registry has not heard of is looked up in identity before it is
// refused (RunResolvingCaller with env.lookup_agency). A service that is
// the registry itself (identity) resolves from its own table instead
// (env.resolve_caller). A call that serves Lotse's own services too
// (certificate domain SERVICE, in no registry) says so with
// admit_services(): such a caller is then taken as its certificate names
// it, without resolving.
//
// Two audit chains (audit/audit_log.h): records written with a Write()
// phase join its transaction in the change chain; everything Finish()
// writes — the records of a call whose only phase was Read(), and those of
// refused or failed calls — goes to the read chain, in the environment's
// read-audit database, so that a read never commits to the data database.
//
// Audit records: one per distinct (resource, categories) Touch()ed, with
// resource "persons/{p}/<record>" so a person's transparency report finds
// it; a call that touched nothing is audited once against the target
// resource given at construction (or set_target). Finish() writes what is
// not yet written: after a successful call whose only phase was Read(), the
// audit records (the response waits for them); after a failed call, DENIED
// (PERMISSION_DENIED / UNAUTHENTICATED) or ERROR records with the reason.
// TouchResource() records a whole resource ("persons/x", "agencies/y")
// instead of a person's record, with an optional reason on its ALLOWED
// record (MATCH_ONLY, DUPLICATE_CHECK_OVERRIDDEN); AppendRecord() adds a
// record written as given, for one about another agency than the caller.
//
// Persons and legal bases: every record names the persons it is about, so
// that ListAuditRecords finds it by person (audit_log.h). A resource
// "persons/{p}/..." names its person by itself; AddPerson() adds a person
// to every record of the call, and CallEnvironment::persons_of_resource
// maps other resources ("cases/x/steps/y") to their persons, inside the
// phase's transaction (for a call refused before any phase, in a read-only
// transaction of its own). ALLOWED records carry the legal basis of each
// category they touch, the first of: what AddLegalBasis() or
// AddLegalBasisFor() was given (e.g. identity's access decisions); SERVICE
// for a Lotse service admitted by admit_services(), DATA_PROTECTION for an
// agency of that legal domain; what CallEnvironment::basis_of_access knows
// of the service's own data (the owner of a case, an agency taking part in
// it); OWNER on a record of the change chain, since an agency may write
// only data it owns. A read with none of these names no basis.
//
// Not thread-safe: one AuditedCall belongs to one RPC invocation.
#ifndef LOTSE_COMMON_AGENCIES_AUDITED_CALL_H_
#define LOTSE_COMMON_AGENCIES_AUDITED_CALL_H_

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/agencies/registry.h"
#include "common/audit/audit_log.h"
#include "common/server/request_context.h"
#include "common/server/service_main.h"
#include "common/storage/database.h"

namespace lotse::agencies {

// What an AuditedCall needs of its service. One per service, shared by all
// calls.
struct CallEnvironment {
  // The environment of `service` served by `runtime` (which must outlive
  // it): the runtime's database, and write phases through runtime.Write —
  // the process's one group committer, or a transaction each in a runtime
  // built by hand; the read chain in runtime.read_audit_database through
  // runtime.WriteReadAudit. `lookup_agency` as below.
  static CallEnvironment ForRuntime(std::string service,
                                    const server::ServiceRuntime& runtime,
                                    AgencyLookup lookup_agency = nullptr);

  // Full service name, e.g. "lotse.placement.v1.PlacementService"; audit
  // operations are "<service>/<method>".
  std::string service;
  storage::Database* db = nullptr;
  // Runs a write phase (one transaction, or a share of a group commit);
  // `body` may run more than once on storage conflicts.
  std::function<absl::Status(
      const std::function<absl::Status(storage::Transaction&)>& body)>
      commit_write;
  // The database of the read chain, and how a call's read-chain records
  // are committed there (`body` may run more than once). Null / empty: the
  // read chain is in `db`, committed with commit_write.
  storage::Database* read_audit_db = nullptr;
  std::function<absl::Status(
      const std::function<absl::Status(storage::Transaction&)>& body)>
      commit_read_audit;
  // Asks identity about a caller the local registry does not know yet (see
  // RunResolvingCaller). Empty: such callers are refused as UNKNOWN_AGENCY.
  AgencyLookup lookup_agency;
  // How a phase resolves its caller, inside the phase's transaction: the
  // registered, active agency behind the certificate, or the refusal
  // (PERMISSION_DENIED with a reason). Empty: ResolveCaller against
  // `local_agencies`, with RunResolvingCaller around it. Set: only this is
  // asked, once per attempt, and lookup_agency is not used (identity keeps
  // the registry itself, so there is nobody to ask about an unknown
  // caller).
  std::function<absl::StatusOr<LocalAgency>(storage::Transaction&,
                                            const server::CallerIdentity&)>
      resolve_caller;
  // The person ids ("abc", not "persons/abc") a resource that names no
  // person is about, e.g. the person of case x for "cases/x/steps/y";
  // empty for a resource about nobody or unknown. Runs in a transaction of
  // `db`. Empty: such resources are about nobody unless AddPerson() says.
  std::function<absl::StatusOr<std::vector<std::string>>(
      storage::Transaction&, const std::string& resource)>
      persons_of_resource;
  // The ground on which `caller` may touch `category` of `resource` as the
  // service itself decides it, for a category the call gave no basis for:
  // e.g. OWNER for the agency that owns a case, the rules file's rule for
  // an agency that takes part in it. nullopt: the service knows none. Runs
  // in the phase's transaction, once per (resource, category). Empty: no
  // such grounds.
  std::function<absl::StatusOr<std::optional<audit::LegalBasis>>(
      storage::Transaction&, const LocalAgency& caller,
      const std::string& resource, const std::string& category)>
      basis_of_access;
};

class AuditedCall {
 public:
  using Body =
      std::function<absl::Status(storage::Transaction&, const LocalAgency&)>;

  // `target`: the resource the request names ("offers/x", "offers"), for
  // the audit record of a call that touched nothing.
  AuditedCall(const CallEnvironment& env, const server::RequestContext& rc,
              absl::string_view method, std::string target);

  AuditedCall(const AuditedCall&) = delete;
  AuditedCall& operator=(const AuditedCall&) = delete;

  absl::Status Read(const Body& body);
  absl::Status Write(const Body& body);

  // Records that the call read or wrote `categories` ("EMPLOYMENT",
  // "LANGUAGE", ...) of `person` ("persons/x") in `record` ("candidate",
  // "placements/y"). Touches of a phase that is retried or fails are
  // forgotten with it.
  void Touch(const std::string& person, const std::string& record,
             std::vector<std::string> categories);

  // Records that the call read or wrote `resource` as a whole ("persons/x",
  // "agencies/y"), with `categories` (may be empty). `reason` is written
  // on the ALLOWED record (e.g. "MATCH_ONLY": only that a match exists was
  // disclosed); empty for an ordinary access. Records are distinct by
  // (resource, categories, reason). Forgotten with a failed phase, as
  // Touch().
  void TouchResource(std::string resource, std::vector<std::string> categories,
                     std::string reason = "");

  // Appends `record` as given (its agency, purpose, outcome and reason
  // too), after the call's own records and in the order appended, written
  // with them when the call succeeds: for a record about another agency
  // than the caller (identity audits each CheckAccess decision against the
  // agency it concerns). Forgotten with a failed phase, as Touch(); a
  // failed call never writes it.
  void AppendRecord(audit::AuditRecord record);

  // Every record of the call is (also) about `person` ("persons/{p}" or the
  // bare id). Kept across phases: a call that turned out to concern a
  // person is audited as such also when a later phase fails.
  void AddPerson(absl::string_view person);

  // The ground on which the call may touch `basis.category`; written on the
  // call's ALLOWED records that touch that category — of `resource` only
  // when it is given (the ground differs per person in a list). Forgotten
  // with a failed phase, as Touch().
  void AddLegalBasis(audit::LegalBasis basis, std::string resource = "");

  // As AddLegalBasis, for the records about `person` ("persons/{p}" or the
  // bare id) only: those whose resource is the person's or whose persons
  // include them. An access decision is about one person; a call may touch
  // several.
  void AddLegalBasisFor(absl::string_view person, audit::LegalBasis basis);

  // Lotse's own services (certificate domain SERVICE) are admitted without
  // resolving: caller() is then the certificate's identity with legal
  // domain SERVICE. Other callers are resolved as usual. Call before the
  // first phase; without it a service certificate is refused like any
  // unregistered one (UNKNOWN_AGENCY).
  void admit_services() { admit_services_ = true; }

  // Changes the target (e.g. once the request is parsed).
  void set_target(std::string target) { target_ = std::move(target); }
  // The target is personal data: a call refused before it touched anything
  // is audited as access to `categories` of `person`.
  void set_person_target(const std::string& person, const std::string& record,
                         std::vector<std::string> categories);
  // The data categories of the target's record, in the order given
  // (set_person_target sets them, sorted, with the target): a call that
  // touched nothing, refused or not, is audited as access to `categories`
  // of the target.
  void set_target_categories(std::vector<std::string> categories);
  // For calls on non-personal data (an offer catalogue): a successful call
  // that touched no person writes no audit record. Failed calls still do.
  void set_audit_personal_only() { personal_only_ = true; }

  // The resolved caller (only the certificate's id and domain before a
  // phase ran).
  const LocalAgency& caller() const { return caller_; }
  const server::RequestContext& rc() const { return rc_; }

  // Ends the call (see the file comment). Returns `status`, or the audit
  // write's error when a successful call could not be audited.
  absl::Status Finish(absl::Status status);

 private:
  struct Entry {
    std::string resource;
    std::vector<std::string> categories;
    std::string reason;  // on the ALLOWED record only
    bool operator<(const Entry& o) const;
    bool operator==(const Entry& o) const;
  };
  std::vector<Entry> Entries() const;
  // Looks up the persons of the resources about to be audited that name
  // none (CallEnvironment::persons_of_resource), once per resource, and
  // the service's own grounds for their categories (basis_of_access).
  absl::Status ResolvePersons(storage::Transaction& tx);
  // The service's own grounds (basis_of_access) of the categories about to
  // be audited, once per (resource, category); OwnBasesPending: whether
  // one has not been asked yet.
  absl::Status ResolveOwnBases(storage::Transaction& tx);
  bool OwnBasesPending() const;
  // The record of `entry` with the caller's fields, persons and (when
  // `allowed`) legal bases; `chain` is where it is written.
  audit::AuditRecord RecordOf(Entry entry, bool allowed,
                              audit::Chain chain) const;
  absl::Status AppendAudits(storage::Transaction& tx, audit::Chain chain);
  absl::Status Resolve(storage::Transaction& tx);
  // Runs `attempt` (a phase) with the unknown-caller retry when the caller
  // is resolved from the local registry.
  absl::Status Attempt(const std::function<absl::Status()>& attempt);

  const CallEnvironment& env_;
  const server::RequestContext& rc_;
  std::string method_;
  std::string target_;
  std::vector<std::string> target_categories_;
  LocalAgency caller_;
  std::vector<Entry> trail_;
  std::vector<audit::AuditRecord> appended_;
  std::vector<std::string> persons_;  // AddPerson(), ids
  // AddLegalBasis() and AddLegalBasisFor(): for the records of `resource`
  // or about `person` (an id), or for all when both are empty.
  struct GivenBasis {
    std::string resource;
    std::string person;
    audit::LegalBasis basis;
  };
  std::vector<GivenBasis> bases_;
  // basis_of_access's answers, by (resource, category).
  std::map<std::pair<std::string, std::string>, audit::LegalBasis> own_bases_;
  std::set<std::pair<std::string, std::string>> own_bases_asked_;
  // Resources without a person in their name -> their person ids.
  std::map<std::string, std::vector<std::string>> resource_persons_;
  bool audited_ = false;
  bool caller_resolved_ = false;
  bool personal_only_ = false;
  bool admit_services_ = false;
};

}  // namespace lotse::agencies

#endif  // LOTSE_COMMON_AGENCIES_AUDITED_CALL_H_
