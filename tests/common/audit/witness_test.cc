// The check of a chain against witnessed heads, combined with the hash walk:
// every way of tampering with the chain is found, with the first bad seq.
#include "common/audit/witness.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit/audit_log.h"
#include "common/audit/checkpoint.h"
#include "common/server/server.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"
#include "tests/common/audit/audit_tamper.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::audit {
namespace {

namespace v1 = ::lotse::audit::v1;
using ::testing::HasSubstr;
using ::testing::StartsWith;

AuditRecord Record(int i) {
  AuditRecord r;
  r.time = absl::FromUnixSeconds(1800000000 + i);
  r.agency_id = "jobcenter-koeln";
  r.legal_domain = "JOBCENTER";
  r.actor = absl::StrCat("cw-", i);
  r.purpose = "placement";
  r.operation = "lotse.identity.v1.IdentityService/GetPerson";
  r.resource = absl::StrCat("persons/p", i % 4);
  r.data_categories = {"CORE_IDENTITY"};
  return r;
}

// The record a restore from `backup` appends, written at `at`.
AuditRecord RestoreRecordAt(absl::Time at, const std::string& backup) {
  AuditRecord r = RestoreAuditRecord("identity", backup);
  r.time = at;
  return r;
}

// A chain of 20 rows in each chain, with heads witnessed at 5, 10, 15 and
// 20 by "cases" and at 10 and 20 by "courses", each signed at the time of
// its row.
class WitnessTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(storage::ApplyMigrations(db(), AuditMigrations()).ok());
    for (Chain chain : {Chain::kChanges, Chain::kReads}) {
      for (int i = 1; i <= 20; ++i) {
        ASSERT_TRUE(AppendAuditStandalone(db(), Record(i), chain).ok());
        if (i % 5 != 0) continue;
        auto head = ReadAuditHead(db(), chain);
        ASSERT_TRUE(head.ok());
        // Signed when the chain reached row i.
        heads_[chain == Chain::kReads].push_back(
            {"cases", head->seq, head->hash, false, Record(i).time});
        if (i % 10 == 0) {
          heads_[chain == Chain::kReads].push_back(
              {"courses", head->seq, head->hash, false, Record(i).time});
        }
      }
    }
  }

  v1::ChainVerification Verify(Chain chain = Chain::kChanges) {
    VerifyOptions options;
    options.chain = chain;
    auto walk = VerifyAuditChain(db(), options);
    EXPECT_TRUE(walk.ok()) << walk.status();
    auto witnessed =
        CheckWitnessedHeads(db(), chain, heads_[chain == Chain::kReads]);
    EXPECT_TRUE(witnessed.ok()) << witnessed.status();
    if (!walk.ok() || !witnessed.ok()) return {};
    return CombineChecks("identity", chain, *walk, *witnessed, {"placement"});
  }

  // What a restore from a backup that held rows 1..`kept` leaves: the rows
  // after it gone, the restore record (seq kept + 1, written at
  // `restored_at`) appended, then `more` rows written after the restore.
  // The heads witnessed of the lost rows stay in heads_.
  void Restore(Chain chain, int64_t kept, absl::Time restored_at,
               const std::string& backup, int more) {
    ASSERT_TRUE(lotse::testing::TruncateAudit(db(), chain, kept).ok());
    ASSERT_TRUE(
        AppendAuditStandalone(db(), RestoreRecordAt(restored_at, backup), chain)
            .ok());
    for (int i = 0; i < more; ++i) {
      AuditRecord r = Record(100 + i);
      r.time = restored_at + absl::Seconds(1 + i);
      ASSERT_TRUE(AppendAuditStandalone(db(), r, chain).ok());
    }
  }

  // The current head of `chain`, as witnessed by `witness`, signed at `at`.
  WitnessedHead HeadNow(Chain chain, const std::string& witness,
                        absl::Time at) {
    auto head = ReadAuditHead(db(), chain);
    EXPECT_TRUE(head.ok()) << head.status();
    if (!head.ok()) return {};
    return {witness, head->seq, head->hash, false, at};
  }

  std::vector<WitnessedHead> heads_[2];
};

TEST_P(WitnessTest, IntactChainExtendsEveryWitnessedHead) {
  v1::ChainVerification result = Verify();
  EXPECT_TRUE(result.intact()) << result.problem();
  EXPECT_EQ(result.first_bad_seq(), 0);
  EXPECT_EQ(result.records_checked(), 20);
  EXPECT_EQ(result.checkpoints_checked(), 6);
  EXPECT_EQ(result.head().seq(), 20);
  EXPECT_EQ(result.head().service(), "identity");
  EXPECT_THAT(result.unreachable_witnesses(),
              ::testing::ElementsAre("placement"));
  // A chain that grew past the witnessed heads still extends them.
  ASSERT_TRUE(AppendAuditStandalone(db(), Record(21)).ok());
  EXPECT_TRUE(Verify().intact());
}

TEST_P(WitnessTest, PrunedChainStillExtendsTheHeadsAfterItsBase) {
  // Retention deletes seq 1..11; the heads at 5 and 10 lie below the base.
  auto pruned = PruneAuditChain(db(), Chain::kChanges, Record(12).time, 100);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  ASSERT_EQ(*pruned, 11);
  v1::ChainVerification result = Verify();
  EXPECT_TRUE(result.intact()) << result.problem();
  EXPECT_EQ(result.head().seq(), 20);
  // The rows after the base are still held to the witnesses.
  ASSERT_TRUE(lotse::testing::EditAuditRow(db(), Chain::kChanges, 14).ok());
  result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 14);
}

TEST_P(WitnessTest, BaseAtAWitnessedHeadIsComparedWithIt) {
  auto pruned = PruneAuditChain(db(), Chain::kChanges, Record(11).time, 100);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  ASSERT_EQ(*pruned, 10);
  auto base = ReadAuditBase(db(), Chain::kChanges);
  ASSERT_TRUE(base.ok()) << base.status();
  ASSERT_TRUE(base->has_value());
  EXPECT_EQ((*base)->seq, 10);
  EXPECT_TRUE(Verify().intact()) << Verify().problem();

  // A witness that saw another seq 10 than the base records.
  for (WitnessedHead& h : heads_[0]) {
    if (h.seq == 10) h.hash = std::string(32, 'x');
  }
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 10);
  EXPECT_THAT(result.problem(), HasSubstr("retention pruned"));
}

TEST_P(WitnessTest, EditedRowIsNamed) {
  ASSERT_TRUE(lotse::testing::EditAuditRow(db(), Chain::kChanges, 7).ok());
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 7);
  EXPECT_THAT(result.problem(), StartsWith("hash mismatch"));
}

TEST_P(WitnessTest, DeletedRowIsNamed) {
  ASSERT_TRUE(lotse::testing::DeleteAuditRow(db(), Chain::kChanges, 10).ok());
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 10);
  EXPECT_THAT(result.problem(), StartsWith("sequence gap"));
  // The witnesses saw seq 10 too.
  EXPECT_THAT(result.problem(), HasSubstr("seq 10 is missing"));
}

TEST_P(WitnessTest, ReorderedRowsAreNamed) {
  ASSERT_TRUE(lotse::testing::SwapAuditRows(db(), Chain::kChanges, 8, 9).ok());
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 8);
}

TEST_P(WitnessTest, TruncatedTailIsNamed) {
  ASSERT_TRUE(lotse::testing::TruncateAudit(db(), Chain::kChanges, 13).ok());
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 14);
  EXPECT_THAT(result.problem(), StartsWith("truncated"));
  EXPECT_THAT(result.problem(), HasSubstr("witnessed a checkpoint at seq 15"));
}

TEST_P(WitnessTest, ConsistentRewriteOfTheWholeChainIsNamed) {
  ASSERT_EQ(lotse::testing::RewriteAuditConsistently(db(), Chain::kChanges, 1),
            absl::OkStatus());
  // The hash walk alone finds nothing.
  auto walk = VerifyAuditChain(db());
  ASSERT_TRUE(walk.ok());
  EXPECT_TRUE(walk->intact);
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 1);
  EXPECT_THAT(result.problem(),
              StartsWith("differs from checkpoint witnessed by cases"));
  EXPECT_THAT(result.problem(), HasSubstr("seq 1..5"));
}

TEST_P(WitnessTest, ConsistentRewriteRightAfterAWitnessedHeadIsExact) {
  ASSERT_EQ(lotse::testing::RewriteAuditConsistently(db(), Chain::kChanges, 11),
            absl::OkStatus());
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 11);
}

TEST_P(WitnessTest, ConsistentRewriteBetweenHeadsIsBounded) {
  // Rows 1..12 unchanged, so the head witnessed at 10 still matches; 15
  // does not: the first changed row lies in 11..15.
  ASSERT_EQ(lotse::testing::RewriteAuditConsistently(db(), Chain::kChanges, 13),
            absl::OkStatus());
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 11);
  EXPECT_THAT(result.problem(), HasSubstr("seq 11..15"));
}

TEST_P(WitnessTest, ReadChainIsCheckedToo) {
  ASSERT_EQ(lotse::testing::RewriteAuditConsistently(db(), Chain::kReads, 1),
            absl::OkStatus());
  EXPECT_TRUE(Verify(Chain::kChanges).intact());
  v1::ChainVerification result = Verify(Chain::kReads);
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.chain(), v1::AUDIT_CHAIN_READS);
  EXPECT_EQ(result.first_bad_seq(), 1);
}

TEST_P(WitnessTest, ConflictingCheckpointsOfOneSeqAreBothChecked) {
  // After a rewrite the service signs its new head, which a witness keeps
  // beside the old one; the chain matches the new one, not the old one.
  ASSERT_EQ(lotse::testing::RewriteAuditConsistently(db(), Chain::kChanges, 1),
            absl::OkStatus());
  auto head = ReadAuditHead(db());
  ASSERT_TRUE(head.ok());
  heads_[0].push_back({"cases", head->seq, head->hash, true});
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 1);
}

TEST_P(WitnessTest, NoWitnessedHeadsLeaveTheWalk) {
  heads_[0].clear();
  ASSERT_TRUE(lotse::testing::TruncateAudit(db(), Chain::kChanges, 13).ok());
  // Without witnesses a truncation cannot be seen; the walk is intact.
  EXPECT_TRUE(Verify().intact());
}

TEST_P(WitnessTest, HeadsOfTheTimeARestoreLostAreExplainedByIt) {
  for (Chain chain : {Chain::kChanges, Chain::kReads}) {
    SCOPED_TRACE(ChainName(chain));
    // The backup held rows 1..12; the heads at 15 (cases) and 20 (cases,
    // courses) were signed before the restore: at 15 the chain now holds
    // another row, 20 lies past its head (16).
    Restore(chain, 12, Record(20).time + absl::Minutes(5), "backups/id.db", 3);
    ASSERT_FALSE(HasFatalFailure());
    v1::ChainVerification result = Verify(chain);
    EXPECT_TRUE(result.intact()) << result.problem();
    EXPECT_EQ(result.problem(), "");
    EXPECT_EQ(result.first_bad_seq(), 0);
    EXPECT_EQ(result.head().seq(), 16);
    EXPECT_EQ(result.checkpoints_checked(), 6);
    ASSERT_EQ(result.restores_size(), 1) << result.ShortDebugString();
    const v1::ChainRestore& restore = result.restores(0);
    EXPECT_EQ(restore.seq(), 13);
    EXPECT_EQ(restore.source(), "backups/id.db");
    EXPECT_EQ(restore.time().seconds(),
              absl::ToUnixSeconds(Record(20).time + absl::Minutes(5)));
    EXPECT_EQ(restore.lost_checkpoints(), 3);
    // The restored chain is held to what is witnessed after the restore.
    heads_[chain == Chain::kReads].push_back(
        HeadNow(chain, "cases", Record(20).time + absl::Minutes(6)));
    EXPECT_TRUE(Verify(chain).intact());
  }
}

TEST_P(WitnessTest, HeadsSignedAfterTheRestoreAreNotExplained) {
  // The restore record is dated before the heads at 15 and 20 were
  // signed: whatever changed them happened after it.
  Restore(Chain::kChanges, 12, Record(14).time, "backups/id.db", 3);
  ASSERT_FALSE(HasFatalFailure());
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 11);
  EXPECT_THAT(result.problem(),
              StartsWith("differs from checkpoint witnessed by cases: seq 15"));
  ASSERT_EQ(result.restores_size(), 1);
  EXPECT_EQ(result.restores(0).seq(), 13);
  EXPECT_EQ(result.restores(0).lost_checkpoints(), 0);
}

TEST_P(WitnessTest, ARestoreDoesNotExplainHeadsNewerThanIt) {
  // Dated between the heads at 15 and 20: it explains 15, not 20, which a
  // restore record written before it was signed cannot account for.
  Restore(Chain::kChanges, 12, Record(17).time, "backups/id.db", 3);
  ASSERT_FALSE(HasFatalFailure());
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 17);
  EXPECT_THAT(result.problem(), StartsWith("truncated: the chain ends at "
                                           "seq 16, but cases witnessed a "
                                           "checkpoint at seq 20"));
  ASSERT_EQ(result.restores_size(), 1);
  EXPECT_EQ(result.restores(0).lost_checkpoints(), 1);
}

TEST_P(WitnessTest, ARestoreRecordDatedIntoTheFutureStopsExplaining) {
  // Rows after 12 rewritten behind a restore record dated a year ahead.
  const absl::Time forged = Record(20).time + absl::Hours(24 * 365);
  Restore(Chain::kChanges, 12, forged, "backups/none.db", 3);
  ASSERT_FALSE(HasFatalFailure());
  // Until a checkpoint of the rewritten chain is witnessed, it reads like a
  // restore, and is listed as one for the operator to check.
  v1::ChainVerification result = Verify();
  EXPECT_TRUE(result.intact()) << result.problem();
  ASSERT_EQ(result.restores_size(), 1);
  EXPECT_EQ(result.restores(0).lost_checkpoints(), 3);
  // The service signs its head (seq 16, which holds the record at 13) an
  // hour after the last row: before the date the record claims.
  heads_[0].push_back(
      HeadNow(Chain::kChanges, "cases", Record(20).time + absl::Hours(1)));
  result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 11);
  EXPECT_THAT(result.problem(),
              StartsWith("differs from checkpoint witnessed by cases: seq 15"));
  EXPECT_THAT(result.problem(),
              HasSubstr("the restore record at seq 13 does not explain it: it "
                        "is dated after the checkpoint witnessed by cases at "
                        "seq 16"));
  ASSERT_EQ(result.restores_size(), 1);
  EXPECT_EQ(result.restores(0).lost_checkpoints(), 0);
}

TEST_P(WitnessTest, AWitnessedHeadBelowTheRestoreMustStillMatch) {
  Restore(Chain::kChanges, 12, Record(20).time + absl::Minutes(5),
          "backups/id.db", 3);
  ASSERT_FALSE(HasFatalFailure());
  // The backup held seq 10; a witness saw another hash there.
  for (WitnessedHead& h : heads_[0]) {
    if (h.seq == 10 && h.witness == "courses") h.hash = std::string(32, 'x');
  }
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 6);
  EXPECT_THAT(
      result.problem(),
      StartsWith("differs from checkpoint witnessed by courses: seq 10 has "
                 "another hash than witnessed"));
  // The heads of the lost time are still counted with the restore.
  ASSERT_EQ(result.restores_size(), 1);
  EXPECT_EQ(result.restores(0).lost_checkpoints(), 3);
}

TEST_P(WitnessTest, WithoutARestoreRecordTheLostHeadsStayProblems) {
  // The same rows lost and written again, but no restore record.
  ASSERT_TRUE(lotse::testing::TruncateAudit(db(), Chain::kChanges, 12).ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(AppendAuditStandalone(db(), Record(100 + i)).ok());
  }
  v1::ChainVerification result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_EQ(result.first_bad_seq(), 11);
  EXPECT_THAT(result.problem(), HasSubstr("seq 15 has another hash"));
  EXPECT_EQ(result.restores_size(), 0);
  // A record of another operation naming a backup explains nothing.
  AuditRecord lookalike = RestoreRecordAt(absl::Now(), "backups/id.db");
  lookalike.operation = "lotse.ops/Backup";
  ASSERT_TRUE(lotse::testing::TruncateAudit(db(), Chain::kChanges, 12).ok());
  ASSERT_TRUE(AppendAuditStandalone(db(), lookalike).ok());
  result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_THAT(result.problem(), StartsWith("truncated"));
  EXPECT_EQ(result.restores_size(), 0);
}

TEST_P(WitnessTest, EachLostHeadCountsWithTheLowestRestoreThatExplainsIt) {
  const absl::Time first = Record(20).time + absl::Minutes(5);
  // First restore: rows 1..12 kept, record 13, rows 14..18 written after.
  Restore(Chain::kChanges, 12, first, "backups/monday.db", 5);
  ASSERT_FALSE(HasFatalFailure());
  // Witnessed after the first restore: seq 16 (kept by the second backup)
  // and seq 18 (lost by the second restore).
  ASSERT_TRUE(lotse::testing::TruncateAudit(db(), Chain::kChanges, 16).ok());
  heads_[0].push_back(
      HeadNow(Chain::kChanges, "cases", first + absl::Minutes(1)));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(AppendAuditStandalone(db(), Record(200 + i)).ok());
  }
  heads_[0].push_back(
      HeadNow(Chain::kChanges, "courses", first + absl::Minutes(2)));
  // Second restore: rows 1..16 kept, record 17, two rows after.
  Restore(Chain::kChanges, 16, first + absl::Minutes(10), "backups/tuesday.db",
          2);
  ASSERT_FALSE(HasFatalFailure());

  v1::ChainVerification result = Verify();
  EXPECT_TRUE(result.intact()) << result.problem();
  EXPECT_EQ(result.head().seq(), 19);
  ASSERT_EQ(result.restores_size(), 2) << result.ShortDebugString();
  EXPECT_EQ(result.restores(0).seq(), 13);
  EXPECT_EQ(result.restores(0).source(), "backups/monday.db");
  // 15 and 20 (cases), 20 (courses): signed before the first restore, which
  // lies at or below them.
  EXPECT_EQ(result.restores(0).lost_checkpoints(), 3);
  EXPECT_EQ(result.restores(1).seq(), 17);
  EXPECT_EQ(result.restores(1).source(), "backups/tuesday.db");
  // 18: signed after the first restore, before the second.
  EXPECT_EQ(result.restores(1).lost_checkpoints(), 1);

  // The row the second backup held at 16 must still match what was
  // witnessed of it.
  for (WitnessedHead& h : heads_[0]) {
    if (h.seq == 16) h.hash = std::string(32, 'y');
  }
  result = Verify();
  EXPECT_FALSE(result.intact());
  EXPECT_THAT(result.problem(), HasSubstr("seq 16 has another hash"));
  EXPECT_EQ(result.first_bad_seq(), 11);
}

// A witness's AuditService that answers ListWitnessedCheckpoints with
// `checkpoints`, two per page, and records the callers' metadata.
class FakeWitness final : public v1::AuditService::Service {
 public:
  explicit FakeWitness(std::vector<v1::SignedCheckpoint> checkpoints)
      : checkpoints_(std::move(checkpoints)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeWitness() override { server_->Shutdown(); }

  grpc::Status ListWitnessedCheckpoints(
      grpc::ServerContext* context,
      const v1::ListWitnessedCheckpointsRequest* request,
      v1::ListWitnessedCheckpointsResponse* response) override {
    auto purpose = context->client_metadata().find("x-lotse-purpose");
    if (purpose == context->client_metadata().end() ||
        purpose->second != "audit-verification") {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no purpose");
    }
    size_t start = request->page_token().empty()
                       ? 0
                       : static_cast<size_t>(std::stoi(request->page_token()));
    for (size_t i = start; i < checkpoints_.size() && i < start + 2; ++i) {
      v1::WitnessedCheckpoint* w = response->add_checkpoints();
      *w->mutable_checkpoint() = checkpoints_[i];
      w->set_witness("cases");
    }
    if (start + 2 < checkpoints_.size()) {
      response->set_next_page_token(std::to_string(start + 2));
    }
    return grpc::Status::OK;
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  std::vector<v1::SignedCheckpoint> checkpoints_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_P(WitnessTest, ServiceWitnessesAskEveryWitnessAndNameTheSilentOnes) {
  const std::string pki = lotse::testing::DevPkiDir();
  auto read = [&](const std::string& file) {
    return server::ReadFile(absl::StrCat(pki, "/", file)).value_or("");
  };
  auto signer = CheckpointSigner::FromPem(
      "identity", read("servers/identity.crt"), read("servers/identity.key"));
  ASSERT_TRUE(signer.ok()) << signer.status();
  std::vector<v1::SignedCheckpoint> held;
  for (const WitnessedHead& h : heads_[0]) {
    if (h.witness != "cases") continue;
    auto c = (*signer)->Sign(Chain::kChanges, {h.seq, h.hash}, absl::Now());
    ASSERT_TRUE(c.ok());
    held.push_back(*c);
  }
  // A witness that makes up a head at seq 3 cannot fake a mismatch: its
  // checkpoint does not verify and is left out.
  v1::SignedCheckpoint madeup = held[0];
  madeup.mutable_head()->set_seq(3);
  held.push_back(madeup);
  FakeWitness cases(held);
  auto verifier = CheckpointVerifier::FromPem(read("ca.crt"), LotseServices());
  ASSERT_TRUE(verifier.ok());
  ServiceWitnesses witnesses(
      "identity", db(), nullptr,
      {{"cases", cases.address()},
       {"courses",
        absl::StrCat("127.0.0.1:", lotse::testing::FreeLocalPort())}},
      grpc::InsecureChannelCredentials(), *std::move(verifier));

  v1::ChainVerification intact;
  intact.set_intact(true);
  ASSERT_TRUE(witnesses
                  .CheckChain(db(), Chain::kChanges,
                              absl::Now() + absl::Seconds(2), &intact)
                  .ok());
  EXPECT_TRUE(intact.intact()) << intact.problem();
  EXPECT_EQ(intact.checkpoints_checked(), 4);  // 5, 10, 15, 20
  EXPECT_THAT(intact.unreachable_witnesses(),
              ::testing::ElementsAre("courses"));

  ASSERT_TRUE(lotse::testing::TruncateAudit(db(), Chain::kChanges, 12).ok());
  auto rewritten =
      witnesses.VerifyChain(Chain::kChanges, absl::Now() + absl::Seconds(2));
  ASSERT_TRUE(rewritten.ok()) << rewritten.status();
  EXPECT_FALSE(rewritten->intact());
  EXPECT_EQ(rewritten->first_bad_seq(), 13);
  EXPECT_THAT(rewritten->problem(), StartsWith("truncated"));
  EXPECT_THAT(rewritten->unreachable_witnesses(),
              ::testing::ElementsAre("courses"));

  // A break the walk found stays; the witnesses' finding is added.
  v1::ChainVerification broken;
  broken.set_intact(false);
  broken.set_first_bad_seq(2);
  broken.set_problem("hash mismatch: x");
  ASSERT_TRUE(witnesses
                  .CheckChain(db(), Chain::kChanges,
                              absl::Now() + absl::Seconds(2), &broken)
                  .ok());
  EXPECT_EQ(broken.first_bad_seq(), 2);
  EXPECT_THAT(broken.problem(), HasSubstr("; also truncated"));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(WitnessTest);

}  // namespace
}  // namespace lotse::audit
