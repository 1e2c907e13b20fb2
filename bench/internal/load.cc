#include "bench/internal/load.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace lotse::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxNanos =
    (uint64_t{1} << LatencyHistogram::kMaxValueBits) - 1;

int MostSignificantBit(uint64_t v) { return 63 - __builtin_clzll(v); }

absl::Duration FromNanos(uint64_t nanos) {
  return absl::Nanoseconds(static_cast<int64_t>(nanos));
}

double Micros(absl::Duration d) { return absl::ToDoubleMicroseconds(d); }

// Shared between the driver and every in-flight call. Held by shared_ptr so a
// call that outlives the drain timeout still finds valid state when it
// completes.
class LoopState : public std::enable_shared_from_this<LoopState> {
 public:
  LoopState(StartCall start, const LoadOptions& options, int slots)
      : start_(std::move(start)), options_(options), active_slots_(slots) {
    for (auto& c : errors_by_code_) c.store(0, std::memory_order_relaxed);
  }

  void SetWindow(Clock::time_point begin, Clock::time_point end) {
    window_begin_ = begin;
    window_end_ = end;
  }

  void Launch() {
    const Clock::time_point started = Clock::now();
    start_([self = shared_from_this(), started](const grpc::Status& status) {
      self->OnDone(started, status);
    });
  }

  // Waits until every slot has retired or `deadline` passes; returns the
  // number of slots still active and the time the last one retired.
  int WaitForSlots(Clock::time_point deadline,
                   Clock::time_point* last_retired) {
    absl::MutexLock lock(&mu_);
    const absl::Duration timeout = absl::FromChrono(deadline - Clock::now());
    mu_.AwaitWithTimeout(absl::Condition(this, &LoopState::AllRetired),
                         timeout);
    *last_retired = last_retired_;
    return active_slots_;
  }

  void Fill(LoadResult* result) {
    result->errors = errors_.load();
    for (size_t i = 0; i < errors_by_code_.size(); ++i) {
      result->errors_by_code[i] = errors_by_code_[i].load();
    }
    absl::MutexLock lock(&mu_);
    result->first_error = first_error_;
  }

  const LatencyHistogram& histogram() const { return histogram_; }

 private:
  void OnDone(Clock::time_point started, const grpc::Status& status) {
    const Clock::time_point now = Clock::now();
    if (!status.ok()) {
      RecordError(status);
      if (options_.stop_slot_on_error) {
        Retire(now);
        return;
      }
    } else if (now >= window_begin_ && now < window_end_) {
      histogram_.Record(absl::FromChrono(now - started));
    }
    if (now < window_end_) {
      Launch();
    } else {
      Retire(now);
    }
  }

  void RecordError(const grpc::Status& status) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    const int code = static_cast<int>(status.error_code());
    if (code >= 0 && code < static_cast<int>(errors_by_code_.size())) {
      errors_by_code_[code].fetch_add(1, std::memory_order_relaxed);
    }
    absl::MutexLock lock(&mu_);
    if (first_error_.empty()) {
      first_error_ =
          absl::StrCat(StatusCodeName(code), ": ", status.error_message());
    }
  }

  void Retire(Clock::time_point now) {
    absl::MutexLock lock(&mu_);
    --active_slots_;
    last_retired_ = std::max(last_retired_, now);
  }

  bool AllRetired() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return active_slots_ == 0;
  }

  const StartCall start_;
  const LoadOptions options_;
  // Written once before the first call starts, read-only afterwards.
  Clock::time_point window_begin_;
  Clock::time_point window_end_;

  LatencyHistogram histogram_;
  std::atomic<int64_t> errors_{0};
  std::array<std::atomic<int64_t>, 17> errors_by_code_;

  absl::Mutex mu_;
  int active_slots_ ABSL_GUARDED_BY(mu_);
  Clock::time_point last_retired_ ABSL_GUARDED_BY(mu_);
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

LatencyHistogram::LatencyHistogram() {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
}

// Values below 2^kSubBucketBits get one bucket each; above, every power of two
// is split into kSubBuckets equal buckets. With shift = max(0, msb - bits),
// index = shift * kSubBuckets + (v >> shift) is contiguous and monotonic.
int LatencyHistogram::BucketIndex(uint64_t nanos) {
  const uint64_t v = std::min(nanos, kMaxNanos);
  if (v < static_cast<uint64_t>(kSubBuckets)) return static_cast<int>(v);
  const int shift = MostSignificantBit(v) - kSubBucketBits;
  return shift * kSubBuckets + static_cast<int>(v >> shift);
}

uint64_t LatencyHistogram::BucketLow(int index) {
  if (index < 2 * kSubBuckets) return static_cast<uint64_t>(index);
  const int shift = index / kSubBuckets - 1;
  const uint64_t mantissa = static_cast<uint64_t>(index - shift * kSubBuckets);
  return mantissa << shift;
}

uint64_t LatencyHistogram::BucketHigh(int index) {
  if (index < 2 * kSubBuckets) return static_cast<uint64_t>(index);
  const int shift = index / kSubBuckets - 1;
  const uint64_t mantissa = static_cast<uint64_t>(index - shift * kSubBuckets);
  return ((mantissa + 1) << shift) - 1;
}

void LatencyHistogram::Record(absl::Duration latency) {
  const int64_t ns = absl::ToInt64Nanoseconds(latency);
  const uint64_t v =
      ns < 0 ? 0 : std::min(static_cast<uint64_t>(ns), kMaxNanos);
  counts_[BucketIndex(v)].fetch_add(1, std::memory_order_relaxed);
  total_.fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(v, std::memory_order_relaxed);
  uint64_t seen = max_nanos_.load(std::memory_order_relaxed);
  while (v > seen && !max_nanos_.compare_exchange_weak(
                         seen, v, std::memory_order_relaxed)) {
  }
}

int64_t LatencyHistogram::Count() const {
  return total_.load(std::memory_order_relaxed);
}

absl::Duration LatencyHistogram::Quantile(double q) const {
  const int64_t total = Count();
  if (total == 0) return absl::ZeroDuration();
  q = std::clamp(q, 0.0, 1.0);
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * total)));
  int64_t seen = 0;
  for (int i = 0; i < kNumBuckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      const uint64_t mid = BucketLow(i) + (BucketHigh(i) - BucketLow(i)) / 2;
      return FromNanos(std::min(mid, max_nanos_.load()));
    }
  }
  return Max();
}

absl::Duration LatencyHistogram::Mean() const {
  const int64_t total = Count();
  if (total == 0) return absl::ZeroDuration();
  return FromNanos(sum_nanos_.load() / static_cast<uint64_t>(total));
}

absl::Duration LatencyHistogram::Max() const {
  return FromNanos(max_nanos_.load());
}

absl::StatusOr<LoadResult> RunClosedLoop(const LoadOptions& options,
                                         StartCall start) {
  if (options.concurrency < 1) {
    return absl::InvalidArgumentError("concurrency must be at least 1");
  }
  if (options.duration <= absl::ZeroDuration() ||
      options.warmup < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "duration must be positive and warmup not negative");
  }
  if (!start) return absl::InvalidArgumentError("no StartCall given");

  auto state = std::make_shared<LoopState>(std::move(start), options,
                                           options.concurrency);
  const Clock::time_point begin =
      Clock::now() + absl::ToChronoNanoseconds(options.warmup);
  const Clock::time_point end =
      begin + absl::ToChronoNanoseconds(options.duration);
  state->SetWindow(begin, end);
  for (int i = 0; i < options.concurrency; ++i) state->Launch();

  Clock::time_point last_retired;
  const int still_active = state->WaitForSlots(
      end + absl::ToChronoNanoseconds(options.drain_timeout), &last_retired);

  LoadResult result;
  state->Fill(&result);
  result.abandoned = still_active;
  // If every slot stopped early (errors), the window ends with the last one.
  const Clock::time_point window_end =
      still_active == 0 ? std::min(end, last_retired) : end;
  result.window = window_end > begin ? absl::FromChrono(window_end - begin)
                                     : absl::ZeroDuration();
  const LatencyHistogram& h = state->histogram();
  result.calls = h.Count();
  const double seconds = absl::ToDoubleSeconds(result.window);
  result.qps = seconds > 0 ? static_cast<double>(result.calls) / seconds : 0;
  result.p50_us = Micros(h.Quantile(0.50));
  result.p90_us = Micros(h.Quantile(0.90));
  result.p99_us = Micros(h.Quantile(0.99));
  result.p999_us = Micros(h.Quantile(0.999));
  result.mean_us = Micros(h.Mean());
  result.max_us = Micros(h.Max());
  return result;
}

std::string StatusCodeName(int code) {
  static constexpr const char* kNames[] = {
      "OK",
      "CANCELLED",
      "UNKNOWN",
      "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED",
      "NOT_FOUND",
      "ALREADY_EXISTS",
      "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION",
      "ABORTED",
      "OUT_OF_RANGE",
      "UNIMPLEMENTED",
      "INTERNAL",
      "UNAVAILABLE",
      "DATA_LOSS",
      "UNAUTHENTICATED",
  };
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) {
    return kNames[code];
  }
  return absl::StrCat("CODE_", code);
}

std::string FormatHuman(const LoadResult& r) {
  std::string errors = absl::StrCat(r.errors, " errors");
  for (size_t code = 0; code < r.errors_by_code.size(); ++code) {
    if (r.errors_by_code[code] > 0) {
      absl::StrAppend(&errors, " ", StatusCodeName(static_cast<int>(code)), "=",
                      r.errors_by_code[code]);
    }
  }
  return absl::StrFormat(
      "%.1f qps over %.2f s, latency p50 %.0f us, p90 %.0f us, p99 %.0f us, "
      "p99.9 %.0f us, max %.0f us, %d calls, %s",
      r.qps, absl::ToDoubleSeconds(r.window), r.p50_us, r.p90_us, r.p99_us,
      r.p999_us, r.max_us, r.calls, errors);
}

std::string FormatJsonFields(const LoadResult& r) {
  return absl::StrFormat(
      R"("qps":%.1f,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,)"
      R"("p999_us":%.1f,"mean_us":%.1f,"max_us":%.1f,"calls":%d,"errors":%d,)"
      R"("window_s":%.3f)",
      r.qps, r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.mean_us, r.max_us,
      r.calls, r.errors, absl::ToDoubleSeconds(r.window));
}

}  // namespace lotse::bench
