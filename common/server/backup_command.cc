#include "common/server/backup_command.h"

#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "common/server/log.h"
#include "common/storage/backup.h"

ABSL_FLAG(std::string, backup_to, "",
          "backup: the file the service database is copied to (its read "
          "audit chain goes to the matching .reads file)");
ABSL_FLAG(std::string, restore_from, "",
          "restore: the backup file to restore (made by backup; its .reads "
          "file beside it)");
ABSL_FLAG(bool, keep_replaced, true,
          "restore: keep each replaced database as "
          "<file>.pre-restore-<time> instead of deleting it");

namespace lotse::server {
namespace {

absl::Status Refuse(absl::string_view what) {
  return absl::FailedPreconditionError(what);
}

// The read-audit file that goes with the data file `path`, named as the
// service names it (ReadAuditDatabaseUrl).
std::string ReadsFileFor(const std::string& path) {
  constexpr absl::string_view kDb = ".db";
  if (absl::EndsWith(path, kDb)) {
    return absl::StrCat(path.substr(0, path.size() - kDb.size()), ".reads.db");
  }
  return absl::StrCat(path, ".reads");
}

// Migrates `db`, runs `on_restore` and appends the restore's audit record,
// in one transaction after the migrations.
absl::Status MarkRestored(storage::Database& db,
                          const std::vector<storage::Migration>& migrations,
                          const BackupTarget& target, bool data,
                          const std::string& from) {
  if (absl::Status s = storage::ApplyMigrations(db, migrations); !s.ok()) {
    return s;
  }
  return storage::RunInTransaction(db, [&](storage::Transaction& tx) {
    if (data && target.on_restore) {
      if (absl::Status s = target.on_restore(tx); !s.ok()) return s;
    }
    return audit::AppendAudit(
        tx,
        audit::RestoreAuditRecord(target.service,
                                  from.empty() ? "database" : from),
        data ? audit::Chain::kChanges : audit::Chain::kReads);
  });
}

absl::Status Backup(const BackupTarget& target) {
  const std::string to = absl::GetFlag(FLAGS_backup_to);
  if (to.empty())
    return absl::InvalidArgumentError("backup needs --backup_to=FILE");
  const std::string data = SqlitePathOf(target.database_url);
  if (data.empty()) {
    return Refuse(
        "backup copies SQLite databases; back up PostgreSQL with pg_dump or "
        "a base backup (see the README)");
  }
  std::vector<std::pair<std::string, std::string>> copies = {{data, to}};
  if (const std::string reads = SqlitePathOf(target.read_audit_url);
      !reads.empty()) {
    copies.push_back({reads, ReadsFileFor(to)});
  }
  for (const auto& [source, destination] : copies) {
    absl::StatusOr<storage::SqliteBackupResult> done =
        storage::BackupSqlite(source, destination);
    if (!done.ok()) return done.status();
    Log(LogLevel::kInfo, "backup written",
        {{"service", target.service},
         {"database", source},
         {"to", destination},
         {"pages", done->pages},
         {"bytes", done->bytes},
         {"steps", static_cast<int64_t>(done->steps)},
         {"ms", absl::ToInt64Milliseconds(done->elapsed)}});
  }
  return absl::OkStatus();
}

// One database to restore: the backup file, the live file, the migrations
// the copy gets, and whether it is the data (else the read chain).
struct RestoreItem {
  std::string backup;
  std::string live;
  std::vector<storage::Migration> migrations;
  bool data = false;
};

absl::Status Restore(const BackupTarget& target) {
  const std::string from = absl::GetFlag(FLAGS_restore_from);
  if (from.empty()) {
    return absl::InvalidArgumentError("restore needs --restore_from=FILE");
  }
  const std::string data = SqlitePathOf(target.database_url);
  if (data.empty()) {
    return Refuse(
        "restore puts SQLite files in place; restore PostgreSQL with "
        "pg_restore, then run mark-restored (see the README)");
  }
  std::vector<RestoreItem> items;
  if (const std::string reads = SqlitePathOf(target.read_audit_url);
      !reads.empty()) {
    items.push_back({ReadsFileFor(from), reads, audit::ReadAuditMigrations(),
                     /*data=*/false});
  }
  items.push_back({from, data, target.migrations, /*data=*/true});

  // Everything is checked before anything is replaced.
  for (const RestoreItem& item : items) {
    if (absl::Status s = storage::EnsureSqliteNotInUse(item.live); !s.ok()) {
      return s;
    }
    if (absl::Status s = storage::CheckSqliteIntegrity(item.backup); !s.ok()) {
      return s;
    }
  }
  // Prepared copies beside the live files: migrated, marked, single files.
  std::vector<std::string> prepared;
  auto remove_prepared = [&prepared] {
    for (const std::string& p : prepared) {
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        ::unlink(absl::StrCat(p, suffix).c_str());
      }
    }
  };
  for (const RestoreItem& item : items) {
    const std::string copy = absl::StrCat(item.live, ".restoring");
    prepared.push_back(copy);
    if (absl::Status s = storage::CopyFileAtomically(item.backup, copy);
        !s.ok()) {
      remove_prepared();
      return s;
    }
    absl::Status marked = [&]() -> absl::Status {
      storage::SqliteOptions options;
      options.path = copy;
      options.pool_size = 1;
      absl::StatusOr<std::unique_ptr<storage::Database>> db =
          storage::OpenSqlite(options);
      if (!db.ok()) return db.status();
      return MarkRestored(**db, item.migrations, target, item.data,
                          item.backup);
    }();
    if (marked.ok()) marked = storage::EnsureSqliteNotInUse(copy);
    if (marked.ok()) marked = storage::CheckSqliteIntegrity(copy);
    if (!marked.ok()) {
      remove_prepared();
      return marked;
    }
  }
  const std::string stamp =
      absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string keep =
        absl::GetFlag(FLAGS_keep_replaced)
            ? absl::StrCat(items[i].live, ".pre-restore-", stamp)
            : "";
    if (absl::Status s =
            storage::InstallSqliteFile(prepared[i], items[i].live, keep);
        !s.ok()) {
      return s;
    }
    Log(LogLevel::kInfo, "database restored",
        {{"service", target.service},
         {"database", items[i].live},
         {"from", items[i].backup},
         {"replaced_kept_as", keep}});
  }
  return absl::OkStatus();
}

absl::Status MarkRestoredCommand(const BackupTarget& target) {
  if (!target.read_audit_url.empty()) {
    absl::StatusOr<std::unique_ptr<storage::Database>> reads =
        storage::OpenDatabase(target.read_audit_url, 2);
    if (!reads.ok()) return reads.status();
    if (absl::Status s = MarkRestored(**reads, audit::ReadAuditMigrations(),
                                      target, /*data=*/false, "");
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<std::unique_ptr<storage::Database>> db =
      storage::OpenDatabase(target.database_url, 2);
  if (!db.ok()) return db.status();
  if (absl::Status s = MarkRestored(**db, target.migrations, target,
                                    /*data=*/true, "");
      !s.ok()) {
    return s;
  }
  Log(LogLevel::kInfo, "database marked as restored",
      {{"service", target.service}});
  return absl::OkStatus();
}

}  // namespace

FlagGroup BackupFlagGroup() {
  return {"Backup and restore", {"backup_to", "restore_from", "keep_replaced"}};
}

bool IsBackupCommand(absl::string_view command) {
  return command == "backup" || command == "restore" ||
         command == "mark-restored";
}

std::string SqlitePathOf(absl::string_view url) {
  constexpr absl::string_view kSqlite = "sqlite:";
  if (!absl::StartsWith(url, kSqlite)) return "";
  absl::string_view path = url.substr(kSqlite.size());
  if (path.empty() || path == ":memory:" || absl::StartsWith(path, "file:")) {
    return "";
  }
  return std::string(path);
}

int RunBackupCommand(absl::string_view command, const BackupTarget& target) {
  absl::Status status;
  if (command == "backup") {
    status = Backup(target);
  } else if (command == "restore") {
    status = Restore(target);
  } else if (command == "mark-restored") {
    status = MarkRestoredCommand(target);
  } else {
    status = absl::InvalidArgumentError(absl::StrCat(
        "unknown command ", command, " (backup, restore or mark-restored)"));
  }
  if (status.ok()) return 0;
  Log(LogLevel::kError, absl::StrCat(command, " failed"),
      {{"service", target.service}, {"error", std::string(status.ToString())}});
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace lotse::server
