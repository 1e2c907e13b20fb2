// What a service holds as a witness of the other services' audit chains:
// the signed checkpoints (checkpoint.h) they sent it, in the table
// `audit_witness` of its own database.
//
// Table (WitnessMigrations, id "common.audit.witness.0001_init"):
//   audit_witness  id, service, chain ("changes"/"reads"), seq, hash,
//                  checkpoint time, receive time, conflicting (1 when an
//                  earlier checkpoint of the same service, chain and seq
//                  had another hash), the serialized SignedCheckpoint.
//   Unique on (service, chain, seq, hash): a checkpoint received twice is
//   kept once.
//
// What is kept, per service and chain, given the newest seq held:
//   a higher seq                 stored (kStored);
//   the same seq and hash        nothing new (kDuplicate);
//   the same seq, another hash   stored, flagged conflicting (kConflict):
//                                the chain was rewritten; this is evidence;
//   a lower seq                  not stored (kStale): a head older than one
//                                already witnessed (a truncated chain, or a
//                                replay).
// Checkpoints are verified (CheckpointVerifier) before they get here.
#ifndef LOTSE_COMMON_AUDIT_WITNESS_STORE_H_
#define LOTSE_COMMON_AUDIT_WITNESS_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "lotse/audit/v1/audit_service.pb.h"

namespace lotse::audit {

// The audit_witness table. Part of AuditMigrations(), so every service
// database that holds an audit chain can also witness.
std::vector<storage::Migration> WitnessMigrations();

enum class WitnessOutcome { kStored, kDuplicate, kConflict, kStale };

// "stored", "duplicate", "conflict", "stale".
const char* WitnessOutcomeName(WitnessOutcome outcome);

// Classifies `checkpoint` against what `tx` holds for its service and
// chain (header comment) and stores it when that says so, received at
// `receive_time`. Takes the named lock "lotse.audit.witness" until `tx`
// ends, so two deliveries of one service's checkpoints are classified one
// after the other. INVALID_ARGUMENT when the head names no chain.
absl::StatusOr<WitnessOutcome> StoreWitnessedCheckpoint(
    storage::Transaction& tx,
    const lotse::audit::v1::SignedCheckpoint& checkpoint,
    absl::Time receive_time);

// One page of ListWitnessedCheckpoints as served by `witness` (this
// service's name) from its table: the checkpoints of request.service
// (required) and request.chain (unspecified: both), newest (highest seq)
// first, conflicting ones included. page_size 0 means 100, larger than
// 1000 means 1000. INVALID_ARGUMENT (field violations) for a missing
// service, a negative page_size or a page_token not issued for this
// service and chain.
absl::StatusOr<lotse::audit::v1::ListWitnessedCheckpointsResponse>
ListWitnessedCheckpoints(
    storage::Database& db, const std::string& witness,
    const lotse::audit::v1::ListWitnessedCheckpointsRequest& request);

// A witnessed head, as the chain's own service compares it (witness.h).
struct WitnessedHead {
  std::string witness;  // the service that holds it
  int64_t seq = 0;
  std::string hash;
  bool conflicting = false;
  // When the service signed it. InfiniteFuture() when unknown: such a head
  // is never taken for one of the time a restore lost (witness.h).
  absl::Time time = absl::InfiniteFuture();
};

}  // namespace lotse::audit

#endif  // LOTSE_COMMON_AUDIT_WITNESS_STORE_H_
