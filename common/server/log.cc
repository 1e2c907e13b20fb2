#include "common/server/log.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lotse::server {

std::string JsonEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

std::string FormatLogLine(LogLevel level, absl::string_view message,
                          const LogFields& fields) {
  const char* level_name = level == LogLevel::kInfo      ? "info"
                           : level == LogLevel::kWarning ? "warning"
                                                         : "error";
  std::string line =
      absl::StrCat("{\"ts\":\"",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   "\",\"level\":\"", level_name, "\",\"msg\":\"",
                   JsonEscape(message), "\"");
  for (const auto& [key, value] : fields) {
    absl::StrAppend(&line, ",\"", JsonEscape(key), "\":");
    if (const auto* s = std::get_if<std::string>(&value)) {
      absl::StrAppend(&line, "\"", JsonEscape(*s), "\"");
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      absl::StrAppend(&line, *i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      absl::StrAppendFormat(&line, "%.3f", *d);
    } else {
      absl::StrAppend(&line, std::get<bool>(value) ? "true" : "false");
    }
  }
  line += "}\n";
  return line;
}

void Log(LogLevel level, absl::string_view message, const LogFields& fields) {
  std::string line = FormatLogLine(level, message, fields);
  // One fwrite of a whole line: stdio locks the stream per call, so lines
  // from concurrent threads never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

bool LogThrottle::Allow(absl::Time now, int64_t* held_back) {
  absl::MutexLock lock(&mu_);
  if (now - last_ < interval_) {
    ++held_back_;
    return false;
  }
  last_ = now;
  *held_back = held_back_;
  held_back_ = 0;
  return true;
}

}  // namespace lotse::server
