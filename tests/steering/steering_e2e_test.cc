// The demo municipality and its steering report through the real system:
// the four services as processes wired like the run command (with
// --dev_clock), the seed loading Lindenbrück with months of history, the
// report binary writing HTML and JSON, and headless Chromium loading the
// page: no console errors, and every chart with as many bars and points as
// the figures call for.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/server/server.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tools/demo/plan.h"
#include "tools/steering/steering_report.h"

namespace lotse::testing {
namespace {

const std::vector<std::string> kServices = {"identity", "cases", "courses",
                                            "placement"};

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

std::string Chart(const std::string& html, const std::string& id) {
  const size_t start = html.find(absl::StrCat("data-chart=\"", id, "\""));
  if (start == std::string::npos) return "";
  return html.substr(start, html.find("</svg>", start) - start);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SteeringE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-steering.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    for (const std::string& s : kServices) ports_[s] = FreeLocalPort();
    for (const std::string& s : kServices) {
      std::vector<std::string> args = {
          absl::StrCat("--listen=127.0.0.1:", ports_[s]),
          absl::StrCat("--tls_dir=", pki_),
          absl::StrCat("--database=sqlite:", dir_, "/", s, ".db"),
          "--drain_grace=100ms",
          "--shutdown_deadline=2s",
          "--dev_clock"};
      std::vector<std::string> destinations;
      for (const std::string& other : kServices) {
        if (other != s) {
          destinations.push_back(
              absl::StrCat(other, "=127.0.0.1:", ports_[other]));
        }
      }
      args.push_back(absl::StrCat("--event_destinations=",
                                  absl::StrJoin(destinations, ",")));
      if (s != "identity") {
        args.push_back(
            absl::StrCat("--identity_target=127.0.0.1:", ports_["identity"]));
      }
      auto p = ServiceProcess::Start(
          absl::StrCat(BinaryDir(), "/services/", s, "/lotse_", s), args,
          absl::StrCat(dir_, "/", s, ".log"));
      ASSERT_TRUE(p.ok()) << p.status();
      processes_.push_back(std::make_unique<ServiceProcess>(*std::move(p)));
    }
    for (auto& p : processes_) {
      ASSERT_TRUE(p->WaitServing(absl::Seconds(30)).ok()) << p->ReadLog();
    }
  }

  void TearDown() override {
    for (auto& p : processes_) p->Signal(SIGTERM);
    for (auto& p : processes_) {
      EXPECT_EQ(p->WaitExit(absl::Seconds(10)).value_or(-1), 0);
    }
  }

  std::string Target(const std::string& service) {
    return absl::StrCat("127.0.0.1:", ports_[service]);
  }

  absl::StatusOr<CommandResult> Seed() {
    return RunCommand(absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
                      {absl::StrCat("--identity=", Target("identity")),
                       absl::StrCat("--cases=", Target("cases")),
                       absl::StrCat("--courses=", Target("courses")),
                       absl::StrCat("--placement=", Target("placement")),
                       absl::StrCat("--tls_dir=", pki_), "--municipality"},
                      absl::Seconds(240));
  }

  // The number of cases the demo case manager owns.
  int CaseCount() {
    auto creds = server::ClientCredentialsFromDir(pki_, demo::kKim);
    EXPECT_TRUE(creds.ok());
    auto stub = cases::v1::CasesService::NewStub(
        grpc::CreateChannel(Target("cases"), *creds));
    int n = 0;
    std::string token;
    do {
      cases::v1::ListCasesRequest req;
      req.set_page_size(500);
      req.set_page_token(token);
      cases::v1::ListCasesResponse resp;
      grpc::ClientContext context;
      context.AddMetadata("x-lotse-actor", "e2e");
      context.AddMetadata("x-lotse-purpose", "case-management");
      grpc::Status s = stub->ListCases(&context, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) return -1;
      n += resp.cases_size();
      token = resp.next_page_token();
    } while (!token.empty());
    return n;
  }

  std::string pki_, dir_;
  std::map<std::string, int> ports_;
  std::vector<std::unique_ptr<ServiceProcess>> processes_;
};

TEST_F(SteeringE2eTest, DemoMunicipalityReportOpensInChromium) {
  // Load the demo municipality.
  const absl::Time seed_start = absl::Now();
  absl::StatusOr<CommandResult> seeded = Seed();
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  ASSERT_EQ(seeded->exit_code, 0) << seeded->out << seeded->err;
  std::printf("demo load: %.1f s\n%s",
              absl::ToDoubleSeconds(absl::Now() - seed_start),
              seeded->out.c_str());
  EXPECT_NE(seeded->out.find("demo municipality Lindenbrück (05978044)"),
            std::string::npos)
      << seeded->out;
  // As many cases as the seed says it opened (the plan's cases whose
  // opening lies before now), and most of the plan's.
  const size_t at = seeded->out.find(" persons, ");
  ASSERT_NE(at, std::string::npos) << seeded->out;
  const int said = std::atoi(seeded->out.c_str() + at + 10);
  const int cases = CaseCount();
  EXPECT_EQ(cases, said);
  EXPECT_GT(cases, demo::PlanOptions{}.cases * 9 / 10);

  // A second load finds the municipality and creates nothing.
  absl::StatusOr<CommandResult> again = Seed();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->exit_code, 0) << again->err;
  EXPECT_NE(again->out.find("is loaded already"), std::string::npos)
      << again->out;
  EXPECT_EQ(CaseCount(), cases);

  // The report over the last six months, as HTML and JSON.
  const absl::CivilDay today =
      absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  const absl::CivilDay from(absl::CivilMonth(today) - 5);
  const std::vector<std::string> common = {
      absl::StrCat("--cases=", Target("cases")),
      absl::StrCat("--courses=", Target("courses")),
      absl::StrCat("--placement=", Target("placement")),
      absl::StrCat("--tls_dir=", pki_),
      absl::StrCat("--from=", absl::FormatCivilTime(from)),
      absl::StrCat("--to=", absl::FormatCivilTime(today))};
  const std::string html_path = absl::StrCat(dir_, "/report.html");
  const std::string json_path = absl::StrCat(dir_, "/report.json");
  // The HTML as steering staff make it, with lotsectl; the JSON with the
  // library's own binary.
  {
    std::vector<std::string> args = {
        absl::StrCat("--cases=", Target("cases")),
        absl::StrCat("--courses=", Target("courses")),
        absl::StrCat("--placement=", Target("placement")),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--client=", demo::kKim),
        "--actor=steering-staff",
        "-o",
        html_path,
        "report",
        "steering",
        absl::StrCat("--municipality=", demo::kMunicipalityCode),
        absl::StrCat("--from=", absl::FormatCivilTime(from)),
        absl::StrCat("--to=", absl::FormatCivilTime(today))};
    const absl::Time began = absl::Now();
    absl::StatusOr<CommandResult> r =
        RunCommand(absl::StrCat(BinaryDir(), "/tools/lotsectl/lotsectl"), args,
                   absl::Seconds(60));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << r->err;
    std::printf("lotsectl report steering (HTML): %.2f s\n",
                absl::ToDoubleSeconds(absl::Now() - began));
  }
  {
    std::vector<std::string> args = common;
    args.push_back(absl::StrCat("--out=", json_path));
    const absl::Time began = absl::Now();
    absl::StatusOr<CommandResult> r =
        RunCommand(absl::StrCat(BinaryDir(), "/tools/lotse_steering_report"),
                   args, absl::Seconds(60));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << r->err;
    std::printf("lotse_steering_report (JSON): %.2f s\n",
                absl::ToDoubleSeconds(absl::Now() - began));
  }
  EXPECT_EQ(ReadFile(html_path).rfind("<!DOCTYPE html>", 0), 0u);
  const std::string json = ReadFile(json_path);
  EXPECT_EQ(json.rfind("{\"municipality_code\":\"05978044\"", 0), 0u);

  // The expected marks, from the same figures collected in-process.
  steering::CollectOptions options;
  auto creds = server::ClientCredentialsFromDir(pki_, demo::kKim);
  ASSERT_TRUE(creds.ok());
  options.cases = grpc::CreateChannel(Target("cases"), *creds);
  options.courses = grpc::CreateChannel(Target("courses"), *creds);
  options.placement = grpc::CreateChannel(Target("placement"), *creds);
  options.municipality_code = demo::kMunicipalityCode;
  options.from = from;
  options.to = today;
  absl::StatusOr<steering::SteeringReport> report =
      steering::CollectSteeringReport(options);
  ASSERT_TRUE(report.ok()) << report.status();
  const std::vector<std::string> ids = steering::ChartIds(*report);
  // The demo data fills every chart the report has.
  ASSERT_GE(ids.size(), 6u);
  int waitlists = 0;
  for (const steering::CourseUse& c : report->courses) {
    waitlists += c.waitlist > 0;
  }
  EXPECT_GT(waitlists, 0);

  // Headless Chromium loads the page; its DOM has the charts.
  const char* browser = "/usr/bin/chromium";
  ASSERT_EQ(access(browser, X_OK), 0)
      << "chromium is missing (tools/lotse.sh installs it)";
  absl::StatusOr<CommandResult> shown = RunCommand(
      browser,
      {"--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
       "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
       absl::StrCat("--user-data-dir=", dir_, "/chromium"), "--dump-dom",
       absl::StrCat("file://", html_path)},
      absl::Seconds(90));
  ASSERT_TRUE(shown.ok()) << shown.status();
  ASSERT_EQ(shown->exit_code, 0) << shown->err;
  const std::string& dom = shown->out;
  EXPECT_EQ(Count(shown->err, "CONSOLE"), 0) << shown->err;
  EXPECT_EQ(Count(shown->err, "Uncaught"), 0) << shown->err;
  for (const std::string& id : ids) {
    const std::string chart = Chart(dom, id);
    ASSERT_FALSE(chart.empty()) << id;
    const int marks = Count(chart, "class=\"bar\"") +
                      Count(chart, "class=\"wait\"") +
                      Count(chart, "class=\"point\"");
    EXPECT_EQ(marks, steering::ExpectedMarks(*report, id)) << id;
    EXPECT_GT(marks, 0) << id;
  }
}

}  // namespace
}  // namespace lotse::testing
