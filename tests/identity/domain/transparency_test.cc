#include "services/identity/domain/transparency.h"

#include <string>
#include <vector>

#include "common/errors/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace lotse::identity {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::lotse::audit::v1::AuditRecord;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

AuditRecord Record(int64_t seconds, int64_t seq, std::string operation,
                   std::string agency = "agencies/jc") {
  AuditRecord r;
  *r.mutable_time() = TimeUtil::SecondsToTimestamp(seconds);
  r.set_chain(lotse::audit::v1::AUDIT_CHAIN_READS);
  r.set_seq(seq);
  r.set_operation(std::move(operation));
  r.set_agency(std::move(agency));
  r.set_outcome(lotse::audit::v1::AUDIT_OUTCOME_ALLOWED);
  return r;
}

TEST(DescribeOperationTest, WordsRpcsByVerbAndNoun) {
  OperationWords w = DescribeOperation(
      "lotse.identity.v1.IdentityService/GetCurrentResidenceStatus");
  EXPECT_EQ(w.code, "residence_status.read");
  EXPECT_EQ(w.description, "read your residence status");
  // Singular and plural of one thing share the code.
  EXPECT_EQ(DescribeOperation(
                "lotse.identity.v1.IdentityService/ListResidenceStatuses")
                .code,
            "residence_status.read");
  w = DescribeOperation("lotse.identity.v1.IdentityService/UpdatePerson");
  EXPECT_EQ(w.code, "person.update");
  EXPECT_EQ(w.description,
            "changed your personal data (name, birth, nationality)");
  EXPECT_EQ(
      DescribeOperation("lotse.courses.v1.CoursesService/RecordCourseResult")
          .code,
      "course_result.create");
  EXPECT_EQ(DescribeOperation("lotse.cases.v1.CasesService/CloseCase").code,
            "case.end");
}

TEST(DescribeOperationTest, SpecialMethodsHaveTheirOwnWords) {
  OperationWords w =
      DescribeOperation("lotse.identity.v1.IdentityService/CheckAccess");
  EXPECT_EQ(w.code, "access.check");
  EXPECT_EQ(w.description, "checked whether an office may see your data");
  EXPECT_EQ(
      DescribeOperation("lotse.identity.v1.IdentityService/MergePersons").code,
      "person.merge");
}

TEST(DescribeOperationTest, UnknownNounsAreSpelledOut) {
  OperationWords w =
      DescribeOperation("lotse.courses.v1.CoursesService/GetCourse");
  EXPECT_EQ(w.code, "course.read");
  EXPECT_EQ(w.description, "read your course");
}

TEST(DescribeOperationTest, EventsAreDisclosures) {
  OperationWords w = DescribeOperation(
      "event:lotse.courses.v1.CourseResultRecorded", "services/placement");
  EXPECT_EQ(w.code, "event.disclosed");
  EXPECT_EQ(w.description,
            "passed your data on to the placement service "
            "(CourseResultRecorded)");
}

TEST(DescribeOperationTest, UnparsableOperationsAreKeptAsOther) {
  for (const char* op : {"", "GetPerson", "svc/lowercase", "x/Get-Person"}) {
    OperationWords w = DescribeOperation(op);
    EXPECT_EQ(w.code, "other") << op;
    EXPECT_EQ(w.description, absl::StrCat("accessed your data (", op, ")"));
  }
}

TEST(BuildReportEntriesTest, MergesChronologicallyWithStableTies) {
  std::vector<ServiceRecords> all = {
      {"placement",
       {Record(30, 1, "lotse.placement.v1.PlacementService/GetPlacement")}},
      {"cases",
       {Record(10, 7, "lotse.cases.v1.CasesService/GetCase"),
        Record(30, 2, "lotse.cases.v1.CasesService/GetStep")}},
      {"identity",
       {Record(20, 5, "lotse.identity.v1.IdentityService/GetPerson"),
        Record(30, 9, "lotse.identity.v1.IdentityService/GetPerson")}},
  };
  std::vector<v1::TransparencyEntry> entries = BuildReportEntries(all, {});
  std::vector<std::string> order;
  for (const auto& e : entries) {
    order.push_back(absl::StrCat(e.service(), ":", e.seq()));
  }
  EXPECT_THAT(order, ElementsAre("cases:7", "identity:5", "identity:9",
                                 "cases:2", "placement:1"));
}

TEST(BuildReportEntriesTest, RecordsSeenTwiceAppearOnce) {
  // Asked under the survivor and under an id merged into it, a service
  // may return one record twice.
  AuditRecord r = Record(10, 3, "lotse.cases.v1.CasesService/GetCase");
  std::vector<ServiceRecords> all = {{"cases", {r}}, {"cases", {r}}};
  EXPECT_EQ(BuildReportEntries(all, {}).size(), 1u);
  // The same seq in the other chain is another record.
  AuditRecord other = r;
  other.set_chain(lotse::audit::v1::AUDIT_CHAIN_CHANGES);
  all.push_back({"cases", {other}});
  EXPECT_EQ(BuildReportEntries(all, {}).size(), 2u);
}

TEST(BuildReportEntriesTest, DescribesAgenciesFromTheRegistry) {
  AuditRecord r = Record(10, 1, "lotse.identity.v1.IdentityService/GetPerson",
                         "agencies/k");
  r.set_actor("cw-1");
  r.set_purpose("case-management");
  r.add_data_categories(lotse::type::v1::DATA_CATEGORY_CORE_IDENTITY);
  auto* basis = r.add_legal_bases();
  basis->set_kind(lotse::audit::v1::LEGAL_BASIS_KIND_RULE);
  basis->set_rule_id("core.case-participants");
  AgencyDirectory agencies = {
      {"agencies/k",
       {"Stadt Bonn KIM", lotse::type::v1::LEGAL_DOMAIN_KOMMUNE}}};
  std::vector<v1::TransparencyEntry> entries =
      BuildReportEntries({{"identity", {r}}}, agencies);
  ASSERT_EQ(entries.size(), 1u);
  const v1::TransparencyEntry& e = entries[0];
  EXPECT_EQ(e.agency(), "agencies/k");
  EXPECT_EQ(e.agency_display_name(), "Stadt Bonn KIM");
  EXPECT_EQ(e.legal_domain(), lotse::type::v1::LEGAL_DOMAIN_KOMMUNE);
  EXPECT_EQ(e.actor(), "cw-1");
  EXPECT_EQ(e.purpose(), "case-management");
  EXPECT_EQ(e.operation_code(), "person.read");
  EXPECT_EQ(e.operation(), "lotse.identity.v1.IdentityService/GetPerson");
  ASSERT_EQ(e.legal_bases_size(), 1);
  EXPECT_EQ(e.legal_bases(0).rule_id(), "core.case-participants");
  EXPECT_EQ(e.outcome(), lotse::audit::v1::AUDIT_OUTCOME_ALLOWED);
  EXPECT_FALSE(e.disclosure_by_event());
}

TEST(BuildReportEntriesTest, MarksDisclosuresByEvent) {
  AuditRecord r =
      Record(10, 1, "event:lotse.identity.v1.PersonMerged", "services/cases");
  std::vector<v1::TransparencyEntry> entries =
      BuildReportEntries({{"identity", {r}}}, {});
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].disclosure_by_event());
  EXPECT_EQ(entries[0].operation_code(), "event.disclosed");
  EXPECT_EQ(entries[0].agency_display_name(), "");
}

TEST(BuildReportEntriesTest, LeavesOutTheFanOutOfEarlierReports) {
  AuditRecord fan_out =
      Record(10, 1, "lotse.audit.v1.AuditService/ListAuditRecords",
             "services/svc-identity");
  // The data-protection officer's own listing stays.
  AuditRecord officer =
      Record(11, 2, "lotse.audit.v1.AuditService/ListAuditRecords",
             "agencies/dsb-nrw");
  std::vector<v1::TransparencyEntry> entries =
      BuildReportEntries({{"cases", {fan_out, officer}}}, {});
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].agency(), "agencies/dsb-nrw");
  EXPECT_EQ(entries[0].operation_code(), "audit_record.read");
}

TEST(AgenciesNamedTest, ListsEachAgencyOnceAndNoServices) {
  std::vector<ServiceRecords> all = {
      {"identity",
       {Record(1, 1, "x/GetPerson", "agencies/a"),
        Record(2, 2, "x/GetPerson", "services/cases"),
        Record(3, 3, "x/GetPerson", "agencies/b")}},
      {"cases", {Record(4, 1, "x/GetCase", "agencies/a")}}};
  EXPECT_THAT(AgenciesNamed(all), ElementsAre("agencies/a", "agencies/b"));
}

TEST(DecideReportAccessTest, DataProtectionAndTheCaseOwnerMayAsk) {
  EXPECT_TRUE(DecideReportAccess("DATA_PROTECTION", true, false).ok());
  EXPECT_TRUE(DecideReportAccess("KOMMUNE", true, true).ok());
}

TEST(DecideReportAccessTest, OnlyDataProtectionLearnsThatAPersonIsUnknown) {
  absl::Status s = DecideReportAccess("DATA_PROTECTION", false, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReasonOf(s), "PERSON_NOT_FOUND");
  // A KOMMUNE hears the same about an unknown person as about one whose
  // case it does not own.
  absl::Status unknown = DecideReportAccess("KOMMUNE", false, false);
  absl::Status not_owner = DecideReportAccess("KOMMUNE", true, false);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(unknown), "NOT_CASE_OWNER");
  EXPECT_EQ(unknown, not_owner);
}

TEST(DecideReportAccessTest, OtherDomainsAreRefusedWhateverThePerson) {
  for (const char* domain : {"JOBCENTER", "ADMINISTRATION", "SERVICE", ""}) {
    absl::Status exists = DecideReportAccess(domain, true, true);
    EXPECT_EQ(exists.code(), absl::StatusCode::kPermissionDenied) << domain;
    EXPECT_EQ(ReasonOf(exists), "WRONG_LEGAL_DOMAIN") << domain;
    EXPECT_EQ(exists, DecideReportAccess(domain, false, false)) << domain;
  }
}

TEST(MissingServicesTest, NamesEveryServiceThatDidNotAnswer) {
  EXPECT_THAT(MissingServices({"cases", "identity"}),
              ElementsAre("courses", "placement"));
  EXPECT_THAT(MissingServices({"identity", "cases", "courses", "placement"}),
              IsEmpty());
  EXPECT_THAT(MissingServices({}),
              ElementsAre("identity", "cases", "courses", "placement"));
}

}  // namespace
}  // namespace lotse::identity
