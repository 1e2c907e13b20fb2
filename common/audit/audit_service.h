// AuditServiceImpl: lotse.audit.v1.AuditService
// (proto/lotse/audit/v1/audit_service.proto), the same implementation in
// identity, cases, courses and placement, each about its own two audit
// chains (audit_log.h).
//
// Every RPC goes through the pipeline of every other Lotse RPC
// (server::UnaryService, agencies::AuditedCall with the service's own
// CallEnvironment), so the caller is resolved as on the service's other
// RPCs and every call to this service is itself audited, in the read
// chain: ListAuditRecords with a person filter as access to
// "persons/{p}/auditRecords" (so the call shows in that person's records),
// the others as access to "auditChains". Callers: agencies of legal domain
// DATA_PROTECTION and Lotse's own services (service certificates,
// admit_services()); any other registered agency is PERMISSION_DENIED with
// reason NOT_DATA_PROTECTION.
//
// ListAuditRecords with a person filter also finds the records of every id
// merged into that person (transitively), as far as this service knows the
// merges (AuditServiceOptions::merged_ids; MergedIdsFromTable reads the
// service's own merge table). Its page token is bound to the filter (and
// the person ids resolved when the first page was asked for are resolved
// again for each page, so a merge applied meanwhile widens later pages).
//
// VerifyAuditChain walks each chain with audit::VerifyAuditChain and then,
// when a WitnessSource is given, lets it compare the chain with the
// checkpoints the other services witnessed (without one, it lists the
// chain's restore records, explaining nothing). ListWitnessedCheckpoints is
// answered by the WitnessSource; without one it is UNIMPLEMENTED.
//
// Thread-safe: RPCs run concurrently on the worker pool.
#ifndef LOTSE_COMMON_AUDIT_AUDIT_SERVICE_H_
#define LOTSE_COMMON_AUDIT_AUDIT_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/agencies/audited_call.h"
#include "common/audit/audit_log.h"
#include "common/server/handler.h"
#include "common/server/request_context.h"
#include "common/server/service_main.h"
#include "common/storage/database.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"

namespace lotse::audit {

// The person ids merged directly into `person_id` (bare ids), read in `tx`
// (a transaction of the service database).
using MergedIdsFn = std::function<absl::StatusOr<std::vector<std::string>>(
    storage::Transaction& tx, const std::string& person_id)>;

// A MergedIdsFn over a table of the service that maps merged ids to their
// survivor: SELECT <merged_column> FROM <table> WHERE <survivor_column> =
// person. The names are spliced into SQL: pass constants only. The
// survivor column should be indexed. `value_prefix`: the table holds the
// ids as "<value_prefix><id>" (e.g. "persons/" for resource names).
MergedIdsFn MergedIdsFromTable(std::string table, std::string merged_column,
                               std::string survivor_column,
                               std::string value_prefix = "");

// Where VerifyAuditChain learns what the other services witnessed of this
// service's chains, and where ListWitnessedCheckpoints gets its answer
// (the witnessed-checkpoint part of the contract). Implementations must be
// thread-safe.
class WitnessSource {
 public:
  virtual ~WitnessSource() = default;

  // Called after the local walk of `chain` filled `verification` (chain,
  // intact, records_checked, first_bad_seq, problem, head). Compares the
  // chain in `dbs` with the checkpoints of it the other services hold,
  // waiting at most `timeout` for them: adds to checkpoints_checked and
  // unreachable_witnesses, sets restores (the chain's restore records, each
  // with the checkpoints of the time it lost, witness.h) and, when a
  // checkpoint is neither matched (a different hash at its seq, or the
  // chain does not reach it) nor explained by a restore, sets intact to
  // false with first_bad_seq and problem, keeping the earlier break when
  // the walk found one before. A non-OK status means the comparison could
  // not run at all (the call fails with it).
  virtual absl::Status CheckChain(const AuditDatabases& dbs, Chain chain,
                                  absl::Duration timeout,
                                  v1::ChainVerification* verification) = 0;

  // Answers ListWitnessedCheckpoints; the caller was already admitted.
  virtual absl::Status ListWitnessedCheckpoints(
      const v1::ListWitnessedCheckpointsRequest& request,
      v1::ListWitnessedCheckpointsResponse* response) = 0;
};

struct AuditServiceOptions {
  // "identity", "cases", "courses" or "placement": AuditRecord.service.
  std::string service_name;
  // The service's call environment (its registry, database, read chain);
  // copied, with the operation prefix set to lotse.audit.v1.AuditService.
  agencies::CallEnvironment env;
  // Ids merged into a person; empty: the service knows of no merges.
  MergedIdsFn merged_ids;
  // Null: no witnessed checkpoints (see the file comment).
  std::shared_ptr<WitnessSource> witnesses;
};

// At most this many person ids are searched for one person filter (the
// person and the ids merged into it); more is FAILED_PRECONDITION.
inline constexpr int kMaxResolvedPersons = 100;

class AuditServiceImpl final : public server::UnaryService {
 public:
  AuditServiceImpl(const server::ServiceRuntime& runtime,
                   AuditServiceOptions options);

  using Rc = server::RequestContext;
  absl::Status DoGetAuditHead(const Rc& rc, const v1::GetAuditHeadRequest& r,
                              v1::GetAuditHeadResponse* out);
  absl::Status DoVerifyAuditChain(const Rc& rc,
                                  const v1::VerifyAuditChainRequest& r,
                                  v1::VerifyAuditChainResponse* out);
  absl::Status DoListAuditRecords(const Rc& rc,
                                  const v1::ListAuditRecordsRequest& r,
                                  v1::ListAuditRecordsResponse* out);
  absl::Status DoListWitnessedCheckpoints(
      const Rc& rc, const v1::ListWitnessedCheckpointsRequest& r,
      v1::ListWitnessedCheckpointsResponse* out);

 private:
  // Resolves the caller and admits it (see the file comment); then runs
  // `body` in the same read-only transaction.
  absl::Status Admit(agencies::AuditedCall& call,
                     const agencies::AuditedCall::Body& body);
  // `person_id` and every id merged into it, breadth first.
  absl::StatusOr<std::vector<std::string>> ResolvePersons(
      storage::Transaction& tx, const std::string& person_id) const;

  const AuditServiceOptions options_;
  const AuditDatabases dbs_;
};

// The service for `runtime` with the call environment `env` of the
// service's other RPCs: what each service's main adds to its services.
std::unique_ptr<AuditServiceImpl> MakeAuditService(
    const server::ServiceRuntime& runtime, std::string service_name,
    const agencies::CallEnvironment& env, MergedIdsFn merged_ids,
    std::shared_ptr<WitnessSource> witnesses = nullptr);

}  // namespace lotse::audit

#endif  // LOTSE_COMMON_AUDIT_AUDIT_SERVICE_H_
