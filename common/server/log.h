// Structured operational logging: one JSON object per line on stderr, for
// log collectors. These logs are not the audit trail and must never carry
// personal data — only ids of agencies and resources, codes and timings.
#ifndef LOTSE_COMMON_SERVER_LOG_H_
#define LOTSE_COMMON_SERVER_LOG_H_

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"

namespace lotse::server {

using LogValue = std::variant<std::string, int64_t, double, bool>;
using LogFields = std::vector<std::pair<std::string, LogValue>>;

enum class LogLevel { kInfo, kWarning, kError };

// Writes {"ts":..., "level":..., "msg":..., <fields>} as one line.
// Thread-safe; lines from different threads never interleave.
void Log(LogLevel level, absl::string_view message,
         const LogFields& fields = {});

// JSON string escaping, exposed for tests.
std::string JsonEscape(absl::string_view s);

// Renders a log line without writing it (exposed for tests).
std::string FormatLogLine(LogLevel level, absl::string_view message,
                          const LogFields& fields);

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_LOG_H_
