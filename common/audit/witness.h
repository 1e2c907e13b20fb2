// The check that a service's audit chain still extends every head the
// other services witnessed (checkpoint.h, witness_store.h), combined with
// the hash walk of VerifyAuditChain (audit_log.h).
//
// The hash walk alone finds an edited, deleted, inserted or reordered row
// exactly, but neither a truncated tail nor a chain rewritten consistently
// (every hash recomputed). The witnessed heads find both: the local row at
// each witnessed seq must exist and carry the witnessed hash.
//
// What first_bad_seq names (its precision):
// - the hash walk broke: the walk's first bad seq, exact;
// - else a witnessed seq lies past the local head: truncated, the first
//   missing seq (local head + 1), exact;
// - else a witnessed hash differs (a consistent rewrite): one more than
//   the highest witnessed seq below it whose hash still matches (0 when
//   none). Since every hash covers all rows before it, the rows up to that
//   seq are proven unchanged and the first changed row lies between
//   first_bad_seq and the lowest differing witnessed seq, both named in
//   `problem`. Exact when a checkpoint was witnessed just before the first
//   changed row — in particular when the whole chain was rewritten
//   (first_bad_seq 1).
//
// Restores. A restore from a backup appends a restore record (operation
// kRestoreOperation, audit_log.h) right after the rows the backup held;
// the rows written between the backup and the restore (the lost time) are
// gone. A checkpoint of the lost time that a witness still holds has a seq
// at or after the restore record and the hash of the lost chain, so it
// differs from the local row at its seq or lies past the local head. Such
// a witnessed head (seq N, signed at T) is explained by a restore when the
// chain holds a restore record with seq <= N written after T: the
// checkpoint was signed before that restore, so it is of the time the
// restore lost. It is counted with the lowest such restore record and is
// no problem. Every other unmatched head stays one as above: a head below
// every restore record (the backup held that row, which must still match),
// or one signed after every restore record at or below its seq (a chain
// rewritten after its last restore is found as without one). A restore
// record dated after a witnessed checkpoint that matches the chain at or
// after the record's seq (so was signed with the record already in the
// chain) cannot be what it says and explains nothing; a restore record
// dated into the future therefore stops covering anything as soon as one
// checkpoint of the chain after it is witnessed. first_bad_seq
// and problem speak of the unexplained heads only; a head explained by a
// restore proves nothing about the rows below it. The hash walk treats a
// restore record as any other row.
#ifndef LOTSE_COMMON_AUDIT_WITNESS_H_
#define LOTSE_COMMON_AUDIT_WITNESS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "common/audit/checkpoint.h"
#include "common/audit/witness_store.h"
#include "common/storage/database.h"
#include "grpcpp/security/credentials.h"
#include "lotse/audit/v1/audit_service.pb.h"

namespace lotse::audit {

// A restore record of a chain and the witnessed heads of the time it lost
// that it explains (header comment).
struct ExplainedRestore {
  RestoreRecord record;
  int64_t lost_checkpoints = 0;
};

// The comparison of a chain with witnessed heads alone.
struct WitnessCheck {
  // True when every witnessed head is matched or explained by a restore.
  bool intact = true;
  // See the header comment; 0 when intact.
  int64_t first_bad_seq = 0;
  // Empty when intact, else "truncated: ..." or "differs from checkpoint
  // witnessed by <witness>: ..." about the lowest unexplained head.
  std::string problem;
  int64_t checkpoints_checked = 0;
  // Every restore record of the chain, lowest seq first, each with the
  // witnessed heads it explains.
  std::vector<ExplainedRestore> restores;
};

// Compares `chain` in `db` (the database that holds that chain) with
// `heads`, taking the chain's restore records into account (header
// comment). Heads at seq 0 (an empty chain) are trivially extended. A
// non-OK status means the check could not run (database error).
absl::StatusOr<WitnessCheck> CheckWitnessedHeads(
    storage::Database& db, Chain chain,
    const std::vector<WitnessedHead>& heads);

// The result of VerifyAuditChain for one chain: `walk` (the hash walk's
// report) combined with `witnessed` as the header comment says, with
// witnessed.restores as ChainVerification.restores. `unreachable` names
// the witnesses that did not answer.
lotse::audit::v1::ChainVerification CombineChecks(
    const std::string& service, Chain chain, const VerifyReport& walk,
    const WitnessCheck& witnessed, const std::vector<std::string>& unreachable);

// Adds `restores` to `verification` as ChainVerification.restores.
void AddRestores(const std::vector<ExplainedRestore>& restores,
                 lotse::audit::v1::ChainVerification* verification);

// Where a service's witnesses answer (their AuditService): the other
// services, by name and gRPC address (the --event_destinations entries).
struct WitnessTarget {
  std::string name;
  std::string address;
};

// What the witnesses hold of one service's chain.
struct FetchedHeads {
  std::vector<WitnessedHead> heads;
  // Witnesses that did not answer every page before the deadline, or
  // answered with an error; their heads are left out.
  std::vector<std::string> unreachable;
  // Checkpoints a witness returned that are not `service`'s or do not
  // verify (CheckpointVerifier); left out.
  int64_t invalid = 0;
};

// Asks every target's ListWitnessedCheckpoints for `service`'s checkpoints
// of `chain`, all pages, in parallel, each call with `deadline`, calling
// with `credentials` (the service's client certificate) and the metadata
// actor `service`, purpose "audit-verification". `verifier` (may be null)
// must accept `service`'s own checkpoints; with it, checkpoints that do not
// verify are left out, so a witness cannot fake a mismatch.
FetchedHeads FetchWitnessedHeads(
    const std::string& service, Chain chain,
    const std::vector<WitnessTarget>& targets,
    std::shared_ptr<grpc::ChannelCredentials> credentials, absl::Time deadline,
    const CheckpointVerifier* verifier);

// The witness side of one service's AuditService: VerifyAuditChain with the
// witnessed heads, and ListWitnessedCheckpoints from its own table.
// Thread-safe.
class ServiceWitnesses {
 public:
  // `db` holds the change chain and audit_witness, `read_audit_db` the read
  // chain (null: `db`); both must outlive this. `verifier` (may be null)
  // checks what witnesses return (it must accept `service`).
  ServiceWitnesses(std::string service, storage::Database& db,
                   storage::Database* read_audit_db,
                   std::vector<WitnessTarget> targets,
                   std::shared_ptr<grpc::ChannelCredentials> credentials,
                   std::unique_ptr<CheckpointVerifier> verifier);

  // Walks `chain` and checks it against what the witnesses hold, asked with
  // `deadline`.
  absl::StatusOr<lotse::audit::v1::ChainVerification> VerifyChain(
      Chain chain, absl::Time deadline) const;

  // Adds the witnessed heads to a verification whose hash walk already
  // ran (`verification` has chain, intact, records_checked, first_bad_seq,
  // problem and head from it): asks the witnesses with `deadline`, adds to
  // checkpoints_checked and unreachable_witnesses, sets restores, and when
  // the walk found the chain intact but a witnessed head is neither matched
  // nor explained by a restore, sets intact, first_bad_seq and problem as
  // the header comment says (a break the walk found stays, with the
  // witnesses' finding appended to problem).
  // `chain_db` holds `chain`. Non-OK only when the check could not run.
  absl::Status CheckChain(
      storage::Database& chain_db, Chain chain, absl::Time deadline,
      lotse::audit::v1::ChainVerification* verification) const;

  // ListWitnessedCheckpoints of this service as a witness (witness_store.h).
  absl::StatusOr<lotse::audit::v1::ListWitnessedCheckpointsResponse>
  ListWitnessed(
      const lotse::audit::v1::ListWitnessedCheckpointsRequest& request) const;

 private:
  const std::string service_;
  storage::Database& db_;
  storage::Database* const read_audit_db_;
  const std::vector<WitnessTarget> targets_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  const std::unique_ptr<CheckpointVerifier> verifier_;
};

}  // namespace lotse::audit

#endif  // LOTSE_COMMON_AUDIT_WITNESS_H_
