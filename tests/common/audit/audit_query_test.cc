// Persons and legal bases in audit records (format 2), rows of format 1
// written before them, and ListAuditRecords over both chains.
#include <memory>
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

using storage::Bytes;
using storage::Transaction;
using storage::Value;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

AuditRecord Record(int i, std::string resource, std::string agency = "jc-1") {
  AuditRecord r;
  r.time = absl::FromUnixSeconds(1700000000 + i);
  r.agency_id = std::move(agency);
  r.legal_domain = "JOBCENTER";
  r.actor = absl::StrCat("caseworker-", i);
  r.purpose = "PLACEMENT";
  r.operation = "lotse.cases.v1.CasesService/GetCase";
  r.resource = std::move(resource);
  r.data_categories = {"CASE_STATUS"};
  return r;
}

std::vector<int64_t> Seqs(const AuditRecordPage& page, Chain chain) {
  std::vector<int64_t> out;
  for (const ListedAuditRecord& r : page.records) {
    if (r.chain == chain) out.push_back(r.record.seq);
  }
  return out;
}

class AuditQueryTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(storage::ApplyMigrations(db(), AuditMigrations()).ok());
  }

  void Exec(const std::string& sql, const std::vector<Value>& params = {}) {
    absl::Status s = storage::RunInTransaction(db(), [&](Transaction& tx) {
      return tx.Execute(sql, params).status();
    });
    ASSERT_TRUE(s.ok()) << s;
  }

  AuditRecordPage List(const AuditFilter& filter, AuditCursor cursor = {},
                       int page_size = 100) {
    absl::StatusOr<AuditRecordPage> page =
        ListAuditRecords({&db(), nullptr}, filter, cursor, page_size);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *page : AuditRecordPage{};
  }

  VerifyReport Verify(Chain chain = Chain::kChanges) {
    VerifyOptions options;
    options.chain = chain;
    absl::StatusOr<VerifyReport> report = VerifyAuditChain(db(), options);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : VerifyReport{};
  }
};

TEST_P(AuditQueryTest, PersonsComeFromTheResourceAndTheRecordAndAreHashed) {
  AuditRecord r = Record(1, "persons/p1/candidate");
  r.persons = {"p9", "p1"};
  r.legal_bases = {
      {"CASE_STATUS", BasisKind::kRule, "kommune-case-status", ""},
      {"HEALTH", BasisKind::kConsent, "", "persons/p1/consents/c"}};
  ASSERT_TRUE(AppendAuditStandalone(db(), r).ok());
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(2, "cases/c1")).ok());

  AuditFilter filter;
  filter.person_ids = {"p9"};
  AuditRecordPage page = List(filter);
  ASSERT_EQ(page.records.size(), 1u);
  const AuditRecord& got = page.records[0].record;
  EXPECT_EQ(got.format, kCurrentAuditFormat);
  EXPECT_THAT(got.persons, ElementsAre("p1", "p9"));  // sorted, deduplicated
  EXPECT_EQ(got.legal_bases, r.legal_bases);
  EXPECT_FALSE(page.next.has_value());
  EXPECT_TRUE(Verify().intact);

  // The persons and the bases are covered by the hash.
  Exec("UPDATE audit_log SET persons = 'p1' WHERE seq = 1");
  VerifyReport report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 1);
  EXPECT_THAT(report.problem, HasSubstr("hash mismatch"));
  Exec(
      "UPDATE audit_log SET persons = 'p1,p9', legal_bases = "
      "'CASE_STATUS|OWNER||' WHERE seq = 1");
  report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 1);
}

TEST_P(AuditQueryTest, RowsOfFormatOneStillVerifyAndCannotGainPersons) {
  // A row as written before persons existed: format 1 bytes, and the
  // columns' defaults.
  AuditRecord old = Record(1, "persons/p1/case");
  old.seq = 1;
  old.format = 1;
  const std::string zero(32, '\0');
  const std::string hash = ComputeAuditHash(zero, old);
  Exec(
      "INSERT INTO audit_log (seq, time_micros, agency_id, legal_domain, "
      "actor, purpose, operation, resource, data_categories, outcome, reason, "
      "prev_hash, hash) VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, 'ALLOWED', "
      "'', $9, $10)",
      {Value(absl::ToUnixMicros(old.time)), Value(old.agency_id),
       Value(old.legal_domain), Value(old.actor), Value(old.purpose),
       Value(old.operation), Value(Bytes{old.resource}), Value("CASE_STATUS"),
       Value(Bytes{zero}), Value(Bytes{hash})});
  EXPECT_NE(hash, ComputeAuditHash(zero, [&] {
              AuditRecord v2 = old;
              v2.format = 2;
              return v2;
            }()));
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(2, "persons/p1/case")).ok());
  VerifyReport report = Verify();
  EXPECT_TRUE(report.intact) << report.problem;
  EXPECT_EQ(report.rows_checked, 2);

  // Only the new row is in the person index.
  AuditFilter filter;
  filter.person_ids = {"p1"};
  EXPECT_THAT(Seqs(List(filter), Chain::kChanges), ElementsAre(2));

  // Persons written into an old row are not covered by its hash: refused.
  Exec("UPDATE audit_log SET persons = 'p2' WHERE seq = 1");
  report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 1);
  EXPECT_THAT(report.problem, HasSubstr("bad row"));

  // Declaring an old row format 2 breaks its hash.
  Exec("UPDATE audit_log SET persons = '', format = 2 WHERE seq = 1");
  report = Verify();
  EXPECT_FALSE(report.intact);
  EXPECT_EQ(report.first_bad_seq, 1);
}

TEST_P(AuditQueryTest, FiltersCombineAcrossBothChainsAndPage) {
  // Changes: 1 p1/jc-1, 2 p2/jc-1, 3 p1/ab-1, 4 p1/jc-1 (later).
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(1, "persons/p1/x")).ok());
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(2, "persons/p2/x")).ok());
  ASSERT_TRUE(
      AppendAuditStandalone(db(), Record(3, "persons/p1/x", "ab-1")).ok());
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(10, "persons/p1/x")).ok());
  // Reads: 1 p1/jc-1, 2 p3/jc-1.
  ASSERT_TRUE(
      AppendAuditStandalone(db(), Record(4, "persons/p1/x"), Chain::kReads)
          .ok());
  ASSERT_TRUE(
      AppendAuditStandalone(db(), Record(5, "persons/p3/x"), Chain::kReads)
          .ok());

  AuditFilter p1;
  p1.person_ids = {"p1"};
  AuditRecordPage all = List(p1);
  EXPECT_THAT(Seqs(all, Chain::kChanges), ElementsAre(1, 3, 4));
  EXPECT_THAT(Seqs(all, Chain::kReads), ElementsAre(1));
  ASSERT_EQ(all.records.size(), 4u);
  EXPECT_EQ(all.records[0].chain, Chain::kChanges);  // changes first
  EXPECT_EQ(all.records[3].chain, Chain::kReads);

  AuditFilter several = p1;
  several.person_ids = {"p1", "p3"};
  EXPECT_THAT(Seqs(List(several), Chain::kReads), ElementsAre(1, 2));

  AuditFilter by_agency = p1;
  by_agency.agency_id = "ab-1";
  EXPECT_THAT(Seqs(List(by_agency), Chain::kChanges), ElementsAre(3));
  EXPECT_TRUE(Seqs(List(by_agency), Chain::kReads).empty());

  AuditFilter by_time;
  by_time.start = absl::FromUnixSeconds(1700000002);
  by_time.end = absl::FromUnixSeconds(1700000005);
  EXPECT_THAT(Seqs(List(by_time), Chain::kChanges), ElementsAre(2, 3));
  EXPECT_THAT(Seqs(List(by_time), Chain::kReads), ElementsAre(1));

  AuditFilter reads_only = p1;
  reads_only.chain = Chain::kReads;
  EXPECT_THAT(Seqs(List(reads_only, {Chain::kReads, 0}), Chain::kReads),
              ElementsAre(1));
  // A cursor into a chain the filter excludes.
  EXPECT_TRUE(absl::IsInvalidArgument(
      ListAuditRecords({&db(), nullptr}, reads_only, {Chain::kChanges, 0}, 10)
          .status()));

  // Pages of one: every record once, across the chain boundary.
  std::vector<std::pair<Chain, int64_t>> seen;
  AuditCursor cursor;
  for (int pages = 0; pages < 10; ++pages) {
    AuditRecordPage page = List(p1, cursor, 1);
    for (const ListedAuditRecord& r : page.records) {
      seen.push_back({r.chain, r.record.seq});
    }
    if (!page.next) break;
    cursor = *page.next;
  }
  EXPECT_THAT(seen, ElementsAre(std::pair{Chain::kChanges, int64_t{1}},
                                std::pair{Chain::kChanges, int64_t{3}},
                                std::pair{Chain::kChanges, int64_t{4}},
                                std::pair{Chain::kReads, int64_t{1}}));
}

TEST_P(AuditQueryTest, TheReadChainInADatabaseOfItsOwnIsListedToo) {
  absl::StatusOr<std::unique_ptr<storage::Database>> reads =
      lotse::testing::NewTestDatabase(dialect());
  ASSERT_TRUE(reads.ok()) << reads.status();
  ASSERT_TRUE(storage::ApplyMigrations(**reads, ReadAuditMigrations()).ok());
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(1, "persons/p1/x")).ok());
  ASSERT_TRUE(
      AppendAuditStandalone(**reads, Record(2, "persons/p1/y"), Chain::kReads)
          .ok());
  AuditFilter filter;
  filter.person_ids = {"p1"};
  absl::StatusOr<AuditRecordPage> page =
      ListAuditRecords({&db(), reads->get()}, filter, {}, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records.size(), 2u);
  EXPECT_EQ(page->records[1].chain, Chain::kReads);
  EXPECT_EQ(page->records[1].record.resource, "persons/p1/y");
}

TEST_P(AuditQueryTest, RejectsPersonsAndBasesTheStoredFormCannotHold) {
  AuditRecord r = Record(1, "cases/c");
  r.persons = {"a/b"};
  EXPECT_TRUE(absl::IsInvalidArgument(AppendAuditStandalone(db(), r)));
  r.persons = {""};
  EXPECT_TRUE(absl::IsInvalidArgument(AppendAuditStandalone(db(), r)));
  r.persons = {"a,b"};
  EXPECT_TRUE(absl::IsInvalidArgument(AppendAuditStandalone(db(), r)));
  r.persons = {};
  r.legal_bases = {{"CASE_STATUS", BasisKind::kRule, "a|b", ""}};
  EXPECT_TRUE(absl::IsInvalidArgument(AppendAuditStandalone(db(), r)));
  r.legal_bases = {{"", BasisKind::kOwner, "", ""}};
  EXPECT_TRUE(absl::IsInvalidArgument(AppendAuditStandalone(db(), r)));
  absl::StatusOr<AuditHead> head = ReadAuditHead(db());
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 0);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(AuditQueryTest);

}  // namespace
}  // namespace lotse::audit
