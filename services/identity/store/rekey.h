// Re-deriving the stored blocking keys of persons when the key rules change.
//
// Lookups derive their keys under the rules of the running binary
// (DuplicateMatcher::kBlockingKeyVersion); keys stored under other rules do
// not meet them, so a person whose keys are stale is silently never a
// duplicate candidate nor a search hit. Each row of identity_persons
// therefore records in key_rules the rules its keys follow (person_store.h),
// and the identity service calls RekeyStaleKeys at start-up, before it
// builds its key index and before it serves, to bring every stale row to
// the current rules.
//
// Why a column per person rather than one row naming the version of the
// whole table:
//   - the record cannot disagree with the keys: every writer of keys
//     (CreatePerson, UpdatePerson, the bench loader, an import through
//     PersonStore) records their rules in the same statement, and rows that
//     a release without the column writes (during a rolling update) read as
//     0, "unknown", and are re-keyed at the next start. A table-wide version
//     would have to be kept right by every such writer separately.
//   - resuming needs no cursor: a batch takes rows that are still stale, so
//     a crash between batches loses nothing, and the next start continues
//     with what is left. Replicas starting at once work on the same rows
//     without undoing each other (RekeyRows is conditional on each row).
//   - the cost is a BIGINT and an index entry per person; when nothing is
//     stale the start-up check is two index probes.
//
// Batches: a read-only transaction reads up to `batch_size` stale rows; each
// live person's form under the current rules is decoded from its
// match_form when that is of the current format (no ICU; the keys of a form
// follow the rules of the binary that decodes it), else prepared from the
// stored record with the mapping the store uses (ToMatchRecord), and then
// written back as its new match_form. One read-write transaction per batch
// then writes the keys of all of them (PersonStore::RekeyRows): a person's old
// keys are deleted and its new ones inserted in that transaction, so no
// reader ever finds a person without keys, whatever moment a crash picks.
// ICU runs outside the write transaction, which stays short, and the writes
// take a few statements per 100 persons, not per person: on PostgreSQL
// every statement is a round trip.
//
// Both backends run the same SQL. On PostgreSQL the batch's key stamp
// serialises it with other writers of keys, as every CreatePerson does.
#ifndef LOTSE_SERVICES_IDENTITY_STORE_REKEY_H_
#define LOTSE_SERVICES_IDENTITY_STORE_REKEY_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "services/identity/domain/name_matching.h"

namespace lotse::identity {

// Rows per batch of RekeyStaleKeys: one read and one write transaction each.
// At about 0.1 ms a person, a write transaction holds the write lock for
// well under a second.
inline constexpr int kRekeyBatchSize = 5000;

struct RekeyBatchResult {
  int64_t rows = 0;     // rows brought to the current rules
  int64_t persons = 0;  // of them live persons whose keys were rewritten
  // Rows read but left alone because they changed after the read (see
  // PersonStore::RekeyRows); a later batch reads them again if still stale.
  int64_t skipped = 0;
  // True when the read found no stale row: nothing is left to do.
  bool done = false;
};

// One batch: reads at most `batch_size` stale rows and brings them to the
// current rules in one transaction. DATA_LOSS when a live person's stored
// record does not parse; errors of the database otherwise. A failed batch
// writes nothing.
absl::StatusOr<RekeyBatchResult> RekeyBatch(storage::Database& db,
                                            const DuplicateMatcher& matcher,
                                            int batch_size = kRekeyBatchSize);

struct RekeyResult {
  int64_t stale = 0;    // stale rows counted before the first batch
  int64_t rows = 0;     // rows brought to the current rules
  int64_t persons = 0;  // of them live persons whose keys were rewritten
  int64_t batches = 0;  // batches that wrote (0: nothing was stale)
  absl::Duration elapsed;
};

// Runs batches until no stale row is left. When nothing is stale it costs
// one read transaction and writes nothing. Logs, without personal data, the
// count when it starts, progress at most every 10 seconds, and the totals
// when it ends. An error leaves the batches committed before it in place; a
// later call continues with the rest.
absl::StatusOr<RekeyResult> RekeyStaleKeys(storage::Database& db,
                                           const DuplicateMatcher& matcher,
                                           int batch_size = kRekeyBatchSize);

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_STORE_REKEY_H_
