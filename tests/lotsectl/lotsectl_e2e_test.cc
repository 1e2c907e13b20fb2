// lotsectl against the four services as real processes (mutual TLS with
// the dev certificates, wired like tools/lotse.sh), run as a subprocess the
// way an operator or a script runs it: verbs end to end with -o json read
// back, the generic call, the watch stream resumed from a cursor, refusals
// with their code, reason and field violations, and the exit codes.
#include <stdlib.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "lotse/audit/v1/audit_service.pb.h"
#include "lotse/cases/v1/cases_service.pb.h"
#include "lotse/courses/v1/courses_service.pb.h"
#include "lotse/identity/v1/identity_service.pb.h"
#include "lotse/placement/v1/placement_service.pb.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::testing {
namespace {

namespace idv1 = ::lotse::identity::v1;
namespace cv1 = ::lotse::cases::v1;
namespace crv1 = ::lotse::courses::v1;
namespace pv1 = ::lotse::placement::v1;
namespace av1 = ::lotse::audit::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// Exit codes as docs/lotsectl.md documents them.
constexpr int kOk = 0;
constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kNoConnection = 3;

// Parses protobuf JSON as lotsectl -o json prints it; false when it does
// not parse as `M`.
template <typename M>
bool FromJson(const std::string& json, M* message) {
  return google::protobuf::util::JsonStringToMessage(json, message).ok();
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::MessageToJsonString(message, &json);
  return json;
}

class LotsectlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new std::string(DevPkiDir());
    ASSERT_FALSE(pki_->empty());
    char pattern[] = "/tmp/lotse-e2e-lotsectl.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = new std::string(pattern);
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    for (int& port : ports_) port = FreeLocalPort();
    auto peer = [](const char* name, int port) {
      return absl::StrCat(name, "=127.0.0.1:", port);
    };
    const std::string identity = peer("identity", ports_[0]);
    const std::string cases = peer("cases", ports_[1]);
    const std::string courses = peer("courses", ports_[2]);
    const std::string placement = peer("placement", ports_[3]);
    const std::string identity_target =
        absl::StrCat("--identity_target=127.0.0.1:", ports_[0]);
    processes_[0] = Start(
        "identity", ports_[0],
        {absl::StrCat("--event_destinations=", courses, ",", cases, ",",
                      placement),
         absl::StrCat("--audit_peers=", cases, ",", courses, ",", placement)});
    processes_[1] =
        Start("cases", ports_[1],
              {identity_target, absl::StrCat("--event_destinations=", identity,
                                             ",", courses, ",", placement)});
    processes_[2] =
        Start("courses", ports_[2],
              {identity_target, absl::StrCat("--event_destinations=", identity,
                                             ",", cases, ",", placement)});
    processes_[3] =
        Start("placement", ports_[3],
              {identity_target, absl::StrCat("--event_destinations=", identity,
                                             ",", cases, ",", courses)});
    for (ServiceProcess* p : processes_) {
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(p->WaitServing(absl::Seconds(20)).ok()) << p->ReadLog();
    }
    absl::StatusOr<CommandResult> seed =
        RunCommand(absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
                   {absl::StrCat("--identity=127.0.0.1:", ports_[0]),
                    absl::StrCat("--placement=127.0.0.1:", ports_[3]),
                    absl::StrCat("--tls_dir=", *pki_)},
                   absl::Seconds(60));
    ASSERT_TRUE(seed.ok()) << seed.status();
    ASSERT_EQ(seed->exit_code, 0) << seed->err;
    // Every service knows the agencies the tests act as before a test
    // starts (identity's Agency* events reach them asynchronously).
    const std::pair<const char*, std::vector<std::string>> probes[] = {
        {"kim-koeln", {"call", "cases", "ListCases"}},
        {"kim-koeln", {"call", "courses", "ListCourses"}},
        {"vhs-koeln", {"call", "cases", "ListCases"}},
        {"vhs-koeln", {"call", "courses", "ListCourses"}},
        {"bamf-nuernberg", {"call", "courses", "ListCourses"}},
        {"jobcenter-koeln", {"call", "placement", "ListOffers"}}};
    for (const auto& [agency, args] : probes) {
      ASSERT_TRUE(Eventually([&] { return Ctl(agency, args).exit_code == 0; },
                             absl::Seconds(30)))
          << agency << " " << args[1] << "\n"
          << Ctl(agency, args).err;
    }
  }

  static void TearDownTestSuite() {
    for (ServiceProcess*& p : processes_) {
      delete p;
      p = nullptr;
    }
  }

  static ServiceProcess* Start(const std::string& service, int port,
                               std::vector<std::string> extra) {
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", *pki_),
        absl::StrCat("--database=sqlite:", *dir_, "/", service, ".db"),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<ServiceProcess> p = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(*dir_, "/", service, ".log"));
    if (!p.ok()) return nullptr;
    return new ServiceProcess(*std::move(p));
  }

  // lotsectl as `agency` (its dev certificate), caseworker "cw-1", with
  // the service addresses as flags.
  static CommandResult Ctl(const std::string& agency,
                           std::vector<std::string> args) {
    std::vector<std::string> all = {
        absl::StrCat("--tls_dir=", *pki_),
        absl::StrCat("--client=", agency),
        "--actor=cw-1",
        absl::StrCat("--identity=127.0.0.1:", ports_[0]),
        absl::StrCat("--cases=127.0.0.1:", ports_[1]),
        absl::StrCat("--courses=127.0.0.1:", ports_[2]),
        absl::StrCat("--placement=127.0.0.1:", ports_[3])};
    all.insert(all.end(), args.begin(), args.end());
    return Raw(all);
  }

  // lotsectl with exactly `args`.
  static CommandResult Raw(const std::vector<std::string>& args) {
    absl::StatusOr<CommandResult> result =
        RunCommand(absl::StrCat(BinaryDir(), "/tools/lotsectl/lotsectl"), args,
                   absl::Seconds(60));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  // Writes `text` to a file of its own and returns "@<path>" for --json.
  static std::string JsonFile(const std::string& name,
                              const std::string& text) {
    const std::string path = absl::StrCat(*dir_, "/", name, ".json");
    std::ofstream(path) << text;
    return "@" + path;
  }

  // A person kim-koeln registers, born 17 May 1990 in Aleppo.
  static idv1::Person CreatePerson(const std::string& given,
                                   const std::string& family) {
    CommandResult r =
        Ctl("kim-koeln",
            {"persons", "create", "--given-names", given, "--family-names",
             family, "--birth-date", "1990-05-17", "--birth-place", "Aleppo",
             "--nationality", "SY", "-o", "json"});
    idv1::Person person;
    EXPECT_EQ(r.exit_code, kOk) << r.err;
    EXPECT_TRUE(FromJson(r.out, &person)) << r.out;
    return person;
  }

  // A case kim-koeln opens for `person`.
  static cv1::Case OpenCase(const idv1::Person& person) {
    CommandResult r =
        Ctl("kim-koeln", {"cases", "open", person.name(), "-o", "json"});
    cv1::Case opened;
    EXPECT_EQ(r.exit_code, kOk) << r.err;
    EXPECT_TRUE(FromJson(r.out, &opened)) << r.out;
    return opened;
  }

  // BAMF takes `person` into its remit with the papers and admits them to
  // a general integration course.
  static void Admit(const idv1::Person& person, const std::string& file) {
    CommandResult link = Ctl(
        "bamf-nuernberg",
        {"persons", "link-id", person.name(), "--kind", "BAMF_FILE_NUMBER",
         "--value", file, "--proof-given-names", person.names(0).given_names(),
         "--proof-family-names", person.names(0).family_names(),
         "--proof-birth-date", "1990-05-17"});
    EXPECT_EQ(link.exit_code, kOk) << link.err;
    auto day = [](int days) {
      type::v1::Date d = DateInDays(days);
      return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
    };
    CommandResult r =
        Ctl("bamf-nuernberg",
            {"courses", "entitle", person.name(), "--kind", "admission",
             "--course-kind", "integration-general", "--units", "700", "--from",
             day(0), "--until", day(365), "-o", "json"});
    ASSERT_EQ(r.exit_code, kOk) << r.err;
    crv1::Entitlement entitlement;
    ASSERT_TRUE(FromJson(r.out, &entitlement)) << r.out;
    EXPECT_EQ(entitlement.state(), crv1::ENTITLEMENT_STATE_ACTIVE);
    EXPECT_EQ(entitlement.issuing_agency(), "agencies/bamf-nuernberg");
  }

  static std::string* pki_;
  static std::string* dir_;
  static int ports_[4];
  static ServiceProcess* processes_[4];
};

std::string* LotsectlTest::pki_ = nullptr;
std::string* LotsectlTest::dir_ = nullptr;
int LotsectlTest::ports_[4] = {};
ServiceProcess* LotsectlTest::processes_[4] = {};

TEST_F(LotsectlTest, AdministratorRegistersListsAndSuspendsAnAgency) {
  CommandResult registered = Ctl(
      "lotse-admin", {"agencies", "register", "kim-test-ctl", "--display-name",
                      "KIM Testhausen", "--legal-domain", "kommune",
                      "--municipality", "05315000", "-o", "json"});
  ASSERT_EQ(registered.exit_code, kOk) << registered.err;
  idv1::Agency agency;
  ASSERT_TRUE(FromJson(registered.out, &agency)) << registered.out;
  EXPECT_EQ(agency.name(), "agencies/kim-test-ctl");
  EXPECT_EQ(agency.legal_domain(), type::v1::LEGAL_DOMAIN_KOMMUNE);
  // The services find a caller's agency by its certificate's CN, which the
  // PKI sets to the agency id: the default must be that id.
  EXPECT_EQ(agency.certificate_identity(), "kim-test-ctl");
  EXPECT_EQ(agency.state(), idv1::AGENCY_STATE_ACTIVE);

  CommandResult table = Ctl("lotse-admin", {"agencies", "list"});
  ASSERT_EQ(table.exit_code, kOk) << table.err;
  EXPECT_THAT(table.out, HasSubstr("NAME"));
  EXPECT_THAT(table.out, HasSubstr("agencies/kim-test-ctl"));
  EXPECT_THAT(table.out, HasSubstr("KIM Testhausen"));

  // The etag is read first when not given.
  CommandResult suspended =
      Ctl("lotse-admin", {"agencies", "suspend", "agencies/kim-test-ctl",
                          "--reason", "test over", "-o", "json"});
  ASSERT_EQ(suspended.exit_code, kOk) << suspended.err;
  ASSERT_TRUE(FromJson(suspended.out, &agency)) << suspended.out;
  EXPECT_EQ(agency.state(), idv1::AGENCY_STATE_SUSPENDED);
  EXPECT_EQ(agency.suspension_reason(), "test over");

  // Page by page, or every page at once.
  CommandResult page =
      Ctl("lotse-admin", {"agencies", "list", "--page-size", "5"});
  ASSERT_EQ(page.exit_code, kOk) << page.err;
  std::vector<std::string> rows =
      absl::StrSplit(page.out, '\n', absl::SkipEmpty());
  EXPECT_THAT(rows, SizeIs(6)) << page.out;  // the header and five
  EXPECT_THAT(page.err, HasSubstr("more: --page-token "));
  CommandResult all = Ctl("lotse-admin", {"agencies", "list", "--page-size",
                                          "5", "--all", "-o", "json"});
  ASSERT_EQ(all.exit_code, kOk) << all.err;
  idv1::ListAgenciesResponse every;
  ASSERT_TRUE(FromJson(all.out, &every)) << all.out;
  EXPECT_EQ(every.agencies_size(), 14);  // the dev PKI's 13 and the new one
  EXPECT_EQ(every.next_page_token(), "");
  EXPECT_THAT(all.err, HasSubstr("all: 3 pages read"));

  CommandResult listed = Ctl("lotse-admin", {"agencies", "list", "--state",
                                             "suspended", "-o", "json"});
  ASSERT_EQ(listed.exit_code, kOk) << listed.err;
  idv1::ListAgenciesResponse list;
  ASSERT_TRUE(FromJson(listed.out, &list)) << listed.out;
  ASSERT_THAT(list.agencies(), SizeIs(1));
  EXPECT_EQ(list.agencies(0).name(), "agencies/kim-test-ctl");
}

TEST_F(LotsectlTest, CaseworkerRegistersFindsAndShowsAPerson) {
  idv1::Person person = CreatePerson("Yusuf", "Demirtas");
  ASSERT_FALSE(person.name().empty());
  EXPECT_EQ(person.birth_date().day(), 17);

  CommandResult shown = Ctl("kim-koeln", {"persons", "show", person.name()});
  ASSERT_EQ(shown.exit_code, kOk) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("family names: Demirtas"));
  EXPECT_THAT(shown.out, HasSubstr("birth date:   1990-05-17"));

  // The same man, spelled the German way, is a duplicate candidate.
  CommandResult duplicates =
      Ctl("kim-koeln", {"persons", "find-duplicates", "--given-names", "Jusuf",
                        "--family-names", "Demirtas", "--birth-date",
                        "1990-05-17", "-o", "json"});
  ASSERT_EQ(duplicates.exit_code, kOk) << duplicates.err;
  idv1::FindDuplicatesResponse candidates;
  ASSERT_TRUE(FromJson(duplicates.out, &candidates)) << duplicates.out;
  ASSERT_FALSE(candidates.candidates().empty());
  EXPECT_EQ(candidates.candidates(0).person().name(), person.name());
}

TEST_F(LotsectlTest, BadInputShowsCodeAndEveryFieldViolation) {
  CommandResult table =
      Ctl("kim-koeln", {"persons", "create", "--family-names", "Haddad",
                        "--birth-date", "1800-01-01", "--nationality", "syr"});
  EXPECT_EQ(table.exit_code, kRefused);
  EXPECT_THAT(table.err, HasSubstr("error: INVALID_ARGUMENT"));
  EXPECT_THAT(table.err, HasSubstr("field person.birth_date: "));
  EXPECT_THAT(table.err, HasSubstr("field person.nationality_codes[0]: "));
  EXPECT_EQ(table.out, "");

  CommandResult json =
      Ctl("kim-koeln", {"persons", "create", "--family-names", "Haddad",
                        "--birth-date", "1800-01-01", "-o", "json"});
  EXPECT_EQ(json.exit_code, kRefused);
  google::protobuf::Struct error;
  ASSERT_TRUE(FromJson(json.err, &error)) << json.err;
  EXPECT_EQ(error.fields().at("code").string_value(), "INVALID_ARGUMENT");
  const auto& violations = error.fields()
                               .at("bad_request")
                               .struct_value()
                               .fields()
                               .at("field_violations")
                               .list_value();
  ASSERT_EQ(violations.values_size(), 1);
  EXPECT_EQ(
      violations.values(0).struct_value().fields().at("field").string_value(),
      "person.birth_date");
}

TEST_F(LotsectlTest, CallerWithoutPermissionSeesCodeAndReason) {
  idv1::Person person = CreatePerson("Leyla", "Karimi");
  // Caritas has no relation to the person.
  CommandResult denied =
      Ctl("caritas-koeln", {"persons", "show", person.name()});
  EXPECT_EQ(denied.exit_code, kRefused);
  EXPECT_THAT(denied.err, HasSubstr("error: PERMISSION_DENIED"));
  EXPECT_THAT(denied.err, HasSubstr("  reason: "));
  EXPECT_THAT(denied.out, Not(HasSubstr("Karimi")));

  CommandResult audit = Ctl("kim-koeln", {"audit", "head", "-o", "json"});
  EXPECT_EQ(audit.exit_code, kRefused);
  google::protobuf::Struct error;
  ASSERT_TRUE(FromJson(audit.err, &error)) << audit.err;
  EXPECT_EQ(error.fields().at("code").string_value(), "PERMISSION_DENIED");
  EXPECT_EQ(error.fields()
                .at("error_info")
                .struct_value()
                .fields()
                .at("reason")
                .string_value(),
            "NOT_DATA_PROTECTION");
}

TEST_F(LotsectlTest, CaseFlowAndWatchResumedFromACursor) {
  idv1::Person person = CreatePerson("Samir", "Nouri");
  cv1::Case opened = OpenCase(person);
  ASSERT_FALSE(opened.name().empty());
  EXPECT_EQ(opened.responsible_actor(), "cw-1");

  // -o name: just the new step's name, for a shell variable.
  CommandResult referred =
      Ctl("kim-koeln",
          {"cases", "refer", opened.name(), "--kind", "integration-course",
           "--to", "agencies/vhs-koeln", "--description", "B1", "-o", "name"});
  ASSERT_EQ(referred.exit_code, kOk) << referred.err;
  const std::string step_name(absl::StripTrailingAsciiWhitespace(referred.out));
  EXPECT_THAT(step_name, ::testing::StartsWith(opened.name() + "/steps/"));
  CommandResult shown =
      Ctl("kim-koeln", {"steps", "show", step_name, "-o", "json"});
  ASSERT_EQ(shown.exit_code, kOk) << shown.err;
  cv1::Step step;
  ASSERT_TRUE(FromJson(shown.out, &step)) << shown.out;
  EXPECT_EQ(step.name(), step_name);
  EXPECT_EQ(step.state(), cv1::STEP_STATE_REFERRED);

  CommandResult moved = Ctl("kim-koeln", {"cases", "transition", opened.name(),
                                          "--to", "assessment", "-o", "json"});
  ASSERT_EQ(moved.exit_code, kOk) << moved.err;
  cv1::Case assessed;
  ASSERT_TRUE(FromJson(moved.out, &assessed));
  EXPECT_EQ(assessed.state(), cv1::CASE_STATE_ASSESSMENT);

  // The receiving agency accepts its step (etag read first).
  CommandResult accepted = Ctl("vhs-koeln", {"steps", "accept", step.name()});
  ASSERT_EQ(accepted.exit_code, kOk) << accepted.err;
  EXPECT_THAT(accepted.out, HasSubstr("state:       ACCEPTED"));

  CommandResult view = Ctl("kim-koeln", {"cases", "view", opened.name()});
  ASSERT_EQ(view.exit_code, kOk) << view.err;
  EXPECT_THAT(view.out, HasSubstr("Samir Nouri"));
  EXPECT_THAT(view.out, HasSubstr(step.name()));
  EXPECT_THAT(view.out, HasSubstr("INTEGRATION_COURSE  ACCEPTED"));

  // The whole history of the case, then again from the first cursor.
  CommandResult watched =
      Ctl("kim-koeln", {"cases", "watch", opened.name(), "--from-start",
                        "--max-events", "4", "--for", "20s", "-o", "json"});
  ASSERT_EQ(watched.exit_code, kOk) << watched.err;
  std::vector<std::string> lines =
      absl::StrSplit(watched.out, '\n', absl::SkipEmpty());
  ASSERT_THAT(lines, SizeIs(4)) << watched.out;
  std::vector<cv1::CaseEvent> events;
  for (const std::string& line : lines) {
    cv1::WatchCaseEventsResponse response;
    ASSERT_TRUE(FromJson(line, &response)) << line;
    events.push_back(response.event());
  }
  EXPECT_TRUE(events[0].has_case_opened());
  EXPECT_TRUE(events[1].has_step_referred());
  EXPECT_TRUE(events[2].has_case_state_changed());
  EXPECT_TRUE(events[3].has_step_state_changed());
  EXPECT_LT(events[0].cursor(), events[1].cursor());
  EXPECT_THAT(watched.err, HasSubstr(absl::StrCat("resume with --cursor ",
                                                  events[3].cursor())));
  EXPECT_THAT(watched.err, HasSubstr("watch: 4 events"));

  CommandResult resumed =
      Ctl("kim-koeln", {"cases", "watch", opened.name(), "--cursor",
                        absl::StrCat(events[0].cursor()), "--max-events", "3",
                        "--for", "20s", "-o", "json"});
  ASSERT_EQ(resumed.exit_code, kOk) << resumed.err;
  lines = absl::StrSplit(resumed.out, '\n', absl::SkipEmpty());
  ASSERT_THAT(lines, SizeIs(3)) << resumed.out;
  cv1::WatchCaseEventsResponse first;
  ASSERT_TRUE(FromJson(lines[0], &first));
  EXPECT_EQ(first.event().cursor(), events[1].cursor());
  EXPECT_EQ(first.event().event_id(), events[1].event_id());
}

TEST_F(LotsectlTest, GenericCallReachesAnyRpcWithJson) {
  idv1::Person person = CreatePerson("Mariam", "Sultani");
  CommandResult got =
      Ctl("kim-koeln",
          {"call", "identity", "GetPerson", "--json",
           absl::StrCat("{\"name\": \"", person.name(), "\"}"), "-o", "json"});
  ASSERT_EQ(got.exit_code, kOk) << got.err;
  idv1::Person read;
  ASSERT_TRUE(FromJson(got.out, &read)) << got.out;
  EXPECT_EQ(read.name(), person.name());
  EXPECT_EQ(read.names(0).family_names(), "Sultani");

  // A server stream: one JSON object a line, ended after one message.
  cv1::Case opened = OpenCase(person);
  CommandResult streamed =
      Ctl("kim-koeln", {"call", "cases", "WatchCaseEvents", "--json",
                        "{\"start\": \"WATCH_START_EARLIEST\"}",
                        "--max-messages", "1", "--for", "20s", "-o", "json"});
  ASSERT_EQ(streamed.exit_code, kOk) << streamed.err;
  cv1::WatchCaseEventsResponse event;
  ASSERT_TRUE(FromJson(streamed.out, &event)) << streamed.out;
  EXPECT_EQ(event.event().case_name(), opened.name());
  EXPECT_TRUE(event.event().has_case_opened());
  EXPECT_THAT(streamed.err, HasSubstr("stream: 1 messages"));

  // A qualified method of another service on the same process.
  CommandResult health = Ctl("kim-koeln", {"call", "cases", "Health/Check"});
  ASSERT_EQ(health.exit_code, kOk) << health.err;
  EXPECT_THAT(health.out, HasSubstr("SERVING"));

  CommandResult unknown =
      Ctl("kim-koeln", {"call", "identity", "GetPersonById", "--json", "{}"});
  EXPECT_EQ(unknown.exit_code, kUsage);
  EXPECT_THAT(unknown.err, HasSubstr("no method"));

  // A refusal through call reads like one through a verb.
  CommandResult refused = Ctl("kim-koeln", {"call", "identity", "GetPerson",
                                            "--json", "{\"name\": \"x\"}"});
  EXPECT_EQ(refused.exit_code, kRefused);
  EXPECT_THAT(refused.err, HasSubstr("error: INVALID_ARGUMENT"));
  EXPECT_THAT(refused.err, HasSubstr("field name: "));
}

TEST_F(LotsectlTest, BulkImportReportsEachLineAndIsSafeToRerun) {
  auto line = [](const std::string& given, const std::string& family,
                 int year) {
    idv1::CreatePersonRequest request;
    *request.mutable_person() = SamplePerson(given, family, year);
    return ToJson(request);
  };
  const std::string file = JsonFile(
      "import", absl::StrCat("# three persons, the second born too early\n",
                             line("Hamid", "Sadeghi", 1980), "\n",
                             line("Zahra", "Sadeghi", 1800), "\n\n",
                             line("Reza", "Sadeghi", 1982), "\n"));
  const std::vector<std::string> args = {
      "call",         "identity",     "CreatePerson", "--each",
      file.substr(1), "--request-id", "import-1"};
  CommandResult first = Ctl("kim-koeln", args);
  EXPECT_EQ(first.exit_code, kRefused);
  std::vector<std::string> created =
      absl::StrSplit(first.out, '\n', absl::SkipEmpty());
  ASSERT_THAT(created, SizeIs(2)) << first.out;
  EXPECT_THAT(created[0], HasSubstr("line 2: OK persons/"));
  EXPECT_THAT(created[1], HasSubstr("line 5: OK persons/"));
  EXPECT_THAT(first.err, HasSubstr("line 3: error: INVALID_ARGUMENT"));
  EXPECT_THAT(first.err, HasSubstr("field person.birth_date: "));
  EXPECT_THAT(first.err, HasSubstr("each: 3/3 sent, 1 refused"));

  // The same file with the same key: the same persons, none created twice.
  CommandResult again = Ctl("kim-koeln", args);
  EXPECT_EQ(again.exit_code, kRefused);
  EXPECT_EQ(again.out, first.out);

  // A line that is no request: nothing is sent.
  const std::string broken = JsonFile(
      "broken",
      absl::StrCat(line("Ali", "Sadeghi", 1983), "\n{\"person\": 7}\n"));
  CommandResult refused = Ctl("kim-koeln", {"call", "identity", "CreatePerson",
                                            "--each", broken.substr(1)});
  EXPECT_EQ(refused.exit_code, kUsage);
  EXPECT_THAT(refused.err, HasSubstr("line 2"));
  EXPECT_EQ(refused.out, "");
}

TEST_F(LotsectlTest, CourseSearchBookingAndWaitlist) {
  crv1::CreateCourseRequest create;
  *create.mutable_course() = IntegrationCourse("Integrationskurs lotsectl");
  create.mutable_course()->set_capacity(1);
  CommandResult created =
      Ctl("vhs-koeln", {"call", "courses", "CreateCourse", "--json",
                        JsonFile("course", ToJson(create)), "-o", "json"});
  ASSERT_EQ(created.exit_code, kOk) << created.err;
  crv1::Course course;
  ASSERT_TRUE(FromJson(created.out, &course)) << created.out;

  CommandResult found =
      Ctl("kim-koeln", {"courses", "search", "--kind", "integration-general",
                        "--municipality", "05315000", "-o", "json"});
  ASSERT_EQ(found.exit_code, kOk) << found.err;
  crv1::SearchCoursesResponse results;
  ASSERT_TRUE(FromJson(found.out, &results)) << found.out;
  bool listed = false;
  for (const auto& r : results.results()) {
    listed = listed || r.course().name() == course.name();
  }
  EXPECT_TRUE(listed) << found.out;

  idv1::Person first = CreatePerson("Rania", "Aziz");
  idv1::Person second = CreatePerson("Omid", "Rahimi");
  OpenCase(first);
  OpenCase(second);
  Admit(first, "BAMF-8100001");
  Admit(second, "BAMF-8100002");

  // A free seat: the waitlist is refused with its reason.
  CommandResult early = Ctl("kim-koeln", {"courses", "waitlist", course.name(),
                                          "--person", first.name()});
  EXPECT_EQ(early.exit_code, kRefused);
  EXPECT_THAT(early.err, HasSubstr("error: FAILED_PRECONDITION"));
  EXPECT_THAT(early.err, HasSubstr("reason: COURSE_HAS_FREE_SEATS"));

  CommandResult booked =
      Ctl("kim-koeln", {"courses", "book", course.name(), "--person",
                        first.name(), "-o", "json"});
  ASSERT_EQ(booked.exit_code, kOk) << booked.err;
  crv1::Booking booking;
  ASSERT_TRUE(FromJson(booked.out, &booking)) << booked.out;
  EXPECT_EQ(booking.state(), crv1::BOOKING_STATE_HELD);

  CommandResult waiting =
      Ctl("kim-koeln", {"courses", "waitlist", course.name(), "--person",
                        second.name(), "-o", "json"});
  ASSERT_EQ(waiting.exit_code, kOk) << waiting.err;
  crv1::WaitlistEntry entry;
  ASSERT_TRUE(FromJson(waiting.out, &entry)) << waiting.out;
  EXPECT_EQ(entry.position(), 1);

  CommandResult entries =
      Ctl("kim-koeln", {"courses", "waitlist-entries", course.name()});
  ASSERT_EQ(entries.exit_code, kOk) << entries.err;
  EXPECT_THAT(entries.out, HasSubstr(second.name()));
}

TEST_F(LotsectlTest, OffersMatchBothWays) {
  CommandResult profiles =
      Ctl("jobcenter-koeln",
          {"call", "placement", "ListCandidateProfiles", "-o", "json"});
  ASSERT_EQ(profiles.exit_code, kOk) << profiles.err;
  pv1::ListCandidateProfilesResponse list;
  ASSERT_TRUE(FromJson(profiles.out, &list)) << profiles.out;
  ASSERT_FALSE(list.candidate_profiles().empty());
  const std::string candidate = list.candidate_profiles(0).name();

  CommandResult offers =
      Ctl("jobcenter-koeln",
          {"offers", "match", "--candidate", candidate, "-o", "json"});
  ASSERT_EQ(offers.exit_code, kOk) << offers.err;
  pv1::MatchOffersForCandidateResponse matched;
  ASSERT_TRUE(FromJson(offers.out, &matched)) << offers.out;
  ASSERT_FALSE(matched.matches().empty());

  CommandResult candidates =
      Ctl("jobcenter-koeln",
          {"offers", "match", "--offer", matched.matches(0).offer().name()});
  ASSERT_EQ(candidates.exit_code, kOk) << candidates.err;
  EXPECT_THAT(candidates.out, HasSubstr("CANDIDATE"));
  EXPECT_THAT(candidates.out, HasSubstr(candidate));

  CommandResult neither = Ctl("jobcenter-koeln", {"offers", "match"});
  EXPECT_EQ(neither.exit_code, kUsage);
}

TEST_F(LotsectlTest, DataProtectionOfficerVerifiesChainsAndReadsReports) {
  for (const char* service : {"identity", "cases", "courses", "placement"}) {
    CommandResult verified =
        Ctl("dsb-nrw", {"audit", "verify", "--service", service, "-o", "json"});
    ASSERT_EQ(verified.exit_code, kOk) << service << verified.err;
    av1::VerifyAuditChainResponse response;
    ASSERT_TRUE(FromJson(verified.out, &response)) << verified.out;
    EXPECT_EQ(response.service(), service);
    ASSERT_FALSE(response.chains().empty());
    for (const auto& chain : response.chains()) {
      EXPECT_TRUE(chain.intact()) << service << " " << chain.problem();
    }
  }
  CommandResult heads = Ctl("dsb-nrw", {"audit", "head", "--service", "cases"});
  ASSERT_EQ(heads.exit_code, kOk) << heads.err;
  EXPECT_THAT(heads.out, HasSubstr("CHANGES"));

  idv1::Person person = CreatePerson("Nadia", "Rostami");
  CommandResult report =
      Ctl("dsb-nrw", {"persons", "transparency", person.name(), "-o", "json"});
  ASSERT_EQ(report.exit_code, kOk) << report.err;
  idv1::TransparencyReport parsed;
  ASSERT_TRUE(FromJson(report.out, &parsed)) << report.out;
  EXPECT_EQ(parsed.person(), person.name());
  EXPECT_FALSE(parsed.entries().empty());
}

TEST_F(LotsectlTest, NoConnectionExitsThree) {
  CommandResult refused =
      Raw({absl::StrCat("--tls_dir=", *pki_), "--client=kim-koeln",
           absl::StrCat("--identity=127.0.0.1:", FreeLocalPort()),
           "--timeout=5s", "agencies", "list"});
  EXPECT_EQ(refused.exit_code, kNoConnection);
  EXPECT_THAT(refused.err, HasSubstr("UNAVAILABLE"));

  // A client certificate from another CA: the handshake is refused.
  CommandResult rogue =
      Raw({absl::StrCat("--cert=", *pki_, "/test/rogue-client.crt"),
           absl::StrCat("--key=", *pki_, "/test/rogue-client.key"),
           absl::StrCat("--ca=", *pki_, "/ca.crt"),
           absl::StrCat("--identity=127.0.0.1:", ports_[0]), "--timeout=5s",
           "agencies", "list"});
  EXPECT_EQ(rogue.exit_code, kNoConnection);
  EXPECT_THAT(rogue.out, Not(HasSubstr("agencies/")));
}

}  // namespace
}  // namespace lotse::testing
