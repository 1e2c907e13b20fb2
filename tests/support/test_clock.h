// A clock tests move by hand, for services that take their notion of "now"
// as a function (e.g. CoursesOptions::clock, PlacementOptions::clock).
//
// It starts at Monday 2026-03-02 09:00 UTC, a working day morning, and only
// moves when a test calls Advance. Thread-safe: the service reads it from
// its worker threads while the test advances it.
//
// Typical use:
//
//   auto clock = std::make_shared<TestClock>();
//   options.clock = clock->AsFunction();
//   ...
//   clock->Advance(absl::Hours(72));  // the holds expire
#ifndef LOTSE_TESTS_SUPPORT_TEST_CLOCK_H_
#define LOTSE_TESTS_SUPPORT_TEST_CLOCK_H_

#include <functional>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace lotse::testing {

class TestClock : public std::enable_shared_from_this<TestClock> {
 public:
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

  // Now() as a function that keeps this clock alive; the clock must be
  // owned by a std::shared_ptr.
  std::function<absl::Time()> AsFunction() {
    return [clock = shared_from_this()] { return clock->Now(); };
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromCivil(absl::CivilSecond(2026, 3, 2, 9, 0, 0),
                                    absl::UTCTimeZone());
};

}  // namespace lotse::testing

#endif  // LOTSE_TESTS_SUPPORT_TEST_CLOCK_H_
