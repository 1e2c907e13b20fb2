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
// give back for it.
absl::Time StoreNow();

}  // namespace lotse::api

#endif  // LOTSE_COMMON_API_TIME_H_
