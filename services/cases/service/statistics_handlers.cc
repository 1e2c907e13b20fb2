// Waiting-time statistics: how long referrals wait, by step kind and
// receiving agency, with small groups suppressed.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "services/cases/domain/rules.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/service/internal.h"

namespace lotse::cases {

using agencies::LocalAgency;
using api::ToTimestamp;
using server::RequestContext;
using storage::Transaction;

namespace {

// Nearest-rank percentile of sorted durations (in microseconds).
int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * sorted.size() + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > sorted.size()) rank = sorted.size();
  return sorted[rank - 1];
}

void Summarize(std::vector<int64_t> micros, v1::DurationSummary* out) {
  std::sort(micros.begin(), micros.end());
  out->set_count(static_cast<int32_t>(micros.size()));
  if (micros.empty()) return;
  auto set = [](int64_t us, google::protobuf::Duration* d) {
    d->set_seconds(us / 1000000);
    d->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
  };
  set(Percentile(micros, 0.5), out->mutable_median());
  set(Percentile(micros, 0.9), out->mutable_p90());
}

// The checks of a statistics request: an AGS of eight digits, a period of
// valid dates, end not before start and at most 3 years after it, known
// groupings. Sets the period's first and last day when both are valid.
void ValidateStatisticsRequest(const v1::GetWaitingTimeStatisticsRequest& req,
                               absl::CivilDay* from, absl::CivilDay* to,
                               FieldViolations* violations) {
  const std::string& code = req.municipality_code();
  bool digits = code.size() == 8;
  for (char ch : code) digits = digits && ch >= '0' && ch <= '9';
  if (!digits) {
    violations->Add("municipality_code", "must be eight digits (AGS)");
  }
  const bool start_ok = IsValidDate(req.period_start());
  const bool end_ok = IsValidDate(req.period_end());
  if (!start_ok) violations->Add("period_start", "is not a valid date");
  if (!end_ok) violations->Add("period_end", "is not a valid date");
  if (start_ok && end_ok) {
    *from =
        absl::CivilDay(req.period_start().year(), req.period_start().month(),
                       req.period_start().day());
    *to = absl::CivilDay(req.period_end().year(), req.period_end().month(),
                         req.period_end().day());
    if (*to < *from) {
      violations->Add("period_end", "must not be before period_start");
    } else if (*to >
               absl::CivilDay(from->year() + 3, from->month(), from->day())) {
      violations->Add("period_end",
                      "must be at most 3 years after period_start");
    }
  }
  for (int i = 0; i < req.groupings_size(); ++i) {
    if (!v1::WaitingTimeGrouping_IsValid(req.groupings(i))) {
      violations->Add(absl::StrCat("groupings[", i, "]"), "unknown value");
    }
  }
}

// One row of the statistics: referrals, their waiting times and the
// overdue steps.
struct Group {
  int32_t referrals = 0;
  std::vector<int64_t> to_accept, to_start;
  int32_t overdue = 0;
};
// (step kind, receiving agency); kind 0 / agency "" for "all".
using GroupKey = std::pair<int, std::string>;

// The rows the request's groupings ask for (all three when it names none),
// over `timings` and `overdue`. Without a `full` view, only rows about the
// caller (`self`) as receiving agency, and no rows by kind alone (they span
// other agencies).
std::map<GroupKey, Group> GroupSteps(
    const v1::GetWaitingTimeStatisticsRequest& req, bool full,
    const std::string& self, const std::vector<StepTiming>& timings,
    const std::vector<OverdueCount>& overdue) {
  bool want[4] = {false, false, false, false};
  for (int g : req.groupings()) {
    if (g > 0 && g < 4) want[g] = true;
  }
  if (!want[1] && !want[2] && !want[3]) want[1] = want[2] = want[3] = true;
  if (!full) want[1] = false;  // kind rows span other agencies

  std::map<GroupKey, Group> groups;
  auto keys = [&](int kind, const std::string& receiver) {
    std::vector<std::pair<int, std::string>> out;
    if (!full && receiver != self) return out;
    if (want[1]) out.push_back({kind, ""});
    if (want[2]) out.push_back({0, receiver});
    if (want[3]) out.push_back({kind, receiver});
    return out;
  };
  for (const StepTiming& t : timings) {
    for (const auto& key : keys(t.kind, t.receiving_agency)) {
      Group& g = groups[key];
      ++g.referrals;
      if (t.accept_us > 0) g.to_accept.push_back(t.accept_us - t.create_us);
      if (t.start_us > 0) g.to_start.push_back(t.start_us - t.create_us);
    }
  }
  for (const OverdueCount& o : overdue) {
    for (const auto& key : keys(o.kind, o.receiving_agency)) {
      groups[key].overdue += static_cast<int32_t>(o.count);
    }
  }
  return groups;
}

}  // namespace

absl::Status CasesServiceImpl::DoStatistics(
    const RequestContext& rc, const v1::GetWaitingTimeStatisticsRequest& req,
    v1::WaitingTimeStatistics* resp) {
  const std::string target =
      absl::StrCat("statistics/", req.municipality_code().size() == 8
                                      ? req.municipality_code()
                                      : "invalid");
  agencies::AuditedCall call(call_env_, rc, "GetWaitingTimeStatistics", target);
  internal::AuditAs(call, target);
  return call.Finish(call.Read([&](Transaction& tx,
                                   const LocalAgency& caller) -> absl::Status {
    internal::AuditAs(call, target, {"STATISTICS"});
    FieldViolations violations;
    const std::string& code = req.municipality_code();
    absl::CivilDay from, to;
    ValidateStatisticsRequest(req, &from, &to, &violations);
    if (!violations.empty()) return violations.ToStatus();
    // Who sees what: the municipality's KOMMUNE agencies and
    // ADMINISTRATION all rows; everyone else only rows about itself as
    // receiving agency.
    const bool full = caller.legal_domain == internal::kAdministration ||
                      (caller.legal_domain == internal::kKommune &&
                       caller.municipality_code == code);
    const std::string self = AgencyName(caller.id);
    const absl::TimeZone utc = absl::UTCTimeZone();
    const int64_t from_us = ToMicros(absl::FromCivil(from, utc));
    const int64_t to_us = ToMicros(absl::FromCivil(to + 1, utc));
    absl::StatusOr<std::vector<StepTiming>> timings =
        StepTimings(tx, code, from_us, to_us);
    if (!timings.ok()) return timings.status();
    const absl::Time now = absl::Now();
    absl::StatusOr<std::vector<OverdueCount>> overdue =
        OverdueSteps(tx, code, DayKeyOf(now));
    if (!overdue.ok()) return overdue.status();

    std::map<GroupKey, Group> groups =
        GroupSteps(req, full, self, *timings, *overdue);
    resp->set_municipality_code(code);
    *resp->mutable_period_start() = req.period_start();
    *resp->mutable_period_end() = req.period_end();
    resp->set_suppression_threshold(options_.suppression_threshold);
    *resp->mutable_compute_time() = ToTimestamp(now);
    for (auto& [key, g] : groups) {
      v1::WaitingTimeRow* row = resp->add_rows();
      row->set_step_kind(static_cast<v1::StepKind>(key.first));
      row->set_receiving_agency(key.second);
      if (g.referrals < options_.suppression_threshold) {
        row->set_suppressed(true);
        continue;
      }
      row->set_referral_count(g.referrals);
      Summarize(std::move(g.to_accept), row->mutable_referral_to_acceptance());
      Summarize(std::move(g.to_start), row->mutable_referral_to_start());
      row->set_overdue_count(g.overdue);
    }
    return absl::OkStatus();
  }));
}

}  // namespace lotse::cases
