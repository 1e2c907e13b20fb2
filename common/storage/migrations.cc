#include "common/storage/migrations.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lotse::storage {
namespace {

// Every process that migrates this database takes this lock first, so that
// two replicas starting together neither race on CREATE TABLE nor run a
// migration twice.
constexpr absl::string_view kLockName = "lotse.schema_migrations";

constexpr absl::string_view kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)";

absl::Status WithId(const absl::Status& status, absl::string_view id) {
  return absl::Status(status.code(),
                      absl::StrCat("migration ", id, ": ", status.message()));
}

}  // namespace

std::string ExpandDialect(absl::string_view sql, Dialect dialect) {
  if (dialect == Dialect::kSqlite) {
    return absl::StrReplaceAll(
        sql, {{"{{BLOB}}", "BLOB"},
              {"{{AUTO_ID}}", "INTEGER PRIMARY KEY AUTOINCREMENT"},
              {"{{TEXT_PK}}", "TEXT PRIMARY KEY"}});
  }
  return absl::StrReplaceAll(sql, {{"{{BLOB}}", "BYTEA"},
                                   {"{{AUTO_ID}}", "BIGSERIAL PRIMARY KEY"},
                                   {"{{TEXT_PK}}", "TEXT PRIMARY KEY"}});
}

absl::Status ApplyMigrations(Database& db,
                             const std::vector<Migration>& migrations) {
  absl::flat_hash_set<std::string> known;
  for (const Migration& m : migrations) {
    if (m.id.empty()) {
      return absl::InvalidArgumentError("migrations: a migration has no id");
    }
    if (!known.insert(m.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("migrations: id ", m.id, " appears twice"));
    }
  }

  // Create the bookkeeping table and read what is applied.
  absl::flat_hash_set<std::string> applied;
  absl::Status status = RunInTransaction(db, [&](Transaction& tx) {
    applied.clear();
    if (absl::Status s = tx.LockNamed(kLockName); !s.ok()) return s;
    if (absl::Status s = tx.ExecuteScript(kCreateTable); !s.ok()) return s;
    absl::StatusOr<Rows> rows = tx.Query("SELECT id FROM schema_migrations");
    if (!rows.ok()) return rows.status();
    std::vector<std::string> unknown;
    for (const Row& row : *rows) {
      absl::StatusOr<std::string> id = row.GetText(0);
      if (!id.ok()) return id.status();
      if (!known.contains(*id)) unknown.push_back(*id);
      applied.insert(*std::move(id));
    }
    if (!unknown.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migrations: the database records migrations this binary does not "
          "know (",
          absl::StrJoin(unknown, ", "),
          "); it was migrated by a newer release"));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  for (const Migration& m : migrations) {
    if (applied.contains(m.id)) continue;
    std::string script = ExpandDialect(m.sql, db.dialect());
    status = RunInTransaction(db, [&](Transaction& tx) -> absl::Status {
      if (absl::Status s = tx.LockNamed(kLockName); !s.ok()) return s;
      // Another process may have applied it since we looked.
      absl::StatusOr<Rows> done =
          tx.Query("SELECT 1 FROM schema_migrations WHERE id = $1", {m.id});
      if (!done.ok()) return done.status();
      if (!done->empty()) return absl::OkStatus();
      if (absl::Status s = tx.ExecuteScript(script); !s.ok()) return s;
      absl::StatusOr<int64_t> inserted = tx.Execute(
          "INSERT INTO schema_migrations (id, applied_at) VALUES ($1, $2)",
          {m.id, absl::ToUnixMillis(absl::Now())});
      return inserted.status();
    });
    if (!status.ok()) return WithId(status, m.id);
  }
  return absl::OkStatus();
}

}  // namespace lotse::storage
