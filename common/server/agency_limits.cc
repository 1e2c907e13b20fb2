#include "common/server/agency_limits.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/api/names.h"
#include "common/errors/status.h"
#include "common/server/log.h"
#include "prometheus/counter.h"

namespace lotse::server {
namespace {

// How often a full table is searched for entries to drop, at most: the
// search walks every entry, which must not happen on every call of an
// agency that did not fit.
constexpr absl::Duration kSweepInterval = absl::Seconds(1);

// A bucket this close to a whole token holds one: refills are sums of
// floating-point products, which may fall a rounding error short.
constexpr double kTokenSlack = 1e-9;

// "2000" or "12.5" as the status metadata shows a rate.
std::string RateText(double rate) { return absl::StrCat(rate); }

struct RefusalObserver {
  RefusalObserver(prometheus::Registry& registry, std::string service_name,
                  size_t max_labels)
      : service(std::move(service_name)),
        max_agencies(max_labels),
        family(prometheus::BuildCounter()
                   .Name("lotse_agency_refusals_total")
                   .Help("Calls refused before any work because the calling "
                         "agency was over a limit, by agency and reason")
                   .Register(registry)),
        throttle(kRefusalLogInterval) {}

  void Refused(const std::string& agency, absl::string_view reason) {
    std::string label = agency;
    {
      absl::MutexLock lock(&mu);
      if (!labelled.contains(agency)) {
        if (labelled.size() < max_agencies) {
          labelled.insert(agency);
        } else {
          label = kOverflowAgency;
        }
      }
    }
    family
        .Add({{"service", service},
              {"agency", label},
              {"reason", std::string(reason)}})
        .Increment();
    int64_t held_back = 0;
    if (throttle.Allow(absl::Now(), &held_back)) {
      Log(LogLevel::kWarning, "calls refused: agency over a limit",
          {{"service", service},
           {"agency", label},
           {"reason", std::string(reason)},
           {"refusals", held_back + 1}});
    }
  }

  const std::string service;
  const size_t max_agencies;
  prometheus::Family<prometheus::Counter>& family;
  LogThrottle throttle;
  absl::Mutex mu;
  absl::flat_hash_set<std::string> labelled ABSL_GUARDED_BY(mu);
};

}  // namespace

RefusalHook ObserveRefusals(prometheus::Registry& registry,
                            const std::string& service, size_t max_agencies) {
  auto observer =
      std::make_shared<RefusalObserver>(registry, service, max_agencies);
  return [observer](const std::string& agency, absl::string_view reason) {
    observer->Refused(agency, reason);
  };
}

absl::Status ValidateAgencyLimit(const AgencyLimit& limit,
                                 absl::string_view what) {
  if (limit.max_in_flight < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": calls in flight must be 0 (no limit) or more"));
  }
  if (!std::isfinite(limit.rate) || limit.rate < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": the rate must be 0 (no limit) or a positive number of calls "
        "per second"));
  }
  if (limit.rate > 0 && limit.burst < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the burst must be at least 1 with a rate set"));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_map<std::string, AgencyLimit>>
ParseAgencyOverrides(absl::string_view spec, const AgencyLimit& defaults) {
  absl::flat_hash_map<std::string, AgencyLimit> out;
  spec = absl::StripAsciiWhitespace(spec);
  if (spec.empty()) return out;
  for (absl::string_view entry : absl::StrSplit(spec, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    const std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
    auto bad = [entry](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("--agency_limits entry \"", entry, "\": ", why));
    };
    if (parts.size() != 3 && parts.size() != 4) {
      return bad("expected agency:max_in_flight:rate[:burst]");
    }
    const std::string agency(parts[0]);
    if (!api::IsValidId(agency)) {
      return bad("the agency must be an agency id (1-64 of [A-Za-z0-9_-])");
    }
    AgencyLimit limit;
    limit.burst = defaults.burst;
    if (!absl::SimpleAtoi(parts[1], &limit.max_in_flight)) {
      return bad("max_in_flight is not a whole number");
    }
    if (!absl::SimpleAtod(parts[2], &limit.rate)) {
      return bad("rate is not a number");
    }
    if (parts.size() == 4 && !absl::SimpleAtoi(parts[3], &limit.burst)) {
      return bad("burst is not a whole number");
    }
    if (absl::Status valid = ValidateAgencyLimit(
            limit, absl::StrCat("--agency_limits entry \"", entry, "\""));
        !valid.ok()) {
      return valid;
    }
    if (!out.emplace(agency, limit).second) {
      return bad("the agency is named twice");
    }
  }
  return out;
}

AgencyLimiter::Permit::Permit(Permit&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)),
      entry_(std::exchange(other.entry_, nullptr)) {}

AgencyLimiter::Permit& AgencyLimiter::Permit::operator=(
    Permit&& other) noexcept {
  if (this != &other) {
    Release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    entry_ = std::exchange(other.entry_, nullptr);
  }
  return *this;
}

AgencyLimiter::Permit::~Permit() { Release(); }

void AgencyLimiter::Permit::Release() {
  if (limiter_ != nullptr && entry_ != nullptr) limiter_->Release(entry_);
  limiter_ = nullptr;
  entry_ = nullptr;
}

absl::StatusOr<std::unique_ptr<AgencyLimiter>> AgencyLimiter::Create(
    AgencyLimiterOptions options) {
  if (absl::Status s = ValidateAgencyLimit(options.defaults, "default limits");
      !s.ok()) {
    return s;
  }
  for (const auto& [agency, limit] : options.overrides) {
    if (absl::Status s =
            ValidateAgencyLimit(limit, absl::StrCat("limits of ", agency));
        !s.ok()) {
      return s;
    }
  }
  if (options.max_agencies == 0) {
    return absl::InvalidArgumentError(
        "the limiter must be able to track at least one agency");
  }
  return std::unique_ptr<AgencyLimiter>(new AgencyLimiter(std::move(options)));
}

AgencyLimiter::AgencyLimiter(AgencyLimiterOptions options)
    : options_(std::move(options)) {
  overflow_.name = kOverflowAgency;
  overflow_.limit = options_.defaults;
  overflow_.tokens = static_cast<double>(options_.defaults.burst);
  overflow_.refilled = Now();
}

absl::Time AgencyLimiter::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

AgencyLimit AgencyLimiter::LimitOf(absl::string_view agency) const {
  const auto it = options_.overrides.find(agency);
  return it != options_.overrides.end() ? it->second : options_.defaults;
}

size_t AgencyLimiter::tracked_agencies() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

int64_t AgencyLimiter::in_flight(absl::string_view agency) const {
  absl::MutexLock lock(&mu_);
  const auto it = entries_.find(agency);
  return it == entries_.end() ? 0 : it->second->in_flight;
}

void AgencyLimiter::Sweep(absl::Time now) {
  last_sweep_ = now;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = *it->second;
    const bool full =
        e.limit.rate <= 0 ||
        e.tokens + absl::ToDoubleSeconds(now - e.refilled) * e.limit.rate >=
            static_cast<double>(e.limit.burst);
    if (e.in_flight == 0 && full) {
      entries_.erase(it++);
    } else {
      ++it;
    }
  }
}

AgencyLimiter::Entry* AgencyLimiter::EntryFor(absl::string_view agency,
                                              absl::Time now) {
  if (auto it = entries_.find(agency); it != entries_.end()) {
    return it->second.get();
  }
  if (entries_.size() >= options_.max_agencies &&
      now - last_sweep_ >= kSweepInterval) {
    Sweep(now);
  }
  if (entries_.size() >= options_.max_agencies) return &overflow_;
  auto entry = std::make_unique<Entry>();
  entry->name = std::string(agency);
  entry->limit = LimitOf(agency);
  entry->tokens = static_cast<double>(entry->limit.burst);
  entry->refilled = now;
  Entry* out = entry.get();
  entries_.emplace(std::string(agency), std::move(entry));
  return out;
}

absl::StatusOr<AgencyLimiter::Permit> AgencyLimiter::Admit(
    absl::string_view agency) {
  const absl::Time now = Now();
  absl::Status refused;
  std::string refused_agency;
  {
    absl::MutexLock lock(&mu_);
    Entry* e = EntryFor(agency, now);
    const AgencyLimit& limit = e->limit;
    if (limit.max_in_flight > 0 && e->in_flight >= limit.max_in_flight) {
      refused = WithRetryDelay(
          ErrorWithReason(
              absl::StatusCode::kResourceExhausted, kTooManyInFlightReason,
              absl::StrCat("the calling agency has ", limit.max_in_flight,
                           " calls in flight, its limit; retry after one "
                           "has ended"),
              {{"limit", "agency_max_in_flight"},
               {"value", absl::StrCat(limit.max_in_flight)}}),
          kInFlightRetryDelay);
    } else if (limit.rate > 0) {
      const double elapsed =
          std::max(0.0, absl::ToDoubleSeconds(now - e->refilled));
      e->tokens = std::min(static_cast<double>(limit.burst),
                           e->tokens + elapsed * limit.rate);
      e->refilled = std::max(e->refilled, now);
      if (e->tokens < 1.0 - kTokenSlack) {
        // The next token is due when the bucket has refilled the missing
        // part of one; rounded up to the millisecond (after dropping what
        // floating point adds below a microsecond) so that a client
        // retrying right after the delay finds it there.
        const absl::Duration wait = absl::Ceil(
            absl::Trunc(absl::Seconds((1.0 - e->tokens) / limit.rate),
                        absl::Microseconds(1)),
            absl::Milliseconds(1));
        refused = WithRetryDelay(
            ErrorWithReason(
                absl::StatusCode::kResourceExhausted, kAgencyRateLimitedReason,
                absl::StrCat("the calling agency sends more than ",
                             RateText(limit.rate),
                             " calls per second, its limit; retry after ",
                             absl::FormatDuration(wait)),
                {{"limit", "agency_rate"}, {"value", RateText(limit.rate)}}),
            wait);
      } else {
        e->tokens = std::max(0.0, e->tokens - 1.0);
      }
    }
    if (refused.ok()) {
      ++e->in_flight;
      return Permit(this, e);
    }
    refused_agency = e->name;
  }
  if (options_.on_refused) {
    options_.on_refused(refused_agency, *ReasonOf(refused));
  }
  return refused;
}

void AgencyLimiter::Release(Entry* entry) {
  absl::MutexLock lock(&mu_);
  --entry->in_flight;
}

}  // namespace lotse::server
