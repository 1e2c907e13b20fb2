// Placement service benchmarks, run by
// bench/run_placement_bench.sh next to the echo baseline of the same run.
// A pure client of the public contracts: everything it loads goes through
// the identity and placement RPCs over mutual TLS, as the demo agencies,
// with many calls in flight; it never writes a service's tables.
//
//   --mode=load       through the RPCs, concurrently (--concurrency in
//                     flight, retrying transient failures with the same
//                     request_id, so a retry never creates twice):
//                       1. --candidates persons in identity (CreatePerson
//                          as aa-koeln, confirm_new_person);
//                       2. a candidate profile for each (placement
//                          CreateCandidateProfile as aa-koeln, which
//                          registered them);
//                       3. a residence status for each (identity
//                          RecordResidenceStatus as abh-koeln): 85 %
//                          PERMITTED, 10 % NEEDS_APPROVAL, 5 %
//                          NOT_PERMITTED, by index;
//                       4. --offers offers (placement CreateOffer as
//                          aa-koeln).
//                     Writes candidates.txt and offers.txt (one resource
//                     name a line, by index) into --ids and prints one JSON
//                     line per phase with its rate.
//   --mode=wait_facts polls MatchOffersForCandidate for a sample of
//                     candidates until placement shows each one's work
//                     permission (identity's ResidenceStatusChanged events
//                     have arrived); prints how long that took.
//   --mode=match_offers      MatchOffersForCandidate for a random
//                            PERMITTED candidate (page_size 20), i.e. one
//                            candidate against every open offer.
//   --mode=match_candidates  MatchCandidatesForOffer for a random offer
//                            (page_size 20), i.e. one offer against every
//                            active candidate.
//   --mode=transition placement transitions in a closed loop: each
//                     placement goes ProposePlacement -> MarkPlacementApplied
//                     -> MarkPlacementInterview -> MarkPlacementHired (every
//                     4th) or RejectPlacement, as aa-koeln (proposing agency
//                     and publisher), each step with the etag the previous
//                     one returned; every RPC counts as one call. Proposals
//                     and hires include placement's fresh work-permission
//                     check at identity.
//
// Output: one human line and one JSON line per run, with the fields of the
// echo load generator (bench/internal/load.h) plus the mode's own.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/load.h"
#include "bench/internal/tls.h"
#include "common/errors/status.h"
#include "grpcpp/grpcpp.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"

ABSL_FLAG(std::string, mode, "",
          "load, wait_facts, match_offers, match_candidates or transition");
ABSL_FLAG(std::string, target, "127.0.0.1:50054", "placement service");
ABSL_FLAG(std::string, identity_target, "127.0.0.1:50051",
          "identity service (load)");
ABSL_FLAG(std::string, tls_dir, "", "tools/dev-pki.sh directory");
ABSL_FLAG(int, concurrency, 32, "calls in flight");
ABSL_FLAG(int, channels, 2, "connections per service and agency");
ABSL_FLAG(double, duration_s, 10, "measurement window");
ABSL_FLAG(double, warmup_s, 1, "warm-up before the window");
ABSL_FLAG(int, rpc_timeout_ms, 30000, "deadline per call");
ABSL_FLAG(int64_t, candidates, 100000, "load: candidates (and persons)");
ABSL_FLAG(int64_t, offers, 100000, "load: offers");
ABSL_FLAG(std::string, ids, "", "directory of candidates.txt / offers.txt");
ABSL_FLAG(int, page_size, 20, "match: results per page");
ABSL_FLAG(bool, include_excluded, false, "match: also return EXCLUDED");
ABSL_FLAG(int64_t, first_placement, 0,
          "transition: index of the first new placement (a later run on "
          "the same databases starts past the earlier run's)");
ABSL_FLAG(int, sample, 200, "wait_facts: candidates sampled");
ABSL_FLAG(double, wait_s, 900, "wait_facts: give up after this long");
ABSL_FLAG(std::string, occupation_codes,
          "51312,51311,81302,81301,82102,82101,29302,29301,52122,54101,"
          "63302,62102,71402,25212,26212,34212",
          "KldB 2010 codes offers and profiles draw from (first ones "
          "more often)");

namespace lotse::placement {
namespace {

namespace pv1 = ::lotse::placement::v1;
namespace iv1 = ::lotse::identity::v1;
using ::lotse::bench::CallDone;
using ::lotse::bench::LoadOptions;
using ::lotse::bench::LoadResult;
using ::lotse::bench::StartCall;
using Done = std::function<void(const grpc::Status&)>;

// --- synthetic data ---------------------------------------------------------

struct Place {
  const char* postal_code;
  const char* locality;
  const char* municipality_code;
};

const std::vector<Place>& Places() {
  static const auto* const places = new std::vector<Place>{
      {"50667", "Köln", "05315000"},       {"50733", "Köln", "05315000"},
      {"50823", "Köln", "05315000"},       {"51063", "Köln", "05315000"},
      {"53111", "Bonn", "05314000"},       {"40213", "Düsseldorf", "05111000"},
      {"40477", "Düsseldorf", "05111000"}, {"45127", "Essen", "05113000"},
      {"44135", "Dortmund", "05913000"},   {"47051", "Duisburg", "05112000"},
      {"52062", "Aachen", "05334002"},     {"42103", "Wuppertal", "05124000"},
      {"51373", "Leverkusen", "05316000"}, {"44787", "Bochum", "05911000"}};
  return *places;
}

const std::vector<std::string>& Skills() {
  static const auto* const skills = new std::vector<std::string>{
      "Gabelstapler",  "Führerschein B",  "Führerschein CE",
      "Kasse",         "MS Office",       "SAP",
      "Schweißen",     "Pflegeassistenz", "Hygiene",
      "Kundenservice", "Kommissionieren", "Erste Hilfe"};
  return *skills;
}

const std::vector<std::string>& GivenNames() {
  static const auto* const names = new std::vector<std::string>{
      "Mohammed", "Ahmad",  "Fatima",  "Aylin",  "Oleksandr", "Olena",
      "Tesfay",   "Semhar", "Hüseyin", "Zeynep", "Hamid",     "Maryam",
      "Yusuf",    "Amina",  "Dmytro",  "Iryna",  "Abdullah",  "Nour"};
  return *names;
}

std::vector<std::string> OccupationCodes() {
  return absl::StrSplit(absl::GetFlag(FLAGS_occupation_codes), ',',
                        absl::SkipEmpty());
}

// Skewed choice in [0, n): low indices more often (a few occupations and
// places dominate, as in reality).
int Skewed(std::mt19937_64& rng, int n) {
  std::uniform_real_distribution<double> u(0, 1);
  const double x = u(rng);
  return std::min(n - 1, static_cast<int>(n * x * x));
}

type::v1::Date DateInDays(int days) {
  const absl::CivilDay day = absl::ToCivilDay(
      absl::Now() + absl::Hours(24) * days, absl::UTCTimeZone());
  type::v1::Date date;
  date.set_year(static_cast<int>(day.year()));
  date.set_month(day.month());
  date.set_day(day.day());
  return date;
}

// Work permission of synthetic person i: 85 % PERMITTED, 10 %
// NEEDS_APPROVAL, 5 % NOT_PERMITTED.
type::v1::WorkPermission PermissionOf(int64_t i) {
  const int64_t r = i % 20;
  if (r == 19) return type::v1::WORK_PERMISSION_NOT_PERMITTED;
  if (r >= 17) return type::v1::WORK_PERMISSION_NEEDS_APPROVAL;
  return type::v1::WORK_PERMISSION_PERMITTED;
}

// A family name unique per index ("Bench" + letters), so identity's
// duplicate search finds nothing to block on.
std::string FamilyName(int64_t i) {
  std::string letters;
  do {
    letters.push_back(static_cast<char>('a' + i % 26));
    i /= 26;
  } while (i > 0);
  return absl::StrCat("Bench", letters);
}

iv1::Person SyntheticPerson(int64_t i) {
  std::mt19937_64 rng(static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL + 11);
  iv1::Person person;
  iv1::PersonName* name = person.add_names();
  name->set_given_names(GivenNames()[rng() % GivenNames().size()]);
  name->set_family_names(FamilyName(i));
  name->set_script("Latn");
  name->set_kind(iv1::NAME_KIND_CURRENT);
  person.mutable_birth_date()->set_year(1960 + static_cast<int>(rng() % 45));
  person.mutable_birth_date()->set_month(1 + static_cast<int>(rng() % 12));
  person.mutable_birth_date()->set_day(1 + static_cast<int>(rng() % 28));
  return person;
}

iv1::ResidenceStatus SyntheticResidence(int64_t i) {
  iv1::ResidenceStatus status;
  const type::v1::WorkPermission permission = PermissionOf(i);
  status.set_title_kind(
      permission == type::v1::WORK_PERMISSION_PERMITTED
          ? iv1::RESIDENCE_TITLE_KIND_RESIDENCE_PERMIT
          : (permission == type::v1::WORK_PERMISSION_NEEDS_APPROVAL
                 ? iv1::RESIDENCE_TITLE_KIND_ASYLUM_PERMISSION
                 : iv1::RESIDENCE_TITLE_KIND_TOLERATION));
  *status.mutable_valid_from() = DateInDays(-100 - static_cast<int>(i % 300));
  *status.mutable_valid_until() = DateInDays(400 + static_cast<int>(i % 700));
  status.set_work_permission(permission);
  return status;
}

type::v1::CefrLevel LevelFrom(std::mt19937_64& rng,
                              const std::vector<int>& percent) {
  int r = static_cast<int>(rng() % 100);
  for (size_t level = 0; level < percent.size(); ++level) {
    if (r < percent[level]) return static_cast<type::v1::CefrLevel>(level);
    r -= percent[level];
  }
  return type::v1::CEFR_LEVEL_UNSPECIFIED;
}

pv1::CandidateProfile SyntheticProfile(int64_t i, const std::string& person,
                                       const std::vector<std::string>& codes) {
  std::mt19937_64 rng(static_cast<uint64_t>(i) * 0xbf58476d1ce4e5b9ULL + 7);
  const int n_codes = static_cast<int>(codes.size());
  pv1::CandidateProfile p;
  p.set_person(person);
  const int n_skills = 1 + static_cast<int>(rng() % 5);
  for (int k = 0; k < n_skills; ++k) {
    pv1::Skill* skill = p.add_skills();
    skill->set_label(Skills()[(rng() + k) % Skills().size()]);
    skill->set_level(static_cast<pv1::SkillLevel>(1 + rng() % 3));
  }
  const int n_experience = static_cast<int>(rng() % 3);
  for (int k = 0; k < n_experience; ++k) {
    pv1::OccupationExperience* e = p.add_experience();
    e->set_occupation_code(codes[Skewed(rng, n_codes)]);
    e->set_months(static_cast<int>(rng() % 120));
  }
  if (rng() % 3 == 0) {
    static const char* const kCountries[] = {"SY", "AF", "UA", "TR",
                                             "ER", "IQ", "DE"};
    pv1::Qualification* q = p.add_qualifications();
    q->set_title("Berufsabschluss");
    q->set_occupation_code(codes[Skewed(rng, n_codes)]);
    q->set_country_code(kCountries[rng() % 7]);
    q->set_recognition_state(
        q->country_code() == "DE"
            ? pv1::RECOGNITION_STATE_NOT_REQUIRED
            : static_cast<pv1::RecognitionState>(1 + rng() % 5));
  }
  const Place& place = Places()[Skewed(rng, static_cast<int>(Places().size()))];
  pv1::PreferredPlace* preferred = p.add_preferred_places();
  if (rng() % 2 == 0) {
    preferred->set_postal_code(place.postal_code);
  } else {
    preferred->set_municipality_code(place.municipality_code);
  }
  preferred->set_max_distance_km(10 + static_cast<int>(rng() % 41));
  const double max_hours = 20 + static_cast<double>(rng() % 5) * 5;
  p.mutable_preferred_hours()->set_min_hours_per_week(max_hours - 10);
  p.mutable_preferred_hours()->set_max_hours_per_week(max_hours);
  if (rng() % 3 == 0) {
    p.mutable_preferred_hours()->add_day_periods(type::v1::DAY_PERIOD_MORNING);
  }
  if (rng() % 10 < 3) {
    *p.mutable_available_from() = DateInDays(static_cast<int>(rng() % 90));
  }
  if (rng() % 10 < 2) {
    p.add_wanted_offer_kinds(rng() % 2 == 0 ? pv1::OFFER_KIND_JOB
                                            : pv1::OFFER_KIND_APPRENTICESHIP);
  }
  // none, A1, A2, B1, B2, C1 (percent)
  p.set_stated_language_level(LevelFrom(rng, {15, 20, 30, 25, 7, 3}));
  return p;
}

pv1::Offer SyntheticOffer(int64_t i, const std::vector<std::string>& codes) {
  std::mt19937_64 rng(static_cast<uint64_t>(i) * 0x94d049bb133111ebULL + 3);
  const int n_codes = static_cast<int>(codes.size());
  pv1::Offer o;
  const bool apprenticeship = rng() % 100 < 15;
  o.set_kind(apprenticeship ? pv1::OFFER_KIND_APPRENTICESHIP
                            : pv1::OFFER_KIND_JOB);
  const std::string code = codes[Skewed(rng, n_codes)];
  o.set_occupation_code(code);
  o.set_title(absl::StrCat(apprenticeship ? "Ausbildung " : "Stelle ", code,
                           " Nr. ", i));
  o.set_description("Synthetisches Angebot für den Benchmark.");
  o.set_employer_name(absl::StrCat("Arbeitgeber ", i % 5000, " GmbH"));
  const Place& place = Places()[Skewed(rng, static_cast<int>(Places().size()))];
  o.mutable_place()->set_street("Hauptstraße");
  o.mutable_place()->set_house_number(absl::StrCat(1 + i % 200));
  o.mutable_place()->set_postal_code(place.postal_code);
  o.mutable_place()->set_locality(place.locality);
  o.mutable_place()->set_municipality_code(place.municipality_code);
  const double hours = 20 + static_cast<double>(rng() % 5) * 5;
  o.mutable_hours()->set_min_hours_per_week(hours);
  o.mutable_hours()->set_max_hours_per_week(hours);
  o.mutable_hours()->add_day_periods(
      static_cast<type::v1::DayPeriod>(1 + rng() % 3));
  *o.mutable_start_date() = DateInDays(14 + static_cast<int>(rng() % 120));
  // none, A1, A2, B1, B2 (percent)
  o.set_required_language_level(LevelFrom(rng, {20, 15, 25, 30, 10}));
  const int n_skills = static_cast<int>(rng() % 4);
  for (int k = 0; k < n_skills; ++k) {
    o.add_required_skills(Skills()[(rng() + k) % Skills().size()]);
  }
  if (rng() % 10 < 3) o.add_required_qualification_codes(code);
  o.set_recognition_required(rng() % 100 < 5);
  o.set_positions_total(1 + static_cast<int>(rng() % 5));
  if (apprenticeship) o.set_training_duration_months(36);
  return o;
}

// --- connections ------------------------------------------------------------

absl::Duration RpcTimeout() {
  return absl::Milliseconds(absl::GetFlag(FLAGS_rpc_timeout_ms));
}

void Prepare(grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + RpcTimeout()));
  context->AddMetadata("x-lotse-actor", "bench");
  context->AddMetadata("x-lotse-purpose", "job-placement");
}

// --channels stubs of Service at `target`, as agency `client`.
template <typename Service>
absl::StatusOr<std::vector<std::unique_ptr<typename Service::Stub>>> Stubs(
    const std::string& target, const std::string& client) {
  const std::string tls_dir = absl::GetFlag(FLAGS_tls_dir);
  if (tls_dir.empty()) {
    return absl::InvalidArgumentError("--tls_dir is required");
  }
  auto credentials =
      lotse::bench::MakeMutualTlsChannelCredentials(tls_dir, client);
  if (!credentials.ok()) return credentials.status();
  std::vector<std::unique_ptr<typename Service::Stub>> stubs;
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_channels)); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("lotse.bench.channel_index", i);
    args.SetString("lotse.bench.client", client);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stubs.push_back(Service::NewStub(
        grpc::CreateCustomChannel(target, *credentials, args)));
  }
  return stubs;
}

using PlacementStubs =
    std::vector<std::unique_ptr<pv1::PlacementService::Stub>>;
using IdentityStubs = std::vector<std::unique_ptr<iv1::IdentityService::Stub>>;

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(lotse::bench::StatusCodeName(status.error_code()), ": ",
                      status.error_message(), " (",
                      ReasonOf(FromGrpcStatus(status)).value_or("no reason"),
                      ")");
}

// Waits until placement knows `agency` (its AgencyRegistered event arrived
// from identity): ListOffers answers something other than
// PERMISSION_DENIED.
absl::Status WaitAgencyKnown(const PlacementStubs& stubs,
                             const std::string& agency) {
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  grpc::Status status;
  while (absl::Now() < give_up) {
    grpc::ClientContext context;
    Prepare(&context);
    pv1::ListOffersRequest request;
    request.set_page_size(1);
    pv1::ListOffersResponse response;
    status = stubs[0]->ListOffers(&context, request, &response);
    if (status.ok()) return absl::OkStatus();
    if (status.error_code() != grpc::StatusCode::PERMISSION_DENIED &&
        status.error_code() != grpc::StatusCode::UNAVAILABLE) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::UnavailableError(absl::StrCat("placement does not admit ",
                                             agency, ": ", Describe(status)));
}

// --- bulk loading through the RPCs ------------------------------------------

// Starts call i; `done` gets its status. Must not block.
using BulkStart = std::function<void(int64_t i, Done done)>;

bool Retryable(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    case grpc::StatusCode::PERMISSION_DENIED:
      // An agency not yet known to the service (its event is on the way).
      return ReasonOf(FromGrpcStatus(status)).value_or("") == "UNKNOWN_AGENCY";
    case grpc::StatusCode::FAILED_PRECONDITION:
      // The service could not ask identity in time.
      return ReasonOf(FromGrpcStatus(status)).value_or("") ==
             "CHECK_UNAVAILABLE";
    default:
      return false;
  }
}

// Runs calls 0..n-1 with `concurrency` in flight; a call failing with a
// transient status is repeated (same index, hence the same request_id) up
// to 8 times with backoff. Stops launching at the first permanent failure.
class BulkRun : public std::enable_shared_from_this<BulkRun> {
 public:
  BulkRun(std::string what, int64_t n, BulkStart start)
      : what_(std::move(what)), n_(n), start_(std::move(start)) {}

  absl::Status Run(int concurrency) {
    const absl::Time started = absl::Now();
    for (int k = 0; k < std::max(1, concurrency); ++k) LaunchNext();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](BulkRun* run) { return run->finished_ == run->launched_; }, this));
    const double seconds = absl::ToDoubleSeconds(absl::Now() - started);
    absl::PrintF(
        "{\"phase\":\"%s\",\"n\":%d,\"done\":%d,\"failed\":%d,\"retries\":%d,"
        "\"seconds\":%.1f,\"per_s\":%.1f,\"concurrency\":%d}\n",
        what_, n_, finished_ - failed_, failed_, retries_, seconds,
        seconds > 0 ? static_cast<double>(finished_ - failed_) / seconds : 0,
        concurrency);
    std::fflush(stdout);
    if (failed_ > 0) {
      return absl::InternalError(
          absl::StrCat(what_, ": ", failed_, " failed; first: ", first_error_));
    }
    return absl::OkStatus();
  }

 private:
  void LaunchNext() {
    int64_t i;
    {
      absl::MutexLock lock(&mu_);
      if (next_ >= n_) return;
      i = next_++;
      ++launched_;
    }
    Launch(i, 0);
  }

  void Launch(int64_t i, int attempt) {
    std::shared_ptr<BulkRun> self = shared_from_this();
    start_(i, [self, i, attempt](const grpc::Status& status) {
      if (!status.ok() && Retryable(status) && attempt < 8) {
        {
          absl::MutexLock lock(&self->mu_);
          ++self->retries_;
        }
        absl::SleepFor(absl::Milliseconds(25 << std::min(attempt, 5)));
        self->Launch(i, attempt + 1);
        return;
      }
      {
        absl::MutexLock lock(&self->mu_);
        ++self->finished_;
        if (!status.ok()) {
          ++self->failed_;
          if (self->first_error_.empty()) {
            self->first_error_ =
                absl::StrCat("call ", i, ": ", Describe(status));
          }
          self->next_ = self->n_;  // stop launching
        }
        const int64_t step = std::max<int64_t>(1, self->n_ / 10);
        if (self->finished_ % step == 0) {
          absl::FPrintF(stderr, "%s: %d of %d\n", self->what_, self->finished_,
                        self->n_);
        }
      }
      self->LaunchNext();
    });
  }

  const std::string what_;
  const int64_t n_;
  const BulkStart start_;
  absl::Mutex mu_;
  int64_t next_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t launched_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t finished_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t retries_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

absl::Status Bulk(const std::string& what, int64_t n, BulkStart start) {
  auto run = std::make_shared<BulkRun>(what, n, std::move(start));
  return run->Run(absl::GetFlag(FLAGS_concurrency));
}

// A unary async call with its own context, request and response; `then`
// sees the response on success.
template <typename Request, typename Response>
struct AsyncCall {
  grpc::ClientContext context;
  Request request;
  Response response;
};

absl::Status WriteLines(const std::string& path,
                        const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& line : lines) out << line << '\n';
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

absl::Status Load() {
  const std::string ids = absl::GetFlag(FLAGS_ids);
  if (ids.empty()) return absl::InvalidArgumentError("--ids is required");
  const int64_t n_candidates = absl::GetFlag(FLAGS_candidates);
  const int64_t n_offers = absl::GetFlag(FLAGS_offers);
  const std::vector<std::string> codes = OccupationCodes();
  if (codes.empty()) return absl::InvalidArgumentError("no occupation codes");
  const std::string placement = absl::GetFlag(FLAGS_target);
  const std::string identity = absl::GetFlag(FLAGS_identity_target);
  // The employment agency registers its customers and keeps their
  // profiles, so it may propose them (a proposal needs the person in the
  // proposer's remit).
  auto registrar = Stubs<iv1::IdentityService>(identity, "aa-koeln");
  auto abh = Stubs<iv1::IdentityService>(identity, "abh-koeln");
  auto jobcenter = Stubs<pv1::PlacementService>(placement, "jobcenter-koeln");
  auto aa = Stubs<pv1::PlacementService>(placement, "aa-koeln");
  for (const absl::Status& s :
       {registrar.status(), abh.status(), jobcenter.status(), aa.status()}) {
    if (!s.ok()) return s;
  }
  if (absl::Status s = WaitAgencyKnown(*jobcenter, "jobcenter-koeln");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = WaitAgencyKnown(*aa, "aa-koeln"); !s.ok()) return s;

  // 1. persons in identity
  std::vector<std::string> persons(n_candidates);
  {
    using Call = AsyncCall<iv1::CreatePersonRequest, iv1::Person>;
    absl::Status s = Bulk("persons", n_candidates, [&](int64_t i, Done done) {
      auto* call = new Call;
      Prepare(&call->context);
      call->request.set_request_id(absl::StrCat("bench-person-", i));
      *call->request.mutable_person() = SyntheticPerson(i);
      call->request.set_confirm_new_person(true);
      (*registrar)[i % registrar->size()]->async()->CreatePerson(
          &call->context, &call->request, &call->response,
          [call, i, done, &persons](grpc::Status status) {
            if (status.ok()) persons[i] = call->response.name();
            delete call;
            done(status);
          });
    });
    if (!s.ok()) return s;
  }

  // 2. candidate profiles in placement
  std::vector<std::string> candidates(n_candidates);
  {
    using Call =
        AsyncCall<pv1::CreateCandidateProfileRequest, pv1::CandidateProfile>;
    absl::Status s = Bulk("profiles", n_candidates, [&](int64_t i, Done done) {
      auto* call = new Call;
      Prepare(&call->context);
      call->request.set_request_id(absl::StrCat("bench-profile-", i));
      *call->request.mutable_candidate_profile() =
          SyntheticProfile(i, persons[i], codes);
      (*aa)[i % aa->size()]->async()->CreateCandidateProfile(
          &call->context, &call->request, &call->response,
          [call, i, done, &candidates](grpc::Status status) {
            if (status.ok()) candidates[i] = call->response.name();
            delete call;
            done(status);
          });
    });
    if (!s.ok()) return s;
  }
  if (absl::Status s = WriteLines(ids + "/candidates.txt", candidates);
      !s.ok()) {
    return s;
  }

  // 3. residence statuses in identity (placement learns them by event)
  {
    using Call =
        AsyncCall<iv1::RecordResidenceStatusRequest, iv1::ResidenceStatus>;
    absl::Status s = Bulk("residence", n_candidates, [&](int64_t i, Done done) {
      auto* call = new Call;
      Prepare(&call->context);
      call->request.set_parent(persons[i]);
      call->request.set_request_id(absl::StrCat("bench-residence-", i));
      *call->request.mutable_residence_status() = SyntheticResidence(i);
      (*abh)[i % abh->size()]->async()->RecordResidenceStatus(
          &call->context, &call->request, &call->response,
          [call, done](grpc::Status status) {
            delete call;
            done(status);
          });
    });
    if (!s.ok()) return s;
  }

  // 4. offers
  std::vector<std::string> offers(n_offers);
  {
    using Call = AsyncCall<pv1::CreateOfferRequest, pv1::Offer>;
    absl::Status s = Bulk("offers", n_offers, [&](int64_t i, Done done) {
      auto* call = new Call;
      Prepare(&call->context);
      call->request.set_request_id(absl::StrCat("bench-offer-", i));
      *call->request.mutable_offer() = SyntheticOffer(i, codes);
      (*aa)[i % aa->size()]->async()->CreateOffer(
          &call->context, &call->request, &call->response,
          [call, i, done, &offers](grpc::Status status) {
            if (status.ok()) offers[i] = call->response.name();
            delete call;
            done(status);
          });
    });
    if (!s.ok()) return s;
  }
  return WriteLines(ids + "/offers.txt", offers);
}

// --- waiting for identity's events ------------------------------------------

absl::Status WaitFacts() {
  auto candidates =
      ReadLines(absl::StrCat(absl::GetFlag(FLAGS_ids), "/candidates.txt"));
  if (!candidates.ok()) return candidates.status();
  if (candidates->empty()) return absl::InvalidArgumentError("no candidates");
  auto stubs = Stubs<pv1::PlacementService>(absl::GetFlag(FLAGS_target),
                                            "jobcenter-koeln");
  if (!stubs.ok()) return stubs.status();
  // A spread sample, with the last candidates (their events come last).
  const int64_t n = static_cast<int64_t>(candidates->size());
  std::vector<int64_t> pending;
  const int sample = std::max(1, absl::GetFlag(FLAGS_sample));
  for (int k = 0; k < sample; ++k) {
    pending.push_back(k < sample / 2 ? n - 1 - k : (k * 7919) % n);
  }
  std::sort(pending.begin(), pending.end());
  pending.erase(std::unique(pending.begin(), pending.end()), pending.end());
  const size_t sampled = pending.size();
  const absl::Time started = absl::Now();
  const absl::Time give_up =
      started + absl::Seconds(absl::GetFlag(FLAGS_wait_s));
  std::string last_error;
  while (!pending.empty() && absl::Now() < give_up) {
    std::vector<int64_t> still;
    for (int64_t i : pending) {
      grpc::ClientContext context;
      Prepare(&context);
      pv1::MatchOffersForCandidateRequest request;
      request.set_candidate((*candidates)[i]);
      request.set_page_size(1);
      pv1::MatchOffersForCandidateResponse response;
      grpc::Status status =
          (*stubs)[0]->MatchOffersForCandidate(&context, request, &response);
      if (!status.ok()) {
        last_error = Describe(status);
        still.push_back(i);
      } else if (response.facts().work_permission() != PermissionOf(i)) {
        still.push_back(i);
      }
    }
    pending = std::move(still);
    if (!pending.empty()) absl::SleepFor(absl::Seconds(1));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - started);
  absl::PrintF(
      "{\"mode\":\"wait_facts\",\"sampled\":%d,\"missing\":%d,"
      "\"seconds\":%.1f}\n",
      sampled, pending.size(), seconds);
  std::fflush(stdout);
  if (!pending.empty()) {
    return absl::DeadlineExceededError(absl::StrCat(
        pending.size(), " sampled candidates still lack their work permission",
        last_error.empty() ? "" : "; last error: ", last_error));
  }
  return absl::OkStatus();
}

// --- measured runs ----------------------------------------------------------

struct Shared {
  PlacementStubs stubs;
  std::vector<std::string> candidates;  // only PERMITTED ones
  std::vector<std::string> offers;
  std::atomic<uint64_t> next{0};
  std::atomic<int64_t> results{0};
  // transition: placements waiting for their next step
  absl::Mutex mu;
  struct Pending {
    std::string name;
    std::string etag;
    pv1::PlacementState state;
    uint64_t serial;
  };
  std::deque<Pending> pending ABSL_GUARDED_BY(mu);
  std::array<std::atomic<int64_t>, 7> by_state{};
};

absl::StatusOr<std::shared_ptr<Shared>> Connect(const std::string& client) {
  auto shared = std::make_shared<Shared>();
  auto stubs =
      Stubs<pv1::PlacementService>(absl::GetFlag(FLAGS_target), client);
  if (!stubs.ok()) return stubs.status();
  shared->stubs = *std::move(stubs);
  if (absl::Status s = WaitAgencyKnown(shared->stubs, client); !s.ok()) {
    return s;
  }
  const std::string ids = absl::GetFlag(FLAGS_ids);
  auto candidates = ReadLines(ids + "/candidates.txt");
  if (!candidates.ok()) return candidates.status();
  for (size_t i = 0; i < candidates->size(); ++i) {
    if (PermissionOf(static_cast<int64_t>(i)) ==
        type::v1::WORK_PERMISSION_PERMITTED) {
      shared->candidates.push_back((*candidates)[i]);
    }
  }
  auto offers = ReadLines(ids + "/offers.txt");
  if (!offers.ok()) return offers.status();
  shared->offers = *std::move(offers);
  if (shared->candidates.empty() || shared->offers.empty()) {
    return absl::InvalidArgumentError("no candidates or offers listed");
  }
  return shared;
}

StartCall MatchOffersCalls(std::shared_ptr<Shared> shared) {
  return [shared](CallDone done) {
    using Call = AsyncCall<pv1::MatchOffersForCandidateRequest,
                           pv1::MatchOffersForCandidateResponse>;
    const uint64_t n = shared->next.fetch_add(1);
    std::mt19937_64 rng(n * 0x9e3779b97f4a7c15ULL + 5);
    auto* call = new Call;
    Prepare(&call->context);
    call->request.set_candidate(
        shared->candidates[rng() % shared->candidates.size()]);
    call->request.set_page_size(absl::GetFlag(FLAGS_page_size));
    call->request.set_include_excluded(absl::GetFlag(FLAGS_include_excluded));
    shared->stubs[n % shared->stubs.size()]->async()->MatchOffersForCandidate(
        &call->context, &call->request, &call->response,
        [shared, call, done](grpc::Status status) {
          if (status.ok()) shared->results += call->response.matches_size();
          delete call;
          done(status);
        });
  };
}

StartCall MatchCandidatesCalls(std::shared_ptr<Shared> shared) {
  return [shared](CallDone done) {
    using Call = AsyncCall<pv1::MatchCandidatesForOfferRequest,
                           pv1::MatchCandidatesForOfferResponse>;
    const uint64_t n = shared->next.fetch_add(1);
    std::mt19937_64 rng(n * 0x9e3779b97f4a7c15ULL + 9);
    auto* call = new Call;
    Prepare(&call->context);
    call->request.set_offer(shared->offers[rng() % shared->offers.size()]);
    call->request.set_page_size(absl::GetFlag(FLAGS_page_size));
    call->request.set_include_excluded(absl::GetFlag(FLAGS_include_excluded));
    shared->stubs[n % shared->stubs.size()]->async()->MatchCandidatesForOffer(
        &call->context, &call->request, &call->response,
        [shared, call, done](grpc::Status status) {
          if (status.ok()) shared->results += call->response.matches_size();
          delete call;
          done(status);
        });
  };
}

// Each call moves one placement one step; a placement in progress goes
// back to the queue with its new etag, so about --concurrency placements
// are under way at any time. New placement k proposes PERMITTED candidate
// k for offer k (modulo their numbers): no pair repeats and no offer gets
// a second hire within a run shorter than the number of offers.
StartCall TransitionCalls(std::shared_ptr<Shared> shared) {
  return [shared](CallDone done) {
    std::optional<Shared::Pending> step;
    {
      absl::MutexLock lock(&shared->mu);
      if (!shared->pending.empty()) {
        step = std::move(shared->pending.front());
        shared->pending.pop_front();
      }
    }
    auto requeue = [shared](const pv1::Placement& p, uint64_t serial) {
      shared->by_state[p.state()].fetch_add(1);
      if (p.state() == pv1::PLACEMENT_STATE_HIRED ||
          p.state() == pv1::PLACEMENT_STATE_REJECTED ||
          p.state() == pv1::PLACEMENT_STATE_WITHDRAWN) {
        return;
      }
      absl::MutexLock lock(&shared->mu);
      shared->pending.push_back({p.name(), p.etag(), p.state(), serial});
    };
    const uint64_t i = step ? 0 : shared->next.fetch_add(1);
    pv1::PlacementService::Stub& stub =
        *shared->stubs[(step ? step->serial : i) % shared->stubs.size()];
    if (!step) {
      using Call = AsyncCall<pv1::ProposePlacementRequest, pv1::Placement>;
      auto* call = new Call;
      Prepare(&call->context);
      call->request.set_request_id(absl::StrCat(
          "bench-proposal-", absl::ToUnixMicros(absl::Now()), "-", i));
      call->request.mutable_placement()->set_candidate(
          shared->candidates[i % shared->candidates.size()]);
      call->request.mutable_placement()->set_offer(
          shared->offers[i % shared->offers.size()]);
      stub.async()->ProposePlacement(
          &call->context, &call->request, &call->response,
          [call, done, requeue, i](grpc::Status status) {
            if (status.ok()) requeue(call->response, i);
            delete call;
            done(status);
          });
      return;
    }
    const uint64_t serial = step->serial;
    auto finish = [requeue, serial, done](const grpc::Status& status,
                                          const pv1::Placement& p) {
      if (status.ok()) requeue(p, serial);
      done(status);
    };
    switch (step->state) {
      case pv1::PLACEMENT_STATE_PROPOSED: {
        using Call =
            AsyncCall<pv1::MarkPlacementAppliedRequest, pv1::Placement>;
        auto* call = new Call;
        Prepare(&call->context);
        call->request.set_name(step->name);
        call->request.set_etag(step->etag);
        stub.async()->MarkPlacementApplied(&call->context, &call->request,
                                           &call->response,
                                           [call, finish](grpc::Status status) {
                                             finish(status, call->response);
                                             delete call;
                                           });
        return;
      }
      case pv1::PLACEMENT_STATE_APPLIED: {
        using Call =
            AsyncCall<pv1::MarkPlacementInterviewRequest, pv1::Placement>;
        auto* call = new Call;
        Prepare(&call->context);
        call->request.set_name(step->name);
        call->request.set_etag(step->etag);
        call->request.mutable_interview_time()->set_seconds(
            absl::ToUnixSeconds(absl::Now() + absl::Hours(72)));
        stub.async()->MarkPlacementInterview(
            &call->context, &call->request, &call->response,
            [call, finish](grpc::Status status) {
              finish(status, call->response);
              delete call;
            });
        return;
      }
      default: {  // INTERVIEW
        if (serial % 4 == 0) {
          using Call =
              AsyncCall<pv1::MarkPlacementHiredRequest, pv1::Placement>;
          auto* call = new Call;
          Prepare(&call->context);
          call->request.set_name(step->name);
          call->request.set_etag(step->etag);
          *call->request.mutable_start_date() = DateInDays(30);
          stub.async()->MarkPlacementHired(&call->context, &call->request,
                                           &call->response,
                                           [call, finish](grpc::Status status) {
                                             finish(status, call->response);
                                             delete call;
                                           });
        } else {
          using Call = AsyncCall<pv1::RejectPlacementRequest, pv1::Placement>;
          auto* call = new Call;
          Prepare(&call->context);
          call->request.set_name(step->name);
          call->request.set_etag(step->etag);
          call->request.set_reason(pv1::PLACEMENT_END_REASON_EMPLOYER_DECLINED);
          stub.async()->RejectPlacement(&call->context, &call->request,
                                        &call->response,
                                        [call, finish](grpc::Status status) {
                                          finish(status, call->response);
                                          delete call;
                                        });
        }
        return;
      }
    }
  };
}

absl::Status RunRpcs(const std::string& mode) {
  // Matching as the Jobcenter (EMPLOYMENT, LANGUAGE and RESIDENCE_STATUS
  // readable by legal basis, so nothing is withheld); transitions as the
  // employment agency, which published the offers.
  absl::StatusOr<std::shared_ptr<Shared>> shared =
      Connect(mode == "transition" ? "aa-koeln" : "jobcenter-koeln");
  if (!shared.ok()) return shared.status();
  LoadOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  options.warmup = absl::Seconds(absl::GetFlag(FLAGS_warmup_s));
  if (mode == "transition") {
    (*shared)->next = static_cast<uint64_t>(
        std::max<int64_t>(0, absl::GetFlag(FLAGS_first_placement)));
  }
  StartCall start = mode == "match_offers"       ? MatchOffersCalls(*shared)
                    : mode == "match_candidates" ? MatchCandidatesCalls(*shared)
                                                 : TransitionCalls(*shared);
  absl::StatusOr<LoadResult> result =
      lotse::bench::RunClosedLoop(options, start);
  if (!result.ok()) return result.status();
  std::printf("%s %s\n", mode.c_str(),
              lotse::bench::FormatHuman(*result).c_str());
  if (!result->first_error.empty()) {
    std::printf("first error: %s\n", result->first_error.c_str());
  }
  std::string extra;
  if (mode == "transition") {
    const auto& s = (*shared)->by_state;
    extra = absl::StrFormat(
        ",\"proposed\":%d,\"applied\":%d,\"interview\":%d,\"hired\":%d,"
        "\"rejected\":%d",
        s[pv1::PLACEMENT_STATE_PROPOSED].load(),
        s[pv1::PLACEMENT_STATE_APPLIED].load(),
        s[pv1::PLACEMENT_STATE_INTERVIEW].load(),
        s[pv1::PLACEMENT_STATE_HIRED].load(),
        s[pv1::PLACEMENT_STATE_REJECTED].load());
  } else {
    const double calls =
        static_cast<double>((*shared)->next.load());  // incl. warm-up
    extra = absl::StrFormat(
        ",\"mean_matches\":%.1f,\"candidates\":%d,\"offers\":%d",
        calls > 0 ? static_cast<double>((*shared)->results.load()) / calls : 0,
        (*shared)->candidates.size(), (*shared)->offers.size());
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
}  // namespace lotse::placement

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "placement service benchmarks: --mode=load|wait_facts|match_offers|"
      "match_candidates|transition");
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  absl::Status status;
  if (mode == "load") {
    status = lotse::placement::Load();
  } else if (mode == "wait_facts") {
    status = lotse::placement::WaitFacts();
  } else if (mode == "match_offers" || mode == "match_candidates" ||
             mode == "transition") {
    status = lotse::placement::RunRpcs(mode);
  } else {
    status = absl::InvalidArgumentError(
        "--mode must be load, wait_facts, match_offers, match_candidates or "
        "transition");
  }
  if (!status.ok()) {
    std::fprintf(stderr, "lotse_placement_bench: %s\n",
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}
