// What an attacker with write access to a service's database can do to an
// audit chain (audit_log.h), for tests that show each is detected. Each
// function changes the chain's table in one transaction of its own.
#ifndef LOTSE_TESTS_COMMON_AUDIT_AUDIT_TAMPER_H_
#define LOTSE_TESTS_COMMON_AUDIT_AUDIT_TAMPER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/audit/audit_log.h"
#include "common/storage/database.h"

namespace lotse::testing {

// The chain's table: "audit_log" or "audit_read_log".
const char* AuditTable(audit::Chain chain);

// Changes the actor of the row at `seq`, leaving its hashes as they were.
absl::Status EditAuditRow(storage::Database& db, audit::Chain chain,
                          int64_t seq);
// Deletes the row at `seq`, and its person index rows as an attacker
// covering the tracks would.
absl::Status DeleteAuditRow(storage::Database& db, audit::Chain chain,
                            int64_t seq);
// Swaps the positions (seq) of the rows at `a` and `b`.
absl::Status SwapAuditRows(storage::Database& db, audit::Chain chain, int64_t a,
                           int64_t b);
// Deletes every row after `last_kept`, and their person index rows.
absl::Status TruncateAudit(storage::Database& db, audit::Chain chain,
                           int64_t last_kept);
// Rewrites the chain from `from_seq` on consistently: the actor of the row
// at `from_seq` is changed and it and every later row are appended again
// with AppendAudit (its person index rows too), so every hash is
// recomputed and the hash walk finds nothing. Needs a row at `from_seq`.
absl::Status RewriteAuditConsistently(storage::Database& db, audit::Chain chain,
                                      int64_t from_seq);

// Every row of the chain's table, every column, for RestoreAudit.
struct AuditSnapshot {
  std::vector<std::string> columns;
  std::vector<storage::Row> rows;
};
absl::StatusOr<AuditSnapshot> SnapshotAudit(storage::Database& db,
                                            audit::Chain chain);
// Replaces the table's rows with `snapshot`'s.
absl::Status RestoreAudit(storage::Database& db, audit::Chain chain,
                          const AuditSnapshot& snapshot);

}  // namespace lotse::testing

#endif  // LOTSE_TESTS_COMMON_AUDIT_AUDIT_TAMPER_H_
