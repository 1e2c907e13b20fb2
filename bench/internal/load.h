// Closed-loop load driver and latency histogram shared by Lotse benchmarks.
//
// The driver knows nothing about the RPC it drives: a benchmark hands it a
// function that starts one asynchronous call and reports its grpc::Status.
// The echo baseline (bench/load_generator.cc) uses it for EchoService.Echo;
// later benchmarks (e.g. step transitions in the cases service) reuse it so
// their figures are measured exactly the same way as the baseline.
#ifndef LOTSE_BENCH_INTERNAL_LOAD_H_
#define LOTSE_BENCH_INTERNAL_LOAD_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"

namespace lotse::bench {

// A log-linear latency histogram over nanoseconds with bounded memory
// (about 18 KiB regardless of the number of samples) and a relative error
// below 1/64 (~1.6%) per recorded value. Record() is lock-free and safe to
// call from many threads at once, which suits gRPC callback threads.
class LatencyHistogram {
 public:
  LatencyHistogram();
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  // Records one sample. Negative values count as 0; values above ~18 minutes
  // are clamped into the top bucket.
  void Record(absl::Duration latency);

  // Number of recorded samples.
  int64_t Count() const;

  // The value at quantile q in [0, 1] (e.g. 0.99), as the midpoint of the
  // bucket holding it, clamped to the exact observed maximum. Zero when empty.
  absl::Duration Quantile(double q) const;

  // Exact arithmetic mean and maximum of the recorded samples.
  absl::Duration Mean() const;
  absl::Duration Max() const;

  // Bucket geometry, exposed for tests.
  static int BucketIndex(uint64_t nanos);
  static uint64_t BucketLow(int index);
  static uint64_t BucketHigh(int index);

  static constexpr int kSubBucketBits = 6;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  // Values are clamped to 2^40 ns (about 18 minutes); no RPC we measure lives
  // that long, and the cap keeps the array small.
  static constexpr int kMaxValueBits = 40;
  static constexpr int kNumBuckets =
      (kMaxValueBits - kSubBucketBits) * kSubBuckets + kSubBuckets;

 private:
  std::array<std::atomic<int64_t>, kNumBuckets> counts_;
  std::atomic<int64_t> total_{0};
  std::atomic<uint64_t> sum_nanos_{0};
  std::atomic<uint64_t> max_nanos_{0};
};

// Invoked exactly once per started call, with the call's final status.
using CallDone = std::function<void(const grpc::Status&)>;

// Starts one asynchronous call and arranges for `done` to run when it
// finishes. Must not block, and must not invoke `done` before returning
// unless the call failed (synchronous successes would recurse without bound).
// It is called from the driver's thread and from gRPC callback threads
// concurrently, so it must be thread-safe.
using StartCall = std::function<void(CallDone done)>;

struct LoadOptions {
  // Calls kept in flight at all times (closed loop: each completion starts the
  // next call on the same slot).
  int concurrency = 64;
  // Completions during warm-up are neither timed nor counted, so connection
  // set-up, TLS handshakes and cold caches do not skew the figures.
  absl::Duration warmup = absl::Seconds(1);
  // Length of the measurement window that follows the warm-up.
  absl::Duration duration = absl::Seconds(10);
  // How long to wait for calls still in flight when the window closes before
  // giving up (their callbacks stay safe; they are just not waited for).
  absl::Duration drain_timeout = absl::Seconds(30);
  // A slot whose call failed stops issuing calls. This keeps a dead server
  // from turning the run into a busy loop of instant failures; since any
  // error fails the run anyway, lost concurrency does not matter.
  bool stop_slot_on_error = true;
};

struct LoadResult {
  // Successful calls that completed inside the measurement window.
  int64_t calls = 0;
  // Failed calls over the whole run (warm-up and drain included), because a
  // failure anywhere means the figures cannot be trusted.
  int64_t errors = 0;
  // Failed calls by grpc::StatusCode (index = code).
  std::array<int64_t, 17> errors_by_code{};
  // "CODE: message" of the first failure, empty if none.
  std::string first_error;
  // Measured window length actually used for qps (shorter than requested if
  // every slot stopped early).
  absl::Duration window;
  double qps = 0;
  double p50_us = 0;
  double p90_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  double mean_us = 0;
  double max_us = 0;
  // Calls still in flight when the drain timeout expired.
  int64_t abandoned = 0;
};

// Runs the closed loop: keeps options.concurrency calls in flight for
// warmup + duration, then waits for the stragglers. Returns an error only for
// invalid options; call failures are reported in LoadResult::errors.
absl::StatusOr<LoadResult> RunClosedLoop(const LoadOptions& options,
                                         StartCall start);

// A human-readable summary such as
// "12345.6 qps, p50 1.2 ms, p90 ..., 123456 calls, 0 errors".
std::string FormatHuman(const LoadResult& result);

// The result's fields as the inside of a JSON object (no braces), e.g.
// "qps":12345.6,"p50_us":...; callers add their own fields around it.
std::string FormatJsonFields(const LoadResult& result);

// Name of a grpc::StatusCode, e.g. "UNAVAILABLE".
std::string StatusCodeName(int code);

}  // namespace lotse::bench

#endif  // LOTSE_BENCH_INTERNAL_LOAD_H_
