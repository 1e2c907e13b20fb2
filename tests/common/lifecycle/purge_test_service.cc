// A minimal Lotse service for the process tests of the purge job and the
// --retention_rules start-up check: the shared main() with one table of
// "booking" rows and a purge task for it, and no RPCs of its own.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit/audit_log.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/purge.h"
#include "common/server/service_main.h"

namespace {

using ::lotse::lifecycle::PurgeBatch;
using ::lotse::lifecycle::PurgeTask;
using ::lotse::storage::Transaction;

// Deletes due bookings (anchor_us at or before the cutoff) no hold covers.
absl::StatusOr<PurgeBatch> PurgeBookings(Transaction& tx, absl::Time cutoff,
                                         absl::Time now, int limit) {
  absl::StatusOr<lotse::storage::Rows> rows = tx.Query(
      absl::StrCat("SELECT id, person FROM test_bookings b WHERE "
                   "b.anchor_us <= $1 AND ",
                   lotse::lifecycle::NotHeldCondition("b.person", "", 2),
                   " ORDER BY id LIMIT $3"),
      {absl::ToUnixMicros(cutoff), absl::ToUnixMicros(now),
       static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  PurgeBatch batch;
  for (const lotse::storage::Row& row : *rows) {
    absl::StatusOr<std::string> id = row.GetText(0);
    absl::StatusOr<std::string> person = row.GetText(1);
    if (!id.ok()) return id.status();
    if (!person.ok()) return person.status();
    absl::StatusOr<int64_t> n =
        tx.Execute("DELETE FROM test_bookings WHERE id = $1", {*id});
    if (!n.ok()) return n.status();
    batch.purged += *n;
    batch.persons.push_back(*person);
  }
  batch.more = static_cast<int>(rows->size()) == limit;
  return batch;
}

}  // namespace

int main(int argc, char** argv) {
  lotse::server::ServiceDefinition definition;
  definition.name = "purgetest";
  definition.default_listen = "127.0.0.1:0";
  definition.description = "A test service for the purge job.";
  definition.migrations = lotse::audit::AuditMigrations();
  for (auto& m : lotse::lifecycle::HoldMigrations()) {
    definition.migrations.push_back(m);
  }
  definition.migrations.push_back(
      {"purgetest.0001_bookings",
       "CREATE TABLE test_bookings (id TEXT PRIMARY KEY, person TEXT NOT "
       "NULL, anchor_us BIGINT NOT NULL)"});
  definition.make_services = [](lotse::server::ServiceRuntime&)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    return std::vector<std::unique_ptr<grpc::Service>>{};
  };
  definition.make_purge_tasks = [](lotse::server::ServiceRuntime&) {
    return std::vector<PurgeTask>{{"booking", PurgeBookings}};
  };
  return lotse::server::RunService(argc, argv, definition);
}
