#include "common/agencies/audited_call.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/events.pb.h"
#include "tests/support/test_database.h"

namespace lotse::agencies {
namespace {

using ::lotse::storage::Transaction;

class AuditedCallTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    std::vector<storage::Migration> migrations = audit::AuditMigrations();
    migrations.push_back(RegistryMigration());
    migrations.push_back(
        {"test.0001", "CREATE TABLE things (id TEXT PRIMARY KEY)"});
    ASSERT_TRUE(storage::ApplyMigrations(db(), migrations).ok());
    identity::v1::Agency a;
    a.set_name("agencies/jobcenter-koeln");
    a.set_legal_domain(type::v1::LEGAL_DOMAIN_JOBCENTER);
    a.set_certificate_identity("jobcenter-koeln");
    a.set_state(identity::v1::AGENCY_STATE_ACTIVE);
    ASSERT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  return UpsertAgency(tx, a);
                }).ok());
    env_.service = "lotse.test.v1.TestService";
    env_.db = &db();
    env_.commit_write = [this](const auto& body) {
      return storage::RunInTransaction(db(), body);
    };
    // The read chain in a database of its own, as a service keeps it.
    absl::StatusOr<std::unique_ptr<storage::Database>> reads =
        testing::NewTestDatabase(dialect());
    ASSERT_TRUE(reads.ok()) << reads.status();
    read_db_ = *std::move(reads);
    ASSERT_TRUE(
        storage::ApplyMigrations(*read_db_, audit::ReadAuditMigrations()).ok());
    env_.read_audit_db = read_db_.get();
    env_.commit_read_audit = [this](const auto& body) {
      return storage::RunInTransaction(*read_db_, body);
    };
    rc_.caller = {"jobcenter-koeln", "JOBCENTER"};
    rc_.actor = "caseworker-7";
    rc_.purpose = "job-placement";
  }

  // The records about `resource` in one chain: the change chain in the
  // service database, the read chain in its own.
  std::vector<audit::AuditRecord> ChainTrail(const std::string& resource,
                                             audit::Chain chain) {
    audit::ListAuditOptions options;
    options.chain = chain;
    absl::StatusOr<std::vector<audit::AuditRecord>> rows =
        audit::ListAuditForResource(
            chain == audit::Chain::kReads ? *read_db_ : db(), resource,
            options);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<audit::AuditRecord>{};
  }

  // Both chains' records about `resource`, the change chain's first.
  std::vector<audit::AuditRecord> Trail(const std::string& resource) {
    std::vector<audit::AuditRecord> out =
        ChainTrail(resource, audit::Chain::kChanges);
    for (audit::AuditRecord& r : ChainTrail(resource, audit::Chain::kReads)) {
      out.push_back(std::move(r));
    }
    return out;
  }

  int Things() {
    int n = -1;
    EXPECT_TRUE(storage::RunInTransaction(db(), [&](Transaction& tx) {
                  absl::StatusOr<storage::Rows> r =
                      tx.Query("SELECT COUNT(*) FROM things");
                  if (!r.ok()) return r.status();
                  n = static_cast<int>(r->front().GetInt(0).value());
                  return absl::OkStatus();
                }).ok());
    return n;
  }

  std::unique_ptr<storage::Database> read_db_;
  CallEnvironment env_;
  server::RequestContext rc_;
};

TEST_P(AuditedCallTest, AWriteAndItsAuditRecordsCommitTogether) {
  AuditedCall call(env_, rc_, "Put", "things");
  absl::Status s = call.Write([&](Transaction& tx, const LocalAgency& me) {
    EXPECT_EQ(me.legal_domain, "JOBCENTER");
    call.Touch("persons/p1", "things/t1", {"EMPLOYMENT"});
    call.Touch("persons/p1", "things/t1", {"EMPLOYMENT"});  // one record
    return tx.Execute("INSERT INTO things (id) VALUES ('t1')").status();
  });
  ASSERT_TRUE(call.Finish(s).ok());
  EXPECT_EQ(Things(), 1);
  std::vector<audit::AuditRecord> trail = Trail("persons/p1");
  ASSERT_EQ(trail.size(), 1u);
  EXPECT_EQ(trail[0].operation, "lotse.test.v1.TestService/Put");
  EXPECT_EQ(trail[0].resource, "persons/p1/things/t1");
  EXPECT_EQ(trail[0].agency_id, "jobcenter-koeln");
  EXPECT_EQ(trail[0].actor, "caseworker-7");
  EXPECT_EQ(trail[0].purpose, "job-placement");
  EXPECT_EQ(trail[0].data_categories, std::vector<std::string>{"EMPLOYMENT"});
  EXPECT_EQ(trail[0].outcome, audit::Outcome::kAllowed);
  // The record committed with the write, in the change chain.
  EXPECT_EQ(ChainTrail("persons/p1", audit::Chain::kChanges).size(), 1u);
  EXPECT_TRUE(ChainTrail("persons/p1", audit::Chain::kReads).empty());
}

TEST_P(AuditedCallTest, RecordsNameTheirPersonsAndTheGroundOfTheAccess) {
  // "cases/c1" is about person p7, as the service's hook knows.
  env_.persons_of_resource = [](Transaction&, const std::string& resource)
      -> absl::StatusOr<std::vector<std::string>> {
    if (resource.rfind("cases/c1", 0) == 0) {
      return std::vector<std::string>{"p7"};
    }
    return std::vector<std::string>{};
  };
  AuditedCall call(env_, rc_, "Get", "cases/c1");
  call.AddPerson("persons/p8");
  call.AddLegalBasis(
      {"EMPLOYMENT", audit::BasisKind::kRule, "jobcenter-employment", ""});
  absl::Status s = call.Read([&](Transaction&, const LocalAgency&) {
    call.TouchResource("cases/c1", {"CASE_STATUS", "EMPLOYMENT"});
    call.Touch("persons/p9", "things/t", {"EMPLOYMENT"});
    // A ground of one record only.
    call.AddLegalBasis({"EMPLOYMENT", audit::BasisKind::kConsent, "",
                        "persons/p9/consents/c1"},
                       "persons/p9/things/t");
    return absl::OkStatus();
  });
  ASSERT_TRUE(call.Finish(s).ok());

  audit::AuditFilter filter;
  filter.person_ids = {"p7"};
  absl::StatusOr<audit::AuditRecordPage> page =
      audit::ListAuditRecords({&db(), read_db_.get()}, filter, {}, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records.size(), 1u);
  const audit::AuditRecord& r = page->records[0].record;
  EXPECT_EQ(r.resource, "cases/c1");
  EXPECT_EQ(r.persons, (std::vector<std::string>{"p7", "p8"}));
  // Only the category with a given ground has one (a JOBCENTER implies
  // none).
  ASSERT_EQ(r.legal_bases.size(), 1u);
  EXPECT_EQ(r.legal_bases[0].category, "EMPLOYMENT");
  EXPECT_EQ(r.legal_bases[0].rule_id, "jobcenter-employment");

  filter.person_ids = {"p9"};
  page = audit::ListAuditRecords({&db(), read_db_.get()}, filter, {}, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].record.persons,
            (std::vector<std::string>{"p8", "p9"}));
  ASSERT_EQ(page->records[0].record.legal_bases.size(), 2u);
  EXPECT_EQ(page->records[0].record.legal_bases[1].consent,
            "persons/p9/consents/c1");

  // A refusal before any phase still names the target's person.
  AuditedCall refused(env_, rc_, "Get", "cases/c1");
  EXPECT_FALSE(refused.Finish(absl::PermissionDeniedError("no")).ok());
  filter.person_ids = {"p7"};
  page = audit::ListAuditRecords({&db(), read_db_.get()}, filter, {}, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 2u);
  EXPECT_EQ(page->records[1].record.outcome, audit::Outcome::kDenied);
  EXPECT_TRUE(page->records[1].record.legal_bases.empty());
}

TEST_P(AuditedCallTest, AGroundForOnePersonStaysOnThatPersonsRecords) {
  AuditedCall call(env_, rc_, "List", "things");
  // Identity allowed EMPLOYMENT of p1 by a rule; p2's record was read on no
  // ground the call knows.
  call.AddLegalBasisFor("persons/p1", {"EMPLOYMENT", audit::BasisKind::kRule,
                                       "employment.labour-market", ""});
  ASSERT_TRUE(call.Finish(call.Read([&](Transaction&, const LocalAgency&) {
                    call.Touch("persons/p1", "things/a", {"EMPLOYMENT"});
                    call.Touch("persons/p2", "things/b", {"EMPLOYMENT"});
                    return absl::OkStatus();
                  }))
                  .ok());
  std::vector<audit::AuditRecord> p1 = Trail("persons/p1/things/a");
  ASSERT_EQ(p1.size(), 1u);
  ASSERT_EQ(p1[0].legal_bases.size(), 1u);
  EXPECT_EQ(p1[0].legal_bases[0].rule_id, "employment.labour-market");
  std::vector<audit::AuditRecord> p2 = Trail("persons/p2/things/b");
  ASSERT_EQ(p2.size(), 1u);
  EXPECT_TRUE(p2[0].legal_bases.empty());
}

TEST_P(AuditedCallTest, TheServicesOwnGroundAndOwnershipOfWhatWasWritten) {
  // The service knows its own ground for CASE_STATUS of "cases/..." only.
  int asked = 0;
  env_.basis_of_access = [&](Transaction&, const LocalAgency& caller,
                             const std::string& resource,
                             const std::string& category)
      -> absl::StatusOr<std::optional<audit::LegalBasis>> {
    ++asked;
    EXPECT_EQ(caller.id, "jobcenter-koeln");
    if (resource.rfind("cases/", 0) != 0 || category != "CASE_STATUS") {
      return std::nullopt;
    }
    return audit::LegalBasis{category, audit::BasisKind::kRule,
                             "case-status.participants", ""};
  };
  AuditedCall read(env_, rc_, "Get", "cases/c1");
  read.set_target_categories({"CASE_STATUS", "HEALTH"});
  ASSERT_TRUE(read.Finish(read.Read([](Transaction&, const LocalAgency&) {
                    return absl::OkStatus();
                  }))
                  .ok());
  std::vector<audit::AuditRecord> trail = Trail("cases/c1");
  ASSERT_EQ(trail.size(), 1u);
  // HEALTH was read on no ground the call or the service knows: none named.
  ASSERT_EQ(trail[0].legal_bases.size(), 1u);
  EXPECT_EQ(trail[0].legal_bases[0].category, "CASE_STATUS");
  EXPECT_EQ(trail[0].legal_bases[0].rule_id, "case-status.participants");
  EXPECT_EQ(asked, 2);

  // What a write phase touched without a ground the caller wrote, as its
  // owner; the service's own ground still comes first.
  AuditedCall write(env_, rc_, "Put", "things");
  absl::Status s = write.Write([&](Transaction& tx, const LocalAgency&) {
    write.Touch("persons/p3", "things/t3", {"EMPLOYMENT"});
    write.TouchResource("cases/c2", {"CASE_STATUS"});
    return tx.Execute("INSERT INTO things (id) VALUES ('t3')").status();
  });
  ASSERT_TRUE(write.Finish(s).ok());
  trail = Trail("persons/p3/things/t3");
  ASSERT_EQ(trail.size(), 1u);
  ASSERT_EQ(trail[0].legal_bases.size(), 1u);
  EXPECT_EQ(trail[0].legal_bases[0].kind, audit::BasisKind::kOwner);
  trail = Trail("cases/c2");
  ASSERT_EQ(trail.size(), 1u);
  ASSERT_EQ(trail[0].legal_bases.size(), 1u);
  EXPECT_EQ(trail[0].legal_bases[0].kind, audit::BasisKind::kRule);

  // A failed lookup of the ground fails the phase rather than writing a
  // record without it.
  env_.basis_of_access = [](Transaction&, const LocalAgency&,
                            const std::string&, const std::string&)
      -> absl::StatusOr<std::optional<audit::LegalBasis>> {
    return absl::UnavailableError("store gone");
  };
  AuditedCall failing(env_, rc_, "Get", "cases/c3");
  failing.set_target_categories({"CASE_STATUS"});
  EXPECT_EQ(failing
                .Finish(failing.Read([](Transaction&, const LocalAgency&) {
                  return absl::OkStatus();
                }))
                .code(),
            absl::StatusCode::kUnavailable);
}

TEST_P(AuditedCallTest, ServicesAndTheDataProtectionRoleAreTheirOwnGround) {
  rc_.caller = {"cases", server::kServiceDomain};
  AuditedCall call(env_, rc_, "Get", "persons/p1");
  call.admit_services();
  call.set_target_categories({"CORE_IDENTITY"});
  ASSERT_TRUE(call.Finish(call.Read([](Transaction&, const LocalAgency&) {
                    return absl::OkStatus();
                  }))
                  .ok());
  std::vector<audit::AuditRecord> trail = Trail("persons/p1");
  ASSERT_EQ(trail.size(), 1u);
  ASSERT_EQ(trail[0].legal_bases.size(), 1u);
  EXPECT_EQ(trail[0].legal_bases[0].kind, audit::BasisKind::kService);
  EXPECT_EQ(trail[0].persons, std::vector<std::string>{"p1"});
}

TEST_P(AuditedCallTest, AFailedWriteLeavesNothingButADeniedRecord) {
  AuditedCall call(env_, rc_, "Put", "things");
  call.set_person_target("persons/p2", "things", {"EMPLOYMENT"});
  absl::Status s = call.Write([&](Transaction& tx, const LocalAgency&) {
    call.Touch("persons/p2", "things/t2", {"EMPLOYMENT"});
    if (absl::Status w =
            tx.Execute("INSERT INTO things (id) VALUES ('t2')").status();
        !w.ok()) {
      return w;
    }
    return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                           "NO_LEGAL_BASIS", "not allowed");
  });
  EXPECT_EQ(call.Finish(s).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Things(), 0);
  std::vector<audit::AuditRecord> trail = Trail("persons/p2");
  ASSERT_EQ(trail.size(), 1u);
  // The touch of the rolled-back phase is forgotten; the target is audited.
  EXPECT_EQ(trail[0].resource, "persons/p2/things");
  EXPECT_EQ(trail[0].outcome, audit::Outcome::kDenied);
  EXPECT_EQ(trail[0].reason, "NO_LEGAL_BASIS");
  // Nothing changed, so the refusal is in the read chain.
  EXPECT_EQ(ChainTrail("persons/p2", audit::Chain::kReads).size(), 1u);
}

TEST_P(AuditedCallTest, AReadOnlyCallIsAuditedAtFinish) {
  AuditedCall call(env_, rc_, "Get", "things/t3");
  absl::Status s = call.Read([&](Transaction&, const LocalAgency&) {
    call.Touch("persons/p3", "things/t3", {"EMPLOYMENT", "LANGUAGE"});
    return absl::OkStatus();
  });
  EXPECT_TRUE(Trail("persons/p3").empty());
  ASSERT_TRUE(call.Finish(s).ok());
  std::vector<audit::AuditRecord> trail = Trail("persons/p3");
  ASSERT_EQ(trail.size(), 1u);
  EXPECT_EQ(trail[0].data_categories,
            (std::vector<std::string>{"EMPLOYMENT", "LANGUAGE"}));
  // A read commits nothing to the service database: its record is in the
  // read chain, in the read-audit database.
  EXPECT_EQ(ChainTrail("persons/p3", audit::Chain::kReads).size(), 1u);
  EXPECT_TRUE(ChainTrail("persons/p3", audit::Chain::kChanges).empty());
  absl::StatusOr<audit::AuditHead> data_head = audit::ReadAuditHead(db());
  ASSERT_TRUE(data_head.ok());
  EXPECT_EQ(data_head->seq, 0);
  audit::VerifyOptions verify;
  verify.chain = audit::Chain::kReads;
  absl::StatusOr<audit::VerifyReport> verified =
      audit::VerifyAuditChain(*read_db_, verify);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_TRUE(verified->intact) << verified->problem;
  EXPECT_EQ(verified->rows_checked, 1);
}

TEST_P(AuditedCallTest, WithoutAReadAuditDatabaseTheReadChainIsInTheService) {
  env_.read_audit_db = nullptr;
  env_.commit_read_audit = nullptr;
  AuditedCall call(env_, rc_, "Get", "things/t9");
  absl::Status s = call.Read([&](Transaction&, const LocalAgency&) {
    call.Touch("persons/p9", "things/t9", {"EMPLOYMENT"});
    return absl::OkStatus();
  });
  ASSERT_TRUE(call.Finish(s).ok());
  audit::ListAuditOptions reads;
  reads.chain = audit::Chain::kReads;
  absl::StatusOr<std::vector<audit::AuditRecord>> in_service =
      audit::ListAuditForResource(db(), "persons/p9", reads);
  ASSERT_TRUE(in_service.ok()) << in_service.status();
  EXPECT_EQ(in_service->size(), 1u);
  EXPECT_TRUE(ChainTrail("persons/p9", audit::Chain::kReads).empty());
}

TEST_P(AuditedCallTest, CatalogueReadsAreNotAuditedButRefusalsAre) {
  AuditedCall ok_call(env_, rc_, "List", "offers");
  ok_call.set_audit_personal_only();
  ASSERT_TRUE(ok_call
                  .Finish(ok_call.Read([](Transaction&, const LocalAgency&) {
                    return absl::OkStatus();
                  }))
                  .ok());
  EXPECT_TRUE(Trail("offers").empty());

  server::RequestContext stranger = rc_;
  stranger.caller = {"nobody", "JOBCENTER"};
  AuditedCall refused(env_, stranger, "List", "offers");
  refused.set_audit_personal_only();
  absl::Status s = refused.Finish(refused.Read(
      [](Transaction&, const LocalAgency&) { return absl::OkStatus(); }));
  EXPECT_EQ(ReasonOf(s).value_or(""), "UNKNOWN_AGENCY");
  std::vector<audit::AuditRecord> trail = Trail("offers");
  ASSERT_EQ(trail.size(), 1u);
  EXPECT_EQ(trail[0].agency_id, "nobody");
  EXPECT_EQ(trail[0].outcome, audit::Outcome::kDenied);
}

TEST_P(AuditedCallTest, ANewAgencyIsLookedUpBeforeItsFirstWriteIsRefused) {
  int asked = 0;
  env_.lookup_agency = [&](absl::string_view agency,
                           absl::Time) -> absl::StatusOr<identity::v1::Agency> {
    ++asked;
    if (agency != "agencies/aa-koeln") return absl::NotFoundError("unknown");
    identity::v1::Agency a;
    a.set_name("agencies/aa-koeln");
    a.set_legal_domain(type::v1::LEGAL_DOMAIN_ARBEITSAGENTUR);
    a.set_certificate_identity("aa-koeln");
    a.set_state(identity::v1::AGENCY_STATE_ACTIVE);
    return a;
  };
  server::RequestContext newcomer = rc_;
  newcomer.caller = {"aa-koeln", "ARBEITSAGENTUR"};
  AuditedCall call(env_, newcomer, "Put", "things");
  absl::Status s = call.Write([&](Transaction& tx, const LocalAgency& me) {
    EXPECT_EQ(me.id, "aa-koeln");
    call.Touch("persons/p5", "things/t5", {"EMPLOYMENT"});
    return tx.Execute("INSERT INTO things (id) VALUES ('t5')").status();
  });
  ASSERT_TRUE(call.Finish(s).ok()) << s;
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(Things(), 1);
  std::vector<audit::AuditRecord> trail = Trail("persons/p5");
  ASSERT_EQ(trail.size(), 1u);
  EXPECT_EQ(trail[0].agency_id, "aa-koeln");

  // One identity does not know either: refused as before, and audited.
  server::RequestContext stranger = rc_;
  stranger.caller = {"nobody", "JOBCENTER"};
  AuditedCall refused(env_, stranger, "Get", "things/t5");
  s = refused.Finish(refused.Read(
      [](Transaction&, const LocalAgency&) { return absl::OkStatus(); }));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(s).value_or(""), "UNKNOWN_AGENCY");
  EXPECT_EQ(asked, 2);
  ASSERT_EQ(Trail("things/t5").size(), 1u);
}

TEST_P(AuditedCallTest, ARegistryOfItsOwnResolvesTheCallerAndAdmitsServices) {
  int resolved = 0;
  env_.lookup_agency = [](absl::string_view,
                          absl::Time) -> absl::StatusOr<identity::v1::Agency> {
    ADD_FAILURE() << "a service with its own registry asks nobody";
    return absl::NotFoundError("unused");
  };
  env_.resolve_caller =
      [&](Transaction&,
          const server::CallerIdentity& caller) -> absl::StatusOr<LocalAgency> {
    ++resolved;
    if (caller.agency_id != "cert-of-kim") {
      return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                             "UNKNOWN_AGENCY", "not registered");
    }
    LocalAgency kim;
    kim.id = "kim-koeln";
    kim.legal_domain = "KOMMUNE";
    return kim;
  };
  server::RequestContext kim = rc_;
  kim.caller = {"cert-of-kim", "KOMMUNE"};
  AuditedCall call(env_, kim, "Get", "things");
  absl::Status s = call.Read([&](Transaction&, const LocalAgency& me) {
    EXPECT_EQ(me.id, "kim-koeln");
    return absl::OkStatus();
  });
  ASSERT_TRUE(call.Finish(s).ok()) << s;
  EXPECT_EQ(resolved, 1);
  ASSERT_EQ(Trail("things").size(), 1u);
  EXPECT_EQ(Trail("things")[0].agency_id, "kim-koeln");

  // A service is admitted only where the call says so.
  server::RequestContext service = rc_;
  service.caller = {"cases", server::kServiceDomain};
  AuditedCall admitted(env_, service, "Get", "things/s1");
  admitted.admit_services();
  s = admitted.Read([&](Transaction&, const LocalAgency& me) {
    EXPECT_EQ(me.id, "cases");
    EXPECT_EQ(me.legal_domain, server::kServiceDomain);
    return absl::OkStatus();
  });
  ASSERT_TRUE(admitted.Finish(s).ok()) << s;
  EXPECT_EQ(resolved, 1);
  AuditedCall refused(env_, service, "Get", "things/s2");
  s = refused.Finish(refused.Read(
      [](Transaction&, const LocalAgency&) { return absl::OkStatus(); }));
  EXPECT_EQ(ReasonOf(s).value_or(""), "UNKNOWN_AGENCY");
  EXPECT_EQ(resolved, 2);
}

TEST_P(AuditedCallTest,
       WholeResourcesCarryTheirReasonAndAppendedRecordsAsGiven) {
  AuditedCall call(env_, rc_, "Search", "persons");
  absl::Status s = call.Read([&](Transaction&, const LocalAgency&) {
    call.TouchResource("persons", {"CORE_IDENTITY"});
    call.TouchResource("persons/p6", {"CORE_IDENTITY"});
    call.TouchResource("persons/p7", {"CORE_IDENTITY"}, "MATCH_ONLY");
    audit::AuditRecord other;
    other.agency_id = "aa-koeln";
    other.legal_domain = "ARBEITSAGENTUR";
    other.operation = "lotse.test.v1.TestService/Search";
    other.resource = "persons/p7";
    other.data_categories = {"EMPLOYMENT"};
    other.outcome = audit::Outcome::kDenied;
    other.reason = "NO_RELATION";
    call.AppendRecord(other);
    return absl::OkStatus();
  });
  ASSERT_TRUE(call.Finish(s).ok()) << s;
  // The collection's trail holds those of its members too.
  ASSERT_EQ(Trail("persons").size(), 4u);
  std::vector<audit::AuditRecord> p6 = Trail("persons/p6");
  ASSERT_EQ(p6.size(), 1u);
  EXPECT_EQ(p6[0].reason, "");
  std::vector<audit::AuditRecord> p7 = Trail("persons/p7");
  ASSERT_EQ(p7.size(), 2u);
  EXPECT_EQ(p7[0].agency_id, "jobcenter-koeln");
  EXPECT_EQ(p7[0].outcome, audit::Outcome::kAllowed);
  EXPECT_EQ(p7[0].reason, "MATCH_ONLY");
  EXPECT_EQ(p7[1].agency_id, "aa-koeln");
  EXPECT_EQ(p7[1].outcome, audit::Outcome::kDenied);
  EXPECT_EQ(p7[1].reason, "NO_RELATION");

  // A refused call writes neither; its target carries the categories.
  AuditedCall refused(env_, rc_, "Search", "persons/p8");
  refused.set_target_categories({"CORE_IDENTITY"});
  s = refused.Finish(refused.Read([&](Transaction&, const LocalAgency&) {
    refused.TouchResource("persons/p8", {"CORE_IDENTITY"}, "MATCH_ONLY");
    audit::AuditRecord other;
    other.resource = "persons/p8";
    refused.AppendRecord(other);
    return ErrorWithReason(absl::StatusCode::kPermissionDenied, "NO_RELATION",
                           "no");
  }));
  std::vector<audit::AuditRecord> p8 = Trail("persons/p8");
  ASSERT_EQ(p8.size(), 1u);
  EXPECT_EQ(p8[0].outcome, audit::Outcome::kDenied);
  EXPECT_EQ(p8[0].data_categories, std::vector<std::string>{"CORE_IDENTITY"});
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(AuditedCallTest);

}  // namespace
}  // namespace lotse::agencies
