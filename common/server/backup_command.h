// The backup and restore commands of every service binary:
//
//   lotse_<service> backup --backup_to=FILE       online copy (SQLite)
//   lotse_<service> restore --restore_from=FILE   put it back (stopped)
//   lotse_<service> mark-restored                 after pg_restore / PITR
//
// They take the service's own storage flags (--database,
// --read_audit_database, also from LOTSE_DATABASE ...), so in a pod or a
// shell set up for the service they find the same files the service uses,
// and a restore is checked against the migrations of the very release that
// will run on it.
//
// backup: copies the service database (SQLite) to FILE and, when the read
// audit chain lives in a file of its own, that file to the read-audit name
// of FILE ("X.db" -> "X.reads.db", as ReadAuditDatabaseUrl derives it),
// each with storage::BackupSqlite (consistent snapshot, the service keeps
// writing, written atomically). The two files are two snapshots, taken one
// after the other. PostgreSQL: refused (FAILED_PRECONDITION), use pg_dump.
//
// restore: refuses (exit code 1, nothing changed) while any process has
// either database open, when a backup file fails integrity_check, or when
// it was migrated by a newer release. Otherwise, for each file: copies it
// beside the live one, applies this binary's migrations to the copy,
// runs the service's on_restore step and records the restore in the
// copy's change audit chain (one transaction), then replaces the live
// database (removing its stale -wal/-shm files) and keeps the replaced
// file as "<live>.pre-restore-<UTC time>". The read chain is put in place
// first, the data second, so that a restore interrupted in between leaves
// the old data with a restored read chain, which the next restore
// replaces.
//
// mark-restored: for a database restored by other means (pg_restore, a
// PITR recovery, a file copied back by hand): applies the migrations and
// runs the same on_restore step and audit record in one transaction, in
// the read-audit database first when it is separate.
#ifndef LOTSE_COMMON_SERVER_BACKUP_COMMAND_H_
#define LOTSE_COMMON_SERVER_BACKUP_COMMAND_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/server/usage.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"

namespace lotse::server {

// What the commands need to know of the service.
struct BackupTarget {
  std::string service;         // "cases"
  std::string database_url;    // the service database
  std::string read_audit_url;  // "" when the read chain is in the database
  std::vector<storage::Migration> migrations;
  // Run inside the restore transaction; may be empty.
  std::function<absl::Status(storage::Transaction&)> on_restore;
};

// The --help group of the commands' flags.
FlagGroup BackupFlagGroup();

// Whether `command` is one of the command names above.
bool IsBackupCommand(absl::string_view command);

// Runs `command` ("backup", "restore" or "mark-restored") with the flags
// parsed; logs what it did and returns the process exit code (0 on
// success, 1 on failure, 2 on a bad flag).
int RunBackupCommand(absl::string_view command, const BackupTarget& target);

// The path of a sqlite: URL ("sqlite:/x/y.db" -> "/x/y.db"); empty for
// anything else (PostgreSQL, in-memory).
std::string SqlitePathOf(absl::string_view url);

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_BACKUP_COMMAND_H_
