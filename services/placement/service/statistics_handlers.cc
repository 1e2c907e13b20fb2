// GetPlacementStatistics: how the placements proposed in a municipality
// ended, with small groups suppressed. Counts only; no placement, offer or
// person is named in the answer.
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/api/dates.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "services/placement/service/internal.h"

namespace lotse::placement {

using ::lotse::agencies::AuditedCall;
using ::lotse::agencies::LocalAgency;
using ::lotse::storage::Transaction;

namespace {

// Groups smaller than this are suppressed (as in the cases service's
// waiting-time statistics).
constexpr int kSuppressionThreshold = 5;

struct Outcomes {
  int proposed = 0, open = 0, hired = 0, rejected = 0, withdrawn = 0;
  void Add(v1::PlacementState state) {
    ++proposed;
    switch (state) {
      case v1::PLACEMENT_STATE_HIRED:
        ++hired;
        break;
      case v1::PLACEMENT_STATE_REJECTED:
        ++rejected;
        break;
      case v1::PLACEMENT_STATE_WITHDRAWN:
        ++withdrawn;
        break;
      default:
        ++open;
    }
  }
};

void RowOut(const std::string& agency, const Outcomes& o,
            v1::PlacementOutcomeRow* row) {
  row->set_proposing_agency(agency);
  if (o.proposed < kSuppressionThreshold) {
    row->set_suppressed(true);
    return;
  }
  row->set_proposed_count(o.proposed);
  row->set_open_count(o.open);
  row->set_hired_count(o.hired);
  row->set_rejected_count(o.rejected);
  row->set_withdrawn_count(o.withdrawn);
}

}  // namespace

absl::Status PlacementServiceImpl::DoGetPlacementStatistics(
    const Rc& rc, const v1::GetPlacementStatisticsRequest& request,
    v1::PlacementStatistics* out) {
  const std::string& code = request.municipality_code();
  bool digits = code.size() == 8;
  for (char ch : code) digits = digits && ch >= '0' && ch <= '9';
  const std::string target =
      absl::StrCat("statistics/", digits ? code : "invalid");
  AuditedCall call(call_env(), rc, "GetPlacementStatistics", target);
  FieldViolations v;
  if (!digits) v.Add("municipality_code", "must be eight digits (AGS)");
  const std::optional<int64_t> from = api::DayNumber(request.period_start());
  const std::optional<int64_t> to = api::DayNumber(request.period_end());
  if (!from) v.Add("period_start", "is not a valid date");
  if (!to) v.Add("period_end", "is not a valid date");
  if (from && to) {
    if (*to < *from) {
      v.Add("period_end", "must not be before period_start");
    } else if (*to - *from > 3 * 366) {
      v.Add("period_end", "must be at most 3 years after period_start");
    }
  }
  const absl::Time now = Now();
  absl::Status status =
      call.Read([&](Transaction& tx, const LocalAgency& me) -> absl::Status {
        if (!v.empty()) return v.ToStatus();
        // Who sees what: the municipality's KOMMUNE agencies and
        // ADMINISTRATION every row; the Jobcenter and the employment agency
        // only the row about their own proposals; nobody else any.
        const bool full =
            me.legal_domain == "ADMINISTRATION" ||
            (me.legal_domain == "KOMMUNE" && me.municipality_code == code);
        if (!full && !DomainIs(me, {"JOBCENTER", "ARBEITSAGENTUR"})) {
          return ErrorWithReason(
              absl::StatusCode::kPermissionDenied, "STATISTICS_NOT_ALLOWED",
              "placement statistics are for the "
              "municipality's KOMMUNE agencies, "
              "ADMINISTRATION, JOBCENTER and ARBEITSAGENTUR");
        }
        const int64_t day_us = int64_t{86400} * 1000000;
        absl::StatusOr<std::vector<PlacementOutcome>> rows =
            PlacementOutcomes(tx, code, *from * day_us, (*to + 1) * day_us);
        if (!rows.ok()) return rows.status();
        Outcomes all;
        std::map<std::string, Outcomes> by_agency;
        for (const PlacementOutcome& p : *rows) {
          all.Add(p.state);
          by_agency[p.proposing_agency].Add(p.state);
        }
        out->set_municipality_code(code);
        *out->mutable_period_start() = request.period_start();
        *out->mutable_period_end() = request.period_end();
        out->set_suppression_threshold(kSuppressionThreshold);
        *out->mutable_compute_time() = api::ToTimestamp(now);
        if (full) RowOut("", all, out->add_rows());
        for (const auto& [agency, outcomes] : by_agency) {
          if (full || agency == me.name()) {
            RowOut(agency, outcomes, out->add_rows());
          }
        }
        if (!full && out->rows_size() == 0) {
          RowOut(me.name(), Outcomes{}, out->add_rows());
        }
        return absl::OkStatus();
      });
  return call.Finish(status);
}

}  // namespace lotse::placement
