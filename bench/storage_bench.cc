// Write throughput of the storage layer: one transaction per call
// (RunInTransaction) against group commit (GroupCommitter), same bodies, same
// database, same process, so the ratio between them is what to quote.
//
// Each call writes what a typical audited create writes: a record row and an
// audit-like row of a few hundred bytes, under one named lock like the hash
// chain of common/audit. Threads call in a closed loop.
//
//   lotse_storage_bench --threads=32 --seconds=5            (SQLite temp file)
//   lotse_storage_bench --database=postgresql://...          (an empty
//   database)
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/load.h"
#include "common/storage/database.h"
#include "common/storage/group_commit.h"

ABSL_FLAG(std::string, database, "",
          "database URL; empty: a SQLite file in a temporary directory");
ABSL_FLAG(int, threads, 32, "concurrent callers");
ABSL_FLAG(int, seconds, 5, "duration of each mode");
ABSL_FLAG(int, pool_size, 8, "connections in the pool");
ABSL_FLAG(int, writers, 0, "group commit writers; 0: the default");

namespace lotse::bench {
namespace {

using storage::Transaction;

struct Result {
  double qps = 0;
  absl::Duration p50, p99;
  int64_t errors = 0;
};

absl::Status WriteOne(Transaction& tx, const std::string& id,
                      const std::string& payload) {
  // The audit trail is a hash chain: every append serialises on its head,
  // as common/audit does, until the transaction commits.
  if (absl::Status s = tx.LockNamed("trail"); !s.ok()) return s;
  absl::Status s =
      tx.Execute("INSERT INTO records (id, payload) VALUES ($1, $2)",
                 {id, storage::Bytes{payload}})
          .status();
  if (!s.ok()) return s;
  return tx
      .Execute("INSERT INTO trail (record_id, detail, at) VALUES ($1, $2, $3)",
               {id, payload.substr(0, 200), absl::ToUnixMicros(absl::Now())})
      .status();
}

Result Drive(int threads, absl::Duration duration,
             const std::function<absl::Status(const std::string&)>& call) {
  LatencyHistogram histogram;
  std::atomic<int64_t> done{0}, errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  const absl::Time start = absl::Now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      absl::BitGen gen;
      for (int64_t i = 0; !stop.load(); ++i) {
        const std::string id =
            absl::StrCat(t, "-", i, "-", absl::Uniform<uint64_t>(gen));
        const absl::Time begin = absl::Now();
        if (!call(id).ok()) ++errors;
        histogram.Record(absl::Now() - begin);
        ++done;
      }
    });
  }
  absl::SleepFor(duration);
  stop = true;
  for (std::thread& w : workers) w.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return {static_cast<double>(done.load()) / seconds, histogram.Quantile(0.5),
          histogram.Quantile(0.99), errors.load()};
}

void Print(const char* mode, const Result& r) {
  std::printf(
      "%-22s %9.0f commits/s  p50 %7.3f ms  p99 %7.3f ms  errors %lld\n", mode,
      r.qps, absl::ToDoubleMilliseconds(r.p50),
      absl::ToDoubleMilliseconds(r.p99), static_cast<long long>(r.errors));
}

int Main() {
  std::string url = absl::GetFlag(FLAGS_database);
  std::string temp_dir;
  if (url.empty()) {
    char pattern[] = "/tmp/lotse-storage-bench.XXXXXX";
    if (mkdtemp(pattern) == nullptr) return 1;
    temp_dir = pattern;
    url = absl::StrCat("sqlite:", temp_dir, "/bench.db");
  }
  absl::StatusOr<std::unique_ptr<storage::Database>> db =
      storage::OpenDatabase(url, absl::GetFlag(FLAGS_pool_size));
  if (!db.ok()) {
    std::fprintf(stderr, "open: %s\n", db.status().ToString().c_str());
    return 1;
  }
  absl::Status schema = storage::RunInTransaction(**db, [](Transaction& tx) {
    return tx.ExecuteScript(
        "DROP TABLE IF EXISTS trail; DROP TABLE IF EXISTS records;"
        "CREATE TABLE records (id TEXT PRIMARY KEY, payload BYTEA);"
        "CREATE TABLE trail (record_id TEXT NOT NULL, detail TEXT,"
        " at BIGINT NOT NULL);"
        "CREATE INDEX trail_record ON trail (record_id);");
  });
  if (!schema.ok()) {
    std::fprintf(stderr, "schema: %s\n", schema.ToString().c_str());
    return 1;
  }
  const std::string payload(400, 'p');
  const int threads = absl::GetFlag(FLAGS_threads);
  const absl::Duration duration = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  std::printf(
      "backend %s, %d threads, %d s per mode\n",
      (*db)->dialect() == storage::Dialect::kSqlite ? "sqlite" : "postgres",
      threads, absl::GetFlag(FLAGS_seconds));

  const Result alone = Drive(threads, duration, [&](const std::string& id) {
    return storage::RunInTransaction(
        **db, [&](Transaction& tx) { return WriteOne(tx, id, payload); });
  });
  Print("transaction per call", alone);
  Result grouped;
  {
    storage::GroupCommitter::Options options;
    options.writers = absl::GetFlag(FLAGS_writers);
    storage::GroupCommitter committer(**db, options);
    grouped = Drive(threads, duration, [&](const std::string& id) {
      return committer.Run(
          [&](Transaction& tx) { return WriteOne(tx, id, payload); });
    });
    const storage::GroupCommitter::Stats stats = committer.stats();
    Print("group commit", grouped);
    std::printf("  %.1f bodies per batch\n",
                stats.batches > 0 ? static_cast<double>(stats.bodies) /
                                        static_cast<double>(stats.batches)
                                  : 0.0);
  }
  std::printf("group / per-call throughput: %.2fx\n",
              alone.qps > 0 ? grouped.qps / alone.qps : 0.0);
  db->reset();
  if (!temp_dir.empty()) {
    std::system(absl::StrCat("rm -rf ", temp_dir).c_str());
  }
  return alone.errors + grouped.errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace lotse::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return lotse::bench::Main();
}
