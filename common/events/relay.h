// Delivery of outbox events (outbox.h) to one named destination.
//
// One OutboxRelay per destination: courses' events go to "cases" and to
// "placement" through two relays over the same outbox, each with its own
// delivery state, so a slow or unreachable receiver only delays itself.
//
// Guarantees: every committed event is delivered to the destination at
// least once (receivers apply each event id once, see inbox.h); events with
// the same ordering key are delivered in seq order, and a later event for a
// key is not sent while an earlier one is failing or waiting for its retry,
// while events of other keys go on. Delivery state lives in the database, so
// a restarted relay resumes where the old one stopped; an event that was
// sent but not yet marked delivered is sent again.
//
// Replicas: relays for the same destination in several processes over one
// database take turns. Only the holder of the destination's process lock
// (Database::TryLockForProcess) sends; the others stand by and try to take
// it every standby_retry, so one of them takes over within that time once
// the holder stops or its process dies. Events a standby's process commits
// reach the destination at the holder's next poll. (Without the lock two
// relays would lose or double nothing, given the inbox, but could
// interleave one key's events.)
//
// A destination seen for the first time receives the outbox's whole history.
// An event the receiver keeps refusing (e.g. INVALID_ARGUMENT) holds back
// its key, retried every backoff_max; event_outbox_delivery.last_error says
// why (status code and the receiver's message, never the event). Events are
// sent one at a time, in seq order; nothing is pruned yet.
//
// Sealed events (outbox.h) are opened before they are sent: the receiver
// gets the plain event over the channel's mutual TLS. An event whose
// person's key was shredded is not sent: it is marked delivered with
// last_error kShreddedError, so neither it nor its ordering key waits.
#ifndef LOTSE_COMMON_EVENTS_RELAY_H_
#define LOTSE_COMMON_EVENTS_RELAY_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "lotse/events/v1/events.grpc.pb.h"
#include "lotse/events/v1/events.pb.h"

namespace lotse::events {

// Hands one event to a destination. OK means the receiver has durably
// applied it; any error means "try again later". Must be thread-safe.
class EventSender {
 public:
  virtual ~EventSender() = default;
  virtual absl::Status Send(const lotse::events::v1::Event& event,
                            absl::Time deadline) = 0;
  // Aborts calls in flight (they return an error) so that a stopping relay
  // need not wait for their deadline. Later calls are unaffected.
  virtual void CancelInFlight() {}
};

// Sends over EventSinkService.DeliverEvent on a channel the caller built
// (with the caller's credentials, e.g. mutual TLS). Calls do not wait for a
// connection: while the receiver is unreachable they fail at once and the
// relay's backoff paces the retries. gRPC's own reconnect backoff (1 s
// doubling to 120 s by default; GRPC_ARG_*_RECONNECT_BACKOFF_MS) decides how
// soon a returning receiver is noticed.
class GrpcEventSender : public EventSender {
 public:
  explicit GrpcEventSender(std::shared_ptr<grpc::Channel> channel);

  absl::Status Send(const lotse::events::v1::Event& event,
                    absl::Time deadline) override;
  void CancelInFlight() override;

 private:
  std::unique_ptr<lotse::events::v1::EventSinkService::Stub> stub_;
  absl::Mutex mu_;
  // Contexts of the calls in flight, so that CancelInFlight can reach them.
  std::vector<grpc::ClientContext*> in_flight_ ABSL_GUARDED_BY(mu_);
};

// One failed send, for operators: where, which event (by seq, never its
// payload), how often it has failed, why, and when it is tried again.
struct DeliveryFailure {
  std::string destination;
  int64_t seq = 0;
  int64_t attempts = 0;  // including this one
  absl::StatusCode code = absl::StatusCode::kUnknown;
  std::string message;  // the receiver's message (no personal data)
  absl::Time next_attempt;
};

struct RelayOptions {
  std::string destination;  // e.g. "cases"; names this relay's state
  int batch_size = 100;     // events attempted per cycle at most
  // How often to look for new events when nobody calls Notify().
  absl::Duration poll_interval = absl::Seconds(1);
  absl::Duration call_timeout = absl::Seconds(5);  // per Send
  // Retry delay after the n-th failure of an event: initial * 2^(n-1),
  // capped at max, then drawn uniformly from [delay/2, delay] so that many
  // relays do not retry in lockstep.
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Minutes(1);
  // The cap instead of backoff_max after a failure that says the receiver
  // was not reached or did not answer (UNAVAILABLE, DEADLINE_EXCEEDED):
  // then the wait is for the receiver to come back, and the events queued
  // meanwhile should follow within about this long once it has. (A refusal
  // the receiver keeps making backs off to backoff_max.) EventDelivery
  // also caps its channels' reconnect backoff at this.
  absl::Duration unreachable_backoff_max = absl::Seconds(5);
  // Observers for logs and metrics, called on the relay's thread after the
  // outcome is recorded in the database; may be empty. They must be quick
  // and must not call back into the relay.
  std::function<void(const DeliveryFailure&)> on_failure;
  std::function<void(const std::string& destination)> on_delivered;
  // Called on the relay's thread when it takes or loses the lead (see
  // above); may be empty. Same rules as the observers above.
  std::function<void(const std::string& destination, bool leading)>
      on_lead_change;
  // How often a standby relay tries to take over (see above); each try
  // opens a PostgreSQL connection.
  absl::Duration standby_retry = absl::Seconds(5);
  // Records every delivery of an event that carries a person's data
  // (disclosure.h) as a disclosure in the producer's change chain
  // (common/audit): one ALLOWED record per person named, agency
  // "services/{destination}" (agency id `destination`, legal domain
  // SERVICE), actor "outbox-relay", purpose "event-delivery", operation
  // "event:{payload type}", resource the person, the payload's data
  // categories, legal basis SERVICE for each. Written in the transaction
  // that marks the event delivered, so the database must hold the audit
  // chains (audit::AuditMigrations); a redelivery is recorded again. Off
  // only for tests of delivery alone.
  bool audit_disclosures = true;
};

struct RelayStats {
  int64_t delivered = 0;        // events acknowledged by the receiver
  int64_t failed_attempts = 0;  // sends that returned an error
  bool leading = false;         // holds the destination's process lock
  int64_t shredded = 0;  // events not sent: their person's key was shredded
};

// event_outbox_delivery.last_error of an event that was not sent because
// its person's key was shredded.
inline constexpr char kShreddedError[] =
    "PERSON_KEY_SHREDDED: not sent, the person was erased";

// Notify()s every started relay of this process. EnqueueEvent makes each
// transaction that enqueues an event call it once committed, so events go
// out at once rather than at the next poll, whichever path committed them.
// A process serves one database, so these are the relays of that outbox;
// in a test process with several, a relay may wake for another database's
// event and find nothing to do.
void NotifyAllRelays();

class OutboxRelay {
 public:
  // `db` and `sender` must outlive the relay. Does not start the thread.
  OutboxRelay(storage::Database& db, EventSender& sender, RelayOptions options);
  // Stops the thread (see Stop).
  ~OutboxRelay();

  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // Starts the background thread, which delivers until Stop(). Idempotent;
  // a stopped relay does not start again (make a new one).
  void Start();
  // Wakes the thread now. Cheap; safe from any thread. Commits that
  // enqueued events call it by themselves (NotifyAllRelays).
  void Notify();
  // Stops the thread promptly: it finishes no more sends, cancels the one in
  // flight and joins. Undelivered events stay pending in the database.
  void Stop();

  // Waits until the destination has acknowledged every event of `seqs`
  // (outbox seqs, see CommittedEvents) or `deadline` passes. True when all
  // were delivered: by this relay, or by another replica's that holds the
  // lead (seen in the database, checked every kAwaitRecheck). False when
  // the deadline passed or the relay stopped — and at once while the
  // destination is unreachable (this relay's last send failed UNAVAILABLE
  // or DEADLINE_EXCEEDED), rather than hold the caller to no purpose.
  // Thread-safe.
  bool AwaitDelivered(const std::vector<int64_t>& seqs, absl::Time deadline);
  static constexpr absl::Duration kAwaitRecheck = absl::Milliseconds(100);

  const std::string& destination() const { return options_.destination; }

  // Runs one delivery cycle on the caller's thread: takes new outbox events
  // into this destination's delivery state, then sends up to batch_size due
  // events. Returns how many were delivered. Serialised with the thread's
  // cycles; for tests and tools. Sends nothing after Stop().
  absl::StatusOr<int> DeliverPendingOnce();

  RelayStats stats() const;

 private:
  struct CycleResult {
    int delivered = 0;
    bool more = false;  // a full batch was attempted; go again at once
    absl::Time next_due = absl::InfiniteFuture();  // earliest backoff expiry
  };

  absl::StatusOr<CycleResult> RunCycle()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cycle_mu_);
  // Whether this relay may send now: takes the destination's process lock
  // when due, or checks (at most once a second) that it still holds it.
  absl::StatusOr<bool> Leading() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cycle_mu_);
  void SetLead(std::unique_ptr<storage::ProcessLock> lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cycle_mu_);
  absl::Status Admit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cycle_mu_);
  // Marks `seq` as done without sending it (its key was shredded).
  absl::Status MarkShredded(int64_t seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(cycle_mu_);
  // The delay before attempt attempts + 1 after a failure with `code`.
  absl::Duration Backoff(int64_t attempts, absl::StatusCode code);
  void Loop();
  bool stopping() const;
  bool ShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the outcome of one send for AwaitDelivered.
  void Delivered(int64_t seq) ABSL_LOCKS_EXCLUDED(mu_);
  void Failed(absl::StatusCode code) ABSL_LOCKS_EXCLUDED(mu_);
  bool DeliveredInDatabase(const std::vector<int64_t>& seqs);

  storage::Database& db_;
  EventSender& sender_;
  const RelayOptions options_;

  // Held for a whole cycle: one cycle at a time per relay.
  absl::Mutex cycle_mu_;
  std::unique_ptr<storage::ProcessLock> lead_ ABSL_GUARDED_BY(cycle_mu_);
  absl::Time lead_checked_ ABSL_GUARDED_BY(cycle_mu_);
  absl::Time next_lead_attempt_ ABSL_GUARDED_BY(cycle_mu_) =
      absl::InfinitePast();

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  // The seqs this relay delivered lately (at most kRecentDelivered, oldest
  // forgotten first), for AwaitDelivered; older ones are in the database.
  absl::flat_hash_set<int64_t> recent_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> recent_order_ ABSL_GUARDED_BY(mu_);
  bool unreachable_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<int64_t> delivered_{0};
  std::atomic<int64_t> failed_attempts_{0};
  std::atomic<int64_t> shredded_{0};
  std::atomic<bool> leading_{false};
};

}  // namespace lotse::events

#endif  // LOTSE_COMMON_EVENTS_RELAY_H_
