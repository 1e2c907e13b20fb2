// Per-agency admission limits: how many calls one agency may have in flight
// and how fast it may send them (a token bucket: `rate` calls per second
// on average, up to `burst` at once after a quiet spell). Every unary RPC of
// every service is admitted here once, right after the caller is known from
// its certificate and before the request is parsed or any work is queued
// (UnaryService, handler.h), so that one agency sending too much cannot
// take the worker pool away from the others.
//
// A refused call gets RESOURCE_EXHAUSTED with
//   - ErrorInfo reason AGENCY_RATE_LIMITED or AGENCY_TOO_MANY_IN_FLIGHT and
//     metadata naming the limit: `limit` (the flag: "agency_rate" or
//     "agency_max_in_flight") and `value` (its value for this agency),
//   - RetryInfo: for the rate, when the bucket holds the next token; for
//     calls in flight, kInFlightRetryDelay.
// Nothing else happens for it: no audit record (no personal data was
// touched), no queued work. A refusal does not use up a token.
//
// Memory: one small entry per agency seen, at most `max_agencies`. When a
// new agency arrives at a full table, entries that hold no state worth
// keeping (no call in flight, bucket full again) are dropped; if none can
// be, the newcomer shares one overflow entry with every other agency that
// did not fit, under the default limits. Agencies come from the registry
// (hundreds), so the table only fills when something is wrong, e.g. many
// made-up agency names in --insecure_dev mode.
//
// Thread-safe.
#ifndef LOTSE_COMMON_SERVER_AGENCY_LIMITS_H_
#define LOTSE_COMMON_SERVER_AGENCY_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/registry.h"

namespace lotse::server {

inline constexpr char kAgencyRateLimitedReason[] = "AGENCY_RATE_LIMITED";
inline constexpr char kTooManyInFlightReason[] = "AGENCY_TOO_MANY_IN_FLIGHT";
// The reason of a watch stream refused by a stream cap (the cases service's
// WatchCaseEvents); declared here so that every refusal of this kind is
// treated alike (counted, not logged per call).
inline constexpr char kTooManyWatchStreamsReason[] = "TOO_MANY_WATCH_STREAMS";
// The retry delay of a call refused for the number in flight: a call of the
// agency usually ends within it.
inline constexpr absl::Duration kInFlightRetryDelay = absl::Milliseconds(100);
// The name agencies beyond `max_agencies` share in metrics and logs.
inline constexpr char kOverflowAgency[] = "_other";
// At most one warning line about refusals per this interval.
inline constexpr absl::Duration kRefusalLogInterval = absl::Seconds(10);

// What a process does with each call refused before any work (the
// limiter's on_refused, the cases watch stream cap): counts it in
// lotse_agency_refusals_total{service, agency, reason} — at most
// `max_agencies` distinct agency labels, later ones count as
// kOverflowAgency — and writes at most one warning line per
// kRefusalLogInterval, naming the agency and reason of the refusal that
// let it through and how many refusals it stands for. Agency ids are no
// personal data; nothing else about the call is logged. The returned
// function is thread-safe and keeps what it needs alive.
using RefusalHook =
    std::function<void(const std::string& agency, absl::string_view reason)>;
RefusalHook ObserveRefusals(prometheus::Registry& registry,
                            const std::string& service, size_t max_agencies);

// The limits of one agency. Zero means "no limit" for max_in_flight and
// rate; burst only counts when rate is set.
struct AgencyLimit {
  int64_t max_in_flight = 0;
  double rate = 0;  // calls per second
  int64_t burst = 0;
  bool operator==(const AgencyLimit& o) const {
    return max_in_flight == o.max_in_flight && rate == o.rate &&
           burst == o.burst;
  }
};

// OK, or INVALID_ARGUMENT naming what is wrong (`what` prefixes it, e.g.
// "--agency_rate"): negative values, a rate that is not finite, a burst
// below 1 with a rate set.
absl::Status ValidateAgencyLimit(const AgencyLimit& limit,
                                 absl::string_view what);

// Parses per-agency overrides, "agency:max_in_flight:rate[:burst],..." —
// e.g. "jobcenter-koeln:512:2000:4000,import-bot:8:50" — with `defaults`
// for an omitted burst. Empty gives none. INVALID_ARGUMENT naming the entry
// when one is malformed, an agency is named twice or a limit is invalid.
absl::StatusOr<absl::flat_hash_map<std::string, AgencyLimit>>
ParseAgencyOverrides(absl::string_view spec, const AgencyLimit& defaults);

struct AgencyLimiterOptions {
  AgencyLimit defaults;
  absl::flat_hash_map<std::string, AgencyLimit> overrides;
  size_t max_agencies = 10000;
  // The time buckets fill by; null: absl::Now.
  std::function<absl::Time()> clock;
  // Called for every refusal, outside the limiter's lock, with the agency
  // (kOverflowAgency for the shared entry) and the reason. Must be quick.
  RefusalHook on_refused;
};

class AgencyLimiter {
 private:
  struct Entry;

 public:
  // One admitted call: holds its place among the agency's calls in flight
  // until destroyed. Movable; an empty (moved-from or default) permit holds
  // nothing.
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    ~Permit();

   private:
    friend class AgencyLimiter;
    Permit(AgencyLimiter* limiter, Entry* entry)
        : limiter_(limiter), entry_(entry) {}
    void Release();
    AgencyLimiter* limiter_ = nullptr;
    Entry* entry_ = nullptr;
  };

  // INVALID_ARGUMENT when a limit is invalid (ValidateAgencyLimit) or
  // max_agencies is 0.
  static absl::StatusOr<std::unique_ptr<AgencyLimiter>> Create(
      AgencyLimiterOptions options);

  // Admits one call of `agency` or refuses it (see the top of this file).
  // Permits must not outlive the limiter.
  absl::StatusOr<Permit> Admit(absl::string_view agency);

  // The limit that applies to `agency`.
  AgencyLimit LimitOf(absl::string_view agency) const;
  // Agencies with an entry of their own now (the overflow entry not
  // counted).
  size_t tracked_agencies() const;
  // Calls of `agency` in flight now (its entry's; 0 when it has none).
  int64_t in_flight(absl::string_view agency) const;

 private:
  struct Entry {
    std::string name;  // agency id, or kOverflowAgency
    AgencyLimit limit;
    double tokens = 0;
    absl::Time refilled;
    int64_t in_flight = 0;
  };

  explicit AgencyLimiter(AgencyLimiterOptions options);
  absl::Time Now() const;
  // The entry of `agency`, made when missing (see the top of this file).
  Entry* EntryFor(absl::string_view agency, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops entries with nothing in flight whose bucket is full again.
  void Sweep(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(Entry* entry);

  const AgencyLimiterOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
  Entry overflow_ ABSL_GUARDED_BY(mu_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_AGENCY_LIMITS_H_
