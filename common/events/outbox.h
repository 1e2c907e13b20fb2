// The transactional outbox: a service records each event it publishes in the
// same transaction as the change the event describes, so an event exists if
// and only if its change committed. An OutboxRelay (relay.h) later delivers
// it to each subscribed destination.
//
// Tables (OutboxMigrations):
//   event_outbox           seq, event_id (unique), ordering_key, payload
//                          (the serialized lotse.events.v1.Event, sealed
//                          when `person` is set), created_at, person
//   event_outbox_cursor    per destination: the next seq not yet taken into
//                          delivery
//   event_outbox_delivery  per destination and event: attempts,
//                          next_attempt_at, delivered_at, last_error; the
//                          pending rows are indexed separately, so a relay
//                          never scans delivered history.
//
// Sealing (crypto-shredding, lifecycle/person_keys.h): an event whose
// disclosure (disclosure.h) names exactly one person and carries data of
// theirs is stored sealed with the producing service's key for that person,
// and `person` holds the person id. Erasing the person shreds the key, after
// which the row stays in place (seq, ordering key, delivery state) but its
// payload can no longer be read; the relay then skips it. Events naming no
// person or several, and the lifecycle events (erasure and legal holds,
// which carry ids only and must outlive the key), are stored in the clear.
//
// Ordering: EnqueueEvent takes the named lock "lotse.outbox" before it
// draws a seq, so seq order is commit order and no event can become visible
// behind one a relay has already passed. A transaction that appends both an
// event and an audit record should enqueue the event first, then audit, so
// that all writers take the two locks in the same order.
#ifndef LOTSE_COMMON_EVENTS_OUTBOX_H_
#define LOTSE_COMMON_EVENTS_OUTBOX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "lotse/events/v1/events.pb.h"

namespace lotse::events {

// Migrations "common.events.0001_outbox" and
// "common.events.0002_outbox_person" (the person column, and the person key
// table of lifecycle/person_keys.h unless it exists). Producing services
// apply them.
std::vector<storage::Migration> OutboxMigrations();

// Records `event` in `tx`, sealed as described above. Assigns a random
// event_id (UUID version 4, from OpenSSL's CSPRNG) when it is empty and
// occurred_at (now) when unset. The payload must be set, and parse as the
// type it names when that type is in the disclosure table:
// INVALID_ARGUMENT otherwise, since no receiver could apply it. An event
// to be sealed for a person whose key was shredded is FAILED_PRECONDITION
// (reason PERSON_ERASED): nothing new is sent about an erased person. A
// caller-chosen event_id that already exists is ALREADY_EXISTS.
// Once `tx` commits, the process's relays are woken (NotifyAllRelays in
// relay.h), so delivery starts at once without the caller's help, and the
// event's seq is added to the thread's CommittedEvents sink, if any (below).
absl::Status EnqueueEvent(storage::Transaction& tx,
                          lotse::events::v1::Event event);

// The event stored at `seq`, its payload opened when it was sealed.
// NOT_FOUND when there is none; NOT_FOUND with reason PERSON_KEY_SHREDDED
// when its person's key was shredded; DATA_LOSS when it does not open or
// parse. For the relay, and for tools and tests that read the outbox (its
// payload column is not readable as it is).
absl::StatusOr<lotse::events::v1::Event> ReadOutboxEvent(
    storage::Transaction& tx, int64_t seq);

// The outbox seqs of the events that the transactions of one call enqueued
// and committed, for a caller that waits until a destination has them
// (OutboxRelay::AwaitDelivered). Seqs of a transaction that rolled back, or
// of a group-commit body that was undone, never appear. Thread-safe: seqs
// are added on whichever thread commits.
class CommittedEvents {
 public:
  void Add(int64_t seq);
  std::vector<int64_t> seqs() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<int64_t> seqs_ ABSL_GUARDED_BY(mu_);
};

// While alive, makes `sink` (may be null) the CommittedEvents of
// EnqueueEvent calls on this thread; restores the previous sink when it
// ends. The thread that handles a call opens one around the call's work;
// code that runs a transaction body for the call on another thread (a
// group committer's writer) opens one inside the body, with Current() as
// taken on the calling thread.
class CollectCommittedEvents {
 public:
  explicit CollectCommittedEvents(CommittedEvents* sink);
  ~CollectCommittedEvents();
  CollectCommittedEvents(const CollectCommittedEvents&) = delete;
  CollectCommittedEvents& operator=(const CollectCommittedEvents&) = delete;

  // This thread's sink; null outside any scope.
  static CommittedEvents* Current();

 private:
  CommittedEvents* previous_;
};

// A random UUID version 4 in its 36-character text form.
std::string NewEventId();

// Deletes outbox events created before `cutoff` that every destination
// known to the outbox (event_outbox_cursor) has taken and acknowledged,
// with their delivery rows, at most `max_events` of them in one short
// transaction. Returns how many it deleted; call again while it returns
// `max_events`. Without any destination, age alone decides. Consequence: a
// destination added later receives only the events not yet pruned.
absl::StatusOr<int64_t> PruneDeliveredEvents(storage::Database& db,
                                             absl::Time cutoff,
                                             int max_events = 1000);

}  // namespace lotse::events

#endif  // LOTSE_COMMON_EVENTS_OUTBOX_H_
