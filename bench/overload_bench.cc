// lotse_overload_bench: open-loop CreatePerson calls to lotse_identity as one
// agency, at a fixed rate whatever the answers are — a well-behaved agency
// (--mode=probe, a share of the capacity, latency measured) or a flooding
// one (--mode=flood, a multiple of the capacity, ignoring retry delays).
// bench/run_overload_bench.sh runs both at once against a service with and
// without per-agency limits (common/server/agency_limits.h).
//
// Open loop: calls start on a clock, not when earlier ones answer, so a
// slow server does not slow the sender down (a closed loop would hide the
// queueing the flood causes). At most --max_outstanding calls are in the
// air; a call due beyond that is not sent and counted as `skipped`.
//
// Prints one JSON line: calls sent, answered OK, refused by reason
// (AGENCY_RATE_LIMITED, AGENCY_TOO_MANY_IN_FLIGHT, SERVER_OVERLOADED), other
// errors, skipped, and latency percentiles of the OK calls that started
// after the warm-up. Exit 1 when set-up fails, or in probe mode when any
// call failed.

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/load.h"
#include "bench/internal/tls.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"

ABSL_FLAG(std::string, mode, "probe", "probe or flood (only the label).");
ABSL_FLAG(std::string, target, "127.0.0.1:50051", "lotse_identity address.");
ABSL_FLAG(std::string, tls_dir, "", "A tools/dev-pki.sh directory.");
ABSL_FLAG(std::string, client, "kim-koeln",
          "Client certificate (the calling agency) under <tls_dir>/clients/.");
ABSL_FLAG(double, rate, 100, "Calls started per second.");
ABSL_FLAG(double, duration_s, 10, "Seconds measured, after the warm-up.");
ABSL_FLAG(double, warmup_s, 1, "Seconds of calls before measuring.");
ABSL_FLAG(int, channels, 1, "Connections the calls are spread over.");
ABSL_FLAG(int, max_outstanding, 4096, "Calls in the air at most.");
ABSL_FLAG(int, rpc_timeout_ms, 5000, "Deadline of each call.");
ABSL_FLAG(uint64_t, seed, 1, "Makes the persons of two senders differ.");

namespace lotse::bench {
namespace {

namespace v1 = ::lotse::identity::v1;

struct Counts {
  std::atomic<int64_t> sent{0};
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> rate_limited{0};
  std::atomic<int64_t> in_flight_limited{0};
  std::atomic<int64_t> overloaded{0};
  std::atomic<int64_t> other_errors{0};
  std::atomic<int64_t> skipped{0};
  std::atomic<int64_t> outstanding{0};
  absl::Mutex mu;
  std::string first_error ABSL_GUARDED_BY(mu);
};

struct Sender {
  std::vector<std::unique_ptr<v1::IdentityService::Stub>> stubs;
  absl::Duration timeout;
  uint64_t seed = 1;
  std::string run_id;
  absl::Time measure_from;
  LatencyHistogram latency;
  Counts counts;
};

// The ErrorInfo reason of a failed call, or "".
std::string ReasonOf(const grpc::Status& status) {
  google::rpc::Status rich;
  if (status.error_details().empty() ||
      !rich.ParseFromString(status.error_details())) {
    return "";
  }
  for (const auto& any : rich.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

// A person no other call sends: names drawn from the call's number, so
// duplicate search has real, varied work to do.
v1::Person PersonFor(uint64_t seed, uint64_t n) {
  static constexpr const char* kGiven[] = {
      "Amira", "Yusuf",  "Olena", "Dmytro", "Fatima", "Ahmad", "Leyla",
      "Karim", "Mariam", "Bilal", "Nadia",  "Omar",   "Sara",  "Tariq"};
  uint64_t x =
      (seed + 1) * 0x9e3779b97f4a7c15ULL ^ (n + 1) * 0xbf58476d1ce4e5b9ULL;
  std::string family;
  for (int i = 0; i < 7; ++i) {
    x ^= x >> 31;
    x *= 0x94d049bb133111ebULL;
    family.push_back(static_cast<char>((i == 0 ? 'A' : 'a') + x % 26));
  }
  v1::Person person;
  v1::PersonName* name = person.add_names();
  name->set_given_names(kGiven[x % (sizeof(kGiven) / sizeof(kGiven[0]))]);
  name->set_family_names(family);
  name->set_script("Latn");
  name->set_kind(v1::NAME_KIND_CURRENT);
  person.mutable_birth_date()->set_year(1960 + static_cast<int>(x % 50));
  person.mutable_birth_date()->set_month(1 + static_cast<int>((x >> 8) % 12));
  person.mutable_birth_date()->set_day(1 + static_cast<int>((x >> 16) % 28));
  person.set_sex((x >> 24) % 2 ? v1::SEX_FEMALE : v1::SEX_MALE);
  person.add_nationality_codes("SY");
  person.set_nationality_status(v1::NATIONALITY_STATUS_KNOWN);
  return person;
}

void StartCall(const std::shared_ptr<Sender>& sender, uint64_t n) {
  struct Call {
    grpc::ClientContext context;
    v1::CreatePersonRequest request;
    v1::Person response;
    absl::Time start;
  };
  auto* call = new Call;
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + sender->timeout));
  call->context.AddMetadata("x-lotse-actor", "bench");
  call->context.AddMetadata("x-lotse-purpose", "benchmark");
  call->request.set_request_id(
      absl::StrCat("overload-", sender->run_id, "-", n));
  *call->request.mutable_person() = PersonFor(sender->seed, n);
  call->request.set_confirm_new_person(true);
  call->start = absl::Now();
  sender->counts.outstanding.fetch_add(1);
  sender->counts.sent.fetch_add(1);
  v1::IdentityService::Stub& stub = *sender->stubs[n % sender->stubs.size()];
  stub.async()->CreatePerson(
      &call->context, &call->request, &call->response,
      [sender, call](grpc::Status status) {
        Counts& c = sender->counts;
        if (status.ok()) {
          c.ok.fetch_add(1);
          if (call->start >= sender->measure_from) {
            sender->latency.Record(absl::Now() - call->start);
          }
        } else {
          const std::string reason = ReasonOf(status);
          if (reason == "AGENCY_RATE_LIMITED") {
            c.rate_limited.fetch_add(1);
          } else if (reason == "AGENCY_TOO_MANY_IN_FLIGHT") {
            c.in_flight_limited.fetch_add(1);
          } else if (reason == "SERVER_OVERLOADED") {
            c.overloaded.fetch_add(1);
          } else {
            c.other_errors.fetch_add(1);
            absl::MutexLock lock(&c.mu);
            if (c.first_error.empty()) {
              c.first_error = absl::StrCat(StatusCodeName(status.error_code()),
                                           ": ", status.error_message(),
                                           reason.empty() ? "" : " ", reason);
            }
          }
        }
        delete call;
        c.outstanding.fetch_sub(1);
      });
}

absl::Status Run() {
  const std::string tls_dir = absl::GetFlag(FLAGS_tls_dir);
  if (tls_dir.empty())
    return absl::InvalidArgumentError("--tls_dir is required");
  const double rate = absl::GetFlag(FLAGS_rate);
  if (!(rate > 0)) return absl::InvalidArgumentError("--rate must be positive");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeMutualTlsChannelCredentials(tls_dir, absl::GetFlag(FLAGS_client));
  if (!credentials.ok()) return credentials.status();
  auto sender = std::make_shared<Sender>();
  sender->timeout = absl::Milliseconds(absl::GetFlag(FLAGS_rpc_timeout_ms));
  sender->seed = absl::GetFlag(FLAGS_seed);
  sender->run_id = absl::StrCat(absl::ToUnixMicros(absl::Now()));
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_channels)); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("lotse.bench.channel_index", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target),
                                             *credentials, args);
    if (!channel->WaitForConnected(
            absl::ToChronoTime(absl::Now() + absl::Seconds(10)))) {
      return absl::UnavailableError("cannot connect to the service");
    }
    sender->stubs.push_back(v1::IdentityService::NewStub(channel));
  }

  const int64_t max_outstanding = absl::GetFlag(FLAGS_max_outstanding);
  const absl::Time start = absl::Now();
  sender->measure_from = start + absl::Seconds(absl::GetFlag(FLAGS_warmup_s));
  const absl::Time end =
      sender->measure_from + absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  uint64_t due_sent = 0;
  for (absl::Time now = start; now < end; now = absl::Now()) {
    const auto due =
        static_cast<uint64_t>(absl::ToDoubleSeconds(now - start) * rate);
    for (; due_sent < due; ++due_sent) {
      if (sender->counts.outstanding.load() >= max_outstanding) {
        sender->counts.skipped.fetch_add(1);
        continue;
      }
      StartCall(sender, due_sent);
    }
    absl::SleepFor(absl::Microseconds(200));
  }
  const absl::Time drain_until =
      absl::Now() + sender->timeout + absl::Seconds(5);
  while (sender->counts.outstanding.load() > 0 && absl::Now() < drain_until) {
    absl::SleepFor(absl::Milliseconds(10));
  }

  Counts& c = sender->counts;
  std::string first_error;
  {
    absl::MutexLock lock(&c.mu);
    first_error = c.first_error;
  }
  const LatencyHistogram& h = sender->latency;
  for (char& ch : first_error) {
    if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) {
      ch = '\'';
    }
  }
  absl::PrintF(
      "{\"mode\":\"%s\",\"client\":\"%s\",\"rate\":%.1f,\"sent\":%d,"
      "\"ok\":%d,\"rate_limited\":%d,\"in_flight_limited\":%d,"
      "\"overloaded\":%d,\"other_errors\":%d,\"skipped\":%d,"
      "\"unanswered\":%d,\"measured\":%d,\"p50_us\":%.0f,\"p90_us\":%.0f,"
      "\"p99_us\":%.0f,\"max_us\":%.0f,\"first_error\":\"%s\"}\n",
      absl::GetFlag(FLAGS_mode), absl::GetFlag(FLAGS_client), rate,
      c.sent.load(), c.ok.load(), c.rate_limited.load(),
      c.in_flight_limited.load(), c.overloaded.load(), c.other_errors.load(),
      c.skipped.load(), c.outstanding.load(), h.Count(),
      absl::ToDoubleMicroseconds(h.Quantile(0.5)),
      absl::ToDoubleMicroseconds(h.Quantile(0.9)),
      absl::ToDoubleMicroseconds(h.Quantile(0.99)),
      absl::ToDoubleMicroseconds(h.Max()), first_error);
  std::fflush(stdout);
  if (absl::GetFlag(FLAGS_mode) == "probe" && c.ok.load() != c.sent.load()) {
    return absl::InternalError(absl::StrCat(
        "the well-behaved agency saw ", c.sent.load() - c.ok.load(),
        " failed or unanswered calls; first: ", first_error));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace lotse::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::Status status = lotse::bench::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "lotse_overload_bench: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
