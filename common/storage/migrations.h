// Versioned schema migrations, applied at start-up, each in one transaction.
//
// A migration's SQL is shared by both backends. Where the dialects differ it
// uses these macros, replaced before execution:
//   {{BLOB}}         BLOB                               | BYTEA
//   {{AUTO_ID}}      INTEGER PRIMARY KEY AUTOINCREMENT  | BIGSERIAL PRIMARY KEY
//   {{TEXT_PK}}      TEXT PRIMARY KEY                   | TEXT PRIMARY KEY
// Everything else must be SQL both understand (BIGINT, TEXT, DOUBLE
// PRECISION, CHECK, UNIQUE, indexes, foreign keys).
//
// Applied migrations are recorded in the table `schema_migrations` by id.
// Ids are applied in the order given; an id once applied is never run again,
// and a database that records an id the binary does not know is refused
// (it was migrated by a newer release).
#ifndef LOTSE_COMMON_STORAGE_MIGRATIONS_H_
#define LOTSE_COMMON_STORAGE_MIGRATIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/storage/database.h"

namespace lotse::storage {

struct Migration {
  std::string id;  // e.g. "common.audit.0001_init", "identity.0001_init"
  std::string sql;
};

// Replaces the dialect macros in `sql`.
std::string ExpandDialect(absl::string_view sql, Dialect dialect);

// Applies every migration in `migrations` not yet recorded, in order. Safe to
// call from several processes at once: they serialise on a named lock and
// each migration runs exactly once.
absl::Status ApplyMigrations(Database& db,
                             const std::vector<Migration>& migrations);

}  // namespace lotse::storage

#endif  // LOTSE_COMMON_STORAGE_MIGRATIONS_H_
