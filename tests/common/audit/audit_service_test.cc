// AuditServiceImpl in-process behind a real mTLS server, on both backends:
// who may call it, what it lists, how it pages and refuses bad input, and
// that every call to it is itself audited.
#include "common/audit/audit_service.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/agencies/registry.h"
#include "common/audit/audit_log.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"
#include "tests/support/service_server_fixture.h"

namespace lotse::audit {
namespace {

using ::lotse::storage::Transaction;
using ::lotse::testing::AgencyRecord;
using ::lotse::testing::Reason;
using ::lotse::testing::ViolatedFields;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// Compares nothing and counts its calls; marks the chain broken on demand.
class FakeWitnesses : public WitnessSource {
 public:
  absl::Status CheckChain(const AuditDatabases&, Chain, absl::Duration timeout,
                          v1::ChainVerification* verification) override {
    ++checks;
    last_timeout = timeout;
    verification->set_checkpoints_checked(verification->checkpoints_checked() +
                                          1);
    verification->add_unreachable_witnesses("placement");
    if (break_at > 0) {
      verification->set_intact(false);
      verification->set_first_bad_seq(break_at);
      verification->set_problem("differs from checkpoint witnessed by cases");
    }
    return absl::OkStatus();
  }
  absl::Status ListWitnessedCheckpoints(
      const v1::ListWitnessedCheckpointsRequest& request,
      v1::ListWitnessedCheckpointsResponse* response) override {
    response->add_checkpoints()->set_witness(request.service());
    return absl::OkStatus();
  }

  int checks = 0;
  int64_t break_at = 0;
  absl::Duration last_timeout;
};

class AuditServiceTest : public lotse::testing::ServiceServerTest {
 protected:
  void SetUp() override {
    ServiceServerTest::SetUp();
    if (HasFatalFailure()) return;
    std::vector<storage::Migration> migrations = AuditMigrations();
    migrations.push_back(agencies::RegistryMigration());
    migrations.push_back({"test.0001_merges",
                          "CREATE TABLE merges (merged TEXT PRIMARY KEY, "
                          "survivor TEXT NOT NULL)"});
    migrations.push_back({"test.0002_named_merges",
                          "CREATE TABLE named_merges (merged TEXT PRIMARY KEY, "
                          "survivor TEXT NOT NULL)"});
    StartRuntime(migrations, "cases.lotse");
    if (HasFatalFailure()) return;
    absl::Status s = storage::RunInTransaction(db(), [](Transaction& tx) {
      for (const auto& [id, domain] :
           std::vector<std::pair<std::string, type::v1::LegalDomain>>{
               {"dsb-nrw", type::v1::LEGAL_DOMAIN_DATA_PROTECTION},
               {"jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER}}) {
        if (absl::Status u =
                agencies::UpsertAgency(tx, AgencyRecord(id, domain, ""));
            !u.ok()) {
          return u;
        }
      }
      return absl::OkStatus();
    });
    ASSERT_TRUE(s.ok()) << s;
    env_ = agencies::CallEnvironment::ForRuntime("lotse.cases.v1.CasesService",
                                                 runtime_);
    witnesses_ = std::make_shared<FakeWitnesses>();
    StartService(nullptr);
  }

  void StartService(std::shared_ptr<WitnessSource> witnesses) {
    StopServing();
    service_ =
        MakeAuditService(runtime_, "cases", env_,
                         MergedIdsFromTable("merges", "merged", "survivor"),
                         std::move(witnesses));
    Serve("cases", service_.get());
  }

  void TearDown() override {
    StopServing();
    service_.reset();
    ServiceServerTest::TearDown();
  }

  void Append(const std::string& resource, const std::string& agency,
              Chain chain = Chain::kChanges, int second = 0) {
    AuditRecord r;
    r.time = second == 0 ? absl::InfinitePast()
                         : absl::FromUnixSeconds(1700000000 + second);
    r.agency_id = agency;
    r.legal_domain = "JOBCENTER";
    r.actor = "cw-1";
    r.purpose = "placement";
    r.operation = "lotse.cases.v1.CasesService/GetCase";
    r.resource = resource;
    r.data_categories = {"CASE_STATUS"};
    r.legal_bases = {{"CASE_STATUS", BasisKind::kRule, "rule-7", ""}};
    ASSERT_TRUE(AppendAuditStandalone(db(), r, chain).ok());
  }

  static void Prepare(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    context->AddMetadata("x-lotse-actor", "dpo-1");
    context->AddMetadata("x-lotse-purpose", "audit");
  }

  grpc::Status List(const std::string& as,
                    const v1::ListAuditRecordsRequest& request,
                    v1::ListAuditRecordsResponse* response) {
    grpc::ClientContext context;
    Prepare(&context);
    return Stub<v1::AuditService>(as)->ListAuditRecords(&context, request,
                                                        response);
  }

  v1::ListAuditRecordsRequest ForPerson(const std::string& person) {
    v1::ListAuditRecordsRequest request;
    request.set_person(person);
    return request;
  }

  agencies::CallEnvironment env_;
  std::shared_ptr<FakeWitnesses> witnesses_;
  std::unique_ptr<AuditServiceImpl> service_;
};

TEST_P(AuditServiceTest, TheDataProtectionRoleListsAPersonWithMergedIds) {
  Append("persons/survivor/case", "jobcenter-koeln");
  Append("persons/old/case", "jobcenter-koeln");
  Append("persons/older/case", "jobcenter-koeln", Chain::kReads);
  Append("persons/other/case", "jobcenter-koeln");
  // older was merged into old, old into survivor.
  ASSERT_TRUE(storage::RunInTransaction(db(), [](Transaction& tx) {
                return tx
                    .Execute(
                        "INSERT INTO merges (merged, survivor) VALUES "
                        "('old', 'survivor'), ('older', 'old')")
                    .status();
              }).ok());

  v1::ListAuditRecordsResponse response;
  grpc::Status s = List("dsb-nrw", ForPerson("persons/survivor"), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(response.resolved_persons(),
              ElementsAre("persons/survivor", "persons/old", "persons/older"));
  ASSERT_EQ(response.records_size(), 3);
  EXPECT_EQ(response.records(0).resource(), "persons/survivor/case");
  EXPECT_EQ(response.records(1).resource(), "persons/old/case");
  EXPECT_EQ(response.records(2).chain(), v1::AUDIT_CHAIN_READS);
  const v1::AuditRecord& first = response.records(0);
  EXPECT_EQ(first.service(), "cases");
  EXPECT_EQ(first.agency(), "agencies/jobcenter-koeln");
  EXPECT_EQ(first.legal_domain(), type::v1::LEGAL_DOMAIN_JOBCENTER);
  EXPECT_EQ(first.outcome(), v1::AUDIT_OUTCOME_ALLOWED);
  EXPECT_THAT(first.persons(), ElementsAre("persons/survivor"));
  ASSERT_EQ(first.legal_bases_size(), 1);
  EXPECT_EQ(first.legal_bases(0).kind(), v1::LEGAL_BASIS_KIND_RULE);
  EXPECT_EQ(first.legal_bases(0).rule_id(), "rule-7");
  EXPECT_EQ(first.legal_bases(0).category(),
            type::v1::DATA_CATEGORY_CASE_STATUS);
  EXPECT_EQ(first.hash().size(), 32u);
  EXPECT_TRUE(response.next_page_token().empty());

  // The call itself is in the read chain, about the person, with the
  // data-protection role as its ground.
  v1::ListAuditRecordsResponse again;
  v1::ListAuditRecordsRequest reads = ForPerson("persons/survivor");
  reads.set_chain(v1::AUDIT_CHAIN_READS);
  ASSERT_TRUE(List("dsb-nrw", reads, &again).ok());
  ASSERT_EQ(again.records_size(), 2);
  const v1::AuditRecord& call = again.records(1);
  EXPECT_EQ(call.operation(), "lotse.audit.v1.AuditService/ListAuditRecords");
  EXPECT_EQ(call.agency(), "agencies/dsb-nrw");
  EXPECT_EQ(call.resource(), "persons/survivor/auditRecords");
  EXPECT_EQ(call.actor(), "dpo-1");
  EXPECT_THAT(
      call.persons(),
      UnorderedElementsAre("persons/survivor", "persons/old", "persons/older"));
}

TEST_P(AuditServiceTest, OtherAgenciesAreRefusedAndTheRefusalIsAudited) {
  Append("persons/p1/case", "jobcenter-koeln");
  v1::ListAuditRecordsResponse response;
  grpc::Status s = List("jobcenter-koeln", ForPerson("persons/p1"), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "NOT_DATA_PROTECTION");
  EXPECT_EQ(response.records_size(), 0);

  ASSERT_TRUE(List("dsb-nrw", ForPerson("persons/p1"), &response).ok());
  ASSERT_EQ(response.records_size(), 2);
  EXPECT_EQ(response.records(1).agency(), "agencies/jobcenter-koeln");
  EXPECT_EQ(response.records(1).outcome(), v1::AUDIT_OUTCOME_DENIED);
  EXPECT_EQ(response.records(1).reason(), "NOT_DATA_PROTECTION");

  // An agency the registry does not know is refused as everywhere.
  s = List("kim-koeln", ForPerson("persons/p1"), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(s), "UNKNOWN_AGENCY");
}

TEST_P(AuditServiceTest, LotseServicesAreAdmittedByTheirCertificates) {
  Append("persons/p1/case", "jobcenter-koeln");
  v1::ListAuditRecordsResponse response;
  grpc::Status s = List("svc-identity", ForPerson("persons/p1"), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.records_size(), 1);

  grpc::ClientContext context;
  Prepare(&context);
  v1::GetAuditHeadResponse heads;
  ASSERT_TRUE(Stub<v1::AuditService>("svc-identity")
                  ->GetAuditHead(&context, {}, &heads)
                  .ok());
  ASSERT_EQ(heads.heads_size(), 2);
  absl::StatusOr<AuditHead> changes = ReadAuditHead(db(), Chain::kChanges);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(heads.heads(0).chain(), v1::AUDIT_CHAIN_CHANGES);
  EXPECT_EQ(heads.heads(0).seq(), changes->seq);
  EXPECT_EQ(heads.heads(0).hash(), changes->hash);
  EXPECT_EQ(heads.heads(1).chain(), v1::AUDIT_CHAIN_READS);
  EXPECT_EQ(heads.heads(1).seq(), 1);  // the ListAuditRecords call
  EXPECT_EQ(heads.heads(0).service(), "cases");
}

TEST_P(AuditServiceTest, ListsByAgencyAndTimeInPages) {
  for (int i = 1; i <= 5; ++i) {
    Append(absl::StrCat("persons/p", i, "/case"),
           i % 2 == 0 ? "jobcenter-koeln" : "aa-koeln", Chain::kChanges, i);
  }
  v1::ListAuditRecordsRequest request;
  request.set_agency("agencies/aa-koeln");
  request.set_page_size(2);
  std::vector<int64_t> seqs;
  for (int page = 0; page < 5; ++page) {
    v1::ListAuditRecordsResponse response;
    grpc::Status s = List("dsb-nrw", request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (const v1::AuditRecord& r : response.records()) seqs.push_back(r.seq());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_THAT(seqs, ElementsAre(1, 3, 5));

  v1::ListAuditRecordsRequest by_time;
  by_time.mutable_start_time()->set_seconds(1700000002);
  by_time.mutable_end_time()->set_seconds(1700000004);
  by_time.set_chain(v1::AUDIT_CHAIN_CHANGES);
  v1::ListAuditRecordsResponse response;
  ASSERT_TRUE(List("dsb-nrw", by_time, &response).ok());
  ASSERT_EQ(response.records_size(), 2);
  EXPECT_EQ(response.records(0).seq(), 2);
  EXPECT_EQ(response.records(1).seq(), 3);
}

TEST_P(AuditServiceTest, BadInputIsInvalidArgumentWithTheFields) {
  Append("persons/p1/case", "jobcenter-koeln");
  Append("persons/p1/case", "jobcenter-koeln");
  struct Case {
    v1::ListAuditRecordsRequest request;
    std::vector<std::string> fields;
  };
  std::vector<Case> cases;
  cases.push_back({{}, {"person"}});  // no filter at all
  cases.push_back({ForPerson("people/p1"), {"person"}});
  cases.push_back({ForPerson("persons/p1/x"), {"person"}});
  {
    v1::ListAuditRecordsRequest r;
    r.set_agency("agency-x");
    cases.push_back({r, {"agency"}});
  }
  {
    v1::ListAuditRecordsRequest r = ForPerson("persons/p1");
    r.set_page_size(-1);
    cases.push_back({r, {"page_size"}});
  }
  {
    v1::ListAuditRecordsRequest r = ForPerson("persons/p1");
    r.set_chain(static_cast<v1::AuditChain>(9));
    cases.push_back({r, {"chain"}});
  }
  {
    v1::ListAuditRecordsRequest r = ForPerson("persons/p1");
    r.mutable_start_time()->set_seconds(20);
    r.mutable_end_time()->set_seconds(10);
    cases.push_back({r, {"end_time"}});
  }
  {
    v1::ListAuditRecordsRequest r = ForPerson("persons/p1");
    r.set_page_token("garbage");
    cases.push_back({r, {"page_token"}});
  }
  // A token of another filter.
  v1::ListAuditRecordsRequest first = ForPerson("persons/p1");
  first.set_page_size(1);
  v1::ListAuditRecordsResponse page;
  ASSERT_TRUE(List("dsb-nrw", first, &page).ok());
  ASSERT_FALSE(page.next_page_token().empty());
  {
    v1::ListAuditRecordsRequest r = ForPerson("persons/p2");
    r.set_page_token(page.next_page_token());
    cases.push_back({r, {"page_token"}});
  }
  for (const Case& c : cases) {
    v1::ListAuditRecordsResponse response;
    grpc::Status s = List("dsb-nrw", c.request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.request.ShortDebugString();
    for (const std::string& field : c.fields) {
      EXPECT_TRUE(ViolatedFields(s).count(field) > 0)
          << field << " in " << c.request.ShortDebugString();
    }
    EXPECT_EQ(response.records_size(), 0);
  }
  // The same token with its own filter continues.
  first.set_page_token(page.next_page_token());
  v1::ListAuditRecordsResponse second;
  ASSERT_TRUE(List("dsb-nrw", first, &second).ok());
  ASSERT_EQ(second.records_size(), 1);
  EXPECT_EQ(second.records(0).seq(), 2);
}

TEST_P(AuditServiceTest, VerifiesBothChainsAndAsksTheWitnesses) {
  Append("persons/p1/case", "jobcenter-koeln");
  Append("persons/p1/case", "jobcenter-koeln");
  Append("persons/p1/case", "jobcenter-koeln", Chain::kReads);
  auto verify = [&](const std::string& as, v1::VerifyAuditChainResponse* out,
                    int timeout_ms = 0) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::VerifyAuditChainRequest request;
    request.set_witness_timeout_ms(timeout_ms);
    return Stub<v1::AuditService>(as)->VerifyAuditChain(&context, request, out);
  };
  v1::VerifyAuditChainResponse response;
  ASSERT_TRUE(verify("dsb-nrw", &response).ok());
  EXPECT_EQ(response.service(), "cases");
  ASSERT_EQ(response.chains_size(), 2);
  EXPECT_TRUE(response.chains(0).intact());
  EXPECT_EQ(response.chains(0).records_checked(), 2);
  EXPECT_EQ(response.chains(0).head().seq(), 2);
  EXPECT_TRUE(response.chains(1).intact());
  EXPECT_EQ(response.chains(1).chain(), v1::AUDIT_CHAIN_READS);

  v1::VerifyAuditChainResponse bad;
  EXPECT_EQ(verify("dsb-nrw", &bad, -1).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(verify("jobcenter-koeln", &bad).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  ASSERT_TRUE(storage::RunInTransaction(db(), [](Transaction& tx) {
                return tx
                    .Execute("UPDATE audit_log SET actor = 'x' WHERE seq = 2")
                    .status();
              }).ok());
  v1::VerifyAuditChainResponse tampered;
  ASSERT_TRUE(verify("dsb-nrw", &tampered).ok());
  EXPECT_FALSE(tampered.chains(0).intact());
  EXPECT_EQ(tampered.chains(0).first_bad_seq(), 2);
  EXPECT_THAT(tampered.chains(0).problem(), ::testing::HasSubstr("hash"));

  // Without witnesses, their checkpoints are not served.
  grpc::ClientContext context;
  Prepare(&context);
  v1::ListWitnessedCheckpointsResponse checkpoints;
  EXPECT_EQ(Stub<v1::AuditService>("dsb-nrw")
                ->ListWitnessedCheckpoints(&context, {}, &checkpoints)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  // With them, every chain is compared and the list is theirs.
  StartService(witnesses_);
  witnesses_->break_at = 1;
  v1::VerifyAuditChainResponse witnessed;
  ASSERT_TRUE(verify("dsb-nrw", &witnessed, 250).ok());
  EXPECT_EQ(witnesses_->checks, 2);
  EXPECT_EQ(witnesses_->last_timeout, absl::Milliseconds(250));
  EXPECT_FALSE(witnessed.chains(1).intact());
  EXPECT_EQ(witnessed.chains(1).checkpoints_checked(), 1);
  EXPECT_THAT(witnessed.chains(1).unreachable_witnesses(),
              ElementsAre("placement"));
  grpc::ClientContext context2;
  Prepare(&context2);
  v1::ListWitnessedCheckpointsRequest request;
  request.set_service("identity");
  ASSERT_TRUE(Stub<v1::AuditService>("dsb-nrw")
                  ->ListWitnessedCheckpoints(&context2, request, &checkpoints)
                  .ok());
  ASSERT_EQ(checkpoints.checkpoints_size(), 1);
  EXPECT_EQ(checkpoints.checkpoints(0).witness(), "identity");
}

TEST_P(AuditServiceTest, WithoutWitnessesTheRestoresAreListed) {
  Append("persons/p1/case", "jobcenter-koeln");
  AuditRecord restore = RestoreAuditRecord("cases", "/backups/cases.db");
  restore.time = absl::FromUnixSeconds(1700000500);
  ASSERT_TRUE(AppendAuditStandalone(db(), restore).ok());
  Append("persons/p1/case", "jobcenter-koeln");

  grpc::ClientContext context;
  Prepare(&context);
  v1::VerifyAuditChainRequest request;
  request.set_chain(v1::AUDIT_CHAIN_CHANGES);
  v1::VerifyAuditChainResponse response;
  ASSERT_TRUE(Stub<v1::AuditService>("dsb-nrw")
                  ->VerifyAuditChain(&context, request, &response)
                  .ok());
  ASSERT_EQ(response.chains_size(), 1);
  const v1::ChainVerification& chain = response.chains(0);
  EXPECT_TRUE(chain.intact()) << chain.problem();
  EXPECT_EQ(chain.records_checked(), 3);
  ASSERT_EQ(chain.restores_size(), 1) << chain.ShortDebugString();
  EXPECT_EQ(chain.restores(0).seq(), 2);
  EXPECT_EQ(chain.restores(0).time().seconds(), 1700000500);
  EXPECT_EQ(chain.restores(0).source(), "/backups/cases.db");
  EXPECT_EQ(chain.restores(0).lost_checkpoints(), 0);
}

TEST_P(AuditServiceTest, MergeTablesOfResourceNamesGiveBareIds) {
  ASSERT_TRUE(storage::RunInTransaction(db(), [](Transaction& tx) {
                return tx
                    .Execute(
                        "INSERT INTO named_merges (merged, survivor) "
                        "VALUES ('persons/b', 'persons/a'), "
                        "('persons/c', 'persons/a'), ('d', 'persons/a'), "
                        "('persons/e', 'persons/x')")
                    .status();
              }).ok());
  const MergedIdsFn merged =
      MergedIdsFromTable("named_merges", "merged", "survivor", "persons/");
  std::vector<std::string> ids;
  ASSERT_TRUE(storage::RunInTransaction(
                  db(),
                  [&](Transaction& tx) -> absl::Status {
                    absl::StatusOr<std::vector<std::string>> got =
                        merged(tx, "a");
                    if (!got.ok()) return got.status();
                    ids = *got;
                    return absl::OkStatus();
                  },
                  storage::TxMode::kReadOnly)
                  .ok());
  // "d" is no name this table would hold; it is left out.
  EXPECT_THAT(ids, ElementsAre("b", "c"));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(AuditServiceTest);

}  // namespace
}  // namespace lotse::audit
