// WatchCaseEvents: checks a watch request and resolves where its stream
// starts; the streams themselves are the WatchHub's (watch.h).
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "services/cases/domain/rules.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/service/internal.h"

namespace lotse::cases {

using agencies::LocalAgency;
using internal::CaseTarget;
using internal::LoadCase;
using server::RequestContext;
using storage::Transaction;

grpc::ServerWriteReactor<v1::WatchCaseEventsResponse>*
CasesServiceImpl::WatchCaseEvents(grpc::CallbackServerContext* ctx,
                                  const v1::WatchCaseEventsRequest* req) {
  absl::StatusOr<RequestContext> rc =
      server::ExtractRequestContext(*ctx, runtime_.env.insecure_dev);
  if (!rc.ok()) return WatchHub::Refuse(rc.status(), runtime_.env.error_domain);
  FieldViolations violations;
  if (req->after_cursor() < 0) {
    violations.Add("after_cursor", "must not be negative");
  }
  if (!v1::WatchStart_IsValid(req->start())) {
    violations.Add("start", "unknown value");
  }
  if (!req->case_name().empty()) {
    ParseCaseName(req->case_name(), "case_name", &violations);
  }
  if (!violations.empty()) {
    return WatchHub::Refuse(violations.ToStatus(), runtime_.env.error_domain);
  }
  return hub_->Open(*std::move(rc), *req);
}

absl::StatusOr<WatchStart> CasesServiceImpl::ResolveWatch(
    const RequestContext& rc, const v1::WatchCaseEventsRequest& request) {
  WatchStart start;
  start.purpose = rc.purpose;
  const std::string target =
      request.case_name().empty() ? "cases" : CaseTarget(request.case_name());
  agencies::AuditedCall call(call_env_, rc, "WatchCaseEvents", target);
  internal::AuditAs(call, target);
  absl::Status status = call.Finish(call.Read(
      [&](Transaction& tx, const LocalAgency& caller) -> absl::Status {
        start.agency = AgencyName(caller.id);
        if (!request.case_name().empty()) {
          FieldViolations ignored;
          start.case_id =
              ParseCaseName(request.case_name(), "case_name", &ignored);
          absl::StatusOr<CaseRow> c = LoadCase(tx, start.case_id, start.agency);
          if (!c.ok()) return c.status();
        }
        absl::StatusOr<int64_t> latest = LatestCursor(tx);
        if (!latest.ok()) return latest.status();
        if (request.after_cursor() > 0) {
          if (request.after_cursor() > *latest) {
            return ErrorWithReason(absl::StatusCode::kInvalidArgument,
                                   "CURSOR_UNKNOWN",
                                   "the cursor was never issued here");
          }
          // A position of history lost in a restore from a backup: new
          // events never take it, but resuming after it would skip them.
          absl::StatusOr<std::optional<int64_t>> restored =
              RestoredBefore(tx, request.after_cursor());
          if (!restored.ok()) return restored.status();
          if (restored->has_value()) {
            return ErrorWithReason(
                absl::StatusCode::kOutOfRange, "HISTORY_RESTORED",
                absl::StrCat("the case-event history was restored from a "
                             "backup that ends at cursor ",
                             **restored,
                             "; events after it were lost. Re-read the case "
                             "views, then resume after cursor ",
                             **restored, " or start with WATCH_START_NOW"),
                {{"restored_cursor", absl::StrCat(**restored)}});
          }
          start.after_cursor = request.after_cursor();
        } else if (request.start() == v1::WATCH_START_EARLIEST) {
          start.after_cursor = 0;
        } else {
          start.after_cursor = *latest;
        }
        return absl::OkStatus();
      }));
  if (!status.ok()) return status;
  return start;
}

}  // namespace lotse::cases
