#include "common/api/time.h"

#include <cstdint>

#include "absl/time/clock.h"

namespace lotse::api {

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rest = micros % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  google::protobuf::Timestamp ts;
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rest * 1000));
  return ts;
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

namespace {
// InfinitePast: no scope is open on this thread.
thread_local absl::Time dev_clock = absl::InfinitePast();
}  // namespace

absl::Time StoreNow() {
  const absl::Time now =
      dev_clock == absl::InfinitePast() ? absl::Now() : dev_clock;
  return absl::FromUnixMicros(absl::ToUnixMicros(now));
}

DevClockScope::DevClockScope(absl::Time at) : previous_(dev_clock) {
  dev_clock = at;
}

DevClockScope::~DevClockScope() { dev_clock = previous_; }

absl::Time DevClockScope::Current() { return dev_clock; }

}  // namespace lotse::api
