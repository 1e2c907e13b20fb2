// The purge job: erases what retention rules (retention.h) say is due, in
// every service, in bounded batches so that it never stalls calls.
//
// A service describes each kind of record it owns as a PurgeTask; the job
// runs every --purge_interval and, for each task whose kind has a rule,
// calls it with the rule's cutoff until it reports no more due records.
// Each batch is one short write transaction that also appends one audit
// record to the change chain (operation "lotse.lifecycle/Purge", resource
// the kind, e.g. "retention/course-result"; agency the service itself,
// "services/{service}"; the persons whose records it purged; legal basis
// SERVICE for the kind's category; purpose "retention"), so a purge is
// traced like any other change and commits or rolls back with its trail.
// Between batches the job pauses (PurgeOptions::pause), letting waiting
// calls through.
//
// Records an active legal hold covers (holds.h) are skipped and counted as
// held. The kind "audit-record" is built in: the job prunes both audit
// chains of the service (audit_log.h, PruneAuditChain) when the file has a
// rule for it, each only up to the first record about a person under an
// active hold (a chain can only lose a prefix), and audits each pruned
// batch in the change chain afterwards, in a transaction of its own.
//
// Where several replicas share a database, one of them purges at a time
// (Database::TryLockForProcess "lotse.purge"); the others skip the run.
//
// Metrics (registered on the registry given): lotse_purge_rows_total{kind}
// (records purged), lotse_purge_held_rows{kind} (due records held at the
// last run), lotse_purge_last_run_timestamp_seconds and
// lotse_purge_errors_total.
#ifndef LOTSE_COMMON_LIFECYCLE_PURGE_H_
#define LOTSE_COMMON_LIFECYCLE_PURGE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/lifecycle/retention.h"
#include "common/storage/database.h"
#include "prometheus/registry.h"

namespace lotse::lifecycle {

// What one batch of a task did.
struct PurgeBatch {
  // Records deleted (or anonymised, where an aggregate needs the row).
  int64_t purged = 0;
  // Due records skipped because an active hold covers them. Counted by
  // each batch of a run; the job reports the last batch's figure, so a
  // task may count them once, in the batch that returns more = false.
  int64_t held = 0;
  // The persons (ids without "persons/") whose records the batch purged,
  // for its audit record.
  std::vector<std::string> persons;
  // More due, unheld records remain: the job runs another batch. A batch
  // that purged nothing ends the task's run, whatever it says here.
  bool more = false;
};

// What the job knows about the records of one kind.
struct PurgeTask {
  std::string kind;  // a ResourceKind name, e.g. "booking"
  // Purges at most `limit` records of the kind that are due (anchor at or
  // before `cutoff`) and not held at `now`, in `tx`. Must change the
  // database only through `tx` (the transaction may be retried).
  std::function<absl::StatusOr<PurgeBatch>(
      storage::Transaction& tx, absl::Time cutoff, absl::Time now, int limit)>
      run;
};

struct PurgeOptions {
  std::string service;  // "cases": the audit records' agency, the metrics
  absl::Duration interval = absl::Hours(1);
  int batch_size = 200;                           // records per transaction
  absl::Duration pause = absl::Milliseconds(20);  // between batches
  // Where the read audit chain lives when not in `db` (ServiceRuntime::
  // read_audit_database); null: `db` holds both chains. Must outlive the
  // job.
  storage::Database* read_audit_database = nullptr;
  // Whether `db` has the hold table (HoldMigrations). The audit chains are
  // pruned only up to the first record about a person under an active hold;
  // false prunes them without that check.
  bool has_holds = true;
  // Told about every run of the thread that failed (the status names the
  // kind, never a person), e.g. to log it.
  std::function<void(const absl::Status&)> on_error;
};

// What one run did, per kind.
struct PurgeReport {
  std::map<std::string, int64_t> purged;
  std::map<std::string, int64_t> held;
};

class PurgeJob {
 public:
  // `rules` and `db` must outlive the job; `metrics` may be null. Tasks
  // whose kind has no rule are never run.
  PurgeJob(storage::Database& db, const RetentionRules& rules,
           std::vector<PurgeTask> tasks, PurgeOptions options,
           prometheus::Registry* metrics);
  ~PurgeJob();  // Stops the thread if it runs.
  PurgeJob(const PurgeJob&) = delete;
  PurgeJob& operator=(const PurgeJob&) = delete;

  // One run at time `now`: every task until it has no more due records.
  // The first failing batch ends the run with its status (what earlier
  // batches committed stays purged).
  absl::StatusOr<PurgeReport> RunOnce(absl::Time now);

  // Runs RunOnce(absl::Now()) every interval on a thread of its own, the
  // first time one interval after Start. Errors are counted and logged
  // (without personal data) and the next run tries again.
  void Start();
  // Ends the thread after the batch in progress. Idempotent.
  void Stop();

 private:
  struct Metrics;
  void Loop();

  storage::Database& db_;
  const RetentionRules& rules_;
  const std::vector<PurgeTask> tasks_;
  const PurgeOptions options_;
  std::unique_ptr<Metrics> metrics_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace lotse::lifecycle

#endif  // LOTSE_COMMON_LIFECYCLE_PURGE_H_
