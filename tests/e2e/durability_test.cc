// "Nothing acknowledged is ever lost", for every service: writers keep
// create calls in flight against the service's binary while it is killed
// with SIGKILL; after a restart on the same database every resource whose
// creation was answered OK must be there, as it was answered (same etag and
// content). Group commit answers many callers per transaction, so an OK
// sent before its batch committed would show up here as a missing resource.
// On SQLite and on PostgreSQL (whose server stays up: the service process
// is what dies).
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/audit/audit_log.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "common/storage/database.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"
#include "tests/e2e/sample_requests.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace lotse::testing {
namespace {

// What a create call answered: the resource's name and etag, and one field
// to compare after the restart.
struct Ack {
  std::string name;
  std::string etag;
  std::string field;
};

// One create: OK fills `ack`.
using WriteFn = std::function<grpc::Status(int writer, int n, Ack* ack)>;
// One read after the restart: OK fills `found`.
using ReadFn = std::function<grpc::Status(const std::string& name, Ack* found)>;

void Prepare(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  context->AddMetadata("x-lotse-actor", "cw-1");
  context->AddMetadata("x-lotse-purpose", "durability");
}

class DurabilityTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    pki_ = DevPkiDir();
    ASSERT_FALSE(pki_.empty());
    char pattern[] = "/tmp/lotse-e2e-durability.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("LOTSE_ACCESS_RULES",
           absl::StrCat(SourceDir(), "/config/access-rules.conf").c_str(), 1);
  }

  // Starts `service` on `port` (0: any) with its own database of the
  // parameter's backend, made on the first start and kept for restarts.
  absl::StatusOr<ServiceProcess> Start(const std::string& service, int port,
                                       const std::vector<std::string>& extra) {
    std::string& database = databases_[service];
    if (database.empty()) {
      absl::StatusOr<std::string> url = NewTestDatabaseUrl(GetParam());
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
        args, absl::StrCat(dir_, "/", service, "-", ++starts_, ".log"));
  }

  // Identity with the demo agencies (kim-koeln, vhs-koeln, aa-koeln, ...),
  // its agency events sent to `destinations` ("name=host:port,..."). Returns
  // identity's port.
  int StartSeededIdentity(const std::string& destinations) {
    std::vector<std::string> extra;
    if (!destinations.empty()) {
      extra.push_back(absl::StrCat("--event_destinations=", destinations));
    }
    auto identity = Start("identity", 0, extra);
    EXPECT_TRUE(identity.ok()) << identity.status();
    if (!identity.ok()) return 0;
    absl::StatusOr<int> port = identity->WaitServing(absl::Seconds(20));
    EXPECT_TRUE(port.ok()) << identity->ReadLog();
    if (!port.ok()) return 0;
    identity_ = std::make_unique<ServiceProcess>(*std::move(identity));
    auto seed = ServiceProcess::Start(
        absl::StrCat(BinaryDir(), "/tools/lotse_seed_demo"),
        {absl::StrCat("--identity=127.0.0.1:", *port),
         absl::StrCat("--tls_dir=", pki_)},
        absl::StrCat(dir_, "/seed.log"));
    EXPECT_TRUE(seed.ok()) << seed.status();
    if (!seed.ok()) return 0;
    EXPECT_EQ(seed->WaitExit(absl::Seconds(30)).value_or(-1), 0)
        << seed->ReadLog();
    return *port;
  }

  std::shared_ptr<grpc::Channel> Channel(int port, const std::string& as) {
    auto creds = server::ClientCredentialsFromDir(pki_, as);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), *creds);
  }

  // Retries `call` until it succeeds: a service learns the demo agencies
  // from identity's events, some time after the seed registered them.
  static grpc::Status OnceAgenciesKnown(
      const std::function<grpc::Status()>& call) {
    grpc::Status last;
    Eventually(
        [&] {
          last = call();
          return last.ok();
        },
        absl::Seconds(30));
    return last;
  }

  // The test itself: `service` runs as `process`; eight writers call
  // `write` one after the other until a call fails; once 200 calls were
  // answered OK the process is killed. It is restarted by `restart`, and
  // every acknowledged resource is read back with `read`.
  void KillUnderLoadAndReadBack(
      ServiceProcess& process, const WriteFn& write,
      const std::function<absl::StatusOr<ServiceProcess>()>& restart,
      const std::function<ReadFn(int port)>& reader) {
    constexpr int kWriters = 8;
    absl::Mutex mu;
    std::vector<Ack> acknowledged;
    std::atomic<int> failures_before_kill{0};
    std::atomic<bool> killed{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        for (int n = 0;; ++n) {
          Ack ack;
          if (!write(w, n, &ack).ok()) {
            if (!killed.load()) failures_before_kill.fetch_add(1);
            return;
          }
          absl::MutexLock lock(&mu);
          acknowledged.push_back(std::move(ack));
        }
      });
    }
    // Kill once a fair number of creates were answered, with calls in
    // flight.
    const bool enough = Eventually(
        [&] {
          absl::MutexLock lock(&mu);
          return acknowledged.size() >= 200;
        },
        absl::Seconds(60));
    killed.store(true);
    process.Signal(SIGKILL);
    for (std::thread& t : writers) t.join();
    ASSERT_TRUE(enough) << process.ReadLog();
    ASSERT_EQ(process.WaitExit(absl::Seconds(10)).value_or(-1), 128 + SIGKILL);
    EXPECT_EQ(failures_before_kill.load(), 0) << process.ReadLog();

    absl::StatusOr<ServiceProcess> restarted = restart();
    ASSERT_TRUE(restarted.ok()) << restarted.status();
    absl::StatusOr<int> port = restarted->WaitServing(absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << restarted->ReadLog();
    const ReadFn read = reader(*port);
    int missing = 0;
    for (const Ack& ack : acknowledged) {
      Ack found;
      grpc::Status s = read(ack.name, &found);
      if (!s.ok()) {
        ++missing;
        ADD_FAILURE() << ack.name << ": " << s.error_code() << " "
                      << s.error_message();
        continue;
      }
      EXPECT_EQ(found.etag, ack.etag) << ack.name;
      EXPECT_EQ(found.field, ack.field) << ack.name;
    }
    EXPECT_EQ(missing, 0) << "of " << acknowledged.size() << " acknowledged";
    restarted->Signal(SIGTERM);
    EXPECT_EQ(restarted->WaitExit(absl::Seconds(10)).value_or(-1), 0);
  }

  std::string pki_;
  std::string dir_;
  absl::flat_hash_map<std::string, std::string> databases_;
  std::unique_ptr<ServiceProcess> identity_;
  int starts_ = 0;
};

TEST_P(DurabilityTest, AcknowledgedPersonsSurviveKill9) {
  const int identity_port = StartSeededIdentity("");
  ASSERT_NE(identity_port, 0);
  auto stub = identity::v1::IdentityService::NewStub(
      Channel(identity_port, "kim-koeln"));
  KillUnderLoadAndReadBack(
      *identity_,
      [&](int writer, int n, Ack* ack) {
        identity::v1::CreatePersonRequest request;
        request.set_request_id(absl::StrCat("durable-", writer, "-", n));
        // Confirmed: similar synthetic names must not be refused as
        // duplicates.
        request.set_confirm_new_person(true);
        identity::v1::PersonName* name = request.mutable_person()->add_names();
        name->set_given_names(absl::StrCat("Writer", writer));
        name->set_family_names(absl::StrCat("Durable", n));
        name->set_script("Latn");
        name->set_kind(identity::v1::NAME_KIND_CURRENT);
        request.mutable_person()->mutable_birth_date()->set_year(1960 + n % 40);
        grpc::ClientContext context;
        Prepare(&context);
        identity::v1::Person person;
        grpc::Status s = stub->CreatePerson(&context, request, &person);
        *ack = {person.name(), person.etag(),
                person.names_size() > 0 ? person.names(0).family_names() : ""};
        return s;
      },
      [&] { return Start("identity", 0, {}); },
      [&](int port) -> ReadFn {
        auto reader = std::shared_ptr<identity::v1::IdentityService::Stub>(
            identity::v1::IdentityService::NewStub(Channel(port, "kim-koeln")));
        return [reader](const std::string& name, Ack* found) {
          grpc::ClientContext context;
          Prepare(&context);
          identity::v1::GetPersonRequest get;
          get.set_name(name);
          identity::v1::Person person;
          grpc::Status s = reader->GetPerson(&context, get, &person);
          *found = {
              person.name(), person.etag(),
              person.names_size() > 0 ? person.names(0).family_names() : ""};
          return s;
        };
      });
}

// A read answered OK was audited first: its record, in the read chain
// (a SQLite file of its own, or its own table on PostgreSQL), survives
// kill -9 like any acknowledged write, and the data's change chain holds
// no record of it.
TEST_P(DurabilityTest, AcknowledgedReadsStayAuditedAfterKill9) {
  const int identity_port = StartSeededIdentity("");
  ASSERT_NE(identity_port, 0);
  auto stub = identity::v1::IdentityService::NewStub(
      Channel(identity_port, "kim-koeln"));
  identity::v1::CreatePersonRequest create;
  create.set_request_id("read-audit-1");
  identity::v1::PersonName* name = create.mutable_person()->add_names();
  name->set_given_names("Amina");
  name->set_family_names("Haddad");
  name->set_script("Latn");
  name->set_kind(identity::v1::NAME_KIND_CURRENT);
  create.mutable_person()->mutable_birth_date()->set_year(1991);
  identity::v1::Person person;
  {
    grpc::ClientContext context;
    Prepare(&context);
    ASSERT_TRUE(stub->CreatePerson(&context, create, &person).ok());
  }

  constexpr int kReaders = 8;
  std::atomic<int> acknowledged{0};
  std::atomic<bool> killed{false};
  std::atomic<int> failures_before_kill{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      while (true) {
        grpc::ClientContext context;
        Prepare(&context);
        identity::v1::GetPersonRequest get;
        get.set_name(person.name());
        identity::v1::Person got;
        if (!stub->GetPerson(&context, get, &got).ok()) {
          if (!killed.load()) failures_before_kill.fetch_add(1);
          return;
        }
        acknowledged.fetch_add(1);
      }
    });
  }
  const bool enough =
      Eventually([&] { return acknowledged.load() >= 300; }, absl::Seconds(60));
  killed.store(true);
  identity_->Signal(SIGKILL);
  for (std::thread& t : readers) t.join();
  ASSERT_TRUE(enough) << identity_->ReadLog();
  ASSERT_EQ(identity_->WaitExit(absl::Seconds(10)).value_or(-1), 128 + SIGKILL);
  EXPECT_EQ(failures_before_kill.load(), 0) << identity_->ReadLog();

  const std::string data_url = databases_["identity"];
  std::string reads_url = server::ReadAuditDatabaseUrl(data_url, "");
  if (reads_url.empty()) reads_url = data_url;
  if (GetParam() == Dialect::kSqlite) EXPECT_NE(reads_url, data_url);
  absl::StatusOr<std::unique_ptr<storage::Database>> reads =
      storage::OpenDatabase(reads_url, 2);
  ASSERT_TRUE(reads.ok()) << reads.status();
  int audited_reads = 0;
  audit::ListAuditOptions page;
  page.page_size = 1000;
  page.chain = audit::Chain::kReads;
  while (true) {
    absl::StatusOr<std::vector<audit::AuditRecord>> rows =
        audit::ListAuditForResource(**reads, person.name(), page);
    ASSERT_TRUE(rows.ok()) << rows.status();
    if (rows->empty()) break;
    for (const audit::AuditRecord& r : *rows) {
      if (absl::EndsWith(r.operation, "/GetPerson") &&
          r.outcome == audit::Outcome::kAllowed) {
        ++audited_reads;
      }
    }
    page.after_seq = rows->back().seq;
  }
  EXPECT_GE(audited_reads, acknowledged.load());
  audit::VerifyOptions verify;
  verify.chain = audit::Chain::kReads;
  absl::StatusOr<audit::VerifyReport> report =
      audit::VerifyAuditChain(**reads, verify);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->intact) << report->problem;

  absl::StatusOr<std::unique_ptr<storage::Database>> data =
      storage::OpenDatabase(data_url, 2);
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<std::vector<audit::AuditRecord>> changes =
      audit::ListAuditForResource(**data, person.name(), {0, 1000});
  ASSERT_TRUE(changes.ok()) << changes.status();
  for (const audit::AuditRecord& r : *changes) {
    EXPECT_FALSE(absl::EndsWith(r.operation, "/GetPerson")) << r.operation;
  }
}

TEST_P(DurabilityTest, AcknowledgedStepsSurviveKill9) {
  const int cases_port = FreeLocalPort();
  const int identity_port =
      StartSeededIdentity(absl::StrCat("cases=127.0.0.1:", cases_port));
  ASSERT_NE(identity_port, 0);
  const std::vector<std::string> cases_args = {
      absl::StrCat("--identity_target=127.0.0.1:", identity_port)};
  auto cases = Start("cases", cases_port, cases_args);
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_TRUE(cases->WaitServing(absl::Seconds(20)).ok()) << cases->ReadLog();

  // One person and one case; the writers refer steps of it.
  identity::v1::CreatePersonRequest create;
  create.set_request_id("durable-person");
  *create.mutable_person() = SamplePerson("Oleksandr", "Kovalenko", 1988);
  identity::v1::Person person;
  {
    grpc::ClientContext context;
    Prepare(&context);
    grpc::Status s = identity::v1::IdentityService::NewStub(
                         Channel(identity_port, "kim-koeln"))
                         ->CreatePerson(&context, create, &person);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  auto stub =
      cases::v1::CasesService::NewStub(Channel(cases_port, "kim-koeln"));
  cases::v1::Case opened;
  grpc::Status s = OnceAgenciesKnown([&] {
    cases::v1::OpenCaseRequest open;
    open.set_request_id("durable-case");
    open.mutable_case_record()->set_person(person.name());
    open.mutable_case_record()->set_responsible_actor("cm-1");
    grpc::ClientContext context;
    Prepare(&context);
    return stub->OpenCase(&context, open, &opened);
  });
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << cases->ReadLog();
  auto create_step = [&](const std::string& request_id, cases::v1::Step* step) {
    cases::v1::CreateStepRequest request;
    request.set_parent(opened.name());
    request.set_request_id(request_id);
    request.mutable_step()->set_kind(cases::v1::STEP_KIND_INTEGRATION_COURSE);
    request.mutable_step()->set_receiving_agency("agencies/vhs-koeln");
    request.mutable_step()->set_description(request_id);
    grpc::ClientContext context;
    Prepare(&context);
    return stub->CreateStep(&context, request, step);
  };
  cases::v1::Step first;
  s = OnceAgenciesKnown([&] { return create_step("durable-first", &first); });
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << cases->ReadLog();

  KillUnderLoadAndReadBack(
      *cases,
      [&](int writer, int n, Ack* ack) {
        cases::v1::Step step;
        grpc::Status s =
            create_step(absl::StrCat("durable-", writer, "-", n), &step);
        *ack = {step.name(), step.etag(), step.description()};
        return s;
      },
      [&] { return Start("cases", cases_port, cases_args); },
      [&](int port) -> ReadFn {
        auto reader = std::shared_ptr<cases::v1::CasesService::Stub>(
            cases::v1::CasesService::NewStub(Channel(port, "kim-koeln")));
        return [reader](const std::string& name, Ack* found) {
          grpc::ClientContext context;
          Prepare(&context);
          cases::v1::GetStepRequest get;
          get.set_name(name);
          cases::v1::Step step;
          grpc::Status s = reader->GetStep(&context, get, &step);
          *found = {step.name(), step.etag(), step.description()};
          return s;
        };
      });
}

TEST_P(DurabilityTest, AcknowledgedCoursesSurviveKill9) {
  const int courses_port = FreeLocalPort();
  const int identity_port =
      StartSeededIdentity(absl::StrCat("courses=127.0.0.1:", courses_port));
  ASSERT_NE(identity_port, 0);
  const std::vector<std::string> courses_args = {
      absl::StrCat("--identity_target=127.0.0.1:", identity_port)};
  auto courses = Start("courses", courses_port, courses_args);
  ASSERT_TRUE(courses.ok()) << courses.status();
  ASSERT_TRUE(courses->WaitServing(absl::Seconds(20)).ok())
      << courses->ReadLog();
  auto stub =
      courses::v1::CoursesService::NewStub(Channel(courses_port, "vhs-koeln"));
  auto create_course = [&](const std::string& request_id,
                           courses::v1::Course* course) {
    courses::v1::CreateCourseRequest request;
    request.set_request_id(request_id);
    *request.mutable_course() =
        IntegrationCourse(absl::StrCat("Integrationskurs ", request_id));
    grpc::ClientContext context;
    Prepare(&context);
    return stub->CreateCourse(&context, request, course);
  };
  courses::v1::Course first;
  grpc::Status s =
      OnceAgenciesKnown([&] { return create_course("durable-first", &first); });
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << courses->ReadLog();

  KillUnderLoadAndReadBack(
      *courses,
      [&](int writer, int n, Ack* ack) {
        courses::v1::Course course;
        grpc::Status s =
            create_course(absl::StrCat("durable-", writer, "-", n), &course);
        *ack = {course.name(), course.etag(), course.title()};
        return s;
      },
      [&] { return Start("courses", courses_port, courses_args); },
      [&](int port) -> ReadFn {
        auto reader = std::shared_ptr<courses::v1::CoursesService::Stub>(
            courses::v1::CoursesService::NewStub(Channel(port, "vhs-koeln")));
        return [reader](const std::string& name, Ack* found) {
          grpc::ClientContext context;
          Prepare(&context);
          courses::v1::GetCourseRequest get;
          get.set_name(name);
          courses::v1::Course course;
          grpc::Status s = reader->GetCourse(&context, get, &course);
          *found = {course.name(), course.etag(), course.title()};
          return s;
        };
      });
}

TEST_P(DurabilityTest, AcknowledgedOffersSurviveKill9) {
  const int placement_port = FreeLocalPort();
  const int identity_port =
      StartSeededIdentity(absl::StrCat("placement=127.0.0.1:", placement_port));
  ASSERT_NE(identity_port, 0);
  const std::vector<std::string> placement_args = {
      absl::StrCat("--identity_target=127.0.0.1:", identity_port)};
  auto placement = Start("placement", placement_port, placement_args);
  ASSERT_TRUE(placement.ok()) << placement.status();
  ASSERT_TRUE(placement->WaitServing(absl::Seconds(20)).ok())
      << placement->ReadLog();
  auto stub = placement::v1::PlacementService::NewStub(
      Channel(placement_port, "aa-koeln"));
  auto create_offer = [&](const std::string& request_id,
                          placement::v1::Offer* offer) {
    placement::v1::CreateOfferRequest request;
    request.set_request_id(request_id);
    *request.mutable_offer() = WarehouseOffer(
        absl::StrCat("Lagerhelfer ", request_id), type::v1::CEFR_LEVEL_A2, 2);
    grpc::ClientContext context;
    Prepare(&context);
    return stub->CreateOffer(&context, request, offer);
  };
  placement::v1::Offer first;
  grpc::Status s =
      OnceAgenciesKnown([&] { return create_offer("durable-first", &first); });
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << placement->ReadLog();

  KillUnderLoadAndReadBack(
      *placement,
      [&](int writer, int n, Ack* ack) {
        placement::v1::Offer offer;
        grpc::Status s =
            create_offer(absl::StrCat("durable-", writer, "-", n), &offer);
        *ack = {offer.name(), offer.etag(), offer.title()};
        return s;
      },
      [&] { return Start("placement", placement_port, placement_args); },
      [&](int port) -> ReadFn {
        auto reader = std::shared_ptr<placement::v1::PlacementService::Stub>(
            placement::v1::PlacementService::NewStub(
                Channel(port, "aa-koeln")));
        return [reader](const std::string& name, Ack* found) {
          grpc::ClientContext context;
          Prepare(&context);
          placement::v1::GetOfferRequest get;
          get.set_name(name);
          placement::v1::Offer offer;
          grpc::Status s = reader->GetOffer(&context, get, &offer);
          *found = {offer.name(), offer.etag(), offer.title()};
          return s;
        };
      });
}

INSTANTIATE_TEST_SUITE_P(Backends, DurabilityTest,
                         ::testing::Values(Dialect::kSqlite,
                                           Dialect::kPostgres),
                         DialectParamName());

}  // namespace
}  // namespace lotse::testing
