// Group commit: the short read-write transaction bodies of many concurrent
// callers run in one database transaction and are committed together, so the
// fixed cost of a transaction — taking SQLite's single write lock, writing and
// syncing the WAL, PostgreSQL's commit flush — is paid once per batch instead
// of once per call.
//
// Contract, per body:
//   * Run(body) returns only after the transaction holding the body's writes
//     has committed (OK) or the body's writes were undone (an error). An OK
//     is exactly as durable as a RunInTransaction commit.
//   * Each body runs inside its own savepoint. A body that returns an error
//     has its own statements undone — also after a failed statement, e.g. a
//     unique violation — and its caller gets that error unchanged; the other
//     bodies of the batch are not affected.
//   * Bodies of one batch run one after another, in arrival order, on a
//     writer thread, and see the writes of the bodies before them. Locks
//     taken with LockNamed are held until the batch commits.
//   * Bodies must be safe to run again, as with RunInTransaction: a body that
//     meets a storage conflict (IsRetryableConflict), and every body of a
//     batch whose commit hits one, is run again on its own through
//     RunInTransaction.
//   * A body must not block on other callers of the same GroupCommitter (it
//     would wait for a batch it is holding up).
//
// Writers: one writer thread takes batches by default. SQLite has one write
// lock anyway; on PostgreSQL several writers could overlap round trips, but
// their batches take the bodies' locks in different orders and deadlock, so
// more writers are for bodies that lock little (Options::writers).
//
// Thread-safe.
#ifndef LOTSE_COMMON_STORAGE_GROUP_COMMIT_H_
#define LOTSE_COMMON_STORAGE_GROUP_COMMIT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/storage/database.h"

namespace lotse::storage {

class GroupCommitter {
 public:
  struct Options {
    // Writer threads; 0 means one. Each writer holds one pooled connection
    // while it commits a batch, so leave the pool room for readers.
    int writers = 0;
    // Most bodies per transaction; bounds how long one batch holds locks.
    int max_batch = 128;
  };

  struct Stats {
    int64_t batches = 0;      // transactions committed by the writers
    int64_t bodies = 0;       // bodies that ran in a batch (any outcome)
    int64_t rerun_alone = 0;  // bodies run again on their own
    int64_t queued = 0;       // bodies waiting for a writer now
  };

  explicit GroupCommitter(Database& db) : GroupCommitter(db, Options()) {}
  GroupCommitter(Database& db, Options options);
  // Runs every body already queued, then stops the writers. No Run() may
  // be in progress or start once destruction began.
  ~GroupCommitter();

  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Runs `body` in the next batch and waits for the outcome (see above).
  absl::Status Run(const std::function<absl::Status(Transaction&)>& body);

  Stats stats() const;

 private:
  struct Pending;

  void WriterLoop();
  void RunBatch(const std::vector<Pending*>& batch);
  // Runs each body of `batch` on its own transaction and reports it.
  void RunAlone(const std::vector<Pending*>& batch);

  Database& db_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<Pending*> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> writers_;
};

}  // namespace lotse::storage

#endif  // LOTSE_COMMON_STORAGE_GROUP_COMMIT_H_
