// The gRPC face of the identity service: lotse.identity.v1.IdentityService.
//
// Every RPC of the contract is implemented, one resource per file: the
// agency registry (agency_handlers.cc), persons (person_handlers.cc),
// search and duplicates (search_handlers.cc), agency-specific ids
// (agency_id_handlers.cc), residence status (residence_handlers.cc),
// consents (consent_handlers.cc) and CheckAccess
// (check_access_handlers.cc). This class's own file holds construction,
// the Handle() registrations and what the handler files share.
//
// Every RPC is one agencies::AuditedCall (common/agencies/audited_call.h):
//   1. the caller is resolved against identity's own registry
//      (ResolveRegistryCaller): the client certificate's identity must
//      belong to a registered, ACTIVE agency of the certificate's legal
//      domain; the handler receives it as agencies::LocalAgency;
//   2. the handler checks the caller's domain where the RPC demands one,
//      validates the request (all bad fields at once), does the work and
//      enqueues its events;
//   3. the call's audit records are written: ALLOWED ones with the work,
//      or, for a call that failed at any step, a DENIED (PERMISSION_DENIED)
//      or ERROR record with the reason code.
// Reads (and the read part of CreatePerson: the duplicate check) run in a
// kReadOnly transaction, so they never hold the database's write lock
// (SQLite has one writer); then a short write phase commits the audit
// records (and, for CreatePerson, the change). Other writes run in one
// write phase. Every write phase goes through ServiceRuntime::Write, the
// process's group committer. A read's response is returned only after its
// audit records committed, so every disclosure is on the trail. Creates
// replay a retried request_id with api::IdempotentCreate.
#ifndef LOTSE_SERVICES_IDENTITY_SERVICE_IDENTITY_SERVICE_H_
#define LOTSE_SERVICES_IDENTITY_SERVICE_IDENTITY_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/agencies/audited_call.h"
#include "common/agencies/registry.h"
#include "common/lifecycle/retention.h"
#include "common/server/request_context.h"
#include "common/server/service_main.h"
#include "common/storage/database.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/domain/agency.h"
#include "services/identity/domain/name_matching.h"
#include "services/identity/service/transparency_handlers.h"
#include "services/identity/store/key_index.h"
#include "services/identity/store/match_form_cache.h"

namespace lotse::identity {

// The registered, active agency behind `caller`, looked up in identity's
// own registry by its certificate identity (the certificate's CN, which the
// server runtime reports as caller.agency_id): the CallEnvironment's
// resolve_caller for every identity RPC. PERMISSION_DENIED with reason
// UNKNOWN_AGENCY when no agency is bound to it, LEGAL_DOMAIN_MISMATCH when
// the certificate's domain (OU) is not the registered one, AGENCY_SUSPENDED
// when the agency is suspended. Found agencies are kept in a CallerCache
// (common/agencies/registry.h) that every registry change in this process
// empties once it committed, so a suspension takes effect on the very next
// call here, and within kCallerCacheTtl on other replicas.
absl::StatusOr<agencies::LocalAgency> ResolveRegistryCaller(
    storage::Transaction& tx, const server::CallerIdentity& caller);

// The registry record as the resolved caller every handler receives.
agencies::LocalAgency ToLocalAgency(const AgencyRecord& record);

// Registers the deployment's first administering agency: id and
// certificate identity `agency_id`, domain ADMINISTRATION, so that its
// certificate (dev PKI: clients/lotse-admin) can register all others.
// Does nothing when an agency with that id exists — in particular it never
// reactivates a suspended one. Emits AgencyRegistered and audits the
// registration (agency "identity", actor "startup"). FAILED_PRECONDITION
// when another agency already holds the certificate identity.
absl::Status BootstrapAdminAgency(storage::Database& db,
                                  const std::string& agency_id);

class IdentityServiceImpl final : public server::UnaryService {
 public:
  // Serves every RPC of the contract (UnaryService: requests protobuf cannot
  // parse get field violations too).
  explicit IdentityServiceImpl(server::ServiceRuntime& runtime);
  // Stops filling the match-form cache (within a page) and waits for it.
  ~IdentityServiceImpl() override;

  // The environment of this service's AuditedCalls, shared with its
  // AuditService (common/audit/audit_service.h).
  const agencies::CallEnvironment& call_env() const { return call_env_; }

 private:
  // Handle() lines of the RPCs, grouped as the handler files.
  void RegisterAgencyRpcs();
  void RegisterPersonRpcs();
  void RegisterAccessRpcs();

  absl::Status DoRegister(const server::RequestContext& rc,
                          const v1::RegisterAgencyRequest& request,
                          v1::Agency* response);
  absl::Status DoGet(const server::RequestContext& rc,
                     const v1::GetAgencyRequest& request, v1::Agency* response);
  absl::Status DoList(const server::RequestContext& rc,
                      const v1::ListAgenciesRequest& request,
                      v1::ListAgenciesResponse* response);
  absl::Status DoUpdate(const server::RequestContext& rc,
                        const v1::UpdateAgencyRequest& request,
                        v1::Agency* response);
  // SuspendAgency (suspend = true) and ReactivateAgency.
  absl::Status DoChangeState(const server::RequestContext& rc,
                             absl::string_view method, absl::string_view name,
                             absl::string_view etag, bool suspend,
                             absl::string_view reason, v1::Agency* response);

  // --- Persons and agency ids ---
  // CreatePerson, GetPerson, UpdatePerson, ListPersons, SearchPersons,
  // FindDuplicates, MergePersons, LinkAgencyId, UnlinkAgencyId,
  // ListAgencyIds, LookupPersonByAgencyId (person_handlers.cc,
  // search_handlers.cc, agency_id_handlers.cc).
  //
  // Reading a person is decided by the access policy from the agency's
  // standing towards the person (person_access.h): CORE_IDENTITY decides
  // whether it sees the person at all, CONTACT whether it sees the contact
  // data too. An agency without standing learns from a search only that a
  // match exists, links an id only with a proof that the person is in its
  // remit, and cannot tell a person it may not see from no person
  // (docs/trust-model.md).
 public:
  // Enables the person RPCs: keeps `policy` for the access decisions and
  // builds the duplicate matcher. Call once before serving; until then the
  // person RPCs answer INTERNAL (misconfigured server). Fails only if the
  // ICU build lacks a needed transform. Duplicate scoring keeps candidates'
  // match forms in memory, up to `match_form_cache_bytes`
  // (match_form_cache.h), filled from the stored forms by a thread of its
  // own started here (one pass, until the budget is full; calls meanwhile
  // read what is not in yet from the database). With `key_index`, the blocking
  // keys are loaded into memory here (key_index.h: one scan of
  // identity_person_keys, so this takes a while on a large database and fails
  // with its errors) and duplicate candidates and search come from there;
  // without it, from point lookups on the table.
  static constexpr size_t kDefaultMatchFormCacheBytes = size_t{256} << 20;
  absl::Status EnablePersons(
      std::shared_ptr<const AccessPolicy> policy,
      size_t match_form_cache_bytes = kDefaultMatchFormCacheBytes,
      bool key_index = true);

 private:
  // OK once EnablePersons ran; else INTERNAL (misconfigured server),
  // logged.
  absl::Status RequirePersons() const;
  // AuditedCall::Finish for a person RPC, then HideAbsentPerson: an agency
  // cannot tell a person it may not read from no person.
  absl::Status FinishPersonCall(agencies::AuditedCall& call,
                                absl::Status status);

  absl::Status DoCreatePerson(const server::RequestContext& rc,
                              const v1::CreatePersonRequest& request,
                              v1::Person* response);
  absl::Status DoGetPerson(const server::RequestContext& rc,
                           const v1::GetPersonRequest& request,
                           v1::Person* response);
  absl::Status DoUpdatePerson(const server::RequestContext& rc,
                              const v1::UpdatePersonRequest& request,
                              v1::Person* response);
  absl::Status DoListPersons(const server::RequestContext& rc,
                             const v1::ListPersonsRequest& request,
                             v1::ListPersonsResponse* response);
  absl::Status DoSearchPersons(const server::RequestContext& rc,
                               const v1::SearchPersonsRequest& request,
                               v1::SearchPersonsResponse* response);
  absl::Status DoFindDuplicates(const server::RequestContext& rc,
                                const v1::FindDuplicatesRequest& request,
                                v1::FindDuplicatesResponse* response);
  absl::Status DoMergePersons(const server::RequestContext& rc,
                              const v1::MergePersonsRequest& request,
                              v1::Person* response);
  absl::Status DoLinkAgencyId(const server::RequestContext& rc,
                              const v1::LinkAgencyIdRequest& request,
                              v1::AgencyId* response);
  absl::Status DoUnlinkAgencyId(const server::RequestContext& rc,
                                const v1::UnlinkAgencyIdRequest& request,
                                v1::AgencyId* response);
  absl::Status DoListAgencyIds(const server::RequestContext& rc,
                               const v1::ListAgencyIdsRequest& request,
                               v1::ListAgencyIdsResponse* response);
  absl::Status DoLookupPersonByAgencyId(
      const server::RequestContext& rc,
      const v1::LookupPersonByAgencyIdRequest& request, v1::Person* response);

  // Set once by EnablePersons before serving; read-only afterwards.
  std::shared_ptr<const AccessPolicy> access_policy_;
  std::shared_ptr<const DuplicateMatcher> matcher_;
  std::unique_ptr<MatchFormCache> match_forms_;  // uses *matcher_
  std::unique_ptr<KeyIndex> key_index_;          // null: SQL lookups
  // Fills match_forms_ after start-up (MatchFormCache::Warm); stopped and
  // joined by the destructor.
  std::atomic<bool> stop_warming_{false};
  std::thread warming_;
  // --- end persons ---

  // --- Residence status, consents, CheckAccess ---
  // RecordResidenceStatus, GetCurrentResidenceStatus, ListResidenceStatuses,
  // RecordConsent, GetConsent, WithdrawConsent, ListConsents, CheckAccess
  // (residence_handlers.cc, consent_handlers.cc, check_access_handlers.cc).
  //
  // Service callers: CheckAccess, the two residence status reads, GetPerson
  // and GetAgency also admit Lotse's own services (client certificate
  // OU=SERVICE), which are not in the agency registry
  // (AuditedCall::admit_services); every other RPC refuses them
  // (UNKNOWN_AGENCY). Services are not subject to per-domain rules; they
  // must ask CheckAccess before they show data to an agency.
 public:
  // Enables these RPCs with the deployment's access rules (the same policy
  // EnablePersons gets). Reuses the duplicate matcher if EnablePersons ran
  // first, else builds one (person lookups need it). Call once before
  // serving; until then these RPCs answer INTERNAL.
  absl::Status EnableAccess(std::shared_ptr<const AccessPolicy> policy);

 private:
  // OK once EnableAccess ran; else INTERNAL (misconfigured server).
  absl::Status RequireAccess() const;
  // AuditedCall::Finish for a residence, consent or CheckAccess call, then
  // HideAbsentPerson for `category`, the call's (first) category.
  absl::Status FinishAccessCall(agencies::AuditedCall& call,
                                DataCategory category, absl::Status status);

  absl::Status DoRecordResidence(
      const server::RequestContext& rc,
      const v1::RecordResidenceStatusRequest& request,
      v1::ResidenceStatus* response);
  absl::Status DoGetCurrentResidence(
      const server::RequestContext& rc,
      const v1::GetCurrentResidenceStatusRequest& request,
      v1::ResidenceStatus* response);
  absl::Status DoListResidence(const server::RequestContext& rc,
                               const v1::ListResidenceStatusesRequest& request,
                               v1::ListResidenceStatusesResponse* response);
  absl::Status DoRecordConsent(const server::RequestContext& rc,
                               const v1::RecordConsentRequest& request,
                               v1::Consent* response);
  absl::Status DoGetConsent(const server::RequestContext& rc,
                            const v1::GetConsentRequest& request,
                            v1::Consent* response);
  absl::Status DoWithdrawConsent(const server::RequestContext& rc,
                                 const v1::WithdrawConsentRequest& request,
                                 v1::Consent* response);
  absl::Status DoListConsents(const server::RequestContext& rc,
                              const v1::ListConsentsRequest& request,
                              v1::ListConsentsResponse* response);
  absl::Status DoCheckAccess(const server::RequestContext& rc,
                             const v1::CheckAccessRequest& request,
                             v1::CheckAccessResponse* response);

  // Set once by EnableAccess before serving; read-only afterwards.
  std::shared_ptr<const AccessPolicy> access_rules_;
  std::shared_ptr<const DuplicateMatcher> access_matcher_;
  // --- end access ---

  // --- Transparency report ---
  // GetTransparencyReport (transparency_handlers.h).
 public:
  // Enables GetTransparencyReport, asking `peers` (identity's own chains
  // among them) for the audit records. Call after EnablePersons or
  // EnableAccess; until then the RPC answers INTERNAL.
  absl::Status EnableTransparency(std::vector<AuditPeer> peers);

 private:
  std::unique_ptr<const TransparencyReports> transparency_;
  // --- end transparency ---

  // --- Data lifecycle ---
  // PlaceLegalHold, ReleaseLegalHold, ListLegalHolds, ErasePerson,
  // GetErasureStatus, ListPersonRevisions (lifecycle_handlers.cc; the
  // revisions themselves are kept by UpdatePerson).
  //
  // Holds and erasures are decided by the person's case owner (a KOMMUNE
  // agency that owns a case of the person, as identity knows from the
  // cases service's events) and by DATA_PROTECTION agencies; other domains
  // are refused before the person is looked at, so they learn nothing
  // about it. Each hold is stored with its reason in identity's own table
  // and, in the same transaction, in the hold table every service keeps
  // (lifecycle::ApplyHold), so identity's own purge and erasure honour it.
  // An erasure deletes, in one transaction, everything identity holds
  // about the person (and every person merged into it) except what the
  // retention rules keep (consents, as proof; see KeepConsentsAsProof),
  // keeps an erasure record of ids, reason, times and per-service state,
  // shreds the person's data key and emits PersonErased.
 public:
  // Sets what the lifecycle RPCs need: `services`, the services expected to
  // report an erasure (identity's event destinations), and the retention
  // rules (which must outlive the service; null: no rules, nothing kept).
  // Call before serving; without it erasures expect no other service and
  // keep nothing.
  void EnableLifecycle(std::vector<std::string> services,
                       const lifecycle::RetentionRules* rules);

 private:
  void RegisterLifecycleRpcs();
  absl::Status DoPlaceLegalHold(const server::RequestContext& rc,
                                const v1::PlaceLegalHoldRequest& request,
                                v1::LegalHold* response);
  absl::Status DoReleaseLegalHold(const server::RequestContext& rc,
                                  const v1::ReleaseLegalHoldRequest& request,
                                  v1::LegalHold* response);
  absl::Status DoListLegalHolds(const server::RequestContext& rc,
                                const v1::ListLegalHoldsRequest& request,
                                v1::ListLegalHoldsResponse* response);
  absl::Status DoErasePerson(const server::RequestContext& rc,
                             const v1::ErasePersonRequest& request,
                             v1::Erasure* response);
  absl::Status DoGetErasureStatus(const server::RequestContext& rc,
                                  const v1::GetErasureStatusRequest& request,
                                  v1::Erasure* response);
  absl::Status DoListPersonRevisions(
      const server::RequestContext& rc,
      const v1::ListPersonRevisionsRequest& request,
      v1::ListPersonRevisionsResponse* response);

  std::vector<std::string> erasure_services_;
  const lifecycle::RetentionRules* retention_ = nullptr;
  // --- end lifecycle ---

  server::ServiceRuntime& runtime_;
  // What every AuditedCall of this service needs: identity's own registry
  // resolves the callers, runtime_.Write runs the write phases.
  agencies::CallEnvironment call_env_;
};

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_SERVICE_IDENTITY_SERVICE_H_
