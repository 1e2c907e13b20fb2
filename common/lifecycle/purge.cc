#include "common/lifecycle/purge.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/audit/audit_log.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"

namespace lotse::lifecycle {
namespace {

constexpr char kAuditKind[] = "audit-record";
// The legal domain of records a service writes on its own behalf (as
// common/server/request_context.h spells it; not linked from here).
constexpr char kServiceDomain[] = "SERVICE";

// Holds are looked up in batches of this many persons.
constexpr size_t kHeldBatch = 100;

// The audit record of one purge batch (see purge.h).
audit::AuditRecord PurgeRecord(const PurgeOptions& options,
                               const RetentionRule& rule, absl::Time now,
                               std::vector<std::string> persons,
                               int64_t purged) {
  audit::AuditRecord record;
  record.time = now;
  record.agency_id = options.service;
  record.legal_domain = kServiceDomain;
  record.actor = "purge-job";
  record.purpose = "retention";
  record.operation = "lotse.lifecycle/Purge";
  record.resource = absl::StrCat("retention/", rule.kind);
  record.data_categories = {rule.category};
  record.reason = absl::StrCat("purged ", purged, "; keep=", rule.PeriodText(),
                               " from=", rule.anchor);
  std::sort(persons.begin(), persons.end());
  persons.erase(std::unique(persons.begin(), persons.end()), persons.end());
  persons.erase(std::remove(persons.begin(), persons.end(), std::string()),
                persons.end());
  record.persons = std::move(persons);
  record.legal_bases = {{rule.category, audit::BasisKind::kService, "", ""}};
  return record;
}

// The persons an active hold covers at `now` (by person or by case).
absl::StatusOr<std::vector<std::string>> HeldPersons(storage::Database& db,
                                                     absl::Time now) {
  absl::StatusOr<std::unique_ptr<storage::Transaction>> tx =
      db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  absl::StatusOr<storage::Rows> rows = (*tx)->Query(
      "SELECT DISTINCT person FROM lifecycle_holds WHERE end_us > $1 AND "
      "released_us IS NULL ORDER BY person",
      {absl::ToUnixMicros(now)});
  if (!rows.ok()) return rows.status();
  std::vector<std::string> persons;
  for (const storage::Row& row : *rows) {
    absl::StatusOr<std::string> person = row.GetText(0);
    if (!person.ok()) return person.status();
    persons.push_back(*std::move(person));
  }
  return persons;
}

// The earliest time of a record of `chain` about one of `persons`, and how
// many such records are before `cutoff`: the prune of an audit chain stops
// before it, since a chain can only lose a prefix.
struct HeldAudit {
  absl::Time first = absl::InfiniteFuture();
  int64_t due = 0;
};

absl::StatusOr<HeldAudit> HeldAuditRecords(
    storage::Database& db, audit::Chain chain,
    const std::vector<std::string>& persons, absl::Time cutoff) {
  HeldAudit held;
  const std::string table =
      chain == audit::Chain::kReads ? "audit_read_log" : "audit_log";
  absl::StatusOr<std::unique_ptr<storage::Transaction>> tx =
      db.Begin(storage::TxMode::kReadOnly);
  if (!tx.ok()) return tx.status();
  for (size_t start = 0; start < persons.size(); start += kHeldBatch) {
    const size_t end = std::min(persons.size(), start + kHeldBatch);
    std::vector<storage::Value> params = {absl::ToUnixMicros(cutoff)};
    std::vector<std::string> placeholders;
    for (size_t i = start; i < end; ++i) {
      params.push_back(persons[i]);
      placeholders.push_back(absl::StrCat("$", params.size()));
    }
    absl::StatusOr<storage::Rows> rows = (*tx)->Query(
        absl::StrCat("SELECT MIN(a.time_micros), COUNT(DISTINCT CASE WHEN "
                     "a.time_micros < $1 THEN a.seq END) FROM ",
                     table, " a WHERE a.seq IN (SELECT p.seq FROM ", table,
                     "_persons p WHERE p.person_id IN (",
                     absl::StrJoin(placeholders, ", "), "))"),
        params);
    if (!rows.ok()) return rows.status();
    if (rows->empty() || (*rows)[0].IsNull(0)) continue;
    absl::StatusOr<int64_t> first = (*rows)[0].GetInt(0);
    absl::StatusOr<int64_t> due = (*rows)[0].GetInt(1);
    if (!first.ok()) return first.status();
    if (!due.ok()) return due.status();
    held.first = std::min(held.first, absl::FromUnixMicros(*first));
    held.due += *due;
  }
  return held;
}

}  // namespace

struct PurgeJob::Metrics {
  prometheus::Family<prometheus::Counter>* rows = nullptr;
  prometheus::Family<prometheus::Gauge>* held = nullptr;
  prometheus::Gauge* last_run = nullptr;
  prometheus::Counter* errors = nullptr;
};

PurgeJob::PurgeJob(storage::Database& db, const RetentionRules& rules,
                   std::vector<PurgeTask> tasks, PurgeOptions options,
                   prometheus::Registry* metrics)
    : db_(db),
      rules_(rules),
      tasks_(std::move(tasks)),
      options_(std::move(options)) {
  if (metrics == nullptr) return;
  metrics_ = std::make_unique<Metrics>();
  metrics_->rows = &prometheus::BuildCounter()
                        .Name("lotse_purge_rows_total")
                        .Help("Records the purge job erased, by kind")
                        .Register(*metrics);
  metrics_->held = &prometheus::BuildGauge()
                        .Name("lotse_purge_held_rows")
                        .Help(
                            "Due records an active legal hold kept at the "
                            "last run, by kind")
                        .Register(*metrics);
  metrics_->last_run =
      &prometheus::BuildGauge()
           .Name("lotse_purge_last_run_timestamp_seconds")
           .Help("When the purge job last completed a run (Unix seconds)")
           .Register(*metrics)
           .Add({});
  metrics_->errors = &prometheus::BuildCounter()
                          .Name("lotse_purge_errors_total")
                          .Help("Purge runs that ended with an error")
                          .Register(*metrics)
                          .Add({});
}

PurgeJob::~PurgeJob() { Stop(); }

absl::StatusOr<PurgeReport> PurgeJob::RunOnce(absl::Time now) {
  PurgeReport report;
  const int limit = std::max(1, options_.batch_size);
  auto fail = [&](const std::string& kind, const absl::Status& status) {
    if (metrics_ != nullptr) metrics_->errors->Increment();
    return absl::Status(
        status.code(), absl::StrCat("purge of ", kind, ": ", status.message()));
  };
  auto count = [&](const std::string& kind, int64_t purged) {
    report.purged[kind] += purged;
    if (metrics_ != nullptr && purged > 0) {
      metrics_->rows->Add({{"kind", kind}})
          .Increment(static_cast<double>(purged));
    }
  };
  auto held = [&](const std::string& kind, int64_t n) {
    report.held[kind] = n;
    if (metrics_ != nullptr) {
      metrics_->held->Add({{"kind", kind}}).Set(static_cast<double>(n));
    }
  };
  // Between batches: the pause that lets waiting calls through, cut short
  // by Stop.
  auto pause = [&] {
    return !stop_.WaitForNotificationWithTimeout(options_.pause);
  };

  for (const PurgeTask& task : tasks_) {
    const RetentionRule* rule = rules_.Find(task.kind);
    if (rule == nullptr || !task.run) continue;
    const absl::Time cutoff = rule->Cutoff(now);
    report.purged[task.kind] += 0;
    int64_t last_held = 0;
    for (;;) {
      PurgeBatch batch;
      absl::Status s =
          storage::RunInTransaction(db_, [&](storage::Transaction& tx) {
            batch = PurgeBatch{};
            absl::StatusOr<PurgeBatch> ran = task.run(tx, cutoff, now, limit);
            if (!ran.ok()) return ran.status();
            batch = *std::move(ran);
            if (batch.purged <= 0) return absl::OkStatus();
            return audit::AppendAudit(
                tx,
                PurgeRecord(options_, *rule, now, batch.persons, batch.purged));
          });
      if (!s.ok()) return fail(task.kind, s);
      count(task.kind, std::max<int64_t>(0, batch.purged));
      last_held = batch.held;
      // A batch that purged nothing cannot make progress, whatever it says.
      if (!batch.more || batch.purged <= 0) break;
      if (!pause()) return report;
    }
    held(task.kind, last_held);
  }

  // The audit chains: a prefix of each, up to the first record that is not
  // yet due or that is about a person under an active hold.
  if (const RetentionRule* rule = rules_.Find(kAuditKind); rule != nullptr) {
    const absl::Time cutoff = rule->Cutoff(now);
    report.purged[kAuditKind] += 0;
    std::vector<std::string> held_persons;
    if (options_.has_holds) {
      absl::StatusOr<std::vector<std::string>> persons = HeldPersons(db_, now);
      if (!persons.ok()) return fail(kAuditKind, persons.status());
      held_persons = *std::move(persons);
    }
    int64_t held_total = 0;
    for (audit::Chain chain : {audit::Chain::kChanges, audit::Chain::kReads}) {
      storage::Database& chain_db =
          chain == audit::Chain::kReads && options_.read_audit_database
              ? *options_.read_audit_database
              : db_;
      absl::Time chain_cutoff = cutoff;
      if (!held_persons.empty()) {
        absl::StatusOr<HeldAudit> kept =
            HeldAuditRecords(chain_db, chain, held_persons, cutoff);
        if (!kept.ok()) return fail(kAuditKind, kept.status());
        chain_cutoff = std::min(chain_cutoff, kept->first);
        held_total += kept->due;
      }
      for (;;) {
        absl::StatusOr<int64_t> pruned =
            audit::PruneAuditChain(chain_db, chain, chain_cutoff, limit);
        if (!pruned.ok()) return fail(kAuditKind, pruned.status());
        if (*pruned > 0) {
          // In the change chain, after the prune: a chain's prune is a
          // transaction of its own (it may be in another database).
          audit::AuditRecord record =
              PurgeRecord(options_, *rule, now, {}, *pruned);
          record.reason =
              absl::StrCat(record.reason, "; chain ", audit::ChainName(chain));
          if (absl::Status s = audit::AppendAuditStandalone(db_, record);
              !s.ok()) {
            return fail(kAuditKind, s);
          }
        }
        count(kAuditKind, *pruned);
        if (*pruned < limit) break;
        if (!pause()) return report;
      }
    }
    held(kAuditKind, held_total);
  }

  if (metrics_ != nullptr) {
    metrics_->last_run->Set(static_cast<double>(absl::ToUnixSeconds(now)));
  }
  return report;
}

void PurgeJob::Start() {
  if (thread_.joinable() || stop_.HasBeenNotified()) return;
  thread_ = std::thread([this] { Loop(); });
}

void PurgeJob::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void PurgeJob::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.interval)) {
    // One replica purges at a time; the others skip this run. Purging twice
    // would be harmless, only wasted work under the same write lock.
    absl::StatusOr<std::unique_ptr<storage::ProcessLock>> lock =
        db_.TryLockForProcess("lotse.purge");
    if (!lock.ok()) {
      if (metrics_ != nullptr) metrics_->errors->Increment();
      if (options_.on_error) options_.on_error(lock.status());
      continue;
    }
    if (*lock == nullptr) continue;
    absl::StatusOr<PurgeReport> report = RunOnce(absl::Now());
    if (!report.ok() && options_.on_error) options_.on_error(report.status());
  }
}

}  // namespace lotse::lifecycle
