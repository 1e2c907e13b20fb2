// Courses service benchmarks, run by
// bench/run_courses_bench.sh next to the echo baseline of the same run:
//
//   --mode=load           writes the demo agencies, --courses synthetic
//                         courses across the demo region (postal areas of
//                         common/geo/geo.cc), a race course
//                         with --race_seats seats, and --persons persons
//                         with admissions, straight into a courses
//                         database (service stopped); writes the course ids
//                         to --ids_out (first line: the race course).
//   --mode=fake_identity  serves a stand-in lotse.identity.v1.IdentityService
//                         over mTLS (certificate "identity") whose
//                         CheckAccess knows every person and allows: the
//                         real identity does not admit service callers yet.
//                         Every booking still pays the round trip.
//   --mode=book           CreateBooking, uncontended: every call a new
//                         person in another course.
//   --mode=race           CreateBooking, contended: --concurrency callers
//                         (500) with distinct persons hammer the race
//                         course; exactly --race_seats must succeed, the
//                         rest are COURSE_FULL (counted as answered).
//   --mode=search         SearchCourses near a random demo postal code.
//   --mode=course_events  end to end from a course result to the case
//                         watchers: books --events persons (person i into
//                         one of the first courses of --ids), the provider
//                         confirms the bookings and starts the courses, and
//                         one stream waits until those events have all
//                         reached the cases (setup_events_drained_s, from
//                         the end of the set-up); then --watchers
//                         WatchCaseEvents streams open on
//                         the cases service (--cases_target, as
//                         kim-koeln), and the provider records one result
//                         per booking at --rate per second. Courses
//                         delivers each CourseResultRecorded event to
//                         cases, which records it on case "bc<i>" (seeded
//                         by lotse_cases_bench --mode=seed
//                         --courses_persons) and streams the case event.
//                         Latency: from just before the RecordCourseResult
//                         call starts (and from its return) to each
//                         watcher's receipt of that case's COURSE_RESULT
//                         activity; p1 shows the floor of the path.
//
// Output: one human line and one JSON line per run, like the other benches.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/load.h"
#include "bench/internal/tls.h"
#include "common/agencies/registry.h"
#include "common/api/names.h"
#include "common/errors/status.h"
#include "common/geo/geo.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "services/courses/domain/dates.h"
#include "services/courses/store/course_store.h"
#include "services/courses/store/migrations.h"

ABSL_FLAG(std::string, mode, "",
          "load, fake_identity, book, race, search or course_events");
ABSL_FLAG(std::string, target, "127.0.0.1:50053", "courses service");
ABSL_FLAG(std::string, listen, "127.0.0.1:0", "fake_identity: address");
ABSL_FLAG(std::string, tls_dir, "", "tools/dev-pki.sh directory");
ABSL_FLAG(std::string, client, "kim-koeln", "client certificate to call as");
ABSL_FLAG(int, concurrency, 32, "calls in flight");
ABSL_FLAG(int, channels, 2, "connections");
ABSL_FLAG(double, duration_s, 10, "measurement window");
ABSL_FLAG(double, warmup_s, 1, "warm-up before the window");
ABSL_FLAG(int, rpc_timeout_ms, 10000, "deadline per call");
ABSL_FLAG(std::string, database, "", "load: sqlite:/path or postgresql://");
ABSL_FLAG(int64_t, courses, 50000, "load: courses");
ABSL_FLAG(int64_t, persons, 200000, "load/book/race: persons");
ABSL_FLAG(int, race_seats, 10, "load/race: seats of the race course");
ABSL_FLAG(std::string, ids_out, "", "load: file for the course ids");
ABSL_FLAG(std::string, ids, "", "book/race: the file --ids_out wrote");
ABSL_FLAG(int, page_size, 20, "search: results per page");
ABSL_FLAG(int, max_distance_km, 30, "search: radius");
ABSL_FLAG(std::string, cases_target, "127.0.0.1:50052",
          "course_events: cases service");
ABSL_FLAG(int, watchers, 100, "course_events: WatchCaseEvents streams");
ABSL_FLAG(int, events, 500, "course_events: results recorded");
ABSL_FLAG(double, rate, 50, "course_events: results per second");

namespace lotse::courses {
namespace {

using ::lotse::bench::CallDone;
using ::lotse::bench::LatencyHistogram;
using ::lotse::bench::LoadOptions;
using ::lotse::bench::LoadResult;
using ::lotse::bench::StartCall;

// Postal codes of the demo region the synthetic courses and searches use.
const std::vector<std::string>& DemoPostalCodes() {
  static const auto* const codes = new std::vector<std::string>{
      "50667", "50733", "50823", "50931", "51063", "51143", "50169", "50259",
      "50354", "51373", "51429", "51545", "51643", "53111", "53225", "53340",
      "53721", "53879", "52062", "52222", "52349", "52428", "40213", "40477",
      "40545", "40625", "40764", "41061", "41460", "47798", "42103", "42651",
      "42853", "45127", "45468", "46045", "47051", "44787", "44135", "45879"};
  return *codes;
}

// Deterministic person names: "persons/benchpersonx" + 14 base32 digits.
std::string PersonName(uint64_t index) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string digits(14, 'a');
  for (int i = 13; i >= 0; --i) {
    digits[i] = kAlphabet[index & 31];
    index >>= 5;
  }
  return absl::StrCat("persons/benchpersonx", digits);
}

// --- load ---

absl::Status Load() {
  absl::StatusOr<std::unique_ptr<storage::Database>> db =
      storage::OpenDatabase(absl::GetFlag(FLAGS_database));
  if (!db.ok()) return db.status();
  if (absl::Status s = storage::ApplyMigrations(**db, CoursesMigrations());
      !s.ok()) {
    return s;
  }
  const absl::Time started = absl::Now();
  const int64_t today = DayOf(absl::Now());
  std::mt19937_64 rng(42);
  auto upsert = [&](storage::Transaction& tx) -> absl::Status {
    const std::pair<const char*, const char*> agencies[] = {
        {"vhs-koeln", "KURSTRAEGER"},
        {"kim-koeln", "KOMMUNE"},
        {"bamf-nuernberg", "BAMF"},
        {"abh-koeln", "AUSLAENDERBEHOERDE"},
        {"jobcenter-koeln", "JOBCENTER"}};
    for (const auto& [id, domain] : agencies) {
      agencies::LocalAgency row{id, domain, "05315000", id, false, 1};
      if (absl::Status s = UpsertAgency(tx, row); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  if (absl::Status s = storage::RunInTransaction(**db, upsert); !s.ok()) {
    return s;
  }
  std::vector<std::string> ids;
  const int64_t n_courses = absl::GetFlag(FLAGS_courses);
  auto make_course = [&](int capacity) {
    CourseRow row;
    row.id = *api::NewId();
    v1::Course& c = row.course;
    c.set_provider_agency("agencies/vhs-koeln");
    c.set_title("Synthetischer Kurs");
    const int kind = 1 + static_cast<int>(rng() % 9);
    c.set_kind(static_cast<v1::CourseKind>(kind));
    c.set_target_level(kind == v1::COURSE_KIND_ORIENTATION
                           ? type::v1::CEFR_LEVEL_UNSPECIFIED
                           : static_cast<type::v1::CefrLevel>(1 + rng() % 4));
    const std::string& postal =
        DemoPostalCodes()[rng() % DemoPostalCodes().size()];
    c.mutable_place()->set_postal_code(postal);
    c.mutable_place()->set_locality("Demo");
    c.mutable_place()->set_municipality_code("05315000");
    row.position = geo::PostalCodeCentre(postal);
    auto* s = c.mutable_schedule();
    *s->mutable_start_date() = DateFromDay(today + 1 + rng() % 365);
    s->add_weekdays(type::v1::DAY_OF_WEEK_MONDAY);
    if (rng() % 2) s->add_weekdays(type::v1::DAY_OF_WEEK_WEDNESDAY);
    s->set_day_period(static_cast<type::v1::DayPeriod>(1 + rng() % 3));
    s->set_units_per_week(20);
    s->set_total_units(100);
    c.set_childcare_offered(rng() % 10 < 3);
    c.set_capacity(capacity);
    c.set_state(v1::COURSE_STATE_PLANNED);
    return row;
  };
  // The race course first.
  {
    CourseRow race = make_course(absl::GetFlag(FLAGS_race_seats));
    race.course.set_kind(v1::COURSE_KIND_INTEGRATION_GENERAL);
    race.course.set_target_level(type::v1::CEFR_LEVEL_B1);
    ids.push_back(race.id);
    if (absl::Status s = storage::RunInTransaction(
            **db,
            [&](storage::Transaction& tx) { return InsertCourse(tx, race); });
        !s.ok()) {
      return s;
    }
  }
  constexpr int kBatch = 5000;
  for (int64_t done = 0; done < n_courses; done += kBatch) {
    std::vector<CourseRow> rows;
    for (int64_t i = done; i < std::min(n_courses, done + kBatch); ++i) {
      rows.push_back(make_course(30));
      ids.push_back(rows.back().id);
    }
    absl::Status s =
        storage::RunInTransaction(**db, [&](storage::Transaction& tx) {
          for (const CourseRow& r : rows) {
            if (absl::Status st = InsertCourse(tx, r); !st.ok()) return st;
          }
          return absl::OkStatus();
        });
    if (!s.ok()) return s;
  }
  const int64_t n_persons = absl::GetFlag(FLAGS_persons);
  for (int64_t done = 0; done < n_persons; done += kBatch) {
    absl::Status s =
        storage::RunInTransaction(**db, [&](storage::Transaction& tx) {
          for (int64_t i = done; i < std::min(n_persons, done + kBatch); ++i) {
            EntitlementRow e;
            e.id = *api::NewId();
            e.create_us = absl::ToUnixMicros(absl::Now());
            v1::Entitlement& p = e.entitlement;
            p.set_person(PersonName(i));
            p.set_kind(v1::ENTITLEMENT_KIND_ADMISSION);
            for (int k = 1; k <= 9; ++k) {
              p.add_course_kinds(static_cast<v1::CourseKind>(k));
            }
            p.set_units(1500);
            *p.mutable_valid_from() = DateFromDay(today - 1);
            *p.mutable_valid_until() = DateFromDay(today + 730);
            p.set_issuing_agency("agencies/bamf-nuernberg");
            if (absl::Status st = InsertEntitlement(tx, e); !st.ok()) return st;
          }
          return absl::OkStatus();
        });
    if (!s.ok()) return s;
  }
  std::ofstream out(absl::GetFlag(FLAGS_ids_out));
  for (const std::string& id : ids) out << id << "\n";
  out.close();
  if (!out) return absl::InternalError("cannot write --ids_out");
  std::printf("%s\n",
              absl::StrFormat("{\"mode\":\"load\",\"courses\":%d,"
                              "\"persons\":%d,\"seconds\":%.1f}",
                              n_courses, n_persons,
                              absl::ToDoubleSeconds(absl::Now() - started))
                  .c_str());
  return absl::OkStatus();
}

// --- fake identity ---

class AllowingIdentity final : public identity::v1::IdentityService::Service {
 public:
  grpc::Status CheckAccess(
      grpc::ServerContext*, const identity::v1::CheckAccessRequest* request,
      identity::v1::CheckAccessResponse* response) override {
    for (int c : request->categories()) {
      auto* d = response->add_decisions();
      d->set_category(static_cast<type::v1::DataCategory>(c));
      d->set_allowed(true);
      d->set_basis(identity::v1::ACCESS_BASIS_LEGAL_BASIS);
    }
    return grpc::Status::OK;
  }
};

absl::Status ServeFakeIdentity() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto creds = lotse::bench::MakeMutualTlsServerCredentials(
      absl::GetFlag(FLAGS_tls_dir), "identity");
  if (!creds.ok()) return creds.status();
  AllowingIdentity service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), *creds, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError("cannot listen");
  }
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  return absl::OkStatus();
}

// --- RPC runs ---

struct Client {
  std::vector<std::unique_ptr<v1::CoursesService::Stub>> stubs;
  std::atomic<uint64_t> next{0};
  absl::Duration rpc_timeout;
  std::vector<std::string> course_ids;  // [0] = race course
  int64_t persons = 0;
  uint64_t person_offset = 0;
  std::atomic<int64_t> booked{0};
  std::atomic<int64_t> full{0};
  std::atomic<int64_t> results{0};
};

void Prepare(const Client& client, grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + client.rpc_timeout));
  context->AddMetadata("x-lotse-actor", "bench");
  context->AddMetadata("x-lotse-purpose", "benchmark");
}

absl::StatusOr<std::shared_ptr<Client>> Connect() {
  const std::string tls_dir = absl::GetFlag(FLAGS_tls_dir);
  if (tls_dir.empty())
    return absl::InvalidArgumentError("--tls_dir is required");
  auto credentials = lotse::bench::MakeMutualTlsChannelCredentials(
      tls_dir, absl::GetFlag(FLAGS_client));
  if (!credentials.ok()) return credentials.status();
  auto client = std::make_shared<Client>();
  client->rpc_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_rpc_timeout_ms));
  client->persons = absl::GetFlag(FLAGS_persons);
  if (!absl::GetFlag(FLAGS_ids).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_ids));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) client->course_ids.push_back(line);
    }
    if (client->course_ids.size() < 2) {
      return absl::InvalidArgumentError("--ids lists no courses");
    }
  }
  const std::string target = absl::GetFlag(FLAGS_target);
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_channels)); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("lotse.bench.channel_index", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = v1::CoursesService::NewStub(
        grpc::CreateCustomChannel(target, *credentials, args));
    // Probe: connects before the clock starts; fails clearly when the
    // agency is unknown to the service.
    grpc::ClientContext context;
    Prepare(*client, &context);
    v1::ListCoursesRequest request;
    request.set_page_size(1);
    v1::ListCoursesResponse response;
    grpc::Status status = stub->ListCourses(&context, request, &response);
    if (!status.ok()) {
      return absl::UnavailableError(
          absl::StrCat("probe ListCourses failed: ",
                       lotse::bench::StatusCodeName(status.error_code()), ": ",
                       status.error_message()));
    }
    client->stubs.push_back(std::move(stub));
  }
  return client;
}

// Uncontended: call n books person n into course 1 + n % (courses - 1).
// Contended: call n books person (offset + n) into the race course.
StartCall BookCalls(std::shared_ptr<Client> client, bool race) {
  return [client, race](CallDone done) {
    struct Call {
      grpc::ClientContext context;
      v1::CreateBookingRequest request;
      v1::Booking response;
    };
    const uint64_t n = client->next.fetch_add(1);
    auto* call = new Call;
    Prepare(*client, &call->context);
    const std::string& course =
        race ? client->course_ids[0]
             : client->course_ids[1 + n % (client->course_ids.size() - 1)];
    call->request.set_parent(absl::StrCat("courses/", course));
    call->request.set_request_id(
        absl::StrCat(race ? "race-" : "book-", client->person_offset, "-", n));
    call->request.mutable_booking()->set_person(PersonName(
        (client->person_offset + n) % static_cast<uint64_t>(client->persons)));
    v1::CoursesService::Stub& stub = *client->stubs[n % client->stubs.size()];
    stub.async()->CreateBooking(
        &call->context, &call->request, &call->response,
        [client, call, done](grpc::Status status) {
          delete call;
          if (status.ok()) {
            client->booked.fetch_add(1);
          } else if (status.error_code() ==
                         grpc::StatusCode::FAILED_PRECONDITION &&
                     ReasonOf(FromGrpcStatus(status)).value_or("") ==
                         "COURSE_FULL") {
            // The expected answer of a lost race: an answered call.
            client->full.fetch_add(1);
            status = grpc::Status::OK;
          }
          done(status);
        });
  };
}

// --- course result -> case event ---

// Runs fn(i) for i in [0, n) on `threads` threads; the first failure, if
// any.
absl::Status ParallelFor(int n, int threads,
                         const std::function<absl::Status(int)>& fn) {
  std::atomic<int> next{0};
  absl::Mutex mu;
  absl::Status first;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
        absl::Status s = fn(i);
        if (!s.ok()) {
          absl::MutexLock lock(&mu);
          if (first.ok()) first = s;
        }
      }
    });
  }
  for (std::thread& t : pool) t.join();
  return first;
}

std::unique_ptr<v1::CoursesService::Stub> CoursesStubAs(
    const std::string& agency) {
  auto creds = lotse::bench::MakeMutualTlsChannelCredentials(
      absl::GetFlag(FLAGS_tls_dir), agency);
  if (!creds.ok()) return nullptr;
  return v1::CoursesService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_target), *creds));
}

absl::Status CourseEvents() {
  absl::StatusOr<std::shared_ptr<Client>> client = Connect();
  if (!client.ok()) return client.status();
  const Client& c = **client;
  std::unique_ptr<v1::CoursesService::Stub> provider =
      CoursesStubAs("vhs-koeln");
  if (provider == nullptr) return absl::InternalError("no vhs-koeln creds");
  const int n = absl::GetFlag(FLAGS_events);
  const int watchers = absl::GetFlag(FLAGS_watchers);
  // 20 bookings per course, well within the synthetic capacity of 30.
  const int n_courses =
      std::min<int>(static_cast<int>(c.course_ids.size()) - 1, (n + 19) / 20);
  if (n_courses < 1 || n_courses * 30 < n) {
    return absl::InvalidArgumentError("--ids lists too few courses");
  }
  auto course_of = [&](int i) {
    return absl::StrCat("courses/", c.course_ids[1 + i % n_courses]);
  };
  auto grpc_error = [](const char* what, const grpc::Status& s) {
    return absl::InternalError(
        absl::StrCat(what, ": ", lotse::bench::StatusCodeName(s.error_code()),
                     ": ", s.error_message()));
  };
  // The watchers, as the cases' owner, on four connections.
  auto cases_creds = lotse::bench::MakeMutualTlsChannelCredentials(
      absl::GetFlag(FLAGS_tls_dir), "kim-koeln");
  if (!cases_creds.ok()) return cases_creds.status();
  std::vector<std::unique_ptr<lotse::cases::v1::CasesService::Stub>> stubs;
  for (int i = 0; i < 4; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("lotse.bench.watch_channel", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stubs.push_back(
        lotse::cases::v1::CasesService::NewStub(grpc::CreateCustomChannel(
            absl::GetFlag(FLAGS_cases_target), *cases_creds, args)));
  }
  auto prepare_watch = [](grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(1800));
    context->AddMetadata("x-lotse-actor", "bench");
    context->AddMetadata("x-lotse-purpose", "case-management");
  };
  // The case index of an activity event of `kind` on case "bc<i>", or -1.
  auto case_of = [n](const lotse::cases::v1::WatchCaseEventsResponse& r,
                     lotse::cases::v1::ActivityKind kind) {
    int i = -1;
    if (!r.has_event() || !r.event().has_activity_recorded() ||
        r.event().activity_recorded().activity().kind() != kind ||
        !absl::SimpleAtoi(absl::StripPrefix(r.event().case_name(), "cases/bc"),
                          &i) ||
        i < 0 || i >= n) {
      return -1;
    }
    return i;
  };

  // The set-up's events (booked, confirmed, started: three per booking)
  // queue in courses' outbox; the results must not wait behind them, so
  // one stream watches until every case has its COURSE_STARTED activity.
  grpc::ClientContext setup_context;
  prepare_watch(&setup_context);
  std::vector<char> started(n, 0);
  std::atomic<int> started_count{0};
  lotse::cases::v1::WatchCaseEventsRequest setup_request;
  setup_request.set_start(lotse::cases::v1::WATCH_START_NOW);
  auto setup_reader = stubs[0]->WatchCaseEvents(&setup_context, setup_request);
  std::thread setup_watcher([&] {
    lotse::cases::v1::WatchCaseEventsResponse r;
    while (started_count.load() < n && setup_reader->Read(&r)) {
      const int i = case_of(r, lotse::cases::v1::ACTIVITY_KIND_COURSE_STARTED);
      if (i >= 0 && !started[i]) {
        started[i] = 1;
        started_count.fetch_add(1);
      }
    }
  });
  absl::SleepFor(absl::Seconds(1));

  const absl::Time setup_start = absl::Now();
  std::vector<v1::Booking> bookings(n);
  absl::Status s = ParallelFor(n, 8, [&](int i) -> absl::Status {
    grpc::ClientContext context;
    Prepare(c, &context);
    v1::CreateBookingRequest request;
    request.set_parent(course_of(i));
    request.set_request_id(absl::StrCat("events-book-", i));
    request.mutable_booking()->set_person(PersonName(i));
    grpc::Status st = c.stubs[i % c.stubs.size()]->CreateBooking(
        &context, request, &bookings[i]);
    if (!st.ok()) return grpc_error("CreateBooking", st);
    if (bookings[i].state() != v1::BOOKING_STATE_HELD) return absl::OkStatus();
    grpc::ClientContext confirm_context;
    Prepare(c, &confirm_context);
    v1::ConfirmBookingRequest confirm;
    confirm.set_name(bookings[i].name());
    confirm.set_etag(bookings[i].etag());
    st = provider->ConfirmBooking(&confirm_context, confirm, &bookings[i]);
    return st.ok() ? absl::OkStatus() : grpc_error("ConfirmBooking", st);
  });
  if (!s.ok()) return s;
  s = ParallelFor(n_courses, 4, [&](int k) -> absl::Status {
    grpc::ClientContext context;
    Prepare(c, &context);
    v1::GetCourseRequest get;
    get.set_name(course_of(k));
    v1::Course course;
    grpc::Status st = provider->GetCourse(&context, get, &course);
    if (!st.ok()) return grpc_error("GetCourse", st);
    grpc::ClientContext start_context;
    Prepare(c, &start_context);
    v1::StartCourseRequest start;
    start.set_name(course.name());
    start.set_etag(course.etag());
    st = provider->StartCourse(&start_context, start, &course);
    return st.ok() ? absl::OkStatus() : grpc_error("StartCourse", st);
  });
  if (!s.ok()) return s;
  const absl::Duration setup = absl::Now() - setup_start;
  const absl::Time drain_give_up = absl::Now() + absl::Seconds(900);
  while (started_count.load() < n && absl::Now() < drain_give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  // From the end of the set-up to the last COURSE_STARTED case event: how
  // fast the set-up's backlog went from courses' outbox to the watchers.
  const absl::Duration drained = absl::Now() - setup_start - setup;
  setup_context.TryCancel();
  setup_watcher.join();
  setup_reader->Finish();
  if (started_count.load() < n) {
    return absl::DeadlineExceededError(
        "the set-up's course events did not all reach the cases");
  }

  // receipt[w * n + i]: when watcher w saw booking i's result (unix us).
  std::vector<std::atomic<int64_t>> receipt(static_cast<size_t>(watchers) * n);
  std::vector<int64_t> sent(n, 0), returned(n, 0);
  std::atomic<int64_t> received{0};
  std::atomic<int> ready{0};
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts(watchers);
  std::vector<std::thread> threads;
  for (int w = 0; w < watchers; ++w) {
    contexts[w] = std::make_unique<grpc::ClientContext>();
    prepare_watch(contexts[w].get());
    threads.emplace_back([&, w] {
      lotse::cases::v1::WatchCaseEventsRequest request;
      request.set_start(lotse::cases::v1::WATCH_START_NOW);
      auto reader =
          stubs[w % stubs.size()]->WatchCaseEvents(contexts[w].get(), request);
      ready.fetch_add(1);
      lotse::cases::v1::WatchCaseEventsResponse r;
      int mine = 0;
      while (mine < n && reader->Read(&r)) {
        const int64_t now = absl::ToUnixMicros(absl::Now());
        const int i = case_of(r, lotse::cases::v1::ACTIVITY_KIND_COURSE_RESULT);
        if (i < 0) continue;
        int64_t expected = 0;
        if (receipt[static_cast<size_t>(w) * n + i].compare_exchange_strong(
                expected, now)) {
          ++mine;
          received.fetch_add(1);
        }
      }
      contexts[w]->TryCancel();
      reader->Finish();
    });
  }
  while (ready.load() < watchers) absl::SleepFor(absl::Milliseconds(10));
  // Let the service resolve every stream's start before writing.
  absl::SleepFor(absl::Seconds(2));

  const absl::Duration gap = absl::Seconds(1.0 / absl::GetFlag(FLAGS_rate));
  absl::Time next = absl::Now();
  int errors = 0;
  std::string first_error;
  const int64_t today = DayOf(absl::Now());
  for (int i = 0; i < n; ++i) {
    absl::SleepFor(next - absl::Now());
    next += gap;
    grpc::ClientContext context;
    Prepare(c, &context);
    v1::RecordCourseResultRequest request;
    request.set_parent(bookings[i].name());
    request.set_request_id(absl::StrCat("events-result-", i));
    v1::CourseResult* result = request.mutable_result();
    result->set_exam(v1::EXAM_KIND_DTZ);
    result->set_passed(true);
    result->set_achieved_level(type::v1::CEFR_LEVEL_B1);
    *result->mutable_exam_date() = DateFromDay(today);
    v1::CourseResult response;
    sent[i] = absl::ToUnixMicros(absl::Now());
    grpc::Status st =
        provider->RecordCourseResult(&context, request, &response);
    returned[i] = absl::ToUnixMicros(absl::Now());
    if (!st.ok()) {
      if (errors++ == 0)
        first_error =
            std::string(grpc_error("RecordCourseResult", st).message());
    }
  }
  const int64_t expected = int64_t{watchers} * (n - errors);
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (received.load() < expected && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  for (auto& context : contexts) context->TryCancel();
  for (std::thread& t : threads) t.join();

  LatencyHistogram from_start, from_return;
  for (int w = 0; w < watchers; ++w) {
    for (int i = 0; i < n; ++i) {
      const int64_t at = receipt[static_cast<size_t>(w) * n + i].load();
      if (at == 0 || sent[i] == 0) continue;
      from_start.Record(absl::Microseconds(at - sent[i]));
      from_return.Record(absl::Microseconds(at - returned[i]));
    }
  }
  if (!first_error.empty())
    std::printf("first error: %s\n", first_error.c_str());
  std::printf(
      "{\"mode\":\"course_events\",\"watchers\":%d,\"results\":%d,"
      "\"rate\":%.0f,\"setup_s\":%.1f,\"setup_events_drained_s\":%.1f,"
      "\"deliveries\":%lld,"
      "\"expected\":%lld,\"errors\":%d,\"p1_ms\":%.2f,\"p50_ms\":%.2f,\"p90_"
      "ms\":%.2f,"
      "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"from_return_p50_ms\":%.2f,"
      "\"from_return_p99_ms\":%.2f}\n",
      watchers, n, absl::GetFlag(FLAGS_rate), absl::ToDoubleSeconds(setup),
      absl::ToDoubleSeconds(drained), static_cast<long long>(received.load()),
      static_cast<long long>(int64_t{watchers} * n), errors,
      absl::ToDoubleMilliseconds(from_start.Quantile(0.01)),
      absl::ToDoubleMilliseconds(from_start.Quantile(0.5)),
      absl::ToDoubleMilliseconds(from_start.Quantile(0.9)),
      absl::ToDoubleMilliseconds(from_start.Quantile(0.99)),
      absl::ToDoubleMilliseconds(from_start.Max()),
      absl::ToDoubleMilliseconds(from_return.Quantile(0.5)),
      absl::ToDoubleMilliseconds(from_return.Quantile(0.99)));
  std::fflush(stdout);
  if (errors > 0 || received.load() < int64_t{watchers} * n) {
    return absl::InternalError("watchers missed case events or writes failed");
  }
  return absl::OkStatus();
}

StartCall SearchCalls(std::shared_ptr<Client> client) {
  return [client](CallDone done) {
    struct Call {
      grpc::ClientContext context;
      v1::SearchCoursesRequest request;
      v1::SearchCoursesResponse response;
    };
    const uint64_t n = client->next.fetch_add(1);
    std::mt19937_64 rng(n * 0x9e3779b97f4a7c15ULL + 1);
    auto* call = new Call;
    Prepare(*client, &call->context);
    call->request.add_kinds(static_cast<v1::CourseKind>(1 + rng() % 9));
    auto* near = call->request.mutable_near();
    near->set_postal_code(DemoPostalCodes()[rng() % DemoPostalCodes().size()]);
    near->set_max_distance_km(absl::GetFlag(FLAGS_max_distance_km));
    call->request.set_page_size(absl::GetFlag(FLAGS_page_size));
    v1::CoursesService::Stub& stub = *client->stubs[n % client->stubs.size()];
    stub.async()->SearchCourses(
        &call->context, &call->request, &call->response,
        [client, call, done](grpc::Status status) {
          if (status.ok()) {
            client->results.fetch_add(call->response.results_size());
          }
          delete call;
          done(status);
        });
  };
}

absl::Status RunRpcs(const std::string& mode) {
  absl::StatusOr<std::shared_ptr<Client>> client = Connect();
  if (!client.ok()) return client.status();
  // Persons of the race start half-way, away from the booking run's.
  if (mode == "race") (*client)->person_offset = (*client)->persons / 2;
  LoadOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  options.warmup = absl::Seconds(absl::GetFlag(FLAGS_warmup_s));
  StartCall start = mode == "search" ? SearchCalls(*client)
                                     : BookCalls(*client, mode == "race");
  absl::StatusOr<LoadResult> result =
      lotse::bench::RunClosedLoop(options, start);
  if (!result.ok()) return result.status();
  std::printf("%s %s\n", mode.c_str(),
              lotse::bench::FormatHuman(*result).c_str());
  if (!result->first_error.empty()) {
    std::printf("first error: %s\n", result->first_error.c_str());
  }
  std::string extra;
  if (mode == "race") {
    // Read the course back: its seat count must equal the seats sold.
    grpc::ClientContext context;
    Prepare(**client, &context);
    v1::GetCourseRequest request;
    request.set_name(absl::StrCat("courses/", (*client)->course_ids[0]));
    v1::Course course;
    grpc::Status status =
        (*client)->stubs[0]->GetCourse(&context, request, &course);
    if (!status.ok()) return FromGrpcStatus(status);
    const int64_t overbooked =
        std::max<int64_t>(0, (*client)->booked.load() - course.capacity());
    extra = absl::StrFormat(
        ",\"clients\":%d,\"bookings\":%d,\"course_full\":%d,\"capacity\":%d,"
        "\"booked_seats\":%d,\"overbooked\":%d",
        options.concurrency, (*client)->booked.load(), (*client)->full.load(),
        course.capacity(), course.booked_seats(), overbooked);
    if (course.booked_seats() != course.capacity() ||
        (*client)->booked.load() != course.capacity()) {
      std::printf("{\"mode\":\"race\"%s,\"error\":\"seat count\"}\n",
                  extra.c_str());
      return absl::InternalError("the race did not sell exactly the seats");
    }
  } else if (mode == "book") {
    extra = absl::StrFormat(",\"bookings\":%d,\"course_full\":%d",
                            (*client)->booked.load(), (*client)->full.load());
  } else {
    extra = absl::StrFormat(",\"results\":%d", (*client)->results.load());
  }
  std::printf("{\"mode\":\"%s\",%s%s,\"tls\":true}\n", mode.c_str(),
              lotse::bench::FormatJsonFields(*result).c_str(), extra.c_str());
  std::fflush(stdout);
  if (result->errors > 0 || result->calls == 0) {
    return absl::InternalError("run saw errors or no calls");
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace lotse::courses

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "courses service benchmarks: "
      "--mode=load|fake_identity|book|race|search|course_events");
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  absl::Status status;
  if (mode == "load") {
    status = lotse::courses::Load();
  } else if (mode == "fake_identity") {
    status = lotse::courses::ServeFakeIdentity();
  } else if (mode == "book" || mode == "race" || mode == "search") {
    status = lotse::courses::RunRpcs(mode);
  } else if (mode == "course_events") {
    status = lotse::courses::CourseEvents();
  } else {
    status = absl::InvalidArgumentError(
        "--mode must be load, fake_identity, book, race, search or "
        "course_events");
  }
  if (!status.ok()) {
    std::fprintf(stderr, "lotse_courses_bench: %s\n",
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}
