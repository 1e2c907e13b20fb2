#include "common/storage/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/storage/database.h"

namespace lotse::storage {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  const int err = errno;
  std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  return StorageUnavailableError(message);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A temporary name beside `path`, unique per process.
std::string TemporaryBeside(const std::string& path) {
  return absl::StrCat(path, ".tmp-", ::getpid());
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  const int fd = ::open(
      path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync", path);
  return absl::OkStatus();
}

// Renames `from` to `to` and flushes the directory, after flushing `from`.
absl::Status DurableRename(const std::string& from, const std::string& to) {
  if (absl::Status s = FsyncPath(from, /*directory=*/false); !s.ok()) return s;
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoError(absl::StrCat("rename to ", to, ":"), from);
  }
  return FsyncPath(DirectoryOf(to), /*directory=*/true);
}

absl::Status RemoveIfPresent(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("remove", path);
  }
  return absl::OkStatus();
}

absl::Status Sqlite(int rc, sqlite3* db, absl::string_view what,
                    const std::string& path) {
  std::string message =
      absl::StrCat("sqlite: ", what, " ", path, ": ",
                   db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return absl::FailedPreconditionError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::FailedPreconditionError(message);
    default:
      return StorageUnavailableError(message);
  }
}

// An open connection, closed when it goes out of scope.
class Connection {
 public:
  ~Connection() {
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }
  absl::Status Open(const std::string& path, int flags) {
    path_ = path;
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) return Sqlite(rc, db_, "open", path);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
    return absl::OkStatus();
  }
  absl::Status Exec(const char* sql) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return Sqlite(rc, db_, sql, path_);
    return absl::OkStatus();
  }
  // The first column of every row `sql` returns, as text.
  absl::StatusOr<std::vector<std::string>> Column(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return Sqlite(rc, db_, sql, path_);
    std::vector<std::string> out;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      out.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text)
                                       : "");
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return Sqlite(rc, db_, sql, path_);
    return out;
  }
  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// Copies pages from `src` (in its open read transaction) to `dest`.
absl::StatusOr<SqliteBackupResult> CopyPages(Connection& src, Connection& dest,
                                             const SqliteBackupOptions& options,
                                             const std::string& source) {
  SqliteBackupResult result;
  sqlite3_backup* backup =
      sqlite3_backup_init(dest.db(), "main", src.db(), "main");
  if (backup == nullptr) {
    return Sqlite(sqlite3_errcode(dest.db()), dest.db(), "backup of", source);
  }
  const int pages = options.pages_per_step > 0 ? options.pages_per_step : -1;
  int rc = SQLITE_OK;
  int busy = 0;
  for (;;) {
    rc = sqlite3_backup_step(backup, pages);
    ++result.steps;
    if (rc == SQLITE_DONE) break;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      // Only the destination can be locked (the source read needs no lock
      // a writer holds in WAL mode); it is a private file, so this is rare.
      if (++busy > 1000) break;
      absl::SleepFor(absl::Milliseconds(5));
      continue;
    }
    if (rc != SQLITE_OK) break;
    if (options.pause > absl::ZeroDuration()) absl::SleepFor(options.pause);
  }
  result.pages = sqlite3_backup_pagecount(backup);
  const int finish = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return Sqlite(rc, dest.db(), "backup of", source);
  if (finish != SQLITE_OK) {
    return Sqlite(finish, dest.db(), "backup of", source);
  }
  return result;
}

}  // namespace

absl::Status CheckSqliteIntegrity(const std::string& path) {
  if (!Exists(path)) return absl::NotFoundError(absl::StrCat("no file ", path));
  Connection conn;
  if (absl::Status s = conn.Open(path, SQLITE_OPEN_READWRITE); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::vector<std::string>> findings =
      conn.Column("PRAGMA integrity_check(20)");
  if (!findings.ok()) return findings.status();
  if (findings->size() == 1 && findings->front() == "ok") {
    return absl::OkStatus();
  }
  std::string message = absl::StrCat("integrity_check of ", path, " failed:");
  for (const std::string& f : *findings) absl::StrAppend(&message, " ", f);
  return absl::DataLossError(message);
}

absl::StatusOr<SqliteBackupResult> BackupSqlite(
    const std::string& source, const std::string& destination,
    const SqliteBackupOptions& options) {
  const absl::Time start = absl::Now();
  if (!Exists(source)) {
    return absl::NotFoundError(absl::StrCat("no database file ", source));
  }
  Connection src;
  // Read-write without create: a read-only connection cannot open a WAL
  // database whose -shm file is missing. Nothing is written through it.
  if (absl::Status s = src.Open(source, SQLITE_OPEN_READWRITE); !s.ok()) {
    return s;
  }
  // One read transaction for the whole copy: the snapshot it sees is the
  // copy, and commits by others never make the backup start over.
  if (absl::Status s = src.Exec("BEGIN"); !s.ok()) return s;
  if (absl::StatusOr<std::vector<std::string>> probe =
          src.Column("SELECT count(*) FROM sqlite_master");
      !probe.ok()) {
    return probe.status();
  }

  const std::string temporary = TemporaryBeside(destination);
  if (absl::Status s = RemoveIfPresent(temporary); !s.ok()) return s;
  absl::Cleanup remove_temporary = [&temporary] {
    ::unlink(temporary.c_str());
    ::unlink(absl::StrCat(temporary, "-journal").c_str());
  };
  absl::StatusOr<SqliteBackupResult> result;
  {
    Connection dest;
    if (absl::Status s =
            dest.Open(temporary, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        !s.ok()) {
      return s;
    }
    result = CopyPages(src, dest, options, source);
    if (!result.ok()) return result.status();
    // The copy is a single file: rollback-journal mode, no -wal beside it.
    if (absl::Status s = dest.Exec("PRAGMA journal_mode=DELETE"); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = src.Exec("COMMIT"); !s.ok()) return s;
  if (absl::Status s = CheckSqliteIntegrity(temporary); !s.ok()) return s;
  if (absl::Status s = DurableRename(temporary, destination); !s.ok()) {
    return s;
  }
  std::move(remove_temporary).Cancel();
  struct stat st;
  if (::stat(destination.c_str(), &st) == 0) result->bytes = st.st_size;
  result->elapsed = absl::Now() - start;
  return result;
}

absl::Status EnsureSqliteNotInUse(const std::string& path) {
  if (!Exists(path)) return absl::OkStatus();
  Connection conn;
  if (absl::Status s = conn.Open(path, SQLITE_OPEN_READWRITE); !s.ok()) {
    return s;
  }
  sqlite3_busy_timeout(conn.db(), 0);
  absl::StatusOr<std::vector<std::string>> mode =
      conn.Column("PRAGMA journal_mode=DELETE");
  if (!mode.ok() || mode->empty() || mode->front() != "delete") {
    return absl::FailedPreconditionError(absl::StrCat(
        "the database ", path,
        " is open in another process: stop every process that uses it "
        "first",
        mode.ok() ? "" : absl::StrCat(" (", mode.status().message(), ")")));
  }
  return absl::OkStatus();
}

absl::Status CopyFileAtomically(const std::string& source,
                                const std::string& destination) {
  const int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoError("open", source);
  absl::Cleanup close_in = [in] { ::close(in); };
  const std::string temporary = TemporaryBeside(destination);
  const int out =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) return ErrnoError("create", temporary);
  absl::Cleanup remove_temporary = [&temporary] {
    ::unlink(temporary.c_str());
  };
  {
    absl::Cleanup close_out = [out] { ::close(out); };
    char buffer[1 << 16];
    for (;;) {
      const ssize_t n = ::read(in, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("read", source);
      if (n == 0) break;
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::write(out, buffer + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return ErrnoError("write", temporary);
        done += w;
      }
    }
  }
  if (absl::Status s = DurableRename(temporary, destination); !s.ok()) {
    return s;
  }
  std::move(remove_temporary).Cancel();
  return absl::OkStatus();
}

absl::Status InstallSqliteFile(const std::string& prepared,
                               const std::string& live,
                               const std::string& keep_previous_as) {
  if (!Exists(prepared)) {
    return absl::NotFoundError(absl::StrCat("no file ", prepared));
  }
  // A leftover WAL would be replayed into the new file at its first open,
  // a hot rollback journal rolled back into it: both must go first.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    if (absl::Status s = RemoveIfPresent(absl::StrCat(live, suffix)); !s.ok()) {
      return s;
    }
  }
  if (!keep_previous_as.empty() && Exists(live)) {
    if (::rename(live.c_str(), keep_previous_as.c_str()) != 0) {
      return ErrnoError(absl::StrCat("rename to ", keep_previous_as, ":"),
                        live);
    }
  }
  return DurableRename(prepared, live);
}

}  // namespace lotse::storage
