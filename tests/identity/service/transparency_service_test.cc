// GetTransparencyReport through identity's real mTLS server, with the
// other services replaced by fake audit sources: who may ask, bad input,
// merged ids, a service that does not answer, and the audit of the call.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "services/identity/domain/access_policy.h"
#include "services/identity/service/transparency_fanout.h"
#include "services/identity/store/person_store.h"
#include "services/identity/store/relation_store.h"
#include "tests/identity/service/identity_server_fixture.h"

namespace lotse::identity {
namespace {

namespace pb = ::lotse::audit::v1;
using ::google::protobuf::util::TimeUtil;
using ::lotse::testing::Reason;
using ::lotse::testing::ViolatedFields;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// Another service's audit records: every record it holds whose resource is
// the person asked for, after an optional delay.
class FakePeer : public AuditRecordSource {
 public:
  explicit FakePeer(absl::Duration delay = absl::ZeroDuration())
      : delay_(delay) {}

  void Add(pb::AuditRecord r) {
    absl::MutexLock lock(&mu_);
    records_.push_back(std::move(r));
  }

  absl::StatusOr<pb::ListAuditRecordsResponse> List(
      const pb::ListAuditRecordsRequest& request,
      absl::Time deadline) override {
    absl::SleepFor(delay_);
    pb::ListAuditRecordsResponse response;
    absl::MutexLock lock(&mu_);
    for (const pb::AuditRecord& r : records_) {
      if (r.resource() == request.person()) *response.add_records() = r;
    }
    return response;
  }

 private:
  const absl::Duration delay_;
  absl::Mutex mu_;
  std::vector<pb::AuditRecord> records_ ABSL_GUARDED_BY(mu_);
};

class TransparencyServiceTest : public IdentityServerTest {
 protected:
  void SetUp() override {
    IdentityServerTest::SetUp();
    if (HasFatalFailure()) return;
    for (const auto& [id, domain] :
         std::vector<std::pair<std::string, type::v1::LegalDomain>>{
             {"jobcenter-koeln", type::v1::LEGAL_DOMAIN_JOBCENTER},
             {"kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE},
             {"kim-bonn", type::v1::LEGAL_DOMAIN_KOMMUNE},
             {"dsb-nrw", type::v1::LEGAL_DOMAIN_DATA_PROTECTION}}) {
      v1::RegisterAgencyRequest r;
      r.set_request_id(absl::StrCat("r-", id));
      r.set_agency_id(id);
      r.mutable_agency()->set_display_name(absl::StrCat("Display ", id));
      r.mutable_agency()->set_legal_domain(domain);
      if (domain == type::v1::LEGAL_DOMAIN_KOMMUNE) {
        r.mutable_agency()->set_municipality_code(
            id == "kim-koeln" ? "05315000" : "05314000");
      }
      r.mutable_agency()->set_certificate_identity(id);
      grpc::ClientContext context;
      Prepare(&context);
      v1::Agency out;
      grpc::Status s = As("lotse-admin")->RegisterAgency(&context, r, &out);
      ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
    }
    cases_ = std::make_shared<FakePeer>();
    courses_ = std::make_shared<FakePeer>();
    placement_ = std::make_shared<FakePeer>(absl::Seconds(3));
    ASSERT_TRUE(service_
                    ->EnableTransparency(
                        {{"identity", std::make_shared<LocalAuditRecordSource>(
                                          db(), nullptr)},
                         {"cases", cases_},
                         {"courses", courses_},
                         {"placement", placement_}})
                    .ok());
    person_ = CreatePerson("Olena");
    ASSERT_TRUE(storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
                  return GrantRelation(tx, IdOf(person_), "kim-koeln",
                                       Relation::kCaseOwner, "cases/c1");
                }).ok());
  }

  static std::string IdOf(const std::string& name) {
    return name.substr(std::string("persons/").size());
  }

  std::string CreatePerson(const std::string& given) {
    auto matcher = DuplicateMatcher::Create();
    EXPECT_TRUE(matcher.ok());
    std::string name;
    absl::Status s = storage::RunInTransaction(
        db(), [&](storage::Transaction& tx) -> absl::Status {
          PersonStore store(tx, **matcher);
          v1::Person p;
          v1::PersonName* n = p.add_names();
          n->set_given_names(given);
          n->set_family_names("Kovalenko");
          n->set_kind(v1::NAME_KIND_CURRENT);
          auto created = store.Create(p, "agencies/kim-koeln");
          if (!created.ok()) return created.status();
          name = created->name();
          return absl::OkStatus();
        });
    EXPECT_TRUE(s.ok()) << s;
    return name;
  }

  static void Prepare(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    context->AddMetadata("x-lotse-actor", "caseworker-1");
    context->AddMetadata("x-lotse-purpose", "access-request");
  }

  grpc::Status Report(const std::string& as,
                      const v1::GetTransparencyReportRequest& r,
                      v1::TransparencyReport* out) {
    grpc::ClientContext context;
    Prepare(&context);
    return As(as)->GetTransparencyReport(&context, r, out);
  }

  grpc::Status Report(const std::string& as, const std::string& person,
                      v1::TransparencyReport* out) {
    v1::GetTransparencyReportRequest r;
    r.set_person(person);
    r.set_service_timeout_ms(500);
    return Report(as, r, out);
  }

  grpc::Status GetPerson(const std::string& as, const std::string& name) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::GetPersonRequest r;
    r.set_name(name);
    v1::Person out;
    return As(as)->GetPerson(&context, r, &out);
  }

  static pb::AuditRecord PeerRecord(const std::string& service,
                                    const std::string& person, absl::Time time,
                                    int64_t seq, const std::string& operation,
                                    const std::string& agency) {
    pb::AuditRecord r;
    r.set_service(service);
    r.set_chain(pb::AUDIT_CHAIN_CHANGES);
    r.set_seq(seq);
    *r.mutable_time() =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(time));
    r.set_agency(agency);
    r.set_actor("cw-7");
    r.set_purpose("placement");
    r.set_operation(operation);
    r.set_resource(person);
    r.add_data_categories(type::v1::DATA_CATEGORY_EMPLOYMENT);
    r.set_outcome(pb::AUDIT_OUTCOME_ALLOWED);
    return r;
  }

  std::shared_ptr<FakePeer> cases_, courses_, placement_;
  std::string person_;
};

TEST_P(TransparencyServiceTest, CaseOwnerGetsOneChronologicalReport) {
  ASSERT_TRUE(GetPerson("kim-koeln", person_).ok());
  const absl::Time t0 = absl::Now();
  cases_->Add(PeerRecord("cases", person_, t0 + absl::Milliseconds(2), 4,
                         "lotse.cases.v1.CasesService/GetCase",
                         "agencies/jobcenter-koeln"));
  courses_->Add(PeerRecord("courses", person_, t0 + absl::Milliseconds(1), 9,
                           "event:lotse.courses.v1.CourseResultRecorded",
                           "services/placement"));

  v1::TransparencyReport report;
  grpc::Status s = Report("kim-koeln", person_, &report);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(report.person(), person_);
  EXPECT_THAT(report.answered_services(),
              ElementsAre("identity", "cases", "courses"));
  // The slow service is named, never silently left out.
  EXPECT_THAT(report.missing_services(), ElementsAre("placement"));
  ASSERT_EQ(report.entries_size(), 3);
  const v1::TransparencyEntry& read = report.entries(0);
  EXPECT_EQ(read.service(), "identity");
  EXPECT_EQ(read.agency(), "agencies/kim-koeln");
  EXPECT_EQ(read.agency_display_name(), "Display kim-koeln");
  EXPECT_EQ(read.legal_domain(), type::v1::LEGAL_DOMAIN_KOMMUNE);
  EXPECT_EQ(read.operation_code(), "person.read");
  EXPECT_EQ(read.actor(), "caseworker-1");
  EXPECT_EQ(read.purpose(), "access-request");
  const v1::TransparencyEntry& event = report.entries(1);
  EXPECT_EQ(event.service(), "courses");
  EXPECT_TRUE(event.disclosure_by_event());
  EXPECT_EQ(event.agency(), "services/placement");
  const v1::TransparencyEntry& peer = report.entries(2);
  EXPECT_EQ(peer.service(), "cases");
  EXPECT_EQ(peer.agency_display_name(), "Display jobcenter-koeln");
  EXPECT_EQ(peer.legal_domain(), type::v1::LEGAL_DOMAIN_JOBCENTER);
  EXPECT_EQ(peer.operation_code(), "case.read");
  EXPECT_THAT(peer.data_categories(),
              ElementsAre(type::v1::DATA_CATEGORY_EMPLOYMENT));
}

TEST_P(TransparencyServiceTest, TheCallIsAuditedAgainstThePerson) {
  v1::TransparencyReport report;
  ASSERT_TRUE(Report("kim-koeln", person_, &report).ok());
  bool found = false;
  for (const audit::AuditRecord& r : AuditOf(person_)) {
    if (absl::EndsWith(r.operation, "/GetTransparencyReport")) {
      found = true;
      EXPECT_EQ(r.agency_id, "kim-koeln");
      EXPECT_EQ(r.outcome, audit::Outcome::kAllowed);
      EXPECT_EQ(r.resource, person_);
    }
  }
  EXPECT_TRUE(found);
  // The next report shows the first one.
  ASSERT_TRUE(Report("kim-koeln", person_, &report).ok());
  std::vector<std::string> codes;
  for (const auto& e : report.entries()) codes.push_back(e.operation_code());
  EXPECT_THAT(codes, Contains("transparency_report.read"));
}

TEST_P(TransparencyServiceTest, AMergedIdReportsOnTheSurvivorAndAllItsIds) {
  const std::string other = CreatePerson("Olena Merged");
  cases_->Add(PeerRecord("cases", other, absl::Now(), 1,
                         "lotse.cases.v1.CasesService/GetCase",
                         "agencies/jobcenter-koeln"));
  auto matcher = DuplicateMatcher::Create();
  ASSERT_TRUE(matcher.ok());
  ASSERT_TRUE(
      storage::RunInTransaction(db(),
                                [&](storage::Transaction& tx) -> absl::Status {
                                  PersonStore store(tx, **matcher);
                                  auto s = store.Get(IdOf(person_));
                                  auto m = store.Get(IdOf(other));
                                  if (!s.ok()) return s.status();
                                  if (!m.ok()) return m.status();
                                  return store
                                      .Merge(IdOf(person_), s->person.etag(),
                                             IdOf(other), m->person.etag())
                                      .status();
                                })
          .ok());
  v1::TransparencyReport report;
  grpc::Status s = Report("kim-koeln", other, &report);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(report.person(), person_);
  EXPECT_THAT(report.covered_persons(), UnorderedElementsAre(person_, other));
  bool via_merged = false;
  for (const auto& e : report.entries()) {
    if (e.service() == "cases" && e.resource() == other) via_merged = true;
  }
  EXPECT_TRUE(via_merged);
}

TEST_P(TransparencyServiceTest, OtherAgenciesAreRefusedWithoutAnOracle) {
  v1::TransparencyReport report;
  // Another municipality, about an existing and an unknown person: one
  // answer.
  grpc::Status existing = Report("kim-bonn", person_, &report);
  grpc::Status unknown = Report("kim-bonn", "persons/doesnotexist", &report);
  EXPECT_EQ(existing.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(existing), "NOT_CASE_OWNER");
  EXPECT_EQ(unknown.error_code(), existing.error_code());
  EXPECT_EQ(Reason(unknown), Reason(existing));
  EXPECT_EQ(unknown.error_message(), existing.error_message());
  // The case owner too cannot tell an unknown person from another's.
  grpc::Status owner_unknown =
      Report("kim-koeln", "persons/doesnotexist", &report);
  EXPECT_EQ(Reason(owner_unknown), "NOT_CASE_OWNER");
  // A domain that never gets reports.
  grpc::Status jobcenter = Report("jobcenter-koeln", person_, &report);
  EXPECT_EQ(jobcenter.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(jobcenter), "WRONG_LEGAL_DOMAIN");
  // Refusals are audited.
  bool denied = false;
  for (const audit::AuditRecord& r : AuditOf(person_)) {
    if (absl::EndsWith(r.operation, "/GetTransparencyReport") &&
        r.agency_id == "kim-bonn") {
      denied = r.outcome == audit::Outcome::kDenied;
    }
  }
  EXPECT_TRUE(denied);
}

TEST_P(TransparencyServiceTest, DataProtectionMayAskAndLearnsOfUnknownIds) {
  v1::TransparencyReport report;
  grpc::Status s = Report("dsb-nrw", person_, &report);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(report.person(), person_);
  grpc::Status unknown = Report("dsb-nrw", "persons/doesnotexist", &report);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Reason(unknown), "PERSON_NOT_FOUND");
}

TEST_P(TransparencyServiceTest, BadInputIsInvalidArgument) {
  v1::TransparencyReport report;
  grpc::Status s = Report("kim-koeln", "people/x", &report);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(s), ElementsAre("person"));

  v1::GetTransparencyReportRequest r;
  r.set_person(person_);
  r.set_service_timeout_ms(-1);
  *r.mutable_start_time() = TimeUtil::SecondsToTimestamp(2000);
  *r.mutable_end_time() = TimeUtil::SecondsToTimestamp(1000);
  s = Report("kim-koeln", r, &report);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(s),
              UnorderedElementsAre("service_timeout_ms", "end_time"));

  r.set_service_timeout_ms(0);
  r.mutable_start_time()->set_nanos(-5);
  s = Report("kim-koeln", r, &report);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(s), ElementsAre("start_time"));
}

TEST_P(TransparencyServiceTest, ATimeRangeLimitsTheEntries) {
  ASSERT_TRUE(GetPerson("kim-koeln", person_).ok());
  const absl::Time after = absl::Now();
  cases_->Add(PeerRecord("cases", person_, after + absl::Seconds(1), 4,
                         "lotse.cases.v1.CasesService/GetCase",
                         "agencies/jobcenter-koeln"));
  v1::GetTransparencyReportRequest r;
  r.set_person(person_);
  r.set_service_timeout_ms(300);
  *r.mutable_start_time() =
      TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(after));
  v1::TransparencyReport report;
  ASSERT_TRUE(Report("kim-koeln", r, &report).ok());
  for (const auto& e : report.entries()) {
    EXPECT_NE(e.operation_code(), "person.read") << e.DebugString();
  }
}

TEST_P(TransparencyServiceTest, ReportListsTheHoldsOnThePerson) {
  v1::PlaceLegalHoldRequest r;
  r.set_request_id("hold-1");
  r.mutable_hold()->set_subject(person_);
  r.mutable_hold()->set_reason("Auskunftsverfahren 2026-17");
  const absl::CivilDay end =
      absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) + 60;
  r.mutable_hold()->mutable_end_date()->set_year(
      static_cast<int32_t>(end.year()));
  r.mutable_hold()->mutable_end_date()->set_month(end.month());
  r.mutable_hold()->mutable_end_date()->set_day(end.day());
  v1::LegalHold hold;
  grpc::ClientContext context;
  Prepare(&context);
  ASSERT_TRUE(As("dsb-nrw")->PlaceLegalHold(&context, r, &hold).ok());

  v1::TransparencyReport report;
  ASSERT_TRUE(Report("kim-koeln", person_, &report).ok());
  ASSERT_EQ(report.legal_holds_size(), 1);
  EXPECT_EQ(report.legal_holds(0).name(), hold.name());
  EXPECT_EQ(report.legal_holds(0).reason(), "Auskunftsverfahren 2026-17");
  EXPECT_EQ(report.legal_holds(0).state(), v1::LegalHold::STATE_ACTIVE);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(TransparencyServiceTest);

}  // namespace
}  // namespace lotse::identity
