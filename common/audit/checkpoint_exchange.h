// How signed checkpoints (checkpoint.h) travel between services: a
// CheckpointPublisher signs the heads of its service's two audit chains and
// sends them as events (payload lotse.audit.v1.SignedCheckpoint) through the
// transactional outbox, so they reach every --event_destinations service
// with the relay's retries; a CheckpointWitness in each receiving service
// verifies them and keeps the valid ones (witness_store.h).
//
// Metrics (Prometheus, when a registry is given):
//   lotse_audit_checkpoints_published_total{chain}       signed and enqueued
//   lotse_audit_checkpoints_delivered_total{destination} acknowledged by a
//                                                        witness
//   lotse_audit_checkpoints_witnessed_total{service,outcome}
//       received and kept: outcome "stored" or "conflict" (same seq as a
//       checkpoint held, another hash: kept, flagged, as evidence)
//   lotse_audit_checkpoints_rejected_total{reason}
//       received and refused: a CheckpointVerifier reason
//       (BAD_SIGNATURE, UNTRUSTED_CERTIFICATE, WRONG_SERVICE,
//       UNKNOWN_SERVICE, MALFORMED_CHECKPOINT) or STALE_HEAD (a seq lower
//       than the newest witnessed for that service and chain).
#ifndef LOTSE_COMMON_AUDIT_CHECKPOINT_EXCHANGE_H_
#define LOTSE_COMMON_AUDIT_CHECKPOINT_EXCHANGE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "common/audit/checkpoint.h"
#include "common/audit/witness_store.h"
#include "common/events/inbox.h"
#include "common/storage/database.h"
#include "lotse/events/v1/events.pb.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace lotse::audit {

inline constexpr char kStaleHead[] = "STALE_HEAD";

struct CheckpointPublisherOptions {
  // How often the heads are looked at; a chain whose head did not move
  // since its last checkpoint gets none.
  absl::Duration interval = absl::Seconds(60);
  // The --event_destinations names, for the delivered metric.
  std::vector<std::string> destinations;
  // Called (on the publisher's thread) when a checkpoint cannot be made or
  // enqueued; may be empty. Must be quick.
  std::function<void(const absl::Status&)> on_error;
};

// Publishes checkpoints of one service's chains. Thread-safe.
class CheckpointPublisher {
 public:
  // `db` holds the outbox and the change chain; `read_audit_db` the read
  // chain (null: `db`). All must outlive the publisher. `metrics` may be
  // null. Does not start the thread.
  CheckpointPublisher(storage::Database& db, storage::Database* read_audit_db,
                      std::unique_ptr<CheckpointSigner> signer,
                      prometheus::Registry* metrics,
                      CheckpointPublisherOptions options);
  // Stops the thread without a last checkpoint (see Stop).
  ~CheckpointPublisher();

  // Starts the thread: every `interval`, PublishIfMoved.
  void Start();
  // Stops the thread, then publishes once more (the checkpoint at
  // shutdown), so the heads a service ends with are witnessed. The events
  // stay in the outbox for the relays (or their successors after a
  // restart) to deliver. Returns the outbox seqs of the checkpoints this
  // last publication enqueued (events::OutboxRelay::AwaitDelivered waits
  // for them). Idempotent: later calls return nothing.
  std::vector<int64_t> Stop();

  // For each chain whose head moved since this publisher's last checkpoint
  // of it (the first time: whose head is past seq 0), signs the head and
  // enqueues it as an event in a transaction of its own. Returns how many
  // checkpoints it enqueued; the first error otherwise (the chains after
  // it are tried at the next call).
  absl::StatusOr<int> PublishIfMoved() ABSL_LOCKS_EXCLUDED(mu_);
  // The same, adding the outbox seqs of the enqueued events to `seqs`.
  absl::StatusOr<int> PublishIfMoved(std::vector<int64_t>* seqs)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Counts the checkpoints the destinations acknowledged since the last
  // call (the delivered metric; run by the thread each interval). Returns
  // how many acknowledgements it counted.
  absl::StatusOr<int> CountDelivered() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop();

  storage::Database& db_;
  storage::Database* const read_audit_db_;
  const std::unique_ptr<CheckpointSigner> signer_;
  const CheckpointPublisherOptions options_;
  prometheus::Family<prometheus::Counter>* published_ = nullptr;
  prometheus::Family<prometheus::Counter>* delivered_ = nullptr;

  absl::Mutex mu_;  // one publication at a time
  std::optional<AuditHead> last_[2] ABSL_GUARDED_BY(mu_);
  // Outbox seq of each checkpoint event -> destinations yet to acknowledge
  // it (at most kMaxPending, oldest forgotten first).
  std::map<int64_t, std::vector<std::string>> pending_ ABSL_GUARDED_BY(mu_);
  static constexpr size_t kMaxPending = 1000;

  absl::Notification stop_;
  absl::Mutex thread_mu_;
  std::thread thread_ ABSL_GUARDED_BY(thread_mu_);
  bool stopped_ ABSL_GUARDED_BY(thread_mu_) = false;
};

// What a witness does with a checkpoint it received, for logs and tests.
struct CheckpointReceipt {
  std::string service;  // the head's service, as claimed
  std::string chain;    // "changes" or "reads"
  int64_t seq = 0;
  // "stored", "duplicate", "conflict", or the rejection reason.
  std::string outcome;
  std::string message;  // why, for rejections; no personal data
};

// Receives checkpoints as a witness. Thread-safe.
class CheckpointWitness {
 public:
  // `self`: this service's name. `verifier` null refuses every checkpoint
  // (UNTRUSTED_CERTIFICATE: a process without a CA, e.g. --insecure_dev).
  // `metrics` may be null. `on_receipt` (may be empty) is called after the
  // inbox transaction committed, for each checkpoint refused or kept as a
  // conflict; it must be quick.
  CheckpointWitness(
      std::string self, std::unique_ptr<CheckpointVerifier> verifier,
      prometheus::Registry* metrics,
      std::function<void(const CheckpointReceipt&)> on_receipt = nullptr);

  // Whether `event` carries a SignedCheckpoint.
  static bool IsCheckpoint(const lotse::events::v1::Event& event);

  // Applies a checkpoint event inside the inbox transaction `tx`: verifies
  // it and stores it when valid and not stale (witness_store.h). A
  // checkpoint refused for what it is (bad signature, unknown service,
  // stale head, ...) is acknowledged (OK) without being stored, and
  // counted: resending it would never make it valid, and a refusal would
  // hold back the sender's later checkpoints. Only database errors are
  // returned, so the relay retries.
  absl::Status Apply(storage::Transaction& tx,
                     const lotse::events::v1::Event& event);

  // `inner` with checkpoint events handled by Apply first; everything else
  // goes to `inner`. The witness must outlive the result.
  events::ApplyFn Wrap(events::ApplyFn inner);

 private:
  const std::string self_;
  const std::unique_ptr<CheckpointVerifier> verifier_;
  const std::function<void(const CheckpointReceipt&)> on_receipt_;
  prometheus::Family<prometheus::Counter>* witnessed_ = nullptr;
  prometheus::Family<prometheus::Counter>* rejected_ = nullptr;
};

}  // namespace lotse::audit

#endif  // LOTSE_COMMON_AUDIT_CHECKPOINT_EXCHANGE_H_
