// Backup and restore of a SQLite database file, for the embedded default
// (PostgreSQL is backed up with its own tools: pg_dump, or base backups with
// WAL archiving; see the README).
//
// Backup (BackupSqlite) copies a live database with SQLite's online backup
// API while the service keeps writing. The copy is one consistent snapshot:
// the copying connection holds one read transaction from the first page to
// the last, so a commit that lands meanwhile is either wholly in the copy or
// not at all, and the copy never restarts. In WAL mode a reader does not
// block writers, so the service's writes go on; the copy pauses between
// steps so that it does not take the disk from them. The copy is written to
// a temporary file beside the destination, checked (PRAGMA
// integrity_check), flushed to disk (fsync) and only then renamed over the
// destination, and the directory is flushed: the destination is either the
// previous file or the complete new copy, never a partial one.
//
// Restore (InstallSqliteFile) puts a prepared file in place of a database
// that no process has open: the live file's leftover -wal and -shm files are
// removed first (a stale WAL would otherwise be replayed into the restored
// file), then the file is renamed into place and the directory flushed. The
// file it replaces is kept, renamed, when asked to.
//
// Thread safety: the functions are independent of each other and of any
// Database object; two of them must not work on the same paths at once.
#ifndef LOTSE_COMMON_STORAGE_BACKUP_H_
#define LOTSE_COMMON_STORAGE_BACKUP_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace lotse::storage {

struct SqliteBackupOptions {
  // Pages copied per step; the copy sleeps `pause` between steps.
  int pages_per_step = 1024;
  absl::Duration pause = absl::Milliseconds(2);
};

struct SqliteBackupResult {
  int64_t pages = 0;  // pages in the copy
  int64_t bytes = 0;  // size of the copy
  int steps = 0;
  absl::Duration elapsed;
};

// Copies the SQLite database at `source` to `destination` as described in
// the header comment. `source` must exist and be a SQLite database
// (NOT_FOUND / FAILED_PRECONDITION otherwise); it may be in use by other
// processes. On any failure the temporary file is removed and
// `destination` is left as it was.
absl::StatusOr<SqliteBackupResult> BackupSqlite(
    const std::string& source, const std::string& destination,
    const SqliteBackupOptions& options = {});

// Runs PRAGMA integrity_check on the SQLite file at `path`, opened
// read-only. OK when it reports "ok"; DATA_LOSS with SQLite's first
// findings when it does not; FAILED_PRECONDITION when the file is not a
// SQLite database; NOT_FOUND when it does not exist.
absl::Status CheckSqliteIntegrity(const std::string& path);

// FAILED_PRECONDITION when another connection (of any process) has the
// SQLite database at `path` open; OK when none has or the file does not
// exist. Checked by switching the database out of WAL mode, which SQLite
// allows only to its sole user; on success the database is left in
// rollback-journal mode with its WAL copied into it and removed (a service
// switches it back at its next start).
absl::Status EnsureSqliteNotInUse(const std::string& path);

// Copies the file `source` to `destination` byte for byte through a
// temporary file, fsync and rename, as BackupSqlite writes its copy. For a
// backup file that nothing writes to.
absl::Status CopyFileAtomically(const std::string& source,
                                const std::string& destination);

// Puts the file `prepared` (beside `live`, same file system) in place of
// the SQLite database `live`, which no process may have open (see
// EnsureSqliteNotInUse): removes `live`-wal and `live`-shm, renames `live`
// to `keep_previous_as` when that is not empty and `live` exists, renames
// `prepared` to `live`, and flushes the directory.
absl::Status InstallSqliteFile(const std::string& prepared,
                               const std::string& live,
                               const std::string& keep_previous_as);

}  // namespace lotse::storage

#endif  // LOTSE_COMMON_STORAGE_BACKUP_H_
