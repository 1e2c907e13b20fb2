// lotse_soak: a long mixed load across the four services, to see whether
// latency and memory stay flat. Not a throughput benchmark: it first
// measures what the four processes sustain together with a short closed
// loop (or takes --rate), then sends that fraction (--load_fraction, 0.8)
// of it at a steady pace for --duration_s, and every --interval_s prints
// each service's p99 latency and call count and the resident memory (RSS,
// /proc/<pid>/status) of each process named in --pids. At the end it
// prints the table again in Markdown and, per service, the last
// interval's p99 and RSS over the first's.
//
// The mix, round-robin (each call as the agency that may make it):
//   identity   GetPerson, CreatePerson
//   cases      GetCase, CreateStep, OpenCase (a replay: identity's
//              CheckAccess runs each time)
//   courses    GetCourse, CreateCourse
//   placement  GetOffer, CreateOffer
// Creates make new rows all the time, so the databases grow as in use.
//
// Exit status: 0 when every call succeeded, 1 otherwise or when set-up
// failed.
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/load.h"
#include "bench/internal/tls.h"
#include "grpcpp/grpcpp.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"

ABSL_FLAG(std::string, identity, "127.0.0.1:50051", "identity address");
ABSL_FLAG(std::string, cases, "127.0.0.1:50052", "cases address");
ABSL_FLAG(std::string, courses, "127.0.0.1:50053", "courses address");
ABSL_FLAG(std::string, placement, "127.0.0.1:50054", "placement address");
ABSL_FLAG(std::string, tls_dir, "", "tools/dev-pki.sh directory (required)");
ABSL_FLAG(double, rate, 0,
          "calls per second across all services; 0 measures capacity first "
          "and uses --load_fraction of it");
ABSL_FLAG(double, load_fraction, 0.8, "fraction of the measured capacity");
ABSL_FLAG(double, capacity_s, 20, "length of the capacity measurement");
ABSL_FLAG(int, capacity_threads, 16, "calls in flight while measuring");
ABSL_FLAG(int, threads, 64,
          "threads sending the paced load (each waits for its call, so this "
          "bounds the calls in flight)");
ABSL_FLAG(double, duration_s, 600, "length of the paced load");
ABSL_FLAG(double, interval_s, 60, "sampling interval");
ABSL_FLAG(std::string, pids, "",
          "processes whose RSS is sampled: name=pid,name=pid,...");

namespace lotse::bench {
namespace {

constexpr int kServices = 4;
const char* const kServiceNames[kServices] = {"identity", "cases", "courses",
                                              "placement"};

void Prepare(grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  context->AddMetadata("x-lotse-actor", "soak-1");
  context->AddMetadata("x-lotse-purpose", "soak");
}

// The day `days` from now (UTC).
type::v1::Date DateInDays(int days) {
  const absl::CivilDay day = absl::ToCivilDay(
      absl::Now() + absl::Hours(24) * days, absl::UTCTimeZone());
  type::v1::Date date;
  date.set_year(static_cast<int>(day.year()));
  date.set_month(day.month());
  date.set_day(day.day());
  return date;
}

// A valid integration course and job offer; creates vary only the title.
courses::v1::Course CourseTemplate() {
  courses::v1::Course c;
  c.set_title("Soak course");
  c.set_kind(courses::v1::COURSE_KIND_INTEGRATION_GENERAL);
  c.set_target_level(type::v1::CEFR_LEVEL_B1);
  c.mutable_place()->set_postal_code("50667");
  c.mutable_place()->set_locality("Köln");
  c.mutable_place()->set_municipality_code("05315000");
  c.mutable_place()->set_street("Cäcilienstraße");
  *c.mutable_schedule()->mutable_start_date() = DateInDays(14);
  c.mutable_schedule()->add_weekdays(type::v1::DAY_OF_WEEK_MONDAY);
  c.mutable_schedule()->set_day_period(type::v1::DAY_PERIOD_MORNING);
  c.mutable_schedule()->set_units_per_week(20);
  c.mutable_schedule()->set_total_units(700);
  c.set_capacity(12);
  return c;
}

placement::v1::Offer OfferTemplate() {
  placement::v1::Offer offer;
  offer.set_kind(placement::v1::OFFER_KIND_JOB);
  offer.set_title("Soak offer");
  offer.set_description("Kommissionieren, Waren annehmen und einlagern.");
  offer.set_occupation_code("51312");
  offer.set_employer_name("Rheinlager Logistik GmbH");
  offer.mutable_place()->set_street("Industriestraße");
  offer.mutable_place()->set_house_number("12");
  offer.mutable_place()->set_postal_code("50735");
  offer.mutable_place()->set_locality("Köln");
  offer.mutable_place()->set_municipality_code("05315000");
  offer.mutable_hours()->set_min_hours_per_week(30);
  offer.mutable_hours()->set_max_hours_per_week(40);
  offer.mutable_hours()->add_day_periods(type::v1::DAY_PERIOD_MORNING);
  *offer.mutable_start_date() = DateInDays(30);
  offer.set_required_language_level(type::v1::CEFR_LEVEL_A2);
  offer.set_positions_total(1);
  return offer;
}

// The stubs and the resources the reads and replays use.
struct Clients {
  std::unique_ptr<identity::v1::IdentityService::Stub> identity;
  std::unique_ptr<cases::v1::CasesService::Stub> cases;
  std::unique_ptr<courses::v1::CoursesService::Stub> courses;
  std::unique_ptr<placement::v1::PlacementService::Stub> placement;
  std::string person;
  cases::v1::OpenCaseRequest open;
  std::string case_name;
  std::string course;
  std::string offer;
};

template <typename Service>
absl::StatusOr<std::unique_ptr<typename Service::Stub>> StubFor(
    const std::string& target, const std::string& client) {
  auto creds =
      MakeMutualTlsChannelCredentials(absl::GetFlag(FLAGS_tls_dir), client);
  if (!creds.ok()) return creds.status();
  return Service::NewStub(grpc::CreateChannel(target, *creds));
}

// Retries `call` for a minute: the services learn the demo agencies from
// identity's events some time after the seed registered them.
absl::Status UntilOk(const std::function<grpc::Status()>& call) {
  const absl::Time end = absl::Now() + absl::Minutes(1);
  grpc::Status last;
  while (absl::Now() < end) {
    last = call();
    if (last.ok()) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(500));
  }
  return absl::UnavailableError(absl::StrCat(
      static_cast<int>(last.error_code()), " ", last.error_message()));
}

absl::StatusOr<std::unique_ptr<Clients>> SetUp() {
  auto c = std::make_unique<Clients>();
  auto identity = StubFor<identity::v1::IdentityService>(
      absl::GetFlag(FLAGS_identity), "kim-koeln");
  auto cases =
      StubFor<cases::v1::CasesService>(absl::GetFlag(FLAGS_cases), "kim-koeln");
  auto courses = StubFor<courses::v1::CoursesService>(
      absl::GetFlag(FLAGS_courses), "vhs-koeln");
  auto placement = StubFor<placement::v1::PlacementService>(
      absl::GetFlag(FLAGS_placement), "aa-koeln");
  for (const absl::Status& s : {identity.status(), cases.status(),
                                courses.status(), placement.status()}) {
    if (!s.ok()) return s;
  }
  c->identity = *std::move(identity);
  c->cases = *std::move(cases);
  c->courses = *std::move(courses);
  c->placement = *std::move(placement);

  identity::v1::CreatePersonRequest create;
  create.set_request_id("soak-person");
  create.set_confirm_new_person(true);
  identity::v1::PersonName* name = create.mutable_person()->add_names();
  name->set_given_names("Soak");
  name->set_family_names("Person");
  name->set_script("Latn");
  name->set_kind(identity::v1::NAME_KIND_CURRENT);
  create.mutable_person()->mutable_birth_date()->set_year(1990);
  identity::v1::Person person;
  if (absl::Status s = UntilOk([&] {
        grpc::ClientContext context;
        Prepare(&context);
        return c->identity->CreatePerson(&context, create, &person);
      });
      !s.ok()) {
    return s;
  }
  c->person = person.name();

  c->open.set_request_id("soak-case");
  c->open.mutable_case_record()->set_person(c->person);
  c->open.mutable_case_record()->set_responsible_actor("cm-1");
  cases::v1::Case opened;
  if (absl::Status s = UntilOk([&] {
        grpc::ClientContext context;
        Prepare(&context);
        return c->cases->OpenCase(&context, c->open, &opened);
      });
      !s.ok()) {
    return s;
  }
  c->case_name = opened.name();

  courses::v1::CreateCourseRequest course;
  course.set_request_id("soak-course");
  *course.mutable_course() = CourseTemplate();
  courses::v1::Course made;
  if (absl::Status s = UntilOk([&] {
        grpc::ClientContext context;
        Prepare(&context);
        return c->courses->CreateCourse(&context, course, &made);
      });
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("CreateCourse: ", s.message()));
  }
  c->course = made.name();
  return c;
}

// One interval's figures of one service.
struct Cell {
  std::unique_ptr<LatencyHistogram> latency =
      std::make_unique<LatencyHistogram>();
  std::atomic<int64_t> errors{0};
};

class Soak {
 public:
  Soak(Clients& clients, const courses::v1::Course& course_template,
       const placement::v1::Offer& offer_template)
      : c_(clients),
        course_template_(course_template),
        offer_template_(offer_template) {}

  // Makes call number `n` of the mix; returns the service index.
  int Call(int64_t n, grpc::Status* status) {
    grpc::ClientContext context;
    Prepare(&context);
    const std::string id = absl::StrCat("soak-", run_, "-", n);
    switch (n % 9) {
      case 0: {
        identity::v1::GetPersonRequest r;
        r.set_name(c_.person);
        identity::v1::Person out;
        *status = c_.identity->GetPerson(&context, r, &out);
        return 0;
      }
      case 1: {
        identity::v1::CreatePersonRequest r;
        r.set_request_id(id);
        r.set_confirm_new_person(true);
        identity::v1::PersonName* name = r.mutable_person()->add_names();
        name->set_given_names(absl::StrCat("Soak", n % 1000));
        name->set_family_names(absl::StrCat("Load", n));
        name->set_script("Latn");
        name->set_kind(identity::v1::NAME_KIND_CURRENT);
        r.mutable_person()->mutable_birth_date()->set_year(1950 + n % 50);
        identity::v1::Person out;
        *status = c_.identity->CreatePerson(&context, r, &out);
        return 0;
      }
      case 2: {
        cases::v1::GetCaseRequest r;
        r.set_name(c_.case_name);
        cases::v1::Case out;
        *status = c_.cases->GetCase(&context, r, &out);
        return 1;
      }
      case 3: {
        cases::v1::CreateStepRequest r;
        r.set_parent(c_.case_name);
        r.set_request_id(id);
        r.mutable_step()->set_kind(cases::v1::STEP_KIND_INTEGRATION_COURSE);
        r.mutable_step()->set_receiving_agency("agencies/vhs-koeln");
        r.mutable_step()->set_description("soak");
        cases::v1::Step out;
        *status = c_.cases->CreateStep(&context, r, &out);
        return 1;
      }
      case 4: {
        cases::v1::Case out;
        *status = c_.cases->OpenCase(&context, c_.open, &out);
        return 1;
      }
      case 5: {
        courses::v1::GetCourseRequest r;
        r.set_name(c_.course);
        courses::v1::Course out;
        *status = c_.courses->GetCourse(&context, r, &out);
        return 2;
      }
      case 6: {
        courses::v1::CreateCourseRequest r;
        r.set_request_id(id);
        *r.mutable_course() = course_template_;
        r.mutable_course()->set_title(absl::StrCat("Soak course ", n));
        courses::v1::Course out;
        *status = c_.courses->CreateCourse(&context, r, &out);
        return 2;
      }
      case 7: {
        placement::v1::GetOfferRequest r;
        r.set_name(c_.offer);
        placement::v1::Offer out;
        *status = c_.placement->GetOffer(&context, r, &out);
        return 3;
      }
      default: {
        placement::v1::CreateOfferRequest r;
        r.set_request_id(id);
        *r.mutable_offer() = offer_template_;
        r.mutable_offer()->set_title(absl::StrCat("Soak offer ", n));
        placement::v1::Offer out;
        *status = c_.placement->CreateOffer(&context, r, &out);
        return 3;
      }
    }
  }

  // Closed loop with `threads` calls in flight for `length`; calls/s.
  double Capacity(int threads, absl::Duration length) {
    ++run_;
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::atomic<int64_t> failed{0};
    const absl::Time warm = absl::Now() + absl::Seconds(2);
    const absl::Time end = warm + length;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        while (absl::Now() < end) {
          grpc::Status s;
          Call(next.fetch_add(1), &s);
          if (!s.ok()) failed.fetch_add(1);
          const absl::Time now = absl::Now();
          if (s.ok() && now > warm && now <= end) done.fetch_add(1);
        }
      });
    }
    for (std::thread& w : workers) w.join();
    if (failed.load() > 0) {
      absl::PrintF("capacity run: %d calls failed\n", failed.load());
    }
    return static_cast<double>(done.load()) / absl::ToDoubleSeconds(length);
  }

  // `rate` calls/s from `threads` threads for `length`, figures per
  // `interval`; `sample` runs at every interval's end.
  void Paced(double rate, int threads, absl::Duration length,
             absl::Duration interval, const std::function<void(int)>& sample) {
    ++run_;
    const int intervals =
        static_cast<int>(absl::Ceil(length, interval) / interval);
    cells_.clear();
    cells_.resize(intervals);
    for (auto& row : cells_) row = std::vector<Cell>(kServices);
    std::atomic<int64_t> next{0};
    const absl::Time start = absl::Now();
    const absl::Time end = start + length;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        while (true) {
          const int64_t n = next.fetch_add(1);
          const absl::Time due = start + absl::Seconds(n / rate);
          if (due >= end) return;
          absl::SleepFor(due - absl::Now());
          const absl::Time began = absl::Now();
          grpc::Status s;
          const int service = Call(n, &s);
          const int i = std::min<int>(
              intervals - 1, static_cast<int>((due - start) / interval));
          Cell& cell = cells_[i][service];
          if (s.ok()) {
            cell.latency->Record(absl::Now() - began);
          } else {
            if (cell.errors.fetch_add(1) == 0) {
              absl::PrintF("%s: %d %s\n", kServiceNames[service],
                           static_cast<int>(s.error_code()), s.error_message());
            }
          }
        }
      });
    }
    for (int i = 0; i < intervals; ++i) {
      absl::SleepFor(start + interval * (i + 1) - absl::Now());
      sample(i);
    }
    for (std::thread& w : workers) w.join();
  }

  const std::vector<std::vector<Cell>>& cells() const { return cells_; }

 private:
  Clients& c_;
  const courses::v1::Course course_template_;
  const placement::v1::Offer offer_template_;
  int run_ = static_cast<int>(absl::ToUnixSeconds(absl::Now()));
  std::vector<std::vector<Cell>> cells_;
};

// VmRSS of `pid` in MiB, or -1.
double RssMib(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    double kib = 0;
    if (parts.size() >= 2 && absl::SimpleAtod(parts[1], &kib)) {
      return kib / 1024;
    }
  }
  return -1;
}

int Main() {
  if (absl::GetFlag(FLAGS_tls_dir).empty()) {
    absl::FPrintF(stderr, "--tls_dir is required\n");
    return 1;
  }
  std::vector<std::pair<std::string, int>> pids;
  for (absl::string_view item :
       absl::StrSplit(absl::GetFlag(FLAGS_pids), ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, '=');
    int pid = 0;
    if (!absl::SimpleAtoi(kv.second, &pid)) {
      absl::FPrintF(stderr, "bad --pids item %s\n", item);
      return 1;
    }
    pids.emplace_back(kv.first, pid);
  }
  absl::StatusOr<std::unique_ptr<Clients>> clients = SetUp();
  if (!clients.ok()) {
    absl::FPrintF(stderr, "set-up failed: %s\n", clients.status().ToString());
    return 1;
  }
  const courses::v1::Course course = CourseTemplate();
  const placement::v1::Offer offer = OfferTemplate();
  {
    placement::v1::CreateOfferRequest r;
    r.set_request_id("soak-offer");
    *r.mutable_offer() = offer;
    placement::v1::Offer made;
    absl::Status s = UntilOk([&] {
      grpc::ClientContext context;
      Prepare(&context);
      return (*clients)->placement->CreateOffer(&context, r, &made);
    });
    if (!s.ok()) {
      absl::FPrintF(stderr, "set-up failed: CreateOffer: %s\n", s.ToString());
      return 1;
    }
    (*clients)->offer = made.name();
  }
  Soak soak(**clients, course, offer);

  double rate = absl::GetFlag(FLAGS_rate);
  if (rate <= 0) {
    const double capacity =
        soak.Capacity(absl::GetFlag(FLAGS_capacity_threads),
                      absl::Seconds(absl::GetFlag(FLAGS_capacity_s)));
    rate = capacity * absl::GetFlag(FLAGS_load_fraction);
    absl::PrintF(
        "capacity: %.1f calls/s (closed loop, %d in flight, %.0f s); "
        "soak rate %.1f calls/s\n",
        capacity, absl::GetFlag(FLAGS_capacity_threads),
        absl::GetFlag(FLAGS_capacity_s), rate);
  } else {
    absl::PrintF("soak rate %.1f calls/s (given)\n", rate);
  }
  if (rate <= 0) {
    absl::FPrintF(stderr, "no capacity measured\n");
    return 1;
  }

  const absl::Duration interval =
      absl::Seconds(absl::GetFlag(FLAGS_interval_s));
  std::vector<std::vector<double>> rss;  // [interval][pid]
  absl::Mutex mu;
  bool failed = false;
  soak.Paced(
      rate, absl::GetFlag(FLAGS_threads),
      absl::Seconds(absl::GetFlag(FLAGS_duration_s)), interval, [&](int i) {
        std::vector<double> row;
        for (const auto& [name, pid] : pids) row.push_back(RssMib(pid));
        std::string line = absl::StrFormat("interval %d:", i + 1);
        for (int s = 0; s < kServices; ++s) {
          const Cell& cell = soak.cells()[i][s];
          absl::StrAppendFormat(
              &line, " %s p99 %.1f ms (%d calls, %d errors);", kServiceNames[s],
              absl::ToDoubleMilliseconds(cell.latency->Quantile(0.99)),
              cell.latency->Count(), cell.errors.load());
        }
        for (size_t p = 0; p < pids.size(); ++p) {
          absl::StrAppendFormat(&line, " %s %.1f MiB;", pids[p].first, row[p]);
        }
        absl::PrintF("%s\n", line);
        std::fflush(stdout);
        absl::MutexLock lock(&mu);
        rss.push_back(std::move(row));
      });

  // The table, in Markdown.
  const auto& cells = soak.cells();
  std::string header = "| minute |";
  std::string rule = "|---|";
  for (const char* s : kServiceNames) {
    absl::StrAppend(&header, " ", s, " p99 ms (calls) |");
    rule += "---|";
  }
  for (const auto& [name, pid] : pids) {
    absl::StrAppend(&header, " ", name, " RSS MiB |");
    rule += "---|";
  }
  absl::PrintF("\n%s\n%s\n", header, rule);
  int64_t errors = 0;
  for (size_t i = 0; i < cells.size(); ++i) {
    std::string line = absl::StrFormat("| %d |", i + 1);
    for (int s = 0; s < kServices; ++s) {
      absl::StrAppendFormat(
          &line, " %.1f (%d) |",
          absl::ToDoubleMilliseconds(cells[i][s].latency->Quantile(0.99)),
          cells[i][s].latency->Count());
      errors += cells[i][s].errors.load();
    }
    for (size_t p = 0; p < pids.size(); ++p) {
      absl::StrAppendFormat(&line, " %.1f |",
                            i < rss.size() ? rss[i][p] : -1.0);
    }
    absl::PrintF("%s\n", line);
  }
  if (cells.size() >= 2) {
    std::string line = "\nlast / first interval:";
    for (int s = 0; s < kServices; ++s) {
      const double first =
          absl::ToDoubleMilliseconds(cells.front()[s].latency->Quantile(0.99));
      const double last =
          absl::ToDoubleMilliseconds(cells.back()[s].latency->Quantile(0.99));
      absl::StrAppendFormat(&line, " %s p99 %.2f;", kServiceNames[s],
                            first > 0 ? last / first : 0);
    }
    for (size_t p = 0; p < pids.size() && rss.size() >= 2; ++p) {
      absl::StrAppendFormat(
          &line, " %s RSS %.2f;", pids[p].first,
          rss.front()[p] > 0 ? rss.back()[p] / rss.front()[p] : 0);
    }
    absl::PrintF("%s\n", line);
  }
  absl::PrintF("errors: %d\n", errors);
  failed = errors > 0;
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace lotse::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "A long mixed load across the four Lotse services; see bench/soak.cc.");
  absl::ParseCommandLine(argc, argv);
  return lotse::bench::Main();
}
