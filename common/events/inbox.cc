#include "common/events/inbox.h"

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lotse::events {

std::vector<storage::Migration> InboxMigrations() {
  return {{"common.events.0001_inbox", R"sql(
CREATE TABLE event_inbox (
  event_id TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  applied_at BIGINT NOT NULL
);
)sql"}};
}

absl::StatusOr<bool> ApplyEventOnce(storage::Database& db,
                                    const lotse::events::v1::Event& e,
                                    const ApplyFn& apply) {
  if (e.event_id().empty()) {
    return absl::InvalidArgumentError("event has no event_id");
  }
  bool duplicate = false;
  absl::Status status = storage::RunInTransaction(
      db, [&](storage::Transaction& tx) -> absl::Status {
        // Recording the id before applying makes a concurrent delivery of
        // the same id wait on the primary key until this one ends; it then
        // inserts nothing and reports a duplicate instead of applying twice.
        auto inserted = tx.Execute(
            "INSERT INTO event_inbox (event_id, source, applied_at) "
            "VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING",
            {storage::Value(e.event_id()), storage::Value(e.source()),
             storage::Value(absl::ToUnixMicros(absl::Now()))});
        if (!inserted.ok()) return inserted.status();
        duplicate = *inserted == 0;
        if (duplicate) return absl::OkStatus();  // commits nothing
        return apply(tx, e);
      });
  if (duplicate) return false;
  if (!status.ok()) return status;
  return true;
}

}  // namespace lotse::events
