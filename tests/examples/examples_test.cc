// The client examples under examples/ run against the four services as real
// processes, the way a reader of examples/README.md runs them: each exits 0,
// walks its person from registration to a booked seat, reads the case view
// and reports the two deliberate mistakes with their details. They share
// one system, so the later examples book into the course the first one
// published, and a second run of the Python example meets its own person
// as a possible duplicate.
#include <signal.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

#ifndef LOTSE_CPP_EXAMPLE_PATH
#error "LOTSE_CPP_EXAMPLE_PATH must name the built C++ example"
#endif

namespace lotse::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-examples.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
  }

  absl::StatusOr<ServiceProcess> Start(const std::string& service, int port,
                                       std::vector<std::string> extra) {
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", pki_),
        absl::StrCat("--database=sqlite:", dir_, "/", service, ".db"),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, ".log"));
  }

  // Runs one example to its end; its output is kept for the failure
  // message.
  CommandResult RunExample(const std::string& binary,
                           const std::vector<std::string>& args) {
    absl::StatusOr<CommandResult> result =
        RunCommand(binary, args, absl::Seconds(120));
    if (!result.ok()) return CommandResult{-1, "", result.status().ToString()};
    return *result;
  }

  std::string pki_;
  std::string dir_;
};

// How many events identity's relay has delivered to `destination`, from
// its Prometheus counter on `metrics_port` (0 when not yet counted).
double DeliveredTo(int metrics_port, const std::string& destination) {
  const std::string prefix = absl::StrCat(
      "lotse_events_delivered_total{destination=\"", destination, "\"} ");
  for (absl::string_view line :
       absl::StrSplit(HttpGet(metrics_port, "/metrics"), '\n')) {
    double value = 0;
    if (absl::ConsumePrefix(&line, prefix) && absl::SimpleAtod(line, &value)) {
      return value;
    }
  }
  return 0;
}

// The rest of the first output line that starts with `prefix`; "" when
// there is none.
std::string LineAfter(const std::string& out, const std::string& prefix) {
  const size_t at = out.find(prefix);
  if (at == std::string::npos) return "";
  const size_t start = at + prefix.size();
  return out.substr(start, out.find('\n', start) - start);
}

// What every example prints when the walk-through went as it should, for
// the person it registers.
void ExpectWalkThrough(const CommandResult& run, const std::string& person,
                       const std::string& born) {
  const std::string output = absl::StrCat(run.out, "\n--- stderr\n", run.err);
  EXPECT_EQ(run.exit_code, 0) << output;
  EXPECT_THAT(run.out, HasSubstr("person: persons/")) << output;
  EXPECT_THAT(run.out, HasSubstr("case: cases/")) << output;
  EXPECT_THAT(run.out, HasSubstr("course: courses/")) << output;
  EXPECT_THAT(run.out, HasSubstr("admitted by BAMF")) << output;
  EXPECT_THAT(run.out, HasSubstr(" BOOKING_STATE_HELD\n")) << output;
  EXPECT_THAT(run.out, HasSubstr(absl::StrCat("case view: ", person, ", born ",
                                              born, "\n")))
      << output;
  EXPECT_THAT(run.out, HasSubstr("  step STEP_KIND_INTEGRATION_COURSE: "))
      << output;
  EXPECT_THAT(run.out, HasSubstr("bad person: refused with INVALID_ARGUMENT\n"
                                 "  field person.names[0].family_names: "))
      << output;
  EXPECT_THAT(run.out,
              HasSubstr("  field person.birth_date: must not be in the future"))
      << output;
  EXPECT_THAT(run.out, HasSubstr("second booking: refused with ALREADY_EXISTS, "
                                 "reason ACTIVE_BOOKING_EXISTS\n"))
      << output;
  EXPECT_THAT(run.out, HasSubstr("\ndone\n")) << output;
}

TEST_F(ExamplesTest, PythonNodeAndCppExamplesRunAgainstTheServices) {
  // The four services, as the run command wires them: every service sends
  // its events to the others.
  const int cases_port = FreeLocalPort();
  const int courses_port = FreeLocalPort();
  const int placement_port = FreeLocalPort();
  const int identity_metrics_port = FreeLocalPort();
  const std::string to_cases = absl::StrCat("cases=127.0.0.1:", cases_port);
  const std::string to_courses =
      absl::StrCat("courses=127.0.0.1:", courses_port);
  const std::string to_placement =
      absl::StrCat("placement=127.0.0.1:", placement_port);
  auto identity = Start(
      "identity", 0,
      {absl::StrCat("--event_destinations=", to_cases, ",", to_courses, ",",
                    to_placement),
       absl::StrCat("--audit_peers=", to_cases, ",", to_courses, ",",
                    to_placement),
       absl::StrCat("--metrics_listen=127.0.0.1:", identity_metrics_port)});
  ASSERT_TRUE(identity.ok()) << identity.status();
  absl::StatusOr<int> identity_port = identity->WaitServing(absl::Seconds(20));
  ASSERT_TRUE(identity_port.ok()) << identity->ReadLog();
  const std::string identity_target =
      absl::StrCat("--identity_target=127.0.0.1:", *identity_port);
  const std::string to_identity =
      absl::StrCat("identity=127.0.0.1:", *identity_port);
  auto cases = Start(
      "cases", cases_port,
      {identity_target, absl::StrCat("--event_destinations=", to_identity, ",",
                                     to_courses, ",", to_placement)});
  auto courses =
      Start("courses", courses_port,
            {identity_target, absl::StrCat("--event_destinations=", to_identity,
                                           ",", to_cases, ",", to_placement)});
  auto placement =
      Start("placement", placement_port,
            {identity_target, absl::StrCat("--event_destinations=", to_identity,
                                           ",", to_cases, ",", to_courses)});
  for (auto* p : {&cases, &courses, &placement}) {
    ASSERT_TRUE(p->ok()) << p->status();
    ASSERT_TRUE((*p)->WaitServing(absl::Seconds(20)).ok()) << (*p)->ReadLog();
  }
  absl::StatusOr<CommandResult> seed =
      RunCommand(absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
                 {absl::StrCat("--identity=127.0.0.1:", *identity_port),
                  absl::StrCat("--tls_dir=", pki_)},
                 absl::Seconds(30));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->exit_code, 0) << seed->err;
  // The examples expect a settled system, as the run command leaves it:
  // every agency the seed registered has reached the registries that
  // cases and courses keep from identity's events (a step can only be
  // referred to an agency cases knows).
  int agencies = 0;
  for (absl::string_view line : absl::StrSplit(seed->out, '\n')) {
    if (absl::StartsWith(line, "registered agencies/")) ++agencies;
  }
  ASSERT_GT(agencies, 0) << seed->out;
  for (const std::string destination : {"cases", "courses"}) {
    EXPECT_TRUE(Eventually(
        [&] {
          return DeliveredTo(identity_metrics_port, destination) >= agencies;
        },
        absl::Seconds(30)))
        << destination << ": "
        << DeliveredTo(identity_metrics_port, destination);
  }

  // The examples read where the services are from the environment.
  setenv("LOTSE_TLS_DIR", pki_.c_str(), 1);
  setenv("LOTSE_IDENTITY", absl::StrCat("127.0.0.1:", *identity_port).c_str(),
         1);
  setenv("LOTSE_CASES", absl::StrCat("127.0.0.1:", cases_port).c_str(), 1);
  setenv("LOTSE_COURSES", absl::StrCat("127.0.0.1:", courses_port).c_str(), 1);

  // Debian's python3 with its grpcio, whatever python3 comes first on PATH.
  const std::string python_example =
      absl::StrCat(SourceDir(), "/examples/python/lotse_example.py");
  const CommandResult python = RunExample("/usr/bin/python3", {python_example});
  ExpectWalkThrough(python, "Amina Haddad", "1991");
  EXPECT_THAT(python.out, Not(HasSubstr("possible duplicates"))) << python.out;

  const CommandResult node = RunExample(
      "/usr/bin/env",
      {"node", absl::StrCat(SourceDir(), "/examples/node/lotse_example.js")});
  ExpectWalkThrough(node, "Tesfaye Bekele", "1989");

  const CommandResult cpp = RunExample(LOTSE_CPP_EXAMPLE_PATH, {});
  ExpectWalkThrough(cpp, "Olena Shevchenko", "1984");

  // Run again, the Python example is told its person may exist already,
  // with the first run's person among the candidates, and goes on.
  const CommandResult again = RunExample("/usr/bin/python3", {python_example});
  ExpectWalkThrough(again, "Amina Haddad", "1991");
  const std::string first_person = LineAfter(python.out, "person: ");
  ASSERT_FALSE(first_person.empty()) << python.out;
  EXPECT_THAT(LineAfter(again.out, "possible duplicates: "),
              HasSubstr(first_person))
      << again.out;
  EXPECT_NE(LineAfter(again.out, "person: "), first_person) << again.out;

  for (auto* p : {&placement, &courses, &cases, &identity}) {
    (*p)->Signal(SIGTERM);
    EXPECT_EQ((*p)->WaitExit(absl::Seconds(10)).value_or(-1), 0)
        << (*p)->ReadLog();
  }
}

}  // namespace
}  // namespace lotse::testing
