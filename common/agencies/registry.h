// The local agency registry: the copy of identity's agency registry that
// every other service keeps, fed by identity's AgencyRegistered /
// AgencyUpdated / AgencySuspended / AgencyReactivated events (DESIGN.md
// section 3: services never read each other's tables). A service resolves
// its callers against it on every call, without a synchronous call to
// identity — except for a caller it has not heard of: its registration may
// still be on its way, so the service asks identity before refusing
// (RunResolvingCaller).
//
// The table is `local_agencies`; a service adds RegistryMigration() to its
// migration list once. Events may arrive out of order: a row is replaced
// only by an event at least as new (Agency.update_time).
//
// Resolving a caller reads the registry on every call, so ResolveCaller
// keeps the agencies it found in a process-wide CallerCache (below):
// UpsertAgency (and so ApplyAgencyEvent and LearnUnknownCaller) empties it
// when its transaction ends, and until then the cache is bypassed, so a
// change applied in this process is seen by the next call. Replicas sharing
// one PostgreSQL database do not see each other's changes this way: there
// an entry is believed for at most kCallerCacheTtl, the longest a suspended
// agency is still admitted by a replica that did not apply the suspension.
#ifndef LOTSE_COMMON_AGENCIES_REGISTRY_H_
#define LOTSE_COMMON_AGENCIES_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/server/request_context.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "google/protobuf/any.pb.h"
#include "lotse/identity/v1/agency.pb.h"

namespace lotse::agencies {

// The legal domain of the deployment's data-protection role, which may
// call every service's AuditService (audit/audit_service.h).
inline constexpr char kDataProtectionDomain[] = "DATA_PROTECTION";

struct LocalAgency {
  std::string id;                    // "jobcenter-koeln"
  std::string legal_domain;          // "JOBCENTER" (enum name, no prefix)
  std::string municipality_code;     // AGS, may be empty
  std::string certificate_identity;  // as bound into the certificate
  bool suspended = false;
  int64_t update_us = 0;  // Agency.update_time, Unix microseconds

  // "agencies/{id}".
  std::string name() const { return "agencies/" + id; }
};

// How long a cached agency record is believed without reading the
// registry again: bounds how long a change made through another process
// (another replica on the same PostgreSQL database) goes unnoticed.
inline constexpr absl::Duration kCallerCacheTtl = absl::Seconds(3);

// The agencies found by certificate identity, kept in memory so that
// resolving a known caller reads no table. Only found agencies are kept
// (an unknown caller is looked up every time, so its registration counts as
// soon as it is stored), each for `ttl`, at most kMaxEntries of them.
//
// A transaction that changes the registry calls InvalidateWith(tx) before
// or after its write. From then until the transaction has ended — committed
// (after the commit is durable), rolled back, or the savepoint holding the
// write undone — Find() neither uses nor fills the cache, and when it ends
// the cache is emptied. So no Find() that starts after such a change
// committed returns what was there before, and no Find() keeps a record
// that was never committed. This relies on Transaction dropping its OnCommit
// hooks when it ends in any way (storage/database.h).
//
// A Find() must read the registry in a transaction whose snapshot is not
// older than the call of Find() (the first statement of a SQLite
// transaction, or any statement at PostgreSQL's READ COMMITTED), as
// ResolveCaller at the start of every phase does.
//
// Thread-safe.
class CallerCache {
 public:
  static constexpr size_t kMaxEntries = 4096;

  using Loader = std::function<absl::StatusOr<std::optional<LocalAgency>>()>;

  explicit CallerCache(absl::Duration ttl = kCallerCacheTtl,
                       std::function<absl::Time()> now = absl::Now)
      : ttl_(ttl), now_(std::move(now)) {}

  CallerCache(const CallerCache&) = delete;
  CallerCache& operator=(const CallerCache&) = delete;

  // The agency whose certificate identity is `certificate_identity`: the
  // cached one while it is fresh, else what `load` (a read of the registry)
  // returns, which is then cached when it found one. Errors of `load` are
  // returned unchanged.
  absl::StatusOr<std::optional<LocalAgency>> Find(
      absl::string_view certificate_identity, const Loader& load);

  // `tx` changes (or may change) the registry: see the class comment.
  void InvalidateWith(storage::Transaction& tx);

  // Empties the cache now.
  void Clear();

  // Lookups answered from memory / by `load` since construction.
  struct Stats {
    int64_t hits = 0;
    int64_t loads = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    LocalAgency agency;
    absl::Time expires;
  };
  // Ends one change begun by InvalidateWith.
  void EndChange();

  const absl::Duration ttl_;
  const std::function<absl::Time()> now_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Changes begun and not yet ended; the cache is bypassed while non-zero.
  int changing_ ABSL_GUARDED_BY(mu_) = 0;
  // Advanced when a change ends, so a Find() that read the registry while
  // a change began and ended does not keep what it read.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

// The cache ResolveCaller and UpsertAgency use: one per process, for the
// local registry of the process's database. A process holding several
// databases (tests) shares it between them; every change to any of them
// empties it.
CallerCache& LocalCallerCache();

// The migration that creates `local_agencies`. Its id is fixed
// ("common.agencies.0001_init"), so it runs once per database.
storage::Migration RegistryMigration();

// "LEGAL_DOMAIN_JOBCENTER" -> "JOBCENTER".
std::string DomainName(type::v1::LegalDomain domain);

// Stores `agency` unless the stored row is newer (update_us). An empty
// certificate identity means the agency id itself (the dev PKI's
// convention). Empties LocalCallerCache() when `tx` ends.
absl::Status UpsertAgency(storage::Transaction& tx, const LocalAgency& agency);
absl::Status UpsertAgency(storage::Transaction& tx,
                          const identity::v1::Agency& agency);

// Applies `payload` when it is one of identity's Agency* events and returns
// true; returns false (and changes nothing) for any other payload.
absl::StatusOr<bool> ApplyAgencyEvent(storage::Transaction& tx,
                                      const google::protobuf::Any& payload);

absl::StatusOr<std::optional<LocalAgency>> ReadAgency(storage::Transaction& tx,
                                                      absl::string_view id);

// The agency whose certificate identity is `certificate_identity`, read
// from the table (no cache).
absl::StatusOr<std::optional<LocalAgency>> FindAgencyByCertificate(
    storage::Transaction& tx, absl::string_view certificate_identity);

// Active agencies of `legal_domain` ("AUSLAENDERBEHOERDE") serving
// `municipality_code` (any municipality when empty), ordered by id.
absl::StatusOr<std::vector<LocalAgency>> ListActiveAgencies(
    storage::Transaction& tx, absl::string_view legal_domain,
    absl::string_view municipality_code);

// The registered, active agency behind a verified caller.
// PERMISSION_DENIED with reason UNKNOWN_AGENCY (no agency has the
// certificate's identity), LEGAL_DOMAIN_MISMATCH (the certificate's domain
// is not the registered one) or AGENCY_SUSPENDED. The agency record comes
// from LocalCallerCache() when it holds it (see the file comment), the
// checks are made on every call.
absl::StatusOr<LocalAgency> ResolveCaller(storage::Transaction& tx,
                                          const server::CallerIdentity& caller);

// Identity's answer about one agency ("agencies/{id}"), by `deadline`:
// clients::IdentityClient::GetAgency. NOT_FOUND when identity does not know
// it; UNIMPLEMENTED when this source cannot tell (test fakes).
using AgencyLookup = std::function<absl::StatusOr<identity::v1::Agency>(
    absl::string_view agency, absl::Time deadline)>;

// Called outside any transaction with `refusal`, a ResolveCaller error for
// `caller`. When it is UNKNOWN_AGENCY, asks `lookup` about the agency the
// certificate names (by `deadline`) and stores identity's answer in the
// local registry, as the AgencyRegistered event will (an event that is
// older changes nothing). Returns:
//   OK          identity knows the agency under this certificate: resolve
//               the caller again;
//   `refusal`   identity does not know it either, or knows it under
//               another certificate identity (a rotated certificate: it is
//               accepted once the AgencyUpdated event has arrived); also for
//               any other refusal, without `lookup`, or when `lookup` is
//               UNIMPLEMENTED;
//   UNAVAILABLE with reason AGENCY_REGISTRY_UNAVAILABLE when identity gave
//               no answer in time: a retryable error, never
//               PERMISSION_DENIED for an agency merely not heard of yet.
absl::Status LearnUnknownCaller(storage::Database& db,
                                const AgencyLookup& lookup,
                                const server::CallerIdentity& caller,
                                absl::Time deadline, absl::Status refusal);

// For a refusal NOT_FOUND with reason AGENCY_NOT_FOUND of an agency a
// request names (`agency`, "agencies/{id}", e.g. the agency a step is
// referred to) that the local registry has not heard of yet: asks `lookup`
// (by `deadline`) and stores identity's answer in the local registry, as
// the AgencyRegistered event will. Returns OK when identity knows the
// agency (run the request again); `refusal` when it does not, without
// `lookup`, when `lookup` is UNIMPLEMENTED, or for any other refusal;
// UNAVAILABLE with reason AGENCY_REGISTRY_UNAVAILABLE when identity gave no
// answer in time.
absl::Status LearnNamedAgency(storage::Database& db, const AgencyLookup& lookup,
                              absl::string_view agency, absl::Time deadline,
                              absl::Status refusal);

// Runs `attempt` — a transaction that resolves the caller first
// (ResolveCaller) — and, when that refuses the caller as UNKNOWN_AGENCY,
// LearnUnknownCaller with the call's deadline and `attempt` once more if the
// agency was learned. The call's answer is the last one. An unknown
// caller's call thus costs one round trip to identity more, a known
// caller's nothing.
absl::Status RunResolvingCaller(storage::Database& db,
                                const AgencyLookup& lookup,
                                const server::RequestContext& rc,
                                const std::function<absl::Status()>& attempt);

}  // namespace lotse::agencies

#endif  // LOTSE_COMMON_AGENCIES_REGISTRY_H_
