// Timestamps at the API edge. The stores keep Unix microseconds, so a time
// converted with these functions survives the round trip through a store
// and back unchanged (DESIGN.md section 6: times are UTC instants).
#ifndef LOTSE_COMMON_API_TIME_H_
#define LOTSE_COMMON_API_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace lotse::api {

// `t` truncated to whole microseconds (towards the past for times before
// 1970), as a protobuf Timestamp.
google::protobuf::Timestamp ToTimestamp(absl::Time t);

// The instant `ts` names, to the nanosecond. No range check: validate
// client-supplied timestamps before converting them.
absl::Time FromTimestamp(const google::protobuf::Timestamp& ts);

// Now, truncated to whole microseconds, so it equals what a store will
// give back for it. Inside a DevClockScope on the calling thread: the
// scope's time instead.
absl::Time StoreNow();

// Makes StoreNow() on the current thread return `at` (truncated to whole
// microseconds) until the scope ends; scopes nest. The server runtime opens
// one around a call that carries x-lotse-dev-time metadata, which a service
// honours only when started with --dev_clock (development: it lets the demo
// seed write months of history through the public API). Only the business
// times a service stores come from StoreNow(); audit records, deadlines and
// retention keep the real clock, so a backdated record is visible as such
// in the audit trail.
class DevClockScope {
 public:
  explicit DevClockScope(absl::Time at);
  ~DevClockScope();
  // The time of the innermost scope open on this thread, InfinitePast()
  // when none is. Code that hands work to another thread (a group
  // committer) opens a scope with it there.
  static absl::Time Current();

  DevClockScope(const DevClockScope&) = delete;
  DevClockScope& operator=(const DevClockScope&) = delete;

 private:
  absl::Time previous_;
};

}  // namespace lotse::api

#endif  // LOTSE_COMMON_API_TIME_H_
