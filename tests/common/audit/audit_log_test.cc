#include "common/audit/audit_log.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/errors/status.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_database.h"

namespace lotse::audit {
namespace {

using storage::Bytes;
using storage::Transaction;
using storage::Value;
using ::testing::HasSubstr;
using ::testing::StartsWith;

AuditRecord MakeRecord(int i, std::string resource = "persons/abc") {
  AuditRecord r;
  r.time = absl::FromUnixSeconds(1700000000 + i);
  r.agency_id = "agency-jc-1";
  r.legal_domain = "JOBCENTER";
  r.actor = absl::StrCat("caseworker-", i);
  r.purpose = "PLACEMENT";
  r.operation = "lotse.identity.v1.IdentityService/GetPerson";
  r.resource = std::move(resource);
  r.data_categories = {"CORE_IDENTITY", "RESIDENCE_STATUS"};
  r.outcome = i % 3 == 0 ? Outcome::kDenied : Outcome::kAllowed;
  r.reason = i % 3 == 0 ? "NO_LEGAL_BASIS" : "";
  return r;
}

class AuditLogTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(storage::ApplyMigrations(db(), AuditMigrations()).ok());
  }

  void AppendN(int n) {
    for (int i = 1; i <= n; ++i) {
      ASSERT_TRUE(AppendAuditStandalone(db(), MakeRecord(i)).ok());
    }
  }

  // Runs one tampering statement, as an attacker with database access would.
  void Tamper(const std::string& sql, const std::vector<Value>& params = {}) {
    absl::Status s = storage::RunInTransaction(db(), [&](Transaction& tx) {
      return tx.Execute(sql, params).status();
    });
    ASSERT_TRUE(s.ok()) << s;
  }

  std::string HashOf(int64_t seq) {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok());
    auto rows =
        (*tx)->Query("SELECT hash FROM audit_log WHERE seq = $1", {Value(seq)});
    EXPECT_TRUE(rows.ok() && rows->size() == 1);
    return *(*rows)[0].GetBytes(0);
  }

  int64_t CountRows() {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    auto rows = (*tx)->Query("SELECT COUNT(*) FROM audit_log");
    return *(*rows)[0].GetInt(0);
  }

  VerifyReport Verify(const VerifyOptions& options = {}) {
    auto report = VerifyAuditChain(db(), options);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : VerifyReport{};
  }
};

TEST_P(AuditLogTest, RolledBackAppendLeavesNoRow) {
  {
    auto tx = db().Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(AppendAudit(**tx, MakeRecord(1)).ok());
    // Destroyed without Commit: rolled back with the change it recorded.
  }
  EXPECT_EQ(CountRows(), 0);
  auto tx = db().Begin();
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE(AppendAudit(**tx, MakeRecord(2)).ok());
  ASSERT_TRUE((*tx)->Commit().ok());
  EXPECT_EQ(CountRows(), 1);
  // The committed row starts the chain at seq 1.
  auto head = ReadAuditHead(db());
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 1);
}

TEST_P(AuditLogTest, IntactChainVerifiesAcrossPages) {
  VerifyReport empty = Verify();
  EXPECT_TRUE(empty.intact);
  EXPECT_EQ(empty.rows_checked, 0);

  AppendN(7);
  for (int page_size : {1, 2, 3, 1000}) {
    VerifyOptions options;
    options.page_size = page_size;
    VerifyReport report = Verify(options);
    EXPECT_TRUE(report.intact) << report.problem;
    EXPECT_EQ(report.rows_checked, 7);
    EXPECT_EQ(report.first_bad_seq, 0);
  }
  auto head = ReadAuditHead(db());
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 7);
  EXPECT_EQ(head->hash, HashOf(7));
  VerifyOptions with_head;
  with_head.expected_head = *head;
  EXPECT_TRUE(Verify(with_head).intact);
  EXPECT_EQ(Verify().head.hash, head->hash);
}

TEST_P(AuditLogTest, FirstRowLinksToZeroHash) {
  AppendN(1);
  auto tx = db().Begin(storage::TxMode::kReadOnly);
  auto rows = (*tx)->Query("SELECT prev_hash, hash FROM audit_log");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*(*rows)[0].GetBytes(0), std::string(32, '\0'));
  EXPECT_EQ((*rows)[0].GetBytes(1)->size(), 32u);
}

TEST_P(AuditLogTest, DetectsEditedField) {
  AppendN(5);
  Tamper("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3");
  VerifyOptions options;
  options.page_size = 2;
  VerifyReport report = Verify(options);
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_THAT(report.problem, StartsWith("hash mismatch"));
  EXPECT_EQ(report.rows_checked, 2);
}

TEST_P(AuditLogTest, DetectsEditedOutcomeAndCategories) {
  AppendN(5);
  // Row 3 was DENIED; rewriting it as allowed must not go unnoticed.
  Tamper("UPDATE audit_log SET outcome = 'ALLOWED', reason = '' WHERE seq = 3");
  EXPECT_EQ(Verify().first_bad_seq, 3);
  Tamper(
      "UPDATE audit_log SET data_categories = 'CORE_IDENTITY' WHERE seq = 2");
  VerifyReport report = Verify();
  EXPECT_EQ(report.first_bad_seq, 2);
  EXPECT_THAT(report.problem, StartsWith("hash mismatch"));
}

TEST_P(AuditLogTest, DetectsDeletedMiddleRow) {
  AppendN(5);
  Tamper("DELETE FROM audit_log WHERE seq = 3");
  VerifyReport report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_THAT(report.problem, StartsWith("sequence gap"));
}

TEST_P(AuditLogTest, DetectsDeletedFirstRow) {
  AppendN(3);
  Tamper("DELETE FROM audit_log WHERE seq = 1");
  VerifyReport report = Verify();
  EXPECT_EQ(report.first_bad_seq, 1);
  EXPECT_THAT(report.problem, StartsWith("sequence gap"));
}

TEST_P(AuditLogTest, DetectsSwappedRows) {
  AppendN(5);
  // Swap every column but seq between rows 3 and 4.
  const std::string cols =
      "time_micros, agency_id, legal_domain, actor, purpose, operation, "
      "resource, data_categories, outcome, reason, prev_hash, hash";
  auto tx = db().Begin(storage::TxMode::kReadOnly);
  auto rows = (*tx)->Query(absl::StrCat("SELECT ", cols,
                                        " FROM audit_log WHERE seq IN (3, 4) "
                                        "ORDER BY seq"));
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  tx->reset();
  const std::string update =
      "UPDATE audit_log SET time_micros = $2, agency_id = $3, "
      "legal_domain = $4, actor = $5, purpose = $6, operation = $7, "
      "resource = $8, data_categories = $9, outcome = $10, reason = $11, "
      "prev_hash = $12, hash = $13 WHERE seq = $1";
  for (int i = 0; i < 2; ++i) {
    const storage::Row& other = (*rows)[1 - i];
    std::vector<Value> params = {Value(int64_t{3 + i})};
    for (size_t c = 0; c < other.size(); ++c) params.push_back(other.cell(c));
    Tamper(update, params);
  }
  VerifyReport report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_THAT(report.problem, StartsWith("prev_hash does not link"));
}

TEST_P(AuditLogTest, DetectsInsertedForgedRow) {
  AppendN(5);
  // Make room at seq 3 (from the top, so the primary key never collides),
  // then insert a self-consistent forged row that links to row 2.
  for (int64_t seq = 5; seq >= 3; --seq) {
    Tamper("UPDATE audit_log SET seq = seq + 1 WHERE seq = $1", {Value(seq)});
    Tamper("UPDATE audit_log_persons SET seq = seq + 1 WHERE seq = $1",
           {Value(seq)});
  }
  AuditRecord forged = MakeRecord(99);
  forged.seq = 3;
  forged.format = 1;  // the INSERT below leaves `format` at its default, 1
  const std::string prev = HashOf(2);
  const std::string hash = ComputeAuditHash(prev, forged);
  Tamper(
      "INSERT INTO audit_log (seq, time_micros, agency_id, legal_domain, "
      "actor, purpose, operation, resource, data_categories, outcome, reason, "
      "prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
      "$12, $13)",
      {Value(int64_t{3}), Value(absl::ToUnixMicros(forged.time)),
       Value(forged.agency_id), Value(forged.legal_domain), Value(forged.actor),
       Value(forged.purpose), Value(forged.operation),
       Value(Bytes{forged.resource}),
       Value(std::string("CORE_IDENTITY,RESIDENCE_STATUS")),
       Value(std::string("DENIED")), Value(forged.reason), Value(Bytes{prev}),
       Value(Bytes{hash})});
  VerifyReport report = Verify();
  EXPECT_FALSE(report.intact);
  // The forged row itself is consistent; the row after it no longer links.
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_THAT(report.problem, StartsWith("prev_hash does not link"));
}

TEST_P(AuditLogTest, DetectsAppendedRowWithWrongLink) {
  AppendN(3);
  AuditRecord forged = MakeRecord(4);
  forged.seq = 4;
  const std::string wrong_prev(32, 'x');
  Tamper(
      "INSERT INTO audit_log (seq, time_micros, agency_id, legal_domain, "
      "actor, purpose, operation, resource, data_categories, outcome, reason, "
      "prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
      "$12, $13)",
      {Value(int64_t{4}), Value(absl::ToUnixMicros(forged.time)),
       Value(forged.agency_id), Value(forged.legal_domain), Value(forged.actor),
       Value(forged.purpose), Value(forged.operation),
       Value(Bytes{forged.resource}), Value(std::string("CORE_IDENTITY")),
       Value(std::string("ALLOWED")), Value(forged.reason),
       Value(Bytes{wrong_prev}),
       Value(Bytes{ComputeAuditHash(wrong_prev, forged)})});
  VerifyReport report = Verify();
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_THAT(report.problem, StartsWith("prev_hash does not link"));
}

TEST_P(AuditLogTest, DetectsTruncatedTailAgainstExpectedHead) {
  AppendN(5);
  auto head = ReadAuditHead(db());
  ASSERT_TRUE(head.ok());
  Tamper("DELETE FROM audit_log WHERE seq >= 4");
  Tamper("DELETE FROM audit_log_persons WHERE seq >= 4");
  // Without a remembered head the shorter chain, its person index cut back
  // with it, is self-consistent.
  EXPECT_TRUE(Verify().intact);
  VerifyOptions options;
  options.expected_head = *head;
  VerifyReport report = Verify(options);
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_THAT(report.problem, StartsWith("truncated"));
  EXPECT_EQ(report.rows_checked, 3);
}

TEST_P(AuditLogTest, DetectsTamperingWithThePersonIndex) {
  AppendN(5);
  VerifyOptions options;
  options.page_size = 2;
  ASSERT_TRUE(Verify(options).intact);

  // A side row deleted hides record 4 from the person's filter.
  Tamper("DELETE FROM audit_log_persons WHERE seq = 4");
  VerifyReport report = Verify(options);
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_THAT(report.problem, StartsWith("persons index mismatch"));
  Tamper("INSERT INTO audit_log_persons (person_id, seq) VALUES ('abc', 4)");
  ASSERT_TRUE(Verify(options).intact);

  // A side row added shows record 2 to someone it is not about.
  Tamper("INSERT INTO audit_log_persons (person_id, seq) VALUES ('xyz', 2)");
  report = Verify(options);
  EXPECT_EQ(report.first_bad_seq, 2);
  EXPECT_THAT(report.problem, StartsWith("persons index mismatch"));
  Tamper("DELETE FROM audit_log_persons WHERE person_id = 'xyz'");

  // Ahead of a break further on in the same page, the earlier mismatch is
  // the one reported.
  Tamper("DELETE FROM audit_log_persons WHERE seq = 1");
  Tamper("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2");
  report = Verify(options);
  EXPECT_EQ(report.first_bad_seq, 1);
  EXPECT_THAT(report.problem, StartsWith("persons index mismatch"));
}

TEST_P(AuditLogTest, ATailCutFromTheChainAloneShowsInThePersonIndex) {
  AppendN(5);
  Tamper("DELETE FROM audit_log WHERE seq >= 4");
  // No head remembered, but the index still names records 4 and 5.
  VerifyReport report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_THAT(report.problem, StartsWith("persons index mismatch"));
}

TEST_P(AuditLogTest, ExpectedHeadInsideLongerChainMustMatch) {
  AppendN(3);
  auto head = ReadAuditHead(db());
  ASSERT_TRUE(head.ok());
  AppendN(2);  // the chain grew since the head was taken: still fine
  VerifyOptions options;
  options.expected_head = *head;
  EXPECT_TRUE(Verify(options).intact);
  // A chain rebuilt from seq 3 on (all hashes recomputed) no longer matches.
  options.expected_head->hash = std::string(32, 'y');
  VerifyReport report = Verify(options);
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_THAT(report.problem, StartsWith("head hash mismatch"));
}

TEST_P(AuditLogTest, ConcurrentAppendsFormOneContiguousChain) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 15;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!AppendAuditStandalone(db(), MakeRecord(t * 100 + i)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  VerifyReport report = Verify();
  EXPECT_TRUE(report.intact) << report.problem;
  EXPECT_EQ(report.rows_checked, kThreads * kPerThread);
  EXPECT_EQ(report.head.seq, kThreads * kPerThread);
}

TEST_P(AuditLogTest, ListsRowsOfResourceAndSubresources) {
  for (const char* resource :
       {"persons/abc", "persons/abcd", "persons/abc/consents/1", "cases/x",
        "persons/abc", "persons/ab"}) {
    ASSERT_TRUE(AppendAuditStandalone(db(), MakeRecord(1, resource)).ok());
  }
  auto rows = ListAuditForResource(db(), "persons/abc");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].seq, 1);
  EXPECT_EQ((*rows)[1].resource, "persons/abc/consents/1");
  EXPECT_EQ((*rows)[2].seq, 5);
  EXPECT_EQ((*rows)[0].agency_id, "agency-jc-1");
  EXPECT_EQ((*rows)[0].data_categories,
            (std::vector<std::string>{"CORE_IDENTITY", "RESIDENCE_STATUS"}));
  EXPECT_EQ((*rows)[0].hash.size(), 32u);

  ListAuditOptions page;
  page.page_size = 2;
  rows = ListAuditForResource(db(), "persons/abc", page);
  ASSERT_EQ(rows->size(), 2u);
  page.after_seq = rows->back().seq;
  rows = ListAuditForResource(db(), "persons/abc", page);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].seq, 5);
  EXPECT_TRUE(absl::IsInvalidArgument(ListAuditForResource(db(), "").status()));
}

TEST_P(AuditLogTest, TheTwoChainsAreNumberedVerifiedAndListedApart) {
  AppendN(3);
  for (int i = 1; i <= 2; ++i) {
    ASSERT_TRUE(
        AppendAuditStandalone(db(), MakeRecord(10 + i), Chain::kReads).ok());
  }
  absl::StatusOr<AuditHead> changes = ReadAuditHead(db());
  absl::StatusOr<AuditHead> reads = ReadAuditHead(db(), Chain::kReads);
  ASSERT_TRUE(changes.ok() && reads.ok());
  EXPECT_EQ(changes->seq, 3);
  EXPECT_EQ(reads->seq, 2);  // numbered from 1 on its own
  EXPECT_NE(changes->hash, reads->hash);

  VerifyOptions verify;
  verify.chain = Chain::kReads;
  absl::StatusOr<VerifyReport> report = VerifyAuditChain(db(), verify);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->intact) << report->problem;
  EXPECT_EQ(report->rows_checked, 2);
  EXPECT_EQ(report->head.hash, reads->hash);

  ListAuditOptions list;
  list.chain = Chain::kReads;
  absl::StatusOr<std::vector<AuditRecord>> rows =
      ListAuditForResource(db(), "persons/abc", list);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].actor, "caseworker-11");

  // Tampering with the read chain is seen there, not in the change chain.
  Tamper("UPDATE audit_read_log SET actor = 'someone' WHERE seq = 2");
  report = VerifyAuditChain(db(), verify);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->intact);
  EXPECT_EQ(report->first_bad_seq, 2);
  report = VerifyAuditChain(db());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->intact);
  EXPECT_EQ(report->rows_checked, 3);
}

TEST_P(AuditLogTest, ADatabaseOfItsOwnHoldsOnlyTheReadChain) {
  absl::StatusOr<std::unique_ptr<storage::Database>> reads =
      lotse::testing::NewTestDatabase(dialect());
  ASSERT_TRUE(reads.ok()) << reads.status();
  ASSERT_TRUE(storage::ApplyMigrations(**reads, ReadAuditMigrations()).ok());
  EXPECT_TRUE(
      AppendAuditStandalone(**reads, MakeRecord(1), Chain::kReads).ok());
  // The change chain's table is not there.
  EXPECT_FALSE(AppendAuditStandalone(**reads, MakeRecord(2)).ok());
  absl::StatusOr<AuditHead> head = ReadAuditHead(**reads, Chain::kReads);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 1);
}

TEST_P(AuditLogTest, RejectsAmbiguousCategory) {
  AuditRecord r = MakeRecord(1);
  r.data_categories = {"A,B"};
  EXPECT_TRUE(absl::IsInvalidArgument(AppendAuditStandalone(db(), r)));
  r.data_categories = {""};
  EXPECT_TRUE(absl::IsInvalidArgument(AppendAuditStandalone(db(), r)));
  EXPECT_EQ(CountRows(), 0);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(AuditLogTest);

TEST(CanonicalAuditBytesTest, FieldBoundariesMatter) {
  AuditRecord a = MakeRecord(1);
  AuditRecord b = a;
  a.agency_id = "ab";
  a.legal_domain = "c";
  b.agency_id = "a";
  b.legal_domain = "bc";
  EXPECT_NE(CanonicalAuditBytes(a), CanonicalAuditBytes(b));
  EXPECT_NE(ComputeAuditHash(std::string(32, '\0'), a),
            ComputeAuditHash(std::string(32, '\0'), b));

  AuditRecord c = MakeRecord(1);
  AuditRecord d = c;
  c.data_categories = {"ab"};
  d.data_categories = {"a", "b"};
  EXPECT_NE(CanonicalAuditBytes(c), CanonicalAuditBytes(d));

  // Moving text between the last string field and the category list.
  AuditRecord e = MakeRecord(1);
  AuditRecord f = e;
  e.resource = "persons/x";
  e.data_categories = {};
  f.resource = "persons/";
  f.data_categories = {"x"};
  EXPECT_NE(CanonicalAuditBytes(e), CanonicalAuditBytes(f));
}

TEST(CanonicalAuditBytesTest, SeqTimeAndOutcomeMatter) {
  AuditRecord a = MakeRecord(1);
  a.seq = 1;
  AuditRecord b = a;
  b.seq = 2;
  EXPECT_NE(CanonicalAuditBytes(a), CanonicalAuditBytes(b));
  b = a;
  b.time += absl::Microseconds(1);
  EXPECT_NE(CanonicalAuditBytes(a), CanonicalAuditBytes(b));
  b = a;
  b.outcome = Outcome::kError;
  EXPECT_NE(CanonicalAuditBytes(a), CanonicalAuditBytes(b));
  EXPECT_EQ(ComputeAuditHash(std::string(32, '\0'), a).size(), 32u);
  EXPECT_EQ(ComputeAuditHash(std::string(32, '\0'), a),
            ComputeAuditHash(std::string(32, '\0'), a));
}

TEST_P(AuditLogTest, FailedCallsAreRecordedAsDeniedOrError) {
  AuditRecord base = MakeRecord(1);
  base.resource = "persons/failed";
  ASSERT_TRUE(
      AppendFailedCallAudit(db(), base,
                            ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                            "NO_LEGAL_BASIS", "denied"))
          .ok());
  ASSERT_TRUE(
      AppendFailedCallAudit(db(), base, absl::NotFoundError("gone")).ok());
  auto rows = ListAuditForResource(db(), "persons/failed");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].outcome, Outcome::kDenied);
  EXPECT_EQ((*rows)[0].reason, "NO_LEGAL_BASIS");
  EXPECT_EQ((*rows)[1].outcome, Outcome::kError);
  EXPECT_EQ((*rows)[1].reason, "NOT_FOUND");
  EXPECT_TRUE(Verify().intact);
}

}  // namespace
}  // namespace lotse::audit
