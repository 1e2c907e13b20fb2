// The receiver-side inbox: applies each event id at most once, so that the
// relay's redeliveries (after a lost acknowledgement, a time-out or a
// restart) change nothing.
//
// Table (InboxMigrations): event_inbox(event_id primary key, source,
// applied_at).
#ifndef LOTSE_COMMON_EVENTS_INBOX_H_
#define LOTSE_COMMON_EVENTS_INBOX_H_

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "lotse/events/v1/events.pb.h"

namespace lotse::events {

// Migration "common.events.0001_inbox". Consuming services apply it.
std::vector<storage::Migration> InboxMigrations();

using ApplyFn = std::function<absl::Status(storage::Transaction&,
                                           const lotse::events::v1::Event&)>;

// In one transaction: when e.event_id() is already in the inbox, returns
// false and does nothing; otherwise records the id, runs `apply` with the
// same transaction, commits and returns true. When `apply` (or the commit)
// fails nothing is recorded and its status is returned, so a redelivery
// tries again. Two concurrent deliveries of one id apply it once: the
// second waits for the first and then sees the id (false). The transaction
// is retried on serialization conflicts, so `apply` may run more than once
// but commits at most once; it must only change the database through `tx`.
// INVALID_ARGUMENT for an empty event id.
absl::StatusOr<bool> ApplyEventOnce(storage::Database& db,
                                    const lotse::events::v1::Event& e,
                                    const ApplyFn& apply);

}  // namespace lotse::events

#endif  // LOTSE_COMMON_EVENTS_INBOX_H_
