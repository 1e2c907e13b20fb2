// What an online backup costs the writes of a live SQLite database.
//
// Fills a database (the storage layer's own SQLite options, as a service
// opens it) to --mb, then runs --writers threads of small write
// transactions (one row each, as a service's call commits) twice for
// --seconds: first alone, then while storage::BackupSqlite copies the
// database again and again. Prints one JSON line per phase: writes per
// second, write latency p50/p99/max, and for the second phase the backups
// taken and how long each took. The backup runs in this process on its own
// connection, as `lotse_<service> backup` does in its own process.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/storage/backup.h"
#include "common/storage/database.h"

ABSL_FLAG(std::string, dir, "/tmp", "where the database and copies go");
ABSL_FLAG(int, mb, 200, "database size to fill to before measuring");
ABSL_FLAG(int, writers, 4, "writer threads");
ABSL_FLAG(int, seconds, 20, "length of each phase");
ABSL_FLAG(int, pages_per_step, 1024, "backup: pages per step");
ABSL_FLAG(int, pause_ms, 2, "backup: pause between steps");
ABSL_FLAG(int, wal_restart_pages,
          lotse::storage::SqliteOptions{}.wal_restart_pages,
          "the storage option of that name (default: the services' value)");

namespace {

using lotse::storage::Database;
using lotse::storage::Transaction;

struct Phase {
  int64_t writes = 0;
  std::vector<int64_t> latencies_us;
};

Phase RunWriters(Database& db, int writers, absl::Duration length,
                 std::atomic<int64_t>& next_id) {
  std::vector<Phase> per(writers);
  std::vector<std::thread> threads;
  const absl::Time end = absl::Now() + length;
  const std::string pad(300, 'w');
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      while (absl::Now() < end) {
        const int64_t id = next_id.fetch_add(1);
        const absl::Time start = absl::Now();
        absl::Status s =
            lotse::storage::RunInTransaction(db, [&](Transaction& tx) {
              return tx
                  .Execute("INSERT INTO rows_ (id, pad) VALUES ($1, $2)",
                           {id, pad})
                  .status();
            });
        if (!s.ok()) {
          std::fprintf(stderr, "write failed: %s\n", s.ToString().c_str());
          continue;
        }
        per[w].latencies_us.push_back(
            absl::ToInt64Microseconds(absl::Now() - start));
        ++per[w].writes;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  Phase all;
  for (Phase& p : per) {
    all.writes += p.writes;
    all.latencies_us.insert(all.latencies_us.end(), p.latencies_us.begin(),
                            p.latencies_us.end());
  }
  std::sort(all.latencies_us.begin(), all.latencies_us.end());
  return all;
}

int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t i =
      std::min(sorted.size() - 1, static_cast<size_t>(q * (sorted.size() - 1)));
  return sorted[i];
}

void Report(const char* phase, const Phase& p, absl::Duration length,
            const std::string& extra) {
  std::printf(
      "{\"phase\":\"%s\",\"writes\":%lld,\"writes_per_s\":%.0f,"
      "\"p50_us\":%lld,\"p99_us\":%lld,\"max_us\":%lld%s}\n",
      phase, static_cast<long long>(p.writes),
      p.writes / absl::ToDoubleSeconds(length),
      static_cast<long long>(Percentile(p.latencies_us, 0.5)),
      static_cast<long long>(Percentile(p.latencies_us, 0.99)),
      static_cast<long long>(p.latencies_us.empty() ? 0
                                                    : p.latencies_us.back()),
      extra.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string dir =
      absl::StrCat(absl::GetFlag(FLAGS_dir), "/lotse-backup-bench-", getpid());
  std::filesystem::create_directories(dir);
  const std::string path = absl::StrCat(dir, "/live.db");
  lotse::storage::SqliteOptions options;
  options.path = path;
  options.pool_size = absl::GetFlag(FLAGS_writers) + 1;
  options.wal_restart_pages = absl::GetFlag(FLAGS_wal_restart_pages);
  absl::StatusOr<std::unique_ptr<Database>> db =
      lotse::storage::OpenSqlite(options);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return 1;
  }
  absl::Status s = lotse::storage::RunInTransaction(**db, [](Transaction& tx) {
    return tx.ExecuteScript(
        "CREATE TABLE rows_ (id BIGINT PRIMARY KEY, pad TEXT NOT NULL)");
  });
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  // Fill: 10 000 rows of ~1 KiB per transaction.
  const int64_t target = int64_t{absl::GetFlag(FLAGS_mb)} * 1024 * 1024;
  std::atomic<int64_t> next_id{1};
  const std::string fill(1000, 'f');
  while (std::filesystem::file_size(path) +
             (std::filesystem::exists(path + "-wal")
                  ? std::filesystem::file_size(path + "-wal")
                  : 0) <
         static_cast<uintmax_t>(target)) {
    s = lotse::storage::RunInTransaction(**db, [&](Transaction& tx) {
      for (int i = 0; i < 10000; ++i) {
        absl::StatusOr<int64_t> n =
            tx.Execute("INSERT INTO rows_ (id, pad) VALUES ($1, $2)",
                       {next_id.fetch_add(1), fill});
        if (!n.ok()) return n.status();
      }
      return absl::OkStatus();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  const absl::Duration length = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  const int writers = absl::GetFlag(FLAGS_writers);

  const Phase alone = RunWriters(**db, writers, length, next_id);
  Report("writes_alone", alone, length, "");

  std::atomic<bool> stop{false};
  std::vector<int64_t> backup_ms;
  int64_t backup_bytes = 0;
  std::string backup_error;
  std::thread backups([&] {
    lotse::storage::SqliteBackupOptions backup;
    backup.pages_per_step = absl::GetFlag(FLAGS_pages_per_step);
    backup.pause = absl::Milliseconds(absl::GetFlag(FLAGS_pause_ms));
    while (!stop.load()) {
      absl::StatusOr<lotse::storage::SqliteBackupResult> r =
          lotse::storage::BackupSqlite(path, absl::StrCat(dir, "/copy.db"),
                                       backup);
      if (!r.ok()) {
        backup_error = r.status().ToString();
        return;
      }
      backup_ms.push_back(absl::ToInt64Milliseconds(r->elapsed));
      backup_bytes = r->bytes;
    }
  });
  const Phase during = RunWriters(**db, writers, length, next_id);
  stop = true;
  backups.join();
  std::string backups_json = "[";
  for (size_t i = 0; i < backup_ms.size(); ++i) {
    absl::StrAppend(&backups_json, i ? "," : "", backup_ms[i]);
  }
  absl::StrAppend(&backups_json, "]");
  Report(
      "writes_during_backups", during, length,
      absl::StrCat(
          ",\"backups_ms\":", backups_json, ",\"backup_bytes\":", backup_bytes,
          backup_error.empty()
              ? ""
              : absl::StrCat(",\"backup_error\":\"", backup_error, "\"")));
  db->reset();
  std::filesystem::remove_all(dir);
  return backup_error.empty() ? 0 : 1;
}
