#include "common/clients/internal/circuit_breaker.h"

#include <utility>

namespace lotse::clients::internal {

CircuitBreaker::CircuitBreaker(Options options,
                               std::function<absl::Time()> clock)
    : options_(options), clock_(std::move(clock)) {}

bool CircuitBreaker::Allow() {
  absl::MutexLock lock(&mu_);
  if (options_.failures_to_open <= 0 || failures_ < options_.failures_to_open) {
    return true;
  }
  if (trial_out_ || clock_() < open_until_) return false;
  trial_out_ = true;
  return true;
}

void CircuitBreaker::Record(bool answered) {
  bool was_open = false;
  bool is_open = false;
  {
    absl::MutexLock lock(&mu_);
    const bool can_open = options_.failures_to_open > 0;
    was_open = can_open && failures_ >= options_.failures_to_open;
    trial_out_ = false;
    if (answered) {
      failures_ = 0;
    } else {
      ++failures_;
      if (can_open && failures_ >= options_.failures_to_open) {
        open_until_ = clock_() + options_.open_for;
      }
    }
    is_open = can_open && failures_ >= options_.failures_to_open;
  }
  if (was_open != is_open && options_.on_change) options_.on_change(is_open);
}

bool CircuitBreaker::open() const {
  absl::MutexLock lock(&mu_);
  return options_.failures_to_open > 0 &&
         failures_ >= options_.failures_to_open;
}

}  // namespace lotse::clients::internal
