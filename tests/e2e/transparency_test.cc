// A person's transparency report through the four services as real
// processes (mutual TLS, wired like tools/lotse.sh), on SQLite and
// PostgreSQL: the case owner's report covers accesses in all four
// services, disclosures by event and accesses under an id since merged; a
// service that is stopped is named missing; a third agency is refused; the
// command-line export writes the report as JSON.
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
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/server.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
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

namespace idv1 = ::lotse::identity::v1;
namespace cv1 = ::lotse::cases::v1;
namespace crv1 = ::lotse::courses::v1;
namespace pv1 = ::lotse::placement::v1;

constexpr absl::Duration kEventTimeout = absl::Seconds(30);

class TransparencyTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-transparency.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    ports_["cases"] = FreeLocalPort();
    ports_["courses"] = FreeLocalPort();
    ports_["placement"] = FreeLocalPort();
    const std::string to_cases =
        absl::StrCat("cases=127.0.0.1:", ports_["cases"]);
    const std::string to_courses =
        absl::StrCat("courses=127.0.0.1:", ports_["courses"]);
    const std::string to_placement =
        absl::StrCat("placement=127.0.0.1:", ports_["placement"]);
    const std::string others =
        absl::StrCat(to_cases, ",", to_courses, ",", to_placement);

    Start("identity", 0,
          {absl::StrCat("--event_destinations=", others),
           absl::StrCat("--audit_peers=", others)});
    ASSERT_FALSE(HasFailure());
    absl::StatusOr<int> port =
        processes_["identity"]->WaitServing(absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << processes_["identity"]->ReadLog();
    ports_["identity"] = *port;
    const std::string identity_target =
        absl::StrCat("--identity_target=127.0.0.1:", *port);
    const std::string to_identity = absl::StrCat("identity=127.0.0.1:", *port);
    Start(
        "cases", ports_["cases"],
        {identity_target, absl::StrCat("--event_destinations=", to_identity)});
    Start("courses", ports_["courses"],
          {identity_target, absl::StrCat("--event_destinations=", to_identity,
                                         ",", to_cases, ",", to_placement)});
    Start("placement", ports_["placement"],
          {identity_target,
           absl::StrCat("--event_destinations=", to_identity, ",", to_cases)});
    ASSERT_FALSE(HasFailure());
    for (const char* s : {"cases", "courses", "placement"}) {
      ASSERT_TRUE(processes_[s]->WaitServing(absl::Seconds(20)).ok())
          << processes_[s]->ReadLog();
    }
    absl::StatusOr<ServiceProcess> seed = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
        {absl::StrCat("--identity=127.0.0.1:", *port),
         absl::StrCat("--tls_dir=", pki_)},
        absl::StrCat(dir_, "/seed.log"));
    ASSERT_TRUE(seed.ok()) << seed.status();
    ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
        << seed->ReadLog();
  }

  void Start(const std::string& service, int port,
             const std::vector<std::string>& extra) {
    absl::StatusOr<std::string> url = NewTestDatabaseUrl(GetParam());
    ASSERT_TRUE(url.ok()) << url.status();
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", pki_), absl::StrCat("--database=", *url),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, ".log"));
    ASSERT_TRUE(p.ok()) << p.status();
    processes_[service] = std::make_unique<ServiceProcess>(*std::move(p));
  }

  std::string Logs() {
    std::string logs;
    for (const auto& [name, process] : processes_) {
      const std::string log = process->ReadLog();
      absl::StrAppend(&logs, "---- ", name, " log (tail) ----\n",
                      log.substr(log.size() > 3000 ? log.size() - 3000 : 0));
    }
    return logs;
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& service,
                                         const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", ports_[service]),
                               *creds);
  }

  idv1::Person RegisterPerson(const std::string& given,
                              const std::string& key) {
    idv1::CreatePersonRequest request;
    request.set_request_id(absl::StrCat("transparency-", key));
    *request.mutable_person() = SamplePerson(given, "Haddad", 1990);
    request.set_confirm_new_person(true);
    idv1::Person person;
    auto stub =
        idv1::IdentityService::NewStub(Channel("identity", "kim-koeln"));
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return stub->CreatePerson(c, request, &person);
    });
    EXPECT_TRUE(s.ok()) << Describe(s);
    return person;
  }

  grpc::Status Report(const std::string& as, const std::string& person,
                      idv1::TransparencyReport* report) {
    idv1::GetTransparencyReportRequest request;
    request.set_person(person);
    request.set_service_timeout_ms(2000);
    auto stub = idv1::IdentityService::NewStub(Channel("identity", as));
    return Call(
        [&](grpc::ClientContext* c) {
          return stub->GetTransparencyReport(c, request, report);
        },
        "access-request");
  }

  std::string pki_;
  std::string dir_;
  std::map<std::string, int> ports_;
  std::map<std::string, std::unique_ptr<ServiceProcess>> processes_;
};

// What the report says, entry by entry, for the assertions below.
struct Seen {
  std::set<std::string> services;
  std::set<std::string> resources;
  bool disclosure = false;
  bool cases_disclosure = false;
};

Seen Summarise(const idv1::TransparencyReport& report) {
  Seen seen;
  for (const idv1::TransparencyEntry& e : report.entries()) {
    seen.services.insert(e.service());
    seen.resources.insert(e.resource());
    if (e.disclosure_by_event()) {
      seen.disclosure = true;
      if (e.service() == "cases") seen.cases_disclosure = true;
    }
  }
  return seen;
}

TEST_P(TransparencyTest, CaseOwnerSeesEveryServiceAndAMissingOneIsNamed) {
  const idv1::Person person = RegisterPerson("Rania", "main");
  const idv1::Person duplicate = RegisterPerson("Rania Duplicate", "dup");
  const std::string merged_id = duplicate.name();

  // The duplicate is read under its own id before the merge.
  auto identity =
      idv1::IdentityService::NewStub(Channel("identity", "kim-koeln"));
  {
    idv1::GetPersonRequest get;
    get.set_name(merged_id);
    idv1::Person out;
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return identity->GetPerson(c, get, &out);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  // cases: kim-koeln opens the person's case, which makes it the case
  // owner in identity (CaseOpened, a disclosure by event from cases).
  auto cases = cv1::CasesService::NewStub(Channel("cases", "kim-koeln"));
  cv1::OpenCaseRequest open;
  open.set_request_id("transparency-case");
  open.mutable_case_record()->set_person(person.name());
  open.mutable_case_record()->set_responsible_actor("cm-1");
  cv1::Case opened;
  grpc::Status last;
  ASSERT_TRUE(Eventually(
      [&] {
        last = Call([&](grpc::ClientContext* c) {
          return cases->OpenCase(c, open, &opened);
        });
        return last.ok();
      },
      kEventTimeout))
      << Describe(last) << "\n"
      << Logs();

  // courses: the case owner reads the person's entitlements.
  auto courses = crv1::CoursesService::NewStub(Channel("courses", "kim-koeln"));
  crv1::ListEntitlementsRequest entitlements;
  entitlements.set_person(person.name());
  crv1::ListEntitlementsResponse entitlements_out;
  ASSERT_TRUE(Eventually(
      [&] {
        last = Call([&](grpc::ClientContext* c) {
          return courses->ListEntitlements(c, entitlements, &entitlements_out);
        });
        return last.ok();
      },
      kEventTimeout))
      << Describe(last);

  // placement: the Jobcenter writes a candidate profile of the person
  // (allowed or refused: audited against the person either way).
  auto placement =
      pv1::PlacementService::NewStub(Channel("placement", "jobcenter-koeln"));
  pv1::CreateCandidateProfileRequest profile;
  profile.set_request_id("transparency-profile");
  profile.mutable_candidate_profile()->set_person(person.name());
  pv1::CandidateProfile profile_out;
  Call([&](grpc::ClientContext* c) {
    return placement->CreateCandidateProfile(c, profile, &profile_out);
  });

  // The duplicate is merged into the person; its id still finds both.
  {
    idv1::Person survivor, dup;
    idv1::GetPersonRequest get;
    get.set_name(person.name());
    ASSERT_TRUE(Call([&](grpc::ClientContext* c) {
                  return identity->GetPerson(c, get, &survivor);
                }).ok());
    get.set_name(merged_id);
    ASSERT_TRUE(Call([&](grpc::ClientContext* c) {
                  return identity->GetPerson(c, get, &dup);
                }).ok());
    idv1::MergePersonsRequest merge;
    merge.set_request_id("transparency-merge");
    merge.set_survivor(person.name());
    merge.set_survivor_etag(survivor.etag());
    merge.set_merged(merged_id);
    merge.set_merged_etag(dup.etag());
    merge.set_justification("same passport number");
    idv1::Person merged_out;
    grpc::Status s = Call([&](grpc::ClientContext* c) {
      return identity->MergePersons(c, merge, &merged_out);
    });
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  // The case owner's report, asked under the merged id, once the case's
  // relation and its disclosure by event have arrived.
  idv1::TransparencyReport report;
  Seen seen;
  ASSERT_TRUE(Eventually(
      [&] {
        last = Report("kim-koeln", merged_id, &report);
        if (!last.ok()) return false;
        seen = Summarise(report);
        return seen.services.size() == 4 && seen.cases_disclosure;
      },
      kEventTimeout))
      << Describe(last) << "\n"
      << report.DebugString() << "\n"
      << Logs();
  EXPECT_EQ(report.person(), person.name());
  EXPECT_TRUE(report.missing_services().empty()) << report.DebugString();
  EXPECT_TRUE(seen.resources.count(merged_id) > 0) << report.DebugString();
  EXPECT_TRUE(seen.disclosure);
  for (int i = 1; i < report.entries_size(); ++i) {
    EXPECT_LE(report.entries(i - 1).time().seconds(),
              report.entries(i).time().seconds());
  }

  // A third agency is refused, without learning whether the person exists.
  idv1::TransparencyReport refused;
  grpc::Status bonn = Report("kim-bonn", person.name(), &refused);
  EXPECT_EQ(bonn.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(bonn), "NOT_CASE_OWNER");
  grpc::Status jobcenter = Report("jobcenter-koeln", person.name(), &refused);
  EXPECT_EQ(jobcenter.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(jobcenter), "WRONG_LEGAL_DOMAIN");

  // The command-line export.
  absl::StatusOr<CommandResult> cli =
      RunCommand(absl::StrCat(BinaryDir(), "/tools/lotse_transparency_report"),
                 {absl::StrCat("--target=127.0.0.1:", ports_["identity"]),
                  absl::StrCat("--tls_dir=", pki_), "--client=kim-koeln",
                  absl::StrCat("--person=", person.name())},
                 absl::Seconds(30));
  ASSERT_TRUE(cli.ok()) << cli.status();
  EXPECT_EQ(cli->exit_code, 0) << cli->err;
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(cli->out, &json).ok())
      << cli->out;
  EXPECT_EQ(json.fields().at("person").string_value(), person.name());
  EXPECT_GT(json.fields().at("entries").list_value().values_size(), 0);

  // Placement stops: the next report names it missing.
  processes_["placement"]->Signal(SIGTERM);
  ASSERT_TRUE(processes_["placement"]->WaitExit(absl::Seconds(10)).ok());
  grpc::Status s = Report("kim-koeln", person.name(), &report);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(std::vector<std::string>(report.missing_services().begin(),
                                     report.missing_services().end()),
            std::vector<std::string>{"placement"});
  for (const idv1::TransparencyEntry& e : report.entries()) {
    EXPECT_NE(e.service(), "placement");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, TransparencyTest,
                         ::testing::Values(Dialect::kSqlite,
                                           Dialect::kPostgres),
                         DialectParamName());

}  // namespace
}  // namespace lotse::testing
