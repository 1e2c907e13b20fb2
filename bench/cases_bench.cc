// Cases service benchmarks, against a running lotse_cases
// over mutual TLS; bench/run_cases_bench.sh runs them next to the echo
// baseline.
//
//   --mode=seed         writes agencies, cases and REFERRED steps straight
//                       into a fresh database (service stopped); with
//                       --courses_persons case "bc<i>" belongs to the
//                       person lotse_courses_bench books as person i, so
//                       its course events land on that case
//   --mode=transition   closed loop of step transitions (Accept, Start,
//                       Complete, as the receiving agency) over the seeded
//                       steps: QPS and latency
//   --mode=watch        --watchers streams of WatchCaseEvents, while one
//                       writer commits --events transitions at --rate per
//                       second; latency from the event's commit (its
//                       occur_time, set in the committing transaction) to
//                       its arrival at each watcher
//   --mode=seed_events  writes --events case events into the log of a fresh
//                       database (service stopped)
//   --mode=resume       one watcher resumes after cursor --events - --missed
//                       on the freshly restarted service: time to the first
//                       missed event, and to all of them
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/load.h"
#include "bench/internal/tls.h"
#include "common/agencies/registry.h"
#include "common/api/etag.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "services/cases/store/case_store.h"
#include "services/cases/store/migrations.h"

ABSL_FLAG(std::string, mode, "",
          "seed, transition, watch, seed_events or resume");
ABSL_FLAG(std::string, target, "127.0.0.1:50052", "cases service");
ABSL_FLAG(std::string, tls_dir, "", "tools/dev-pki.sh directory");
ABSL_FLAG(std::string, database, "", "seed modes: database URL");
ABSL_FLAG(int, steps, 30000, "seed: REFERRED steps (10 per case)");
ABSL_FLAG(int, concurrency, 32, "transition: calls in flight");
ABSL_FLAG(int, channels, 2, "transition: connections");
ABSL_FLAG(double, duration_s, 10, "transition: measurement window");
ABSL_FLAG(double, warmup_s, 1, "transition: warm-up");
ABSL_FLAG(int, watchers, 100, "watch: streams");
ABSL_FLAG(int, events, 1000, "watch: transitions; seed_events: events");
ABSL_FLAG(double, rate, 100, "watch: transitions per second");
ABSL_FLAG(int64_t, missed, 1000, "resume: events missed before reconnect");
ABSL_FLAG(bool, courses_persons, false,
          "seed: name case i's person as lotse_courses_bench names person i");

namespace {

using lotse::bench::CallDone;
using lotse::bench::LatencyHistogram;
using lotse::bench::LoadOptions;
using lotse::bench::LoadResult;
using lotse::bench::StartCall;
namespace v1 = lotse::cases::v1;
namespace storage = lotse::storage;

constexpr char kOwner[] = "agencies/kim-koeln";
constexpr char kReceiver[] = "agencies/vhs-koeln";

std::string CaseId(int i) { return absl::StrCat("bc", i); }
std::string StepId(int i) { return absl::StrCat("bs", i); }

// The person of case i: lotse_courses_bench's PersonName(i) with
// --courses_persons ("persons/benchpersonx" + 14 base32 digits), else
// "persons/bench-<i>".
std::string PersonOfCase(int i) {
  if (!absl::GetFlag(FLAGS_courses_persons)) {
    return absl::StrCat("persons/bench-", i);
  }
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string digits(14, 'a');
  uint64_t index = static_cast<uint64_t>(i);
  for (int k = 13; k >= 0; --k) {
    digits[k] = kAlphabet[index & 31];
    index >>= 5;
  }
  return absl::StrCat("persons/benchpersonx", digits);
}

absl::StatusOr<std::unique_ptr<storage::Database>> OpenMigrated() {
  auto db = storage::OpenDatabase(absl::GetFlag(FLAGS_database));
  if (!db.ok()) return db.status();
  if (absl::Status s =
          storage::ApplyMigrations(**db, lotse::cases::CasesMigrations());
      !s.ok()) {
    return s;
  }
  absl::Status s = storage::RunInTransaction(
      **db, [](storage::Transaction& tx) -> absl::Status {
        for (const auto& [id, domain] :
             std::vector<std::pair<std::string, std::string>>{
                 {"kim-koeln", "KOMMUNE"}, {"vhs-koeln", "KURSTRAEGER"}}) {
          lotse::agencies::LocalAgency a{id, domain, "05315000", id, false};
          if (absl::Status st = lotse::agencies::UpsertAgency(tx, a);
              !st.ok()) {
            return st;
          }
        }
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return db;
}

absl::Status Seed() {
  auto db = OpenMigrated();
  if (!db.ok()) return db.status();
  const int steps = absl::GetFlag(FLAGS_steps);
  const int cases = (steps + 9) / 10;
  const absl::Time start = absl::Now();
  google::protobuf::Timestamp now;
  now.set_seconds(absl::ToUnixSeconds(absl::Now()));
  for (int first = 0; first < cases; first += 500) {
    absl::Status s = storage::RunInTransaction(
        **db, [&](storage::Transaction& tx) -> absl::Status {
          for (int c = first; c < std::min(cases, first + 500); ++c) {
            lotse::cases::CaseRow row;
            row.id = CaseId(c);
            row.version = 1;
            row.record.set_name(absl::StrCat("cases/", row.id));
            row.record.set_person(PersonOfCase(c));
            row.record.set_owner_agency(kOwner);
            row.record.set_responsible_actor("bench");
            row.record.set_state(v1::CASE_STATE_ACTIVE);
            row.record.set_municipality_code("05315000");
            row.record.add_participating_agencies(kOwner);
            row.record.add_participating_agencies(kReceiver);
            row.record.set_plan_version(1);
            *row.record.mutable_create_time() = now;
            if (absl::Status st = lotse::cases::InsertCase(tx, row); !st.ok()) {
              return st;
            }
            for (int k = 0; k < 10 && c * 10 + k < steps; ++k) {
              lotse::cases::StepRow step;
              step.id = StepId(c * 10 + k);
              step.case_id = row.id;
              step.version = 1;
              step.municipality_code = "05315000";
              step.record.set_kind(v1::STEP_KIND_INTEGRATION_COURSE);
              step.record.set_receiving_agency(kReceiver);
              step.record.set_referring_agency(kOwner);
              step.record.set_state(v1::STEP_STATE_REFERRED);
              *step.record.mutable_create_time() = now;
              if (absl::Status st = lotse::cases::InsertStep(tx, step);
                  !st.ok()) {
                return st;
              }
            }
          }
          return absl::OkStatus();
        });
    if (!s.ok()) return s;
  }
  std::printf(
      "{\"mode\":\"seed\",\"cases\":%d,\"steps\":%d,\"seconds\":%.1f}\n", cases,
      steps, absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

// The steps still to move, each with its etag and next transition.
struct Work {
  std::string name;
  std::string etag;
  int stage = 0;  // 0 accept, 1 start, 2 complete
};

class Client {
 public:
  absl::Status Connect(int channels) {
    auto creds = lotse::bench::MakeMutualTlsChannelCredentials(
        absl::GetFlag(FLAGS_tls_dir), "vhs-koeln");
    if (!creds.ok()) return creds.status();
    auto owner = lotse::bench::MakeMutualTlsChannelCredentials(
        absl::GetFlag(FLAGS_tls_dir), "kim-koeln");
    if (!owner.ok()) return owner.status();
    for (int i = 0; i < std::max(1, channels); ++i) {
      grpc::ChannelArguments args;
      args.SetInt("lotse.bench.channel_index", i);
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      stubs_.push_back(v1::CasesService::NewStub(grpc::CreateCustomChannel(
          absl::GetFlag(FLAGS_target), *creds, args)));
      owner_stubs_.push_back(
          v1::CasesService::NewStub(grpc::CreateCustomChannel(
              absl::GetFlag(FLAGS_target), *owner, args)));
    }
    const int steps = absl::GetFlag(FLAGS_steps);
    for (int i = 0; i < steps; ++i) {
      Work w;
      w.name = absl::StrCat("cases/", CaseId(i / 10), "/steps/", StepId(i));
      w.etag = lotse::api::ComputeEtag(w.name, 1);
      queue_.push_back(std::move(w));
    }
    // Probe: one read per channel connects it before the clock starts.
    for (auto& stub : stubs_) {
      grpc::ClientContext context;
      Prepare(&context);
      v1::GetStepRequest req;
      req.set_name(queue_.front().name);
      v1::Step step;
      grpc::Status s = stub->GetStep(&context, req, &step);
      if (!s.ok()) {
        return absl::UnavailableError(
            absl::StrCat("probe GetStep failed: ", s.error_message()));
      }
    }
    return absl::OkStatus();
  }

  static void Prepare(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    context->AddMetadata("x-lotse-actor", "bench");
    context->AddMetadata("x-lotse-purpose", "case-management");
  }

  // Starts the next transition; `done` gets its status.
  void Next(CallDone done) {
    Work w;
    {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        done(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "bench ran out of seeded steps"));
        return;
      }
      w = std::move(queue_.front());
      queue_.pop_front();
    }
    struct Call {
      grpc::ClientContext context;
      v1::AcceptStepRequest accept;
      v1::StartStepRequest start;
      v1::CompleteStepRequest complete;
      v1::Step response;
      Work work;
    };
    auto* call = new Call;
    call->work = std::move(w);
    Prepare(&call->context);
    const uint64_t n = next_.fetch_add(1);
    v1::CasesService::Stub& stub = *stubs_[n % stubs_.size()];
    auto finish = [this, call, done](grpc::Status status) {
      if (status.ok() && call->work.stage < 2) {
        Work again = std::move(call->work);
        again.etag = call->response.etag();
        ++again.stage;
        absl::MutexLock lock(&mu_);
        queue_.push_back(std::move(again));
      }
      delete call;
      done(status);
    };
    switch (call->work.stage) {
      case 0:
        call->accept.set_name(call->work.name);
        call->accept.set_etag(call->work.etag);
        stub.async()->AcceptStep(&call->context, &call->accept, &call->response,
                                 finish);
        break;
      case 1:
        call->start.set_name(call->work.name);
        call->start.set_etag(call->work.etag);
        stub.async()->StartStep(&call->context, &call->start, &call->response,
                                finish);
        break;
      default:
        call->complete.set_name(call->work.name);
        call->complete.set_etag(call->work.etag);
        call->complete.set_outcome(v1::STEP_OUTCOME_ACHIEVED);
        stub.async()->CompleteStep(&call->context, &call->complete,
                                   &call->response, finish);
        break;
    }
  }

  // One transition, synchronously (watch mode's writer).
  grpc::Status NextSync() {
    absl::Notification finished;
    grpc::Status result;
    Next([&](const grpc::Status& s) {
      result = s;
      finished.Notify();
    });
    finished.WaitForNotification();
    return result;
  }

  v1::CasesService::Stub& owner_stub() { return *owner_stubs_.front(); }

 private:
  std::vector<std::unique_ptr<v1::CasesService::Stub>> stubs_;
  std::vector<std::unique_ptr<v1::CasesService::Stub>> owner_stubs_;
  std::atomic<uint64_t> next_{0};
  absl::Mutex mu_;
  std::deque<Work> queue_ ABSL_GUARDED_BY(mu_);
};

absl::Status Transition() {
  Client client;
  if (absl::Status s = client.Connect(absl::GetFlag(FLAGS_channels)); !s.ok()) {
    return s;
  }
  LoadOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  options.warmup = absl::Seconds(absl::GetFlag(FLAGS_warmup_s));
  absl::StatusOr<LoadResult> result = lotse::bench::RunClosedLoop(
      options, [&client](CallDone done) { client.Next(std::move(done)); });
  if (!result.ok()) return result.status();
  std::printf("transition %s\n", lotse::bench::FormatHuman(*result).c_str());
  if (!result->first_error.empty()) {
    std::printf("first error: %s\n", result->first_error.c_str());
  }
  std::printf("{\"mode\":\"transition\",%s,\"tls\":true}\n",
              lotse::bench::FormatJsonFields(*result).c_str());
  std::fflush(stdout);
  if (result->errors > 0 || result->calls == 0) {
    return absl::InternalError("run saw errors or no calls");
  }
  return absl::OkStatus();
}

int64_t MicrosOf(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000000 + ts.nanos() / 1000;
}

absl::Status Watch() {
  Client client;
  if (absl::Status s = client.Connect(1); !s.ok()) return s;
  auto creds = lotse::bench::MakeMutualTlsChannelCredentials(
      absl::GetFlag(FLAGS_tls_dir), "kim-koeln");
  if (!creds.ok()) return creds.status();
  const int watchers = absl::GetFlag(FLAGS_watchers);
  const int events = absl::GetFlag(FLAGS_events);
  // Four connections carry the streams.
  std::vector<std::unique_ptr<v1::CasesService::Stub>> stubs;
  for (int i = 0; i < 4; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("lotse.bench.watch_channel", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stubs.push_back(v1::CasesService::NewStub(
        grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), *creds, args)));
  }
  LatencyHistogram latency;
  std::atomic<int64_t> received{0};
  std::atomic<int> ready{0};
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts(watchers);
  std::vector<std::thread> threads;
  for (int w = 0; w < watchers; ++w) {
    contexts[w] = std::make_unique<grpc::ClientContext>();
    Client::Prepare(contexts[w].get());
    contexts[w]->set_deadline(std::chrono::system_clock::now() +
                              std::chrono::seconds(600));
    threads.emplace_back([&, w] {
      v1::WatchCaseEventsRequest req;
      req.set_start(v1::WATCH_START_NOW);
      auto reader =
          stubs[w % stubs.size()]->WatchCaseEvents(contexts[w].get(), req);
      ready.fetch_add(1);
      v1::WatchCaseEventsResponse r;
      int64_t mine = 0;
      while (mine < events && reader->Read(&r)) {
        if (!r.has_event()) continue;
        const int64_t now = absl::ToUnixMicros(absl::Now());
        latency.Record(
            absl::Microseconds(now - MicrosOf(r.event().occur_time())));
        ++mine;
        received.fetch_add(1);
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
  for (int i = 0; i < events; ++i) {
    absl::SleepFor(next - absl::Now());
    next += gap;
    if (!client.NextSync().ok()) ++errors;
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (received.load() < int64_t{watchers} * (events - errors) &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  for (auto& c : contexts) c->TryCancel();
  for (auto& t : threads) t.join();
  std::printf(
      "{\"mode\":\"watch\",\"watchers\":%d,\"events\":%d,\"rate\":%.0f,"
      "\"deliveries\":%lld,\"expected\":%lld,\"write_errors\":%d,"
      "\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
      watchers, events, absl::GetFlag(FLAGS_rate),
      static_cast<long long>(received.load()),
      static_cast<long long>(int64_t{watchers} * events), errors,
      absl::ToDoubleMilliseconds(latency.Quantile(0.5)),
      absl::ToDoubleMilliseconds(latency.Quantile(0.9)),
      absl::ToDoubleMilliseconds(latency.Quantile(0.99)),
      absl::ToDoubleMilliseconds(latency.Max()));
  std::fflush(stdout);
  if (errors > 0 || received.load() < int64_t{watchers} * events) {
    return absl::InternalError("watchers missed events or writes failed");
  }
  return absl::OkStatus();
}

absl::Status SeedEvents() {
  auto db = OpenMigrated();
  if (!db.ok()) return db.status();
  const int events = absl::GetFlag(FLAGS_events);
  const absl::Time start = absl::Now();
  // Multi-row inserts of the log's two tables, the same rows
  // AppendCaseEvent writes one at a time.
  constexpr int kRows = 400;
  constexpr int kPerTx = 20000;
  for (int first = 0; first < events; first += kPerTx) {
    absl::Status s = storage::RunInTransaction(
        **db, [&](storage::Transaction& tx) -> absl::Status {
          for (int base = first; base < std::min(events, first + kPerTx);
               base += kRows) {
            const int n = std::min(kRows, events - base);
            std::string ev =
                "INSERT INTO case_events (seq, event_id, case_id, person, "
                "body) VALUES ";
            std::string au =
                "INSERT INTO case_event_audience (agency, seq, case_id) "
                "VALUES ";
            std::vector<storage::Value> evp, aup;
            for (int i = 0; i < n; ++i) {
              const int64_t seq = base + i + 1;
              v1::CaseEvent e;
              e.set_cursor(seq);
              e.set_event_id(absl::StrCat("seed-", seq));
              e.set_case_name("cases/bc0");
              e.mutable_occur_time()->set_seconds(absl::ToUnixSeconds(start));
              v1::StepStateChanged* c = e.mutable_step_state_changed();
              c->set_step("cases/bc0/steps/bs0");
              c->set_case_name("cases/bc0");
              c->set_person("persons/bench-0");
              c->set_kind(v1::STEP_KIND_INTEGRATION_COURSE);
              c->set_receiving_agency(kReceiver);
              const int p = static_cast<int>(evp.size());
              absl::StrAppend(&ev, i ? "," : "", "($", p + 1, ",$", p + 2, ",$",
                              p + 3, ",$", p + 4, ",$", p + 5, ")");
              evp.push_back(seq);
              evp.push_back(e.event_id());
              evp.push_back(std::string("bc0"));
              evp.push_back(std::string("persons/bench-0"));
              evp.push_back(storage::Bytes{e.SerializeAsString()});
              const int q = static_cast<int>(aup.size());
              absl::StrAppend(&au, i ? "," : "", "($", q + 1, ",$", q + 2, ",$",
                              q + 3, ")");
              aup.push_back(std::string(kOwner));
              aup.push_back(seq);
              aup.push_back(std::string("bc0"));
            }
            if (auto r = tx.Execute(ev, evp); !r.ok()) return r.status();
            if (auto r = tx.Execute(au, aup); !r.ok()) return r.status();
          }
          return absl::OkStatus();
        });
    if (!s.ok()) return s;
  }
  // The case the events belong to, so kim-koeln participates.
  absl::Status s = storage::RunInTransaction(
      **db, [&](storage::Transaction& tx) -> absl::Status {
        lotse::cases::CaseRow row;
        row.id = CaseId(0);
        row.version = 1;
        row.record.set_person("persons/bench-0");
        row.record.set_owner_agency(kOwner);
        row.record.add_participating_agencies(kOwner);
        row.record.set_state(v1::CASE_STATE_ACTIVE);
        return lotse::cases::InsertCase(tx, row);
      });
  if (!s.ok()) return s;
  std::printf("{\"mode\":\"seed_events\",\"events\":%d,\"seconds\":%.1f}\n",
              events, absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

absl::Status Resume() {
  auto creds = lotse::bench::MakeMutualTlsChannelCredentials(
      absl::GetFlag(FLAGS_tls_dir), "kim-koeln");
  if (!creds.ok()) return creds.status();
  auto stub = v1::CasesService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_target), *creds));
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int64_t after = events - absl::GetFlag(FLAGS_missed);
  // Connect first (TLS handshake) so the figure is the service's.
  {
    grpc::ClientContext context;
    Client::Prepare(&context);
    v1::GetCaseRequest req;
    req.set_name("cases/bc0");
    v1::Case c;
    grpc::Status s = stub->GetCase(&context, req, &c);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
  }
  grpc::ClientContext context;
  Client::Prepare(&context);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(600));
  v1::WatchCaseEventsRequest req;
  req.set_after_cursor(after);
  const absl::Time start = absl::Now();
  auto reader = stub->WatchCaseEvents(&context, req);
  v1::WatchCaseEventsResponse r;
  absl::Duration first = absl::ZeroDuration();
  int64_t got = 0, expect = after + 1;
  bool in_order = true;
  while (got < events - after && reader->Read(&r)) {
    if (!r.has_event()) continue;
    if (got == 0) first = absl::Now() - start;
    in_order = in_order && r.event().cursor() == expect;
    ++expect;
    ++got;
  }
  const absl::Duration all = absl::Now() - start;
  context.TryCancel();
  reader->Finish();
  std::printf(
      "{\"mode\":\"resume\",\"stored\":%lld,\"after_cursor\":%lld,"
      "\"missed\":%lld,\"received\":%lld,\"in_order\":%s,"
      "\"first_event_ms\":%.2f,\"all_missed_ms\":%.1f,\"events_per_s\":%.0f}\n",
      static_cast<long long>(events), static_cast<long long>(after),
      static_cast<long long>(events - after), static_cast<long long>(got),
      in_order ? "true" : "false", absl::ToDoubleMilliseconds(first),
      absl::ToDoubleMilliseconds(all),
      got / std::max(1e-9, absl::ToDoubleSeconds(all)));
  std::fflush(stdout);
  if (got != events - after || !in_order) {
    return absl::InternalError(
        "resume did not deliver exactly the missed "
        "events");
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "cases service benchmarks: --mode=seed|transition|watch|seed_events|"
      "resume");
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  absl::Status status;
  if (mode == "seed") {
    status = Seed();
  } else if (mode == "transition") {
    status = Transition();
  } else if (mode == "watch") {
    status = Watch();
  } else if (mode == "seed_events") {
    status = SeedEvents();
  } else if (mode == "resume") {
    status = Resume();
  } else {
    status = absl::InvalidArgumentError("unknown --mode");
  }
  if (!status.ok()) {
    std::fprintf(stderr, "lotse_cases_bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
