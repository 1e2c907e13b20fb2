// PostgreSQL stopped and started again under a steady write load on two
// service processes (identity and courses, each with its own database on
// one server of the test's own): once with a fast shutdown (sessions are
// ended), once with an immediate one (the server dies as in a crash). What
// must hold:
//  - writes while the server is away fail UNAVAILABLE (retryable) with
//    reason STORAGE_UNAVAILABLE and no database text, never INTERNAL, and
//    within their deadline;
//  - the services reconnect by themselves: writes succeed again soon after
//    the server is back, and a retry of a failed write with its request_id
//    succeeds;
//  - every write answered OK is there afterwards, as answered, and each
//    request_id made exactly one resource;
//  - event delivery between the two resumes (the relays' leads, held on
//    PostgreSQL sessions, are taken again).
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/server/server.h"
#include "common/storage/database.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "tests/e2e/calls.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::testing {
namespace {

using e2e::Describe;
using e2e::Reason;

constexpr absl::Duration kCallDeadline = absl::Seconds(5);
// How long the server stays away each time.
constexpr absl::Duration kOutage = absl::Seconds(3);
// How soon after the server is back writes must succeed again.
constexpr absl::Duration kRecoveryBound = absl::Seconds(20);

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

// The newest installed pg_ctl.
std::string PgCtl() {
  std::string best;
  int best_version = -1;
  std::error_code ignored;
  for (const auto& entry :
       std::filesystem::directory_iterator("/usr/lib/postgresql", ignored)) {
    const std::string candidate = entry.path().string() + "/bin/pg_ctl";
    int version = atoi(entry.path().filename().c_str());
    if (std::filesystem::exists(candidate) && version > best_version) {
      best = candidate;
      best_version = version;
    }
  }
  return best;
}

// One write and what it answered.
struct Write {
  std::string service;
  std::string request_id;
  absl::Time start;
  absl::Duration took;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string reason;
  std::string message;
  std::string name;  // OK: the resource
  std::string etag;
};

void Prepare(grpc::ClientContext* context, absl::Duration deadline) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  context->AddMetadata("x-lotse-actor", "cw-1");
  context->AddMetadata("x-lotse-purpose", "durability");
}

class PostgresRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-pgrestart.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
    pg_ctl_ = PgCtl();
    ASSERT_FALSE(pg_ctl_.empty()) << "no PostgreSQL under /usr/lib/postgresql";
    // A server of this test's own: the shared one must not be restarted
    // under other tests.
    state_ = absl::StrCat(dir_, "/pg");
    absl::StatusOr<CommandResult> started =
        RunCommand(absl::StrCat(SourceDir(), "/tests/support/postgres.sh"),
                   {"start", state_}, absl::Seconds(120));
    ASSERT_TRUE(started.ok()) << started.status();
    ASSERT_EQ(started->exit_code, 0) << started->err;
    pg_started_ = true;
    data_ = ReadText(absl::StrCat(state_, "/tmpdir")) + "/data";
    port_ = ReadText(absl::StrCat(state_, "/port"));
    // Databases for the services, made through the helper on this server.
    setenv("LOTSE_TEST_PG_DSN_FILE", absl::StrCat(state_, "/dsn").c_str(), 1);
    // postgres.sh turns synchronous_commit off, which loses the last
    // commits in a crash; here every acknowledged commit must survive an
    // immediate shutdown, so the server runs with PostgreSQL's default.
    ASSERT_NO_FATAL_FAILURE(Stop("fast"));
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  void TearDown() override {
    for (auto& [name, process] : processes_) {
      process->Signal(SIGKILL);
      process->WaitExit(absl::Seconds(10)).IgnoreError();
    }
    processes_.clear();
    if (pg_started_) {
      RunCommand(absl::StrCat(SourceDir(), "/tests/support/postgres.sh"),
                 {"stop", state_}, absl::Seconds(60))
          .IgnoreError();
    }
  }

  // pg_ctl as the cluster's owner (`postgres` when we are root, as in
  // postgres.sh).
  absl::StatusOr<CommandResult> PgCtlRun(std::vector<std::string> args) {
    if (geteuid() == 0) {
      args.insert(args.begin(), {"-u", "postgres", "--", pg_ctl_});
      return RunCommand("/usr/sbin/runuser", args, absl::Seconds(60));
    }
    return RunCommand(pg_ctl_, args, absl::Seconds(60));
  }
  void Stop(const std::string& mode) {
    absl::StatusOr<CommandResult> r =
        PgCtlRun({"stop", "-D", data_, "-m", mode, "-w", "-t", "30"});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << r->out << r->err;
  }
  void StartServer() {
    const std::string socket_dir =
        std::filesystem::path(data_).parent_path().string();
    absl::StatusOr<CommandResult> r =
        PgCtlRun({"start", "-D", data_, "-w", "-t", "60", "-l",
                  absl::StrCat(socket_dir, "/server.log"), "-o",
                  absl::StrCat("-p ", port_,
                               " -c listen_addresses=127.0.0.1 -k ", socket_dir,
                               " -c fsync=off -c max_connections=300 "
                               "-c shared_buffers=32MB")});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << r->out << r->err;
  }

  absl::StatusOr<ServiceProcess> Start(const std::string& service, int port,
                                       const std::vector<std::string>& extra) {
    std::string& database = databases_[service];
    if (database.empty()) {
      absl::StatusOr<std::string> url = NewTestDatabaseUrl(Dialect::kPostgres);
      if (!url.ok()) return url.status();
      database = *url;
    }
    std::vector<std::string> args = {
        absl::StrCat("--listen=127.0.0.1:", port),
        absl::StrCat("--tls_dir=", pki_), absl::StrCat("--database=", database),
        "--drain_grace=100ms", "--shutdown_deadline=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/services/", service, "/lotse_", service),
        args, absl::StrCat(dir_, "/", service, ".log"));
  }

  std::shared_ptr<grpc::Channel> Channel(int port, const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds);
  }

  std::string Logs() {
    std::string out;
    for (auto& [name, process] : processes_) {
      absl::StrAppend(&out, "--- ", name, "\n", process->ReadLog());
    }
    return out;
  }

  // The event ids in `table` (event_outbox, event_inbox) of `service`'s
  // database.
  absl::flat_hash_set<std::string> EventIds(const std::string& service,
                                            const std::string& table) {
    absl::flat_hash_set<std::string> ids;
    auto db = storage::OpenDatabase(databases_[service], 1);
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return ids;
    auto tx = (*db)->Begin(storage::TxMode::kReadOnly);
    EXPECT_TRUE(tx.ok()) << tx.status();
    if (!tx.ok()) return ids;
    auto rows = (*tx)->Query(absl::StrCat("SELECT event_id FROM ", table));
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return ids;
    for (const storage::Row& r : *rows) ids.insert(*r.GetText(0));
    return ids;
  }

  std::string pki_;
  std::string dir_;
  std::string state_;
  std::string data_;
  std::string port_;
  std::string pg_ctl_;
  bool pg_started_ = false;
  absl::flat_hash_map<std::string, std::string> databases_;
  std::vector<std::pair<std::string, std::unique_ptr<ServiceProcess>>>
      processes_;
};

TEST_F(PostgresRestartTest, WritesFailRetryablyAndNothingAcknowledgedIsLost) {
  const int courses_port = FreeLocalPort();
  auto identity_process = Start(
      "identity", 0,
      {absl::StrCat("--event_destinations=courses=127.0.0.1:", courses_port)});
  ASSERT_TRUE(identity_process.ok()) << identity_process.status();
  absl::StatusOr<int> identity_port =
      identity_process->WaitServing(absl::Seconds(30));
  ASSERT_TRUE(identity_port.ok()) << identity_process->ReadLog();
  processes_.emplace_back("identity", std::make_unique<ServiceProcess>(
                                          *std::move(identity_process)));
  auto courses_process =
      Start("courses", courses_port,
            {absl::StrCat("--identity_target=127.0.0.1:", *identity_port),
             absl::StrCat("--event_destinations=identity=127.0.0.1:",
                          *identity_port)});
  ASSERT_TRUE(courses_process.ok()) << courses_process.status();
  ASSERT_TRUE(courses_process->WaitServing(absl::Seconds(30)).ok())
      << courses_process->ReadLog();
  processes_.emplace_back(
      "courses", std::make_unique<ServiceProcess>(*std::move(courses_process)));
  auto seed = ServiceProcess::Start(
      absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
      {absl::StrCat("--identity=127.0.0.1:", *identity_port),
       absl::StrCat("--tls_dir=", pki_)},
      absl::StrCat(dir_, "/seed.log"));
  ASSERT_TRUE(seed.ok()) << seed.status();
  ASSERT_EQ(seed->WaitExit(absl::Seconds(60)).value_or(-1), 0)
      << seed->ReadLog();

  auto identity = identity::v1::IdentityService::NewStub(
      Channel(*identity_port, "kim-koeln"));
  auto courses =
      courses::v1::CoursesService::NewStub(Channel(courses_port, "vhs-koeln"));
  // One write of each service; `request_id` decides which resource.
  auto write = [&](const std::string& service,
                   const std::string& request_id) -> Write {
    Write w;
    w.service = service;
    w.request_id = request_id;
    w.start = absl::Now();
    grpc::ClientContext context;
    Prepare(&context, kCallDeadline);
    grpc::Status s;
    if (service == "identity") {
      identity::v1::CreatePersonRequest request;
      request.set_request_id(request_id);
      request.set_confirm_new_person(true);
      *request.mutable_person() = SamplePerson("Restart", request_id, 1980);
      identity::v1::Person person;
      s = identity->CreatePerson(&context, request, &person);
      w.name = person.name();
      w.etag = person.etag();
    } else {
      courses::v1::CreateCourseRequest request;
      request.set_request_id(request_id);
      *request.mutable_course() = IntegrationCourse(request_id);
      courses::v1::Course course;
      s = courses->CreateCourse(&context, request, &course);
      w.name = course.name();
      w.etag = course.etag();
    }
    w.took = absl::Now() - w.start;
    w.code = s.error_code();
    w.reason = Reason(s);
    w.message = s.error_message();
    return w;
  };
  // Courses learns vhs-koeln from identity's events.
  Write first;
  ASSERT_TRUE(Eventually(
      [&] {
        first = write("courses", "pg-course-first");
        return first.code == grpc::StatusCode::OK;
      },
      absl::Seconds(60)))
      << first.message << "\n"
      << Logs();

  // Two writers per service, a write every 20 ms each.
  absl::Mutex mu;
  std::vector<Write> writes = {first};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (const std::string service : {"identity", "courses"}) {
    for (int w = 0; w < 2; ++w) {
      writers.emplace_back([&, service, w] {
        for (int n = 0; !stop.load(); ++n) {
          Write done =
              write(service, absl::StrCat("pg-", service, "-", w, "-", n));
          {
            absl::MutexLock lock(&mu);
            writes.push_back(std::move(done));
          }
          absl::SleepFor(absl::Milliseconds(20));
        }
      });
    }
  }
  auto acknowledged = [&] {
    absl::MutexLock lock(&mu);
    int ok = 0;
    for (const Write& w : writes) ok += w.code == grpc::StatusCode::OK;
    return ok;
  };
  // Both services write again: a write of each, made now, answers OK.
  int probes = 0;
  auto both_write = [&] {
    ++probes;
    bool ok = true;
    for (const char* service : {"identity", "courses"}) {
      Write w = write(service, absl::StrCat("pg-probe-", probes));
      ok = ok && w.code == grpc::StatusCode::OK;
      absl::MutexLock lock(&mu);
      writes.push_back(std::move(w));
    }
    return ok;
  };

  struct Outage {
    std::string mode;
    absl::Time down_at;
    absl::Time up_at;
    bool recovered = false;
    absl::Duration recovery;
  };
  std::vector<Outage> outages;
  for (const std::string mode : {"fast", "immediate"}) {
    const int before = acknowledged();
    ASSERT_TRUE(Eventually([&] { return acknowledged() >= before + 50; },
                           absl::Seconds(60)))
        << Logs();
    Outage o;
    o.mode = mode;
    o.down_at = absl::Now();
    ASSERT_NO_FATAL_FAILURE(Stop(mode));
    absl::SleepFor(kOutage);
    ASSERT_NO_FATAL_FAILURE(StartServer());
    o.up_at = absl::Now();
    o.recovered = Eventually(both_write, kRecoveryBound);
    o.recovery = absl::Now() - o.up_at;
    outages.push_back(o);
  }
  absl::SleepFor(absl::Seconds(1));
  stop.store(true);
  for (std::thread& t : writers) t.join();

  for (const Outage& o : outages) {
    EXPECT_TRUE(o.recovered) << "writes still failing " << o.recovery
                             << " after the " << o.mode << " restart\n"
                             << Logs();
    std::cout << "writes succeed again " << o.recovery << " after the "
              << o.mode << " restart\n";
    ::testing::Test::RecordProperty(
        absl::StrCat("recovery_after_", o.mode, "_ms"),
        static_cast<int>(absl::ToInt64Milliseconds(o.recovery)));
  }

  // Every write answered within its deadline, OK or UNAVAILABLE; while
  // the server was away they failed.
  int refused_while_down = 0;
  std::vector<Write> failed;
  for (const Write& w : writes) {
    const std::string what = absl::StrCat(
        w.service, " ", w.request_id, " took ", absl::FormatDuration(w.took),
        ": ", static_cast<int>(w.code), " ", w.message, " (", w.reason, ")");
    EXPECT_LE(w.took, kCallDeadline + absl::Milliseconds(500)) << what;
    if (w.code == grpc::StatusCode::OK) continue;
    EXPECT_EQ(w.code, grpc::StatusCode::UNAVAILABLE) << what;
    // A reason a client can act on, and none of the database's own text
    // (courses' checks against identity fail as CHECK_UNAVAILABLE when
    // identity's database is the one away).
    EXPECT_TRUE(w.reason == "STORAGE_UNAVAILABLE" ||
                w.reason == "CHECK_UNAVAILABLE")
        << what;
    EXPECT_EQ(absl::AsciiStrToLower(w.message).find("postgres"),
              std::string::npos)
        << what;
    failed.push_back(w);
    for (const Outage& o : outages) {
      if (w.start >= o.down_at && w.start + w.took <= o.up_at) {
        ++refused_while_down;
      }
    }
  }
  EXPECT_GT(refused_while_down, 0);
  std::cout << writes.size() << " writes, " << failed.size()
            << " failed UNAVAILABLE, " << refused_while_down
            << " of them while the server was away\n";
  ::testing::Test::RecordProperty("writes", static_cast<int>(writes.size()));
  ::testing::Test::RecordProperty("failed", static_cast<int>(failed.size()));

  // A failed write's outcome is unknown to its client ("may or may not
  // have happened"); its retry with the same request_id settles it.
  for (const Write& f : failed) {
    Write again = write(f.service, f.request_id);
    EXPECT_EQ(again.code, grpc::StatusCode::OK)
        << f.service << " " << f.request_id << ": " << again.message;
    writes.push_back(again);
  }

  // Every acknowledged write is there, as answered.
  int missing = 0;
  absl::flat_hash_map<std::string, std::string> course_of_request;
  for (const Write& w : writes) {
    if (w.code != grpc::StatusCode::OK) continue;
    grpc::ClientContext context;
    Prepare(&context, absl::Seconds(10));
    grpc::Status s;
    std::string etag;
    if (w.service == "identity") {
      identity::v1::GetPersonRequest get;
      get.set_name(w.name);
      identity::v1::Person person;
      s = identity->GetPerson(&context, get, &person);
      etag = person.etag();
    } else {
      courses::v1::GetCourseRequest get;
      get.set_name(w.name);
      courses::v1::Course course;
      s = courses->GetCourse(&context, get, &course);
      etag = course.etag();
      auto it = course_of_request.emplace(w.request_id, w.name).first;
      EXPECT_EQ(it->second, w.name) << w.request_id << " made two courses";
    }
    if (!s.ok()) {
      ++missing;
      ADD_FAILURE() << w.service << " " << w.name << ": " << Describe(s);
      continue;
    }
    EXPECT_EQ(etag, w.etag) << w.name;
  }
  EXPECT_EQ(missing, 0);

  // Each request_id made one course: the provider's courses are exactly
  // those acknowledged.
  absl::flat_hash_set<std::string> listed;
  courses::v1::ListCoursesRequest list;
  list.set_page_size(500);
  list.set_provider_agency("agencies/vhs-koeln");
  while (true) {
    grpc::ClientContext context;
    Prepare(&context, absl::Seconds(10));
    courses::v1::ListCoursesResponse page;
    grpc::Status s = courses->ListCourses(&context, list, &page);
    ASSERT_TRUE(s.ok()) << Describe(s);
    for (const courses::v1::Course& c : page.courses()) listed.insert(c.name());
    if (page.next_page_token().empty()) break;
    list.set_page_token(page.next_page_token());
  }
  absl::flat_hash_set<std::string> acknowledged_courses;
  for (const auto& [request_id, name] : course_of_request) {
    acknowledged_courses.insert(name);
  }
  for (const std::string& name : acknowledged_courses) {
    EXPECT_TRUE(listed.contains(name)) << name;
  }
  EXPECT_EQ(listed.size(), acknowledged_courses.size());

  // Event delivery resumed both ways.
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{
           {"identity", "courses"}, {"courses", "identity"}}) {
    const absl::flat_hash_set<std::string> sent =
        EventIds(from, "event_outbox");
    // Course creation emits no events; identity's agencies do.
    if (from == "identity") EXPECT_FALSE(sent.empty());
    int64_t arrived = 0;
    Eventually(
        [&] {
          const absl::flat_hash_set<std::string> got =
              EventIds(to, "event_inbox");
          arrived = 0;
          for (const std::string& id : sent) arrived += got.contains(id);
          return arrived == static_cast<int64_t>(sent.size());
        },
        absl::Seconds(60));
    EXPECT_EQ(arrived, static_cast<int64_t>(sent.size()))
        << from << " -> " << to << "\n"
        << Logs();
  }
}

}  // namespace
}  // namespace lotse::testing
