// A circuit breaker for calls to another service: after a run of calls the
// peer did not answer, further calls are refused at once for a while
// instead of each waiting out its own deadline; then one trial call at a
// time goes out, and the first answered trial closes the breaker.
//
// Thread-safe. Every call Allow() lets out must be followed by exactly one
// Record() of its outcome.
#ifndef LOTSE_COMMON_CLIENTS_INTERNAL_CIRCUIT_BREAKER_H_
#define LOTSE_COMMON_CLIENTS_INTERNAL_CIRCUIT_BREAKER_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lotse::clients::internal {

class CircuitBreaker {
 public:
  struct Options {
    // Unanswered calls in a row that open the breaker; 0 never opens it.
    int failures_to_open = 5;
    // How long an open breaker refuses every call before it lets a trial
    // call out; also after each unanswered trial.
    absl::Duration open_for = absl::Seconds(1);
    // Called with true when the breaker opens and with false when an
    // answered call closes it again, outside the breaker's lock; may be
    // empty. For logs: it must be quick.
    std::function<void(bool open)> on_change;
  };

  explicit CircuitBreaker(Options options,
                          std::function<absl::Time()> clock = &absl::Now);

  // Whether a call may go out now: always while closed; while open, false
  // until open_for has passed since the last unanswered call, then true for
  // one trial call at a time.
  bool Allow() ABSL_LOCKS_EXCLUDED(mu_);

  // The outcome of a call Allow() let out: `answered` when the peer
  // answered (with any status of its own), false when it could not be
  // reached or did not answer in time.
  void Record(bool answered) ABSL_LOCKS_EXCLUDED(mu_);

  // Whether calls are being refused (open, or a trial is out).
  bool open() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const Options options_;
  const std::function<absl::Time()> clock_;
  mutable absl::Mutex mu_;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time open_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool trial_out_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lotse::clients::internal

#endif  // LOTSE_COMMON_CLIENTS_INTERNAL_CIRCUIT_BREAKER_H_
