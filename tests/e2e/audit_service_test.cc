// The AuditService of all four services, through running processes on
// SQLite and PostgreSQL: the deployment's data-protection officer (dsb-nrw,
// legal domain DATA_PROTECTION, registered by the seed as the administering
// agency registers any agency) lists one person's records from identity,
// cases, courses and placement, finds the records of a person merged into
// them through the survivor, and verifies the chains; another agency is
// refused; and every call to the AuditService shows in the read chain.
#include <signal.h>
#include <stdlib.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/errors/status.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/audit/v1/audit_service.grpc.pb.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "tests/e2e/calls.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::testing {
namespace {

using e2e::Call;
using e2e::Describe;
using e2e::Reason;

namespace av1 = ::lotse::audit::v1;
namespace cv1 = ::lotse::cases::v1;
namespace crv1 = ::lotse::courses::v1;
namespace idv1 = ::lotse::identity::v1;
namespace pv1 = ::lotse::placement::v1;

// Events between processes (agency registrations, the merge); the relays
// back off while a receiver is not up yet.
constexpr absl::Duration kEventTimeout = absl::Seconds(45);
constexpr char kOfficer[] = "dsb-nrw";

// Repeats `call` while it is PERMISSION_DENIED: each agency's
// AgencyRegistered reaches a service on its own, a moment after the seed.
grpc::Status OnceAgencyKnown(
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  grpc::Status status;
  Eventually(
      [&] {
        status = Call(call);
        return status.error_code() != grpc::StatusCode::PERMISSION_DENIED;
      },
      kEventTimeout);
  return status;
}

bool Names(const av1::AuditRecord& record, const std::string& person) {
  for (const std::string& p : record.persons()) {
    if (p == person) return true;
  }
  return false;
}

class AuditServiceE2eTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-audit.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    ports_["cases"] = FreeLocalPort();
    ports_["courses"] = FreeLocalPort();
    ports_["placement"] = FreeLocalPort();
  }

  void TearDown() override {
    for (auto& p : processes_) {
      p.Signal(SIGTERM);
      EXPECT_EQ(p.WaitExit(absl::Seconds(10)).value_or(-1), 0);
    }
  }

  absl::StatusOr<int> Start(const std::string& service,
                            std::vector<std::string> extra) {
    absl::StatusOr<std::string> database = NewTestDatabaseUrl(GetParam());
    if (!database.ok()) return database.status();
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", ports_[service]),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=", *database), "--drain_grace=100ms",
        "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, ".log"));
    if (!p.ok()) return p.status();
    processes_.push_back(*std::move(p));
    names_.push_back(service);
    absl::StatusOr<int> serving =
        processes_.back().WaitServing(absl::Seconds(20));
    if (!serving.ok()) {
      return absl::Status(serving.status().code(),
                          absl::StrCat(serving.status().message(), "\n",
                                       processes_.back().ReadLog()));
    }
    return serving;
  }

  // The four services wired as tools/lotse.sh wires them, and the demo
  // agencies (dsb-nrw among them) registered.
  void StartAll() {
    auto to = [this](const std::string& service) {
      return absl::StrCat(service, "=127.0.0.1:", ports_[service]);
    };
    absl::StatusOr<int> identity = Start(
        "identity", {absl::StrCat("--event_destinations=", to("courses"), ",",
                                  to("cases"), ",", to("placement"))});
    ASSERT_TRUE(identity.ok()) << identity.status();
    ports_["identity"] = *identity;
    const std::string identity_target =
        absl::StrCat("--identity_target=127.0.0.1:", *identity);
    absl::StatusOr<int> cases =
        Start("cases", {identity_target,
                        absl::StrCat("--event_destinations=", to("identity"))});
    ASSERT_TRUE(cases.ok()) << cases.status();
    absl::StatusOr<int> courses = Start(
        "courses", {identity_target,
                    absl::StrCat("--event_destinations=", to("identity"), ",",
                                 to("cases"), ",", to("placement"))});
    ASSERT_TRUE(courses.ok()) << courses.status();
    absl::StatusOr<int> placement = Start(
        "placement",
        {identity_target, absl::StrCat("--event_destinations=", to("identity"),
                                       ",", to("cases"))});
    ASSERT_TRUE(placement.ok()) << placement.status();
    auto seed = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
        {absl::StrCat("--identity=127.0.0.1:", *identity),
         absl::StrCat("--tls_dir=", pki_)},
        absl::StrCat(dir_, "/seed.log"));
    ASSERT_TRUE(seed.ok()) << seed.status();
    ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
        << seed->ReadLog();
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& service,
                                         const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", ports_[service]),
                               *creds);
  }
  std::unique_ptr<av1::AuditService::Stub> Audit(const std::string& service,
                                                 const std::string& as) {
    return av1::AuditService::NewStub(Channel(service, as));
  }

  std::string Logs() const {
    std::string logs;
    for (size_t i = 0; i < processes_.size(); ++i) {
      const std::string log = processes_[i].ReadLog();
      absl::StrAppend(&logs, "---- ", names_[i], " log (tail) ----\n",
                      log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
    }
    return logs;
  }

  idv1::Person Register(const std::string& given, const std::string& family,
                        const std::string& key) {
    idv1::CreatePersonRequest create;
    create.set_request_id(absl::StrCat("e2e-audit-person-", key));
    *create.mutable_person() = SamplePersonWithPapers(given, family, 1990);
    create.set_confirm_new_person(true);
    idv1::Person person;
    auto kim = idv1::IdentityService::NewStub(Channel("identity", "kim-koeln"));
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return kim->CreatePerson(c, create, &person);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return person;
  }

  cv1::Case OpenCase(const idv1::Person& person, const std::string& key) {
    cv1::OpenCaseRequest open;
    open.set_request_id(absl::StrCat("e2e-audit-case-", key));
    open.mutable_case_record()->set_person(person.name());
    open.mutable_case_record()->set_responsible_actor("cm-1");
    cv1::Case opened;
    auto kim = cv1::CasesService::NewStub(Channel("cases", "kim-koeln"));
    grpc::Status s = OnceAgencyKnown([&](grpc::ClientContext* c) {
      return kim->OpenCase(c, open, &opened);
    });
    EXPECT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
    return opened;
  }

  // One page of ListAuditRecords, as `as`.
  grpc::Status List(const std::string& service, const std::string& as,
                    const av1::ListAuditRecordsRequest& request,
                    av1::ListAuditRecordsResponse* response) {
    auto stub = Audit(service, as);
    return Call(
        [&](grpc::ClientContext* c) {
          return stub->ListAuditRecords(c, request, response);
        },
        "data-protection-audit");
  }

  // Every record of `person` at `service` (all pages), as the officer.
  std::vector<av1::AuditRecord> RecordsOf(
      const std::string& service, const std::string& person,
      av1::AuditChain chain = av1::AUDIT_CHAIN_UNSPECIFIED,
      std::vector<std::string>* resolved = nullptr) {
    av1::ListAuditRecordsRequest request;
    request.set_person(person);
    request.set_chain(chain);
    request.set_page_size(50);
    std::vector<av1::AuditRecord> out;
    for (int page = 0; page < 100; ++page) {
      av1::ListAuditRecordsResponse response;
      grpc::Status s = List(service, kOfficer, request, &response);
      EXPECT_TRUE(s.ok()) << service << ": " << Describe(s);
      if (!s.ok()) break;
      out.insert(out.end(), response.records().begin(),
                 response.records().end());
      if (resolved != nullptr) {
        resolved->assign(response.resolved_persons().begin(),
                         response.resolved_persons().end());
      }
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return out;
  }

  std::string pki_;
  std::string dir_;
  std::map<std::string, int> ports_;
  std::vector<ServiceProcess> processes_;
  std::vector<std::string> names_;
};

TEST_P(AuditServiceE2eTest, TheOfficerListsAPersonAcrossAllFourServices) {
  ASSERT_NO_FATAL_FAILURE(StartAll());
  const idv1::Person amina = Register("Amina", "Haddad", "amina");
  const idv1::Person duplicate = Register("Emina", "Hadad", "duplicate");
  ASSERT_FALSE(HasFailure());
  const cv1::Case amina_case = OpenCase(amina, "amina");
  const cv1::Case duplicate_case = OpenCase(duplicate, "duplicate");
  ASSERT_FALSE(HasFailure());

  // placement: the case manager refers the job search to the Jobcenter,
  // which creates the candidate profile.
  {
    cv1::CreateStepRequest refer;
    refer.set_parent(amina_case.name());
    refer.set_request_id("e2e-audit-step");
    refer.mutable_step()->set_kind(cv1::STEP_KIND_JOB_PLACEMENT);
    refer.mutable_step()->set_receiving_agency("agencies/jobcenter-koeln");
    cv1::Step step;
    auto kim = cv1::CasesService::NewStub(Channel("cases", "kim-koeln"));
    // NOT_FOUND (AGENCY_NOT_FOUND) until cases learned of the Jobcenter.
    grpc::Status s;
    Eventually(
        [&] {
          s = Call([&](grpc::ClientContext* c) {
            return kim->CreateStep(c, refer, &step);
          });
          return s.error_code() != grpc::StatusCode::PERMISSION_DENIED &&
                 s.error_code() != grpc::StatusCode::NOT_FOUND;
        },
        kEventTimeout);
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
    pv1::CreateCandidateProfileRequest create;
    create.set_request_id("e2e-audit-profile");
    create.mutable_candidate_profile()->set_person(amina.name());
    create.mutable_candidate_profile()->add_wanted_offer_kinds(
        pv1::OFFER_KIND_JOB);
    pv1::CandidateProfile profile;
    auto jobcenter =
        pv1::PlacementService::NewStub(Channel("placement", "jobcenter-koeln"));
    s = OnceAgencyKnown([&](grpc::ClientContext* c) {
      return jobcenter->CreateCandidateProfile(c, create, &profile);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
    // The Jobcenter, taking part in the case now, reads its view.
    cv1::GetCaseViewRequest view_request;
    view_request.set_name(amina_case.name());
    cv1::CaseView view;
    auto jobcenter_cases =
        cv1::CasesService::NewStub(Channel("cases", "jobcenter-koeln"));
    s = Call([&](grpc::ClientContext* c) {
      return jobcenter_cases->GetCaseView(c, view_request, &view);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  }
  // courses: BAMF takes the person into its remit with the papers and
  // admits them to an integration course.
  {
    idv1::LinkAgencyIdRequest link;
    link.set_parent(amina.name());
    link.set_request_id("e2e-audit-bamf-link");
    link.mutable_agency_id()->set_kind(idv1::AGENCY_ID_KIND_BAMF_FILE_NUMBER);
    link.mutable_agency_id()->set_value("BAMF-7000123");
    *link.mutable_proof() = PapersOf(amina);
    idv1::AgencyId linked;
    auto bamf_identity =
        idv1::IdentityService::NewStub(Channel("identity", "bamf-nuernberg"));
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return bamf_identity->LinkAgencyId(c, link, &linked);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
    crv1::RecordEntitlementRequest entitle;
    entitle.set_request_id("e2e-audit-entitlement");
    crv1::Entitlement* e = entitle.mutable_entitlement();
    e->set_person(amina.name());
    e->set_kind(crv1::ENTITLEMENT_KIND_ADMISSION);
    e->add_course_kinds(crv1::COURSE_KIND_INTEGRATION_GENERAL);
    e->set_units(700);
    *e->mutable_valid_from() = DateInDays(0);
    *e->mutable_valid_until() = DateInDays(365);
    crv1::Entitlement entitlement;
    auto bamf =
        crv1::CoursesService::NewStub(Channel("courses", "bamf-nuernberg"));
    s = OnceAgencyKnown([&](grpc::ClientContext* c) {
      return bamf->RecordEntitlement(c, entitle, &entitlement);
    });
    ASSERT_TRUE(s.ok()) << Describe(s) << "\n" << Logs();
  }

  // Each service has records about the person, and the officer sees them.
  for (const char* service : {"identity", "cases", "courses", "placement"}) {
    std::vector<av1::AuditRecord> records;
    ASSERT_TRUE(Eventually(
        [&] {
          records = RecordsOf(service, amina.name());
          return !records.empty();
        },
        kEventTimeout))
        << service << "\n"
        << Logs();
    for (const av1::AuditRecord& r : records) {
      EXPECT_EQ(r.service(), service);
      EXPECT_TRUE(Names(r, amina.name())) << r.ShortDebugString();
      EXPECT_EQ(r.hash().size(), 32u);
    }
  }
  // The case's records name the person although their resource is the case.
  bool case_record = false;
  for (const av1::AuditRecord& r : RecordsOf("cases", amina.name())) {
    if (r.resource() == amina_case.name() &&
        r.operation() == "lotse.cases.v1.CasesService/OpenCase") {
      case_record = true;
      EXPECT_EQ(r.agency(), "agencies/kim-koeln");
      EXPECT_EQ(r.outcome(), av1::AUDIT_OUTCOME_ALLOWED);
    }
  }
  EXPECT_TRUE(case_record);
  // Identity's access decisions for the other services state their ground:
  // the decision about the agency by the rule, consent or ownership, the
  // asking service's own call as SERVICE.
  bool decision = false;
  for (const av1::AuditRecord& r : RecordsOf("identity", amina.name())) {
    if (r.operation() != "lotse.identity.v1.IdentityService/CheckAccess" ||
        r.outcome() != av1::AUDIT_OUTCOME_ALLOWED) {
      continue;
    }
    ASSERT_EQ(r.legal_bases_size(), r.data_categories_size())
        << r.ShortDebugString();
    for (const av1::LegalBasis& b : r.legal_bases()) {
      if (absl::StartsWith(r.agency(), "services/")) {
        EXPECT_EQ(b.kind(), av1::LEGAL_BASIS_KIND_SERVICE);
      } else {
        decision = true;
        EXPECT_NE(b.kind(), av1::LEGAL_BASIS_KIND_UNSPECIFIED);
        EXPECT_NE(b.kind(), av1::LEGAL_BASIS_KIND_SERVICE);
      }
    }
  }
  EXPECT_TRUE(decision);
  // Every allowed access an agency made in the other services names its
  // ground for each category it touched: ownership, the services' own rule
  // for case status, or the rule or consent identity decided by.
  for (const char* service : {"cases", "courses", "placement"}) {
    for (const av1::AuditRecord& r : RecordsOf(service, amina.name())) {
      if (r.outcome() != av1::AUDIT_OUTCOME_ALLOWED ||
          absl::StartsWith(r.agency(), "services/")) {
        continue;
      }
      std::set<std::string> grounded;
      for (const av1::LegalBasis& b : r.legal_bases()) {
        EXPECT_NE(b.kind(), av1::LEGAL_BASIS_KIND_UNSPECIFIED);
        if (b.kind() == av1::LEGAL_BASIS_KIND_RULE) {
          EXPECT_FALSE(b.rule_id().empty()) << r.ShortDebugString();
        }
        grounded.insert(type::v1::DataCategory_Name(b.category()));
      }
      for (int c : r.data_categories()) {
        EXPECT_TRUE(grounded.count(type::v1::DataCategory_Name(c)) > 0)
            << service << ": " << r.ShortDebugString();
      }
    }
  }
  // The Jobcenter saw the case as a participant, under the rules file's
  // rule, and the person's core identity under the rule identity applied.
  bool participant_view = false;
  for (const av1::AuditRecord& r : RecordsOf("cases", amina.name())) {
    if (r.operation() != "lotse.cases.v1.CasesService/GetCaseView" ||
        r.agency() != "agencies/jobcenter-koeln") {
      continue;
    }
    participant_view = true;
    for (const av1::LegalBasis& b : r.legal_bases()) {
      if (b.category() == type::v1::DATA_CATEGORY_CASE_STATUS) {
        EXPECT_EQ(b.rule_id(), "case-status.participants");
      }
      if (b.category() == type::v1::DATA_CATEGORY_CORE_IDENTITY) {
        EXPECT_EQ(b.rule_id(), "core-identity.working-with-person");
      }
    }
  }
  EXPECT_TRUE(participant_view);

  // Another agency is refused, on every service.
  for (const char* service : {"identity", "cases", "courses", "placement"}) {
    av1::ListAuditRecordsRequest request;
    request.set_person(amina.name());
    av1::ListAuditRecordsResponse response;
    grpc::Status s = List(service, "jobcenter-koeln", request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << service << ": " << Describe(s);
    EXPECT_EQ(Reason(s), "NOT_DATA_PROTECTION") << service;
    EXPECT_EQ(response.records_size(), 0);
  }

  // Merge the duplicate into the person: identity knows it at once, cases
  // once the PersonMerged event arrived.
  {
    idv1::MergePersonsRequest merge;
    merge.set_request_id("e2e-audit-merge");
    merge.set_survivor(amina.name());
    merge.set_survivor_etag(amina.etag());
    merge.set_merged(duplicate.name());
    merge.set_merged_etag(duplicate.etag());
    merge.set_justification("same passport number");
    idv1::Person merged;
    auto kim = idv1::IdentityService::NewStub(Channel("identity", "kim-koeln"));
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return kim->MergePersons(c, merge, &merged);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  for (const char* service : {"identity", "cases"}) {
    std::vector<std::string> resolved;
    bool found = false;
    ASSERT_TRUE(Eventually(
        [&] {
          std::vector<av1::AuditRecord> records = RecordsOf(
              service, amina.name(), av1::AUDIT_CHAIN_CHANGES, &resolved);
          found = false;
          for (const av1::AuditRecord& r : records) {
            if (Names(r, duplicate.name()) && !Names(r, amina.name())) {
              found = true;  // written about the duplicate before the merge
            }
          }
          return found;
        },
        kEventTimeout))
        << service << "\n"
        << Logs();
    EXPECT_EQ(resolved,
              (std::vector<std::string>{amina.name(), duplicate.name()}))
        << service;
  }
  (void)duplicate_case;

  // The officer's calls and the refused ones are in each read chain, about
  // the person.
  for (const char* service : {"identity", "cases", "courses", "placement"}) {
    bool officer = false;
    bool refused = false;
    for (const av1::AuditRecord& r :
         RecordsOf(service, amina.name(), av1::AUDIT_CHAIN_READS)) {
      if (r.operation() != "lotse.audit.v1.AuditService/ListAuditRecords") {
        continue;
      }
      EXPECT_EQ(r.chain(), av1::AUDIT_CHAIN_READS);
      EXPECT_EQ(r.resource(), absl::StrCat(amina.name(), "/auditRecords"));
      if (r.agency() == "agencies/dsb-nrw" &&
          r.outcome() == av1::AUDIT_OUTCOME_ALLOWED) {
        officer = true;
        EXPECT_EQ(r.legal_domain(), type::v1::LEGAL_DOMAIN_DATA_PROTECTION);
        EXPECT_EQ(r.purpose(), "data-protection-audit");
      }
      if (r.agency() == "agencies/jobcenter-koeln" &&
          r.outcome() == av1::AUDIT_OUTCOME_DENIED) {
        refused = true;
        EXPECT_EQ(r.reason(), "NOT_DATA_PROTECTION");
      }
    }
    EXPECT_TRUE(officer) << service;
    EXPECT_TRUE(refused) << service;
  }

  // Both chains of every service verify, and GetAuditHead names their heads.
  for (const char* service : {"identity", "cases", "courses", "placement"}) {
    auto stub = Audit(service, kOfficer);
    av1::VerifyAuditChainResponse verified;
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->VerifyAuditChain(c, {}, &verified);
    });
    ASSERT_TRUE(s.ok()) << service << ": " << Describe(s);
    EXPECT_EQ(verified.service(), service);
    ASSERT_EQ(verified.chains_size(), 2) << service;
    for (const av1::ChainVerification& v : verified.chains()) {
      EXPECT_TRUE(v.intact()) << service << ": " << v.ShortDebugString();
      EXPECT_GT(v.records_checked(), 0) << service;
    }
    av1::GetAuditHeadResponse heads;
    s = Call([&](grpc::ClientContext* c) {
      return stub->GetAuditHead(c, {}, &heads);
    });
    ASSERT_TRUE(s.ok()) << service << ": " << Describe(s);
    ASSERT_EQ(heads.heads_size(), 2);
    EXPECT_GE(heads.heads(0).seq(), verified.chains(0).head().seq());
    EXPECT_GE(heads.heads(1).seq(), verified.chains(1).head().seq());
  }

  // Lotse's services are admitted with their certificates.
  av1::ListAuditRecordsRequest as_service;
  as_service.set_person(amina.name());
  av1::ListAuditRecordsResponse response;
  grpc::Status s = List("placement", "svc-identity", as_service, &response);
  EXPECT_TRUE(s.ok()) << Describe(s);
  EXPECT_GT(response.records_size(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditServiceE2eTest,
                         ::testing::Values(Dialect::kSqlite,
                                           Dialect::kPostgres),
                         DialectParamName());

}  // namespace
}  // namespace lotse::testing
