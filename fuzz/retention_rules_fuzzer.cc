// Fuzz target: the retention rules parser (config/retention.conf,
// common/lifecycle/retention.h) and the periods of the rules that parse.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/lifecycle/retention.h"

namespace {

[[noreturn]] void Broken(const char* what, int line) {
  std::fprintf(stderr, "retention invariant broken (rule of line %d): %s\n",
               line, what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<lotse::lifecycle::RetentionRules> rules =
      lotse::lifecycle::RetentionRules::Parse(text);
  if (!rules.ok()) {
    if (rules.status().code() != absl::StatusCode::kInvalidArgument) {
      std::fprintf(stderr, "unexpected parse status: %s\n",
                   rules.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  const absl::Time now = absl::FromUnixSeconds(1767225600);  // 2026-01-01
  for (const lotse::lifecycle::RetentionRule& r : rules->rules()) {
    const int set = (r.days != 0) + (r.months != 0) + (r.years != 0);
    if (set != 1 || r.days < 0 || r.months < 0 || r.years < 0) {
      Broken("not exactly one positive period", r.line);
    }
    if (rules->Find(r.kind) != &r) Broken("rule not found by kind", r.line);
    if (r.basis.empty()) Broken("no basis", r.line);
    if (r.PeriodText().empty()) Broken("no period text", r.line);
    if (!(r.Cutoff(now) < now)) Broken("cutoff not before now", r.line);
    if (!(r.DueAt(now) > now)) Broken("due time not after the anchor", r.line);
  }
  return 0;
}
