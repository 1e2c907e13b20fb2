// Write throughput with and without the purge job, in one run: a figure
// for the operators' note, not a test. Writers commit one row and one audit
// record per transaction (as an audited write of a service does) for
// --seconds without the job, then as long again while the job purges
// --due_rows due records in batches of --batch, then again without it.
//
//   lotse_purge_load [--database=URL] [--seconds=5] [--writers=4]
//              [--due_rows=200000] [--batch=200] [--pause_ms=20]
//
// Without --database it uses a fresh SQLite file in /tmp.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/audit/audit_log.h"
#include "common/lifecycle/holds.h"
#include "common/lifecycle/purge.h"
#include "common/storage/migrations.h"

namespace {

using ::lotse::storage::Transaction;

std::string Flag(int argc, char** argv, const std::string& name,
                 const std::string& fallback) {
  const std::string prefix = absl::StrCat("--", name, "=");
  for (int i = 1; i < argc; ++i) {
    if (absl::StartsWith(argv[i], prefix)) return argv[i] + prefix.size();
  }
  return fallback;
}

int IntFlag(int argc, char** argv, const std::string& name, int fallback) {
  int value = fallback;
  if (!absl::SimpleAtoi(Flag(argc, argv, name, ""), &value)) value = fallback;
  return value;
}

absl::StatusOr<lotse::lifecycle::PurgeBatch> PurgeItems(Transaction& tx,
                                                        absl::Time cutoff,
                                                        absl::Time now,
                                                        int limit) {
  absl::StatusOr<lotse::storage::Rows> rows = tx.Query(
      absl::StrCat("SELECT id, person FROM load_items i WHERE i.anchor_us <= "
                   "$1 AND ",
                   lotse::lifecycle::NotHeldCondition("i.person", "", 2),
                   " ORDER BY id LIMIT $3"),
      {absl::ToUnixMicros(cutoff), absl::ToUnixMicros(now),
       static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  // One DELETE per batch, as a service's task should write it.
  lotse::lifecycle::PurgeBatch batch;
  std::vector<lotse::storage::Value> ids;
  std::vector<std::string> placeholders;
  for (const lotse::storage::Row& row : *rows) {
    ids.push_back(*row.GetInt(0));
    placeholders.push_back(absl::StrCat("$", ids.size()));
    batch.persons.push_back(*row.GetText(1));
  }
  if (!ids.empty()) {
    absl::StatusOr<int64_t> n =
        tx.Execute(absl::StrCat("DELETE FROM load_items WHERE id IN (",
                                absl::StrJoin(placeholders, ", "), ")"),
                   ids);
    if (!n.ok()) return n.status();
    batch.purged = *n;
  }
  batch.more = static_cast<int>(rows->size()) == limit;
  return batch;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = Flag(argc, argv, "database", "");
  if (url.empty()) {
    url = absl::StrCat("sqlite:/tmp/lotse-purge-load-", getpid(), ".db");
  }
  const absl::Duration phase = absl::Seconds(IntFlag(argc, argv, "seconds", 5));
  const int writers = IntFlag(argc, argv, "writers", 4);
  const int due_rows = IntFlag(argc, argv, "due_rows", 200000);

  auto db = lotse::storage::OpenDatabase(url, writers + 2);
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.status().ToString().c_str());
    return 1;
  }
  std::vector<lotse::storage::Migration> migrations =
      lotse::audit::AuditMigrations();
  for (auto& m : lotse::lifecycle::HoldMigrations()) migrations.push_back(m);
  migrations.push_back(
      {"load.0001",
       "CREATE TABLE load_items (id BIGINT PRIMARY KEY, person TEXT NOT NULL, "
       "anchor_us BIGINT NOT NULL);"
       "CREATE INDEX load_items_anchor ON load_items (anchor_us, id);"
       "CREATE TABLE load_writes (id TEXT PRIMARY KEY, v TEXT NOT NULL);"});
  if (auto s = lotse::storage::ApplyMigrations(**db, migrations); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  const int64_t old = absl::ToUnixMicros(absl::Now() - absl::Hours(24 * 800));
  for (int start = 0; start < due_rows; start += 5000) {
    auto s = lotse::storage::RunInTransaction(**db, [&](Transaction& tx) {
      for (int i = start; i < std::min(due_rows, start + 5000); ++i) {
        auto n = tx.Execute(
            "INSERT INTO load_items VALUES ($1, $2, $3)",
            {static_cast<int64_t>(i), absl::StrCat("p", i % 997), old});
        if (!n.ok()) return n.status();
      }
      return absl::OkStatus();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "seed: %s\n", s.ToString().c_str());
      return 1;
    }
  }

  auto rules = lotse::lifecycle::RetentionRules::Parse(
      "retain booking category=LANGUAGE keep=1y from=END basis=load\n");
  lotse::lifecycle::PurgeOptions options;
  options.service = "load";
  options.batch_size = IntFlag(argc, argv, "batch", 200);
  options.pause = absl::Milliseconds(IntFlag(argc, argv, "pause_ms", 20));
  lotse::lifecycle::PurgeJob job(**db, *rules, {{"booking", PurgeItems}},
                                 options, nullptr);

  std::atomic<int64_t> sequence{0};
  auto measure = [&](bool purge, const char* name) {
    std::atomic<bool> stop{false};
    std::atomic<int64_t> commits{0}, failures{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&] {
        while (!stop.load()) {
          const int64_t n = sequence.fetch_add(1);
          auto s = lotse::storage::RunInTransaction(**db, [&](Transaction& tx) {
            auto i = tx.Execute("INSERT INTO load_writes VALUES ($1, $2)",
                                {absl::StrCat("w", n), std::string("value")});
            if (!i.ok()) return i.status();
            lotse::audit::AuditRecord r;
            r.agency_id = "load";
            r.legal_domain = "JOBCENTER";
            r.actor = "load";
            r.purpose = "load";
            r.operation = "load/Write";
            r.resource = absl::StrCat("persons/p", n % 997);
            r.data_categories = {"LANGUAGE"};
            return lotse::audit::AppendAudit(tx, r);
          });
          (s.ok() ? commits : failures).fetch_add(1);
        }
      });
    }
    int64_t purged = 0;
    const absl::Time start = absl::Now();
    if (purge) {
      // RunOnce purges until nothing is due or the phase ends.
      std::thread purger([&] {
        auto report = job.RunOnce(absl::Now());
        if (report.ok()) purged = report->purged["booking"];
      });
      absl::SleepFor(phase);
      stop.store(true);
      for (auto& t : threads) t.join();
      job.Stop();  // ends RunOnce after the batch in progress
      purger.join();
    } else {
      absl::SleepFor(phase);
      stop.store(true);
      for (auto& t : threads) t.join();
    }
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf("%-22s writes/s %8.0f  (commits %lld, failures %lld", name,
                commits.load() / seconds,
                static_cast<long long>(commits.load()),
                static_cast<long long>(failures.load()));
    if (purge) {
      std::printf(", purged %lld rows = %.0f rows/s",
                  static_cast<long long>(purged), purged / seconds);
    }
    std::printf(")\n");
  };
  std::printf("database %s, %d writers, phases of %s, batch %d, pause %s\n",
              absl::StartsWith(url, "sqlite:") ? "sqlite" : "postgresql",
              writers, absl::FormatDuration(phase).c_str(), options.batch_size,
              absl::FormatDuration(options.pause).c_str());
  measure(false, "without purge");
  measure(true, "with purge running");
  measure(false, "without purge again");
  if (absl::StartsWith(url, "sqlite:")) {
    const std::string path = url.substr(7);
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::remove((path + suffix).c_str());
    }
  }
  return 0;
}
