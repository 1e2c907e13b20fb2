// Witnessed audit checkpoints through running processes: the four services,
// each sending the others its signed chain heads every 200 ms, take audited
// traffic until the others witnessed identity's head; then identity is
// stopped, its change chain is tampered with directly in its database (as
// a database administrator could), and identity is started again. Every
// kind of tampering is found with the first bad seq named: an edited row,
// a deleted row, two rows swapped, a truncated tail, and the whole chain
// rewritten consistently with recomputed hashes (which the hash walk alone
// cannot see). The truncated chain's new, older head is refused by the
// witnesses as stale, and the rewritten chain's new head is kept beside
// the old one as a conflict. On SQLite and on PostgreSQL.
//
// Each case is checked through identity's AuditService.VerifyAuditChain,
// called by the data-protection officer (dsb-nrw) and by another service
// (svc-cases), which asks the three witnesses for their checkpoints; and
// with the same functions in this process over the witnesses' tables, so a
// failure tells the RPC path from the check.
#include "tests/common/audit/audit_tamper.h"

#include <signal.h>
#include <stdlib.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit_log.h"
#include "common/audit/witness.h"
#include "common/audit/witness_store.h"
#include "common/server/server.h"
#include "common/storage/database.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::testing {
namespace {

namespace v1 = ::lotse::audit::v1;
using audit::Chain;

constexpr absl::Duration kTimeout = absl::Seconds(30);
const char* const kServices[] = {"identity", "cases", "courses", "placement"};
const char* const kWitnesses[] = {"cases", "courses", "placement"};

class AuditTamperTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-audit-tamper.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    for (const char* s : kServices) {
      ports_[s] = FreeLocalPort();
      metrics_ports_[s] = FreeLocalPort();
      absl::StatusOr<std::string> url = NewTestDatabaseUrl(GetParam());
      ASSERT_TRUE(url.ok()) << url.status();
      databases_[s] = *url;
    }
  }

  void TearDown() override {
    for (auto& [name, process] : processes_) {
      if (process == nullptr) continue;
      process->Signal(SIGTERM);
      process->WaitExit(absl::Seconds(10)).IgnoreError();
    }
  }

  // Starts `service` wired to the other three, with checkpoints every
  // 200 ms.
  void Start(const std::string& service) {
    std::string destinations;
    for (const char* other : kServices) {
      if (other == service) continue;
      absl::StrAppend(&destinations, destinations.empty() ? "" : ",", other,
                      "=127.0.0.1:", ports_[other]);
    }
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", ports_[service]),
        absl::StrCat("--metrics_listen=127.0.0.1:", metrics_ports_[service]),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=", databases_[service]),
        absl::StrCat("--event_destinations=", destinations),
        "--audit_checkpoint_interval=200ms",
        "--drain_grace=100ms",
        "--shutdown_deadline=1s"};
    if (service != "identity") {
      args.push_back(
          absl::StrCat("--identity_target=127.0.0.1:", ports_["identity"]));
    }
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, "-", ++starts_, ".log"));
    ASSERT_TRUE(p.ok()) << p.status();
    processes_[service] = std::make_unique<ServiceProcess>(*std::move(p));
    ASSERT_TRUE(processes_[service]->WaitServing(absl::Seconds(20)).ok())
        << processes_[service]->ReadLog();
  }

  void Stop(const std::string& service) {
    std::unique_ptr<ServiceProcess>& p = processes_[service];
    ASSERT_NE(p, nullptr);
    p->Signal(SIGTERM);
    EXPECT_EQ(p->WaitExit(absl::Seconds(15)).value_or(-1), 0) << p->ReadLog();
    p.reset();
  }

  storage::Database& Db(const std::string& service) {
    std::unique_ptr<storage::Database>& db = opened_[service];
    if (db == nullptr) {
      auto opened = storage::OpenDatabase(databases_[service], 2);
      EXPECT_TRUE(opened.ok()) << opened.status();
      db = *std::move(opened);
    }
    return *db;
  }

  // Every checkpoint of identity's change chain that the witnesses hold.
  std::vector<v1::WitnessedCheckpoint> Witnessed() {
    std::vector<v1::WitnessedCheckpoint> out;
    for (const char* witness : kWitnesses) {
      v1::ListWitnessedCheckpointsRequest request;
      request.set_service("identity");
      request.set_chain(v1::AUDIT_CHAIN_CHANGES);
      request.set_page_size(1000);
      for (;;) {
        auto page =
            audit::ListWitnessedCheckpoints(Db(witness), witness, request);
        EXPECT_TRUE(page.ok()) << page.status();
        if (!page.ok()) break;
        out.insert(out.end(), page->checkpoints().begin(),
                   page->checkpoints().end());
        if (page->next_page_token().empty()) break;
        request.set_page_token(page->next_page_token());
      }
    }
    return out;
  }

  // VerifyAuditChain of identity's change chain, as its AuditService
  // computes it.
  v1::ChainVerification VerifyIdentity() {
    std::vector<audit::WitnessedHead> heads;
    for (const v1::WitnessedCheckpoint& w : Witnessed()) {
      heads.push_back({w.witness(), w.checkpoint().head().seq(),
                       w.checkpoint().head().hash(), w.conflicting()});
    }
    auto walk = audit::VerifyAuditChain(Db("identity"));
    EXPECT_TRUE(walk.ok()) << walk.status();
    auto witnessed =
        audit::CheckWitnessedHeads(Db("identity"), Chain::kChanges, heads);
    EXPECT_TRUE(witnessed.ok()) << witnessed.status();
    if (!walk.ok() || !witnessed.ok()) return {};
    return audit::CombineChecks("identity", Chain::kChanges, *walk, *witnessed,
                                {});
  }

  // identity's AuditService.VerifyAuditChain of its change chain, called
  // as `caller` (a certificate name of the dev PKI).
  v1::ChainVerification VerifyIdentityRpc(const std::string& caller) {
    auto creds = server::ClientCredentialsFromDir(pki_, caller);
    EXPECT_TRUE(creds.ok()) << creds.status();
    if (!creds.ok()) return {};
    auto stub = v1::AuditService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", ports_["identity"]), *creds));
    v1::VerifyAuditChainRequest request;
    request.set_chain(v1::AUDIT_CHAIN_CHANGES);
    request.set_witness_timeout_ms(5000);
    v1::VerifyAuditChainResponse response;
    grpc::Status s;
    // identity may still be starting to answer after a restart.
    Eventually(
        [&] {
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::seconds(20));
          context.AddMetadata("x-lotse-actor", "officer-1");
          context.AddMetadata("x-lotse-purpose", "audit-verification");
          s = stub->VerifyAuditChain(&context, request, &response);
          return s.ok();
        },
        absl::Seconds(10));
    EXPECT_TRUE(s.ok()) << caller << ": " << s.error_code() << " "
                        << s.error_message();
    EXPECT_EQ(response.chains_size(), 1);
    if (!s.ok() || response.chains_size() != 1) return {};
    return response.chains(0);
  }

  // Whether every witness holds identity's current change-chain head.
  bool HeadWitnessedByAll() {
    auto head = audit::ReadAuditHead(Db("identity"));
    if (!head.ok() || head->seq == 0) return false;
    std::map<std::string, bool> holds;
    for (const v1::WitnessedCheckpoint& w : Witnessed()) {
      if (w.checkpoint().head().seq() == head->seq &&
          w.checkpoint().head().hash() == head->hash) {
        holds[w.witness()] = true;
      }
    }
    return holds.size() == 3;
  }

  std::string Metrics(const std::string& service) {
    return HttpGet(metrics_ports_[service], "/metrics");
  }

  // Audited traffic at identity: agencies registered by the demo seed and
  // persons created by the municipal case management.
  void GenerateTraffic(int persons) {
    absl::StatusOr<ServiceProcess> seed = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
        {absl::StrCat("--identity=127.0.0.1:", ports_["identity"]),
         absl::StrCat("--tls_dir=", pki_)},
        absl::StrCat(dir_, "/seed.log"));
    ASSERT_TRUE(seed.ok()) << seed.status();
    ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
        << seed->ReadLog();
    auto creds = server::ClientCredentialsFromDir(pki_, "kim-koeln");
    ASSERT_TRUE(creds.ok()) << creds.status();
    auto stub = identity::v1::IdentityService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", ports_["identity"]), *creds));
    for (int n = 0; n < persons; ++n) {
      identity::v1::CreatePersonRequest request;
      request.set_request_id(absl::StrCat("tamper-", n));
      request.set_confirm_new_person(true);
      identity::v1::PersonName* name = request.mutable_person()->add_names();
      name->set_given_names("Witness");
      name->set_family_names(absl::StrCat("Checkpoint", n));
      name->set_script("Latn");
      name->set_kind(identity::v1::NAME_KIND_CURRENT);
      request.mutable_person()->mutable_birth_date()->set_year(1970 + n);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(10));
      context.AddMetadata("x-lotse-actor", "cw-1");
      context.AddMetadata("x-lotse-purpose", "case-management");
      identity::v1::Person person;
      grpc::Status s = stub->CreatePerson(&context, request, &person);
      ASSERT_TRUE(s.ok()) << s.error_message();
      // Spread over several checkpoint intervals, so the witnesses hold
      // heads along the chain, not only its end.
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  std::string pki_;
  std::string dir_;
  std::map<std::string, int> ports_;
  std::map<std::string, int> metrics_ports_;
  std::map<std::string, std::string> databases_;
  std::map<std::string, std::unique_ptr<ServiceProcess>> processes_;
  std::map<std::string, std::unique_ptr<storage::Database>> opened_;
  int starts_ = 0;
};

TEST_P(AuditTamperTest, EveryTamperingIsFoundWithTheFirstBadSeq) {
  for (const char* s : kServices) {
    Start(s);
    if (HasFatalFailure()) return;
  }
  GenerateTraffic(20);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(Eventually([&] { return HeadWitnessedByAll(); }, kTimeout))
      << processes_["cases"]->ReadLog();
  {
    v1::ChainVerification intact = VerifyIdentityRpc("dsb-nrw");
    EXPECT_TRUE(intact.intact()) << intact.problem();
    EXPECT_GE(intact.checkpoints_checked(), 3);
    EXPECT_EQ(intact.unreachable_witnesses_size(), 0);
  }
  Stop("identity");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(Eventually([&] { return HeadWitnessedByAll(); }, kTimeout));

  auto head = audit::ReadAuditHead(Db("identity"));
  ASSERT_TRUE(head.ok());
  const int64_t last = head->seq;
  ASSERT_GE(last, 20);
  {
    v1::ChainVerification before = VerifyIdentity();
    ASSERT_TRUE(before.intact()) << before.problem();
    // Several heads along the chain, from each of the three witnesses.
    EXPECT_GE(before.checkpoints_checked(), 6);
  }
  auto snapshot = SnapshotAudit(Db("identity"), Chain::kChanges);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();

  struct Case {
    std::string what;
    std::function<absl::Status()> tamper;
    int64_t first_bad_seq;
    std::string problem;
  };
  storage::Database& db = Db("identity");
  // The consistent rewrite comes last: identity then signs its rewritten
  // head, which the witnesses keep as a conflict for good.
  const std::vector<Case> cases = {
      {"edit a row", [&] { return EditAuditRow(db, Chain::kChanges, 3); }, 3,
       "hash mismatch"},
      {"delete a row", [&] { return DeleteAuditRow(db, Chain::kChanges, 5); },
       5, "sequence gap"},
      {"reorder two rows",
       [&] { return SwapAuditRows(db, Chain::kChanges, 6, 7); }, 6,
       "prev_hash does not link"},
      {"truncate the tail",
       [&] { return TruncateAudit(db, Chain::kChanges, last - 3); }, last - 2,
       "truncated"},
      {"rewrite the whole chain consistently",
       [&] { return RewriteAuditConsistently(db, Chain::kChanges, 1); }, 1,
       "differs from checkpoint witnessed by"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ASSERT_TRUE(c.tamper().ok());
    Start("identity");
    if (HasFatalFailure()) return;
    if (c.what == "truncate the tail") {
      // Identity signs its new, older head; every witness refuses it.
      for (const char* witness : kWitnesses) {
        EXPECT_TRUE(Eventually(
            [&] {
              return absl::StrContains(Metrics(witness),
                                       "reason=\"STALE_HEAD\"}");
            },
            kTimeout))
            << witness << "\n"
            << Metrics(witness);
      }
    }
    if (c.what == "rewrite the whole chain consistently") {
      // Identity signs its rewritten head: same seq, another hash. The
      // witnesses keep it, flagged, beside the one they hold.
      EXPECT_TRUE(Eventually(
          [&] {
            int conflicting = 0;
            for (const auto& w : Witnessed()) conflicting += w.conflicting();
            return conflicting == 3;
          },
          kTimeout));
      EXPECT_TRUE(absl::StrContains(Metrics("cases"), "outcome=\"conflict\""));
      // The hash walk alone sees nothing.
      auto walk = audit::VerifyAuditChain(db);
      ASSERT_TRUE(walk.ok());
      EXPECT_TRUE(walk->intact) << walk->problem;
    }
    v1::ChainVerification result = VerifyIdentity();
    EXPECT_FALSE(result.intact());
    EXPECT_EQ(result.first_bad_seq(), c.first_bad_seq) << result.problem();
    EXPECT_TRUE(absl::StartsWith(result.problem(), c.problem))
        << result.problem();
    for (const char* caller : {"dsb-nrw", "svc-cases"}) {
      SCOPED_TRACE(caller);
      v1::ChainVerification rpc = VerifyIdentityRpc(caller);
      EXPECT_FALSE(rpc.intact());
      EXPECT_EQ(rpc.first_bad_seq(), c.first_bad_seq) << rpc.problem();
      EXPECT_TRUE(absl::StartsWith(rpc.problem(), c.problem)) << rpc.problem();
      EXPECT_GE(rpc.checkpoints_checked(), 6);
      EXPECT_EQ(rpc.unreachable_witnesses_size(), 0);
    }
    Stop("identity");
    if (HasFatalFailure()) return;
    ASSERT_TRUE(RestoreAudit(db, Chain::kChanges, *snapshot).ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditTamperTest,
                         ::testing::Values(Dialect::kSqlite,
                                           Dialect::kPostgres),
                         DialectParamName());

}  // namespace
}  // namespace lotse::testing
