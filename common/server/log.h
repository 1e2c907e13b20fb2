// Structured operational logging: one JSON object per line on stderr, for
// log collectors. These logs are not the audit trail and must never carry
// personal data — only ids of agencies and resources, codes and timings.
#ifndef LOTSE_COMMON_SERVER_LOG_H_
#define LOTSE_COMMON_SERVER_LOG_H_

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lotse::server {

using LogValue = std::variant<std::string, int64_t, double, bool>;
using LogFields = std::vector<std::pair<std::string, LogValue>>;

enum class LogLevel { kInfo, kWarning, kError };

// Writes {"ts":..., "level":..., "msg":..., <fields>} as one line.
// Thread-safe; lines from different threads never interleave.
void Log(LogLevel level, absl::string_view message,
         const LogFields& fields = {});

// Lets one log line through per `interval` and counts those it held back,
// for conditions that may repeat on every call (refusals under overload):
// the log then grows by at most one line per interval however many calls
// there are. Thread-safe.
class LogThrottle {
 public:
  explicit LogThrottle(absl::Duration interval) : interval_(interval) {}

  // True when a line may be written at `now`; `held_back` is then set to
  // how many were held back since the last line that was let through.
  bool Allow(absl::Time now, int64_t* held_back);

 private:
  const absl::Duration interval_;
  absl::Mutex mu_;
  absl::Time last_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t held_back_ ABSL_GUARDED_BY(mu_) = 0;
};

// JSON string escaping, exposed for tests.
std::string JsonEscape(absl::string_view s);

// Renders a log line without writing it (exposed for tests).
std::string FormatLogLine(LogLevel level, absl::string_view message,
                          const LogFields& fields);

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_LOG_H_
