// Retention of the audit chains: PruneAuditChain and the verification of a
// pruned chain from its base.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit/audit_log.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"

namespace lotse::audit {
namespace {

using storage::Transaction;
using storage::Value;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kEpoch = 1700000000;

// Record i happened at kEpoch + i seconds, about person "p<i>".
AuditRecord Record(int i, int64_t at_seconds) {
  AuditRecord r;
  r.time = absl::FromUnixSeconds(at_seconds);
  r.agency_id = "agency-jc-1";
  r.legal_domain = "JOBCENTER";
  r.actor = absl::StrCat("caseworker-", i);
  r.purpose = "PLACEMENT";
  r.operation = "lotse.identity.v1.IdentityService/GetPerson";
  r.resource = absl::StrCat("persons/p", i);
  r.data_categories = {"CORE_IDENTITY"};
  return r;
}

class AuditPruneTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(storage::ApplyMigrations(db(), AuditMigrations()).ok());
  }

  void AppendN(int n, Chain chain = Chain::kChanges) {
    for (int i = 1; i <= n; ++i) {
      ASSERT_TRUE(
          AppendAuditStandalone(db(), Record(i, kEpoch + i), chain).ok());
    }
  }

  int64_t Prune(int64_t before_offset, int max_rows,
                Chain chain = Chain::kChanges) {
    absl::StatusOr<int64_t> n = PruneAuditChain(
        db(), chain, absl::FromUnixSeconds(kEpoch + before_offset), max_rows);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  int64_t Count(const std::string& sql) {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    auto rows = (*tx)->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return *(*rows)[0].GetInt(0);
  }

  void Tamper(const std::string& sql, const std::vector<Value>& params = {}) {
    absl::Status s = storage::RunInTransaction(db(), [&](Transaction& tx) {
      return tx.Execute(sql, params).status();
    });
    ASSERT_TRUE(s.ok()) << s;
  }

  VerifyReport Verify(VerifyOptions options = {}) {
    absl::StatusOr<VerifyReport> report = VerifyAuditChain(db(), options);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.value_or(VerifyReport{});
  }
};

TEST_P(AuditPruneTest, DeletesTheDueRowsWithTheirPersonsAndStillVerifies) {
  AppendN(10);
  const absl::StatusOr<AuditHead> head = ReadAuditHead(db());
  ASSERT_TRUE(head.ok());
  // Records 1..4 happened before kEpoch + 5.
  EXPECT_EQ(Prune(5, 100), 4);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log"), 6);
  EXPECT_EQ(Count("SELECT MIN(seq) FROM audit_log"), 5);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log_persons WHERE seq <= 4"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log_persons"), 6);
  EXPECT_EQ(Count("SELECT seq FROM audit_log_base"), 4);

  VerifyReport report = Verify();
  EXPECT_TRUE(report.intact) << report.problem;
  EXPECT_EQ(report.rows_checked, 6);
  EXPECT_EQ(report.head.seq, head->seq);
  EXPECT_EQ(report.head.hash, head->hash);
  // The head is unchanged and the chain grows on from it.
  absl::StatusOr<AuditHead> after = ReadAuditHead(db());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->seq, head->seq);
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(11, kEpoch + 11)).ok());
  VerifyOptions small_pages;
  small_pages.page_size = 2;
  report = Verify(small_pages);
  EXPECT_TRUE(report.intact) << report.problem;
  EXPECT_EQ(report.rows_checked, 7);
  EXPECT_EQ(report.head.seq, 11);
  // Nothing more is due.
  EXPECT_EQ(Prune(5, 100), 0);
}

TEST_P(AuditPruneTest, PrunesInBatchesOfAtMostMaxRows) {
  AppendN(7);
  EXPECT_EQ(Prune(6, 2), 2);
  EXPECT_EQ(Prune(6, 2), 2);
  EXPECT_EQ(Prune(6, 2), 1);
  EXPECT_EQ(Prune(6, 2), 0);
  EXPECT_EQ(Count("SELECT MIN(seq) FROM audit_log"), 6);
  EXPECT_TRUE(Verify().intact);
  EXPECT_EQ(PruneAuditChain(db(), Chain::kChanges, absl::InfiniteFuture(), 0)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(AuditPruneTest, NeverDeletesTheNewestRow) {
  AppendN(3);
  EXPECT_EQ(Prune(1000, 100), 2);
  EXPECT_EQ(Prune(1000, 100), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log"), 1);
  VerifyReport report = Verify();
  EXPECT_TRUE(report.intact) << report.problem;
  EXPECT_EQ(report.rows_checked, 1);
  EXPECT_EQ(report.head.seq, 3);
  // An empty chain has nothing to prune.
  EXPECT_EQ(Prune(1000, 100, Chain::kReads), 0);
}

TEST_P(AuditPruneTest, StopsAtTheFirstRowNotYetDue) {
  // Record 2 carries a time after the cutoff; record 3 one before it. The
  // chain can only lose a prefix, so 3 stays until 2 is due.
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(1, kEpoch + 1)).ok());
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(2, kEpoch + 50)).ok());
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(3, kEpoch + 3)).ok());
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(4, kEpoch + 4)).ok());
  EXPECT_EQ(Prune(10, 100), 1);
  EXPECT_EQ(Count("SELECT MIN(seq) FROM audit_log"), 2);
  EXPECT_EQ(Prune(60, 100), 2);
  EXPECT_TRUE(Verify().intact);
}

TEST_P(AuditPruneTest, TamperingWithTheFirstRemainingRowOrTheBaseIsSeen) {
  AppendN(6);
  ASSERT_EQ(Prune(4, 100), 3);
  ASSERT_TRUE(Verify().intact);

  Tamper("UPDATE audit_log SET actor = 'someone' WHERE seq = 4");
  VerifyReport report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_THAT(report.problem, StartsWith("hash mismatch"));
  Tamper("UPDATE audit_log SET actor = 'caseworker-4' WHERE seq = 4");
  ASSERT_TRUE(Verify().intact);

  // Another hash in the base: the first remaining row no longer links.
  Tamper(
      "UPDATE audit_log_base SET hash = (SELECT hash FROM audit_log "
      "WHERE seq = 5)");
  report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_THAT(report.problem, StartsWith("prev_hash does not link"));
  Tamper(
      "UPDATE audit_log_base SET hash = (SELECT prev_hash FROM audit_log "
      "WHERE seq = 4)");
  ASSERT_TRUE(Verify().intact);

  // Another seq in the base, or no base at all: a gap.
  Tamper("UPDATE audit_log_base SET seq = 2");
  report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_THAT(report.problem, StartsWith("sequence gap"));
  Tamper("DELETE FROM audit_log_base");
  report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 1);
  EXPECT_THAT(report.problem, StartsWith("sequence gap"));
}

TEST_P(AuditPruneTest, PersonsLeftBehindByAPruneAreSeen) {
  AppendN(5);
  ASSERT_EQ(Prune(3, 100), 2);
  Tamper("INSERT INTO audit_log_persons (person_id, seq) VALUES ('p1', 1)");
  VerifyReport report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 1);
  EXPECT_THAT(report.problem, StartsWith("persons index mismatch"));
}

TEST_P(AuditPruneTest, AnExpectedHeadAtOrBelowTheBase) {
  AppendN(6);
  absl::StatusOr<VerifyReport> before = VerifyAuditChain(db());
  ASSERT_TRUE(before.ok());
  auto tx = db().Begin(storage::TxMode::kReadOnly);
  ASSERT_TRUE(tx.ok());
  auto rows = (*tx)->Query("SELECT seq, hash FROM audit_log ORDER BY seq");
  ASSERT_TRUE(rows.ok());
  std::vector<AuditHead> heads;
  for (const storage::Row& row : *rows) {
    heads.push_back({*row.GetInt(0), *row.GetBytes(1)});
  }
  tx->reset();
  ASSERT_EQ(Prune(4, 100), 3);

  // A head witnessed before the prune: at the base it is compared with the
  // base, below it there is nothing left to compare.
  for (int64_t seq : {2, 3, 6}) {
    VerifyOptions options;
    options.expected_head = heads[seq - 1];
    VerifyReport report = Verify(options);
    EXPECT_TRUE(report.intact) << seq << ": " << report.problem;
  }
  VerifyOptions wrong;
  wrong.expected_head = AuditHead{3, heads[0].hash};
  VerifyReport report = Verify(wrong);
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_THAT(report.problem, StartsWith("head hash mismatch"));
}

TEST_P(AuditPruneTest, ListingsShowOnlyTheRemainingRows) {
  AppendN(5);
  ASSERT_EQ(Prune(3, 100), 2);
  AuditDatabases dbs{&db(), nullptr};
  AuditFilter filter;
  filter.person_ids = {"p1", "p3"};
  absl::StatusOr<AuditRecordPage> page =
      ListAuditRecords(dbs, filter, AuditCursor{}, 100);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].record.seq, 3);
  absl::StatusOr<std::vector<AuditRecord>> p1 =
      ListAuditForResource(db(), "persons/p1");
  ASSERT_TRUE(p1.ok());
  EXPECT_TRUE(p1->empty());
}

TEST_P(AuditPruneTest, TheReadChainIsPrunedApart) {
  AppendN(4);
  AppendN(4, Chain::kReads);
  EXPECT_EQ(Prune(3, 100, Chain::kReads), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_read_log"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_read_log_persons"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log"), 4);
  VerifyOptions reads;
  reads.chain = Chain::kReads;
  VerifyReport report = Verify(reads);
  EXPECT_TRUE(report.intact) << report.problem;
  EXPECT_EQ(report.rows_checked, 2);
  EXPECT_TRUE(Verify().intact);

  // A database of its own for the read chain has its base too.
  absl::StatusOr<std::unique_ptr<storage::Database>> own =
      lotse::testing::NewTestDatabase(dialect());
  ASSERT_TRUE(own.ok()) << own.status();
  ASSERT_TRUE(storage::ApplyMigrations(**own, ReadAuditMigrations()).ok());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(
        AppendAuditStandalone(**own, Record(i, kEpoch + i), Chain::kReads)
            .ok());
  }
  absl::StatusOr<int64_t> n = PruneAuditChain(
      **own, Chain::kReads, absl::FromUnixSeconds(kEpoch + 100), 100);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  absl::StatusOr<VerifyReport> own_report = VerifyAuditChain(**own, reads);
  ASSERT_TRUE(own_report.ok());
  EXPECT_TRUE(own_report->intact) << own_report->problem;
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(AuditPruneTest);

}  // namespace
}  // namespace lotse::audit
