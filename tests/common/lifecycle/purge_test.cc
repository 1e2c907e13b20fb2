#include "common/lifecycle/purge.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/audit/audit_log.h"
#include "common/lifecycle/holds.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/support/test_database.h"

namespace lotse::lifecycle {
namespace {

using ::lotse::storage::Transaction;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromCivil(absl::CivilSecond(2026, 6, 1, 12, 0, 0),
                                        absl::UTCTimeZone());

constexpr char kRules[] =
    "retain booking category=LANGUAGE keep=1y from=END basis=\"test\"\n"
    "retain audit-record category=AUDIT keep=2y from=CREATE basis=\"test\"\n";

// A purge task over the table test_items, like a service's: deletes due
// rows no hold covers, and counts the due rows a hold keeps in its last
// batch.
absl::StatusOr<PurgeBatch> PurgeItems(Transaction& tx, absl::Time cutoff,
                                      absl::Time now, int limit) {
  const int64_t cutoff_us = absl::ToUnixMicros(cutoff);
  const int64_t now_us = absl::ToUnixMicros(now);
  absl::StatusOr<storage::Rows> rows = tx.Query(
      absl::StrCat("SELECT id, person FROM test_items i WHERE i.anchor_us <= "
                   "$1 AND ",
                   NotHeldCondition("i.person", "'cases/' || i.case_id", 2),
                   " ORDER BY id LIMIT $3"),
      {cutoff_us, now_us, static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.status();
  PurgeBatch batch;
  for (const storage::Row& row : *rows) {
    absl::StatusOr<int64_t> n =
        tx.Execute("DELETE FROM test_items WHERE id = $1", {*row.GetText(0)});
    if (!n.ok()) return n.status();
    batch.purged += *n;
    batch.persons.push_back(*row.GetText(1));
  }
  batch.more = static_cast<int>(rows->size()) == limit;
  if (!batch.more) {
    absl::StatusOr<storage::Rows> held = tx.Query(
        absl::StrCat("SELECT COUNT(*) FROM test_items i WHERE i.anchor_us <= "
                     "$1 AND NOT ",
                     NotHeldCondition("i.person", "'cases/' || i.case_id", 2)),
        {cutoff_us, now_us});
    if (!held.ok()) return held.status();
    batch.held = *(*held)[0].GetInt(0);
  }
  return batch;
}

class PurgeTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    std::vector<storage::Migration> migrations = audit::AuditMigrations();
    for (const storage::Migration& m : HoldMigrations())
      migrations.push_back(m);
    migrations.push_back(
        {"test.0001_items",
         "CREATE TABLE test_items (id TEXT PRIMARY KEY, person TEXT NOT NULL, "
         "case_id TEXT NOT NULL, anchor_us BIGINT NOT NULL)"});
    ASSERT_TRUE(storage::ApplyMigrations(db(), migrations).ok());
    absl::StatusOr<RetentionRules> rules = RetentionRules::Parse(kRules);
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    options_.service = "testsvc";
    options_.pause = absl::ZeroDuration();
  }

  void AddItem(const std::string& id, const std::string& person,
               absl::Time anchor, const std::string& case_id = "c0") {
    ASSERT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  return tx
                      .Execute(
                          "INSERT INTO test_items VALUES ($1, $2, $3, $4)",
                          {id, person, case_id, absl::ToUnixMicros(anchor)})
                      .status();
                }).ok());
  }

  void HoldSubject(const std::string& name, const std::string& subject,
                   const std::string& person) {
    identity::v1::LegalHold hold;
    hold.set_name(name);
    hold.set_subject(subject);
    hold.set_person(absl::StrCat("persons/", person));
    hold.mutable_end_date()->set_year(2030);
    hold.mutable_end_date()->set_month(1);
    hold.mutable_end_date()->set_day(1);
    ASSERT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  return ApplyHold(tx, hold);
                }).ok());
  }

  std::vector<std::string> Items() {
    std::vector<std::string> ids;
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    auto rows = (*tx)->Query("SELECT id FROM test_items ORDER BY id");
    EXPECT_TRUE(rows.ok()) << rows.status();
    for (const storage::Row& row : *rows) ids.push_back(*row.GetText(0));
    return ids;
  }

  std::vector<audit::AuditRecord> PurgeRecords(const std::string& kind) {
    absl::StatusOr<std::vector<audit::AuditRecord>> records =
        audit::ListAuditForResource(db(), absl::StrCat("retention/", kind));
    EXPECT_TRUE(records.ok()) << records.status();
    return records.value_or(std::vector<audit::AuditRecord>{});
  }

  std::vector<PurgeTask> Tasks() { return {{"booking", PurgeItems}}; }

  RetentionRules rules_;
  PurgeOptions options_;
};

double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::string& kind = "") {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      bool match = kind.empty();
      for (const prometheus::ClientMetric::Label& label : metric.label) {
        if (label.name == "kind" && label.value == kind) match = true;
      }
      if (!match) continue;
      return family.type == prometheus::MetricType::Counter
                 ? metric.counter.value
                 : metric.gauge.value;
    }
  }
  return -1;
}

TEST_P(PurgeTest, OnlyDueRowsGoAndEachBatchIsAudited) {
  AddItem("a", "p1", kNow - absl::Hours(24 * 800));
  AddItem("b", "p2", kNow - absl::Hours(24 * 366));
  AddItem("c", "p3", kNow - absl::Hours(24 * 180));
  PurgeJob job(db(), rules_, Tasks(), options_, nullptr);
  absl::StatusOr<PurgeReport> report = job.RunOnce(kNow);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->purged["booking"], 2);
  EXPECT_EQ(report->held["booking"], 0);
  EXPECT_THAT(Items(), ElementsAre("c"));

  std::vector<audit::AuditRecord> records = PurgeRecords("booking");
  ASSERT_EQ(records.size(), 1u);
  const audit::AuditRecord& r = records[0];
  EXPECT_EQ(r.operation, "lotse.lifecycle/Purge");
  EXPECT_EQ(r.agency_id, "testsvc");
  EXPECT_EQ(r.legal_domain, "SERVICE");
  EXPECT_EQ(r.purpose, "retention");
  EXPECT_EQ(r.time, kNow);
  EXPECT_THAT(r.persons, ElementsAre("p1", "p2"));
  EXPECT_THAT(r.data_categories, ElementsAre("LANGUAGE"));
  ASSERT_EQ(r.legal_bases.size(), 1u);
  EXPECT_EQ(r.legal_bases[0].kind, audit::BasisKind::kService);
  EXPECT_EQ(r.legal_bases[0].category, "LANGUAGE");

  // A second run finds nothing due and audits nothing.
  report = job.RunOnce(kNow);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->purged["booking"], 0);
  EXPECT_EQ(PurgeRecords("booking").size(), 1u);
  absl::StatusOr<audit::VerifyReport> chain = audit::VerifyAuditChain(db());
  ASSERT_TRUE(chain.ok());
  EXPECT_TRUE(chain->intact) << chain->problem;
}

TEST_P(PurgeTest, HeldRowsStayAndAreCounted) {
  const absl::Time old = kNow - absl::Hours(24 * 800);
  AddItem("a", "p1", old);
  AddItem("b", "p2", old, "c2");
  AddItem("c", "p2", old, "c3");
  AddItem("d", "p4", old);
  HoldSubject("legalHolds/1", "persons/p1", "p1");
  HoldSubject("legalHolds/2", "cases/c2", "p2");
  prometheus::Registry registry;
  PurgeJob job(db(), rules_, Tasks(), options_, &registry);
  absl::StatusOr<PurgeReport> report = job.RunOnce(kNow);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->purged["booking"], 2);
  EXPECT_EQ(report->held["booking"], 2);
  EXPECT_THAT(Items(), ElementsAre("a", "b"));
  EXPECT_EQ(MetricValue(registry, "lotse_purge_held_rows", "booking"), 2);
  EXPECT_EQ(MetricValue(registry, "lotse_purge_rows_total", "booking"), 2);
}

TEST_P(PurgeTest, MoreDueRowsRunMoreBatches) {
  for (int i = 0; i < 5; ++i) {
    AddItem(absl::StrCat("i", i), absl::StrCat("p", i),
            kNow - absl::Hours(24 * 400));
  }
  options_.batch_size = 2;
  PurgeJob job(db(), rules_, Tasks(), options_, nullptr);
  absl::StatusOr<PurgeReport> report = job.RunOnce(kNow);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->purged["booking"], 5);
  EXPECT_TRUE(Items().empty());
  std::vector<audit::AuditRecord> records = PurgeRecords("booking");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_THAT(records[0].persons, ElementsAre("p0", "p1"));
  EXPECT_THAT(records[2].persons, ElementsAre("p4"));
}

TEST_P(PurgeTest, AFailingBatchRollsBackWithItsAuditRecord) {
  for (int i = 0; i < 4; ++i) {
    AddItem(absl::StrCat("i", i), "p1", kNow - absl::Hours(24 * 400));
  }
  options_.batch_size = 2;
  int calls = 0;
  PurgeTask failing{"booking",
                    [&calls](Transaction& tx, absl::Time cutoff, absl::Time now,
                             int limit) -> absl::StatusOr<PurgeBatch> {
                      absl::StatusOr<PurgeBatch> batch =
                          PurgeItems(tx, cutoff, now, limit);
                      if (++calls == 2) {
                        return absl::InternalError("disk on fire");
                      }
                      return batch;
                    }};
  prometheus::Registry registry;
  PurgeJob job(db(), rules_, {failing}, options_, &registry);
  absl::StatusOr<PurgeReport> report = job.RunOnce(kNow);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(report.status().message(), HasSubstr("purge of booking"));
  // The first batch stays purged and audited; the second left nothing.
  EXPECT_THAT(Items(), ElementsAre("i2", "i3"));
  EXPECT_EQ(PurgeRecords("booking").size(), 1u);
  EXPECT_EQ(MetricValue(registry, "lotse_purge_errors_total"), 1);
  EXPECT_EQ(MetricValue(registry, "lotse_purge_rows_total", "booking"), 2);
  absl::StatusOr<audit::VerifyReport> chain = audit::VerifyAuditChain(db());
  ASSERT_TRUE(chain.ok());
  EXPECT_TRUE(chain->intact) << chain->problem;
}

TEST_P(PurgeTest, KindsWithoutARuleAreNeverRun) {
  AddItem("a", "p1", kNow - absl::Hours(24 * 4000));
  std::atomic<int> calls{0};
  PurgeTask offers{"offer",
                   [&calls](Transaction&, absl::Time, absl::Time,
                            int) -> absl::StatusOr<PurgeBatch> {
                     ++calls;
                     return PurgeBatch{};
                   }};
  PurgeJob job(db(), RetentionRules(), {offers, Tasks()[0]}, options_, nullptr);
  absl::StatusOr<PurgeReport> report = job.RunOnce(kNow);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(report->purged.empty());
  EXPECT_THAT(Items(), ElementsAre("a"));
}

TEST_P(PurgeTest, MetricsMove) {
  AddItem("a", "p1", kNow - absl::Hours(24 * 400));
  prometheus::Registry registry;
  PurgeJob job(db(), rules_, Tasks(), options_, &registry);
  ASSERT_TRUE(job.RunOnce(kNow).ok());
  EXPECT_EQ(MetricValue(registry, "lotse_purge_rows_total", "booking"), 1);
  EXPECT_EQ(MetricValue(registry, "lotse_purge_last_run_timestamp_seconds"),
            static_cast<double>(absl::ToUnixSeconds(kNow)));
  EXPECT_EQ(MetricValue(registry, "lotse_purge_errors_total"), 0);
  AddItem("b", "p1", kNow - absl::Hours(24 * 400));
  ASSERT_TRUE(job.RunOnce(kNow + absl::Hours(1)).ok());
  EXPECT_EQ(MetricValue(registry, "lotse_purge_rows_total", "booking"), 2);
  EXPECT_EQ(MetricValue(registry, "lotse_purge_last_run_timestamp_seconds"),
            static_cast<double>(absl::ToUnixSeconds(kNow + absl::Hours(1))));
}

TEST_P(PurgeTest, PrunesBothAuditChainsUpToAHeldPerson) {
  absl::StatusOr<std::unique_ptr<storage::Database>> reads =
      testing::NewTestDatabase(dialect());
  ASSERT_TRUE(reads.ok()) << reads.status();
  ASSERT_TRUE(
      storage::ApplyMigrations(**reads, audit::ReadAuditMigrations()).ok());
  auto record = [](const std::string& person, absl::Time at) {
    audit::AuditRecord r;
    r.time = at;
    r.agency_id = "agency-1";
    r.legal_domain = "JOBCENTER";
    r.actor = "cw";
    r.purpose = "test";
    r.operation = "op";
    r.resource = absl::StrCat("persons/", person);
    r.data_categories = {"CORE_IDENTITY"};
    return r;
  };
  const absl::Time old = kNow - absl::Hours(24 * 1000);
  // Change chain: 3 old records, the third about held p9, then a new one.
  // The prune stops at the time of p9's first record (a record at the same
  // time as it stays too: the cut errs on keeping).
  int minute = 0;
  for (const char* person : {"p1", "p2", "p9", "p3"}) {
    const absl::Time at = std::string(person) == "p3"
                              ? kNow - absl::Hours(1)
                              : old + absl::Minutes(++minute);
    ASSERT_TRUE(audit::AppendAuditStandalone(db(), record(person, at)).ok());
  }
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(audit::AppendAuditStandalone(**reads,
                                             record("p1", i < 3 ? old : kNow),
                                             audit::Chain::kReads)
                    .ok());
  }
  HoldSubject("legalHolds/9", "persons/p9", "p9");
  options_.read_audit_database = reads->get();
  PurgeJob job(db(), rules_, {}, options_, nullptr);
  absl::StatusOr<PurgeReport> report = job.RunOnce(kNow);
  ASSERT_TRUE(report.ok()) << report.status();
  // Change chain: p1 and p2 (not p9's nor what follows it); reads: 3.
  EXPECT_EQ(report->purged["audit-record"], 5);
  EXPECT_EQ(report->held["audit-record"], 1);
  absl::StatusOr<storage::Rows> remaining = [&] {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    return (*tx)->Query("SELECT MIN(seq) FROM audit_log");
  }();
  ASSERT_TRUE(remaining.ok());
  EXPECT_EQ(*(*remaining)[0].GetInt(0), 3);
  std::vector<audit::AuditRecord> records = PurgeRecords("audit-record");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[0].reason, HasSubstr("chain changes"));
  EXPECT_THAT(records[1].reason, HasSubstr("chain reads"));
  for (storage::Database* chain_db : {&db(), reads->get()}) {
    audit::VerifyOptions verify;
    verify.chain =
        chain_db == &db() ? audit::Chain::kChanges : audit::Chain::kReads;
    absl::StatusOr<audit::VerifyReport> chain =
        audit::VerifyAuditChain(*chain_db, verify);
    ASSERT_TRUE(chain.ok());
    EXPECT_TRUE(chain->intact) << chain->problem;
  }
}

TEST_P(PurgeTest, TheThreadRunsEveryIntervalUntilStopped) {
  AddItem("a", "p1", absl::Now() - absl::Hours(24 * 400));
  options_.interval = absl::Milliseconds(20);
  prometheus::Registry registry;
  PurgeJob job(db(), rules_, Tasks(), options_, &registry);
  job.Start();
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!Items().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(Items().empty());
  job.Stop();
  job.Stop();  // idempotent
  AddItem("b", "p1", absl::Now() - absl::Hours(24 * 400));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_THAT(Items(), ElementsAre("b"));
  EXPECT_GT(MetricValue(registry, "lotse_purge_last_run_timestamp_seconds"), 0);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(PurgeTest);

}  // namespace
}  // namespace lotse::lifecycle
