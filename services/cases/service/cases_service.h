// The gRPC face of the cases service: lotse.cases.v1.CasesService.
//
// Every unary RPC is a UnaryService handler (common/server/handler.h),
// registered in the constructor, on the worker pool; the handlers live by
// resource in case_handlers.cc, plan_handlers.cc, step_handlers.cc,
// note_handlers.cc, view_handlers.cc and statistics_handlers.cc. Each
// follows one pattern:
//   1. an agencies::AuditedCall resolves the caller against the local
//      agency registry (a copy of identity's, kept from its agency events):
//      unknown, domain-mismatched or suspended agencies are
//      PERMISSION_DENIED, as in identity; a caller not in the copy yet is
//      looked up in identity first (UNAVAILABLE, reason
//      AGENCY_REGISTRY_UNAVAILABLE, when identity does not answer in time);
//   2. the request is validated (all field violations at once), then the
//      access rules of the contract are checked (participants, owner,
//      receiver, writer) and the work is done, the rules that need no
//      storage in domain/;
//   3. one audit record per call (ALLOWED) commits with the change; a
//      failed call is audited on its own (DENIED / ERROR).
// Reads run in kReadOnly transactions and commit only their audit record
// afterwards. Writes (and audit records) go through ServiceRuntime::Write,
// the process's group committer. A write that changes a case appends its
// event to the outbox and to the case-event log in the same transaction,
// and wakes the watch streams after the commit.
//
// WatchCaseEvents, the one streaming RPC, is served by the WatchHub
// (watch.h) from watch_handlers.cc. Calls to identity (person check,
// CheckAccess for the case view) go through the AccessChecker port,
// outside any transaction.
#ifndef LOTSE_SERVICES_CASES_SERVICE_CASES_SERVICE_H_
#define LOTSE_SERVICES_CASES_SERVICE_CASES_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/agencies/audited_call.h"
#include "common/agencies/registry.h"
#include "common/events/inbox.h"
#include "common/server/handler.h"
#include "common/server/request_context.h"
#include "common/server/service_main.h"
#include "common/storage/database.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"
#include "services/cases/domain/access_checker.h"
#include "services/cases/domain/step_transitions.h"
#include "services/cases/service/watch.h"
#include "services/cases/store/case_store.h"

namespace lotse::cases {

struct CasesOptions {
  // Waiting-time groups with fewer referrals are suppressed.
  int suppression_threshold = 5;
  WatchOptions watch;
};

class CasesServiceImpl final : public server::UnaryService {
 public:
  CasesServiceImpl(server::ServiceRuntime& runtime, AccessChecker* access,
                   CasesOptions options = CasesOptions());
  ~CasesServiceImpl() override;

  // The environment of this service's AuditedCalls, shared with its
  // AuditService (common/audit/audit_service.h).
  const agencies::CallEnvironment& call_env() const { return call_env_; }

  // The inbox handler for other services' events (courses, placement,
  // identity's PersonMerged and agency events), for
  // events::ApplyEventOnce. It only changes the database through its
  // transaction, and wakes the watchers once that commits. Must not be
  // called after this service is destroyed.
  events::ApplyFn EventApplier();
  // ApplyEventOnce with EventApplier(), then wakes the watchers.
  absl::StatusOr<bool> ApplyEvent(const lotse::events::v1::Event& event);
  void NotifyWatchers();
  // Ends all watch streams (UNAVAILABLE, SERVER_DRAINING); call before the
  // server drains.
  void DrainWatchers();
  int open_watch_streams() const;

 private:
  grpc::ServerWriteReactor<v1::WatchCaseEventsResponse>* WatchCaseEvents(
      grpc::CallbackServerContext* ctx, const v1::WatchCaseEventsRequest* req);

  // call.Write(body), then wakes the watch streams.
  absl::Status WriteAndWake(agencies::AuditedCall& call,
                            const agencies::AuditedCall::Body& body);

  // case_handlers.cc
  absl::Status DoOpenCase(const server::RequestContext& rc,
                          const v1::OpenCaseRequest& req, v1::Case* resp);
  absl::Status DoGetCase(const server::RequestContext& rc,
                         const v1::GetCaseRequest& req, v1::Case* resp);
  absl::Status DoListCases(const server::RequestContext& rc,
                           const v1::ListCasesRequest& req,
                           v1::ListCasesResponse* resp);
  absl::Status DoUpdateCase(const server::RequestContext& rc,
                            const v1::UpdateCaseRequest& req, v1::Case* resp);
  absl::Status DoChangeCaseState(const server::RequestContext& rc,
                                 const v1::ChangeCaseStateRequest& req,
                                 v1::Case* resp);
  absl::Status DoTransferCase(const server::RequestContext& rc,
                              const v1::TransferCaseRequest& req,
                              v1::Case* resp);
  absl::Status DoCloseCase(const server::RequestContext& rc,
                           const v1::CloseCaseRequest& req, v1::Case* resp);
  // plan_handlers.cc
  absl::Status DoGetPlan(const server::RequestContext& rc,
                         const v1::GetIntegrationPlanRequest& req,
                         v1::IntegrationPlan* resp);
  absl::Status DoListPlans(const server::RequestContext& rc,
                           const v1::ListIntegrationPlanVersionsRequest& req,
                           v1::ListIntegrationPlanVersionsResponse* resp);
  absl::Status DoUpdatePlan(const server::RequestContext& rc,
                            const v1::UpdateIntegrationPlanRequest& req,
                            v1::IntegrationPlan* resp);
  // step_handlers.cc
  absl::Status DoCreateStep(const server::RequestContext& rc,
                            const v1::CreateStepRequest& req, v1::Step* resp);
  absl::Status DoGetStep(const server::RequestContext& rc,
                         const v1::GetStepRequest& req, v1::Step* resp);
  absl::Status DoListSteps(const server::RequestContext& rc,
                           const v1::ListStepsRequest& req,
                           v1::ListStepsResponse* resp);
  absl::Status DoUpdateStep(const server::RequestContext& rc,
                            const v1::UpdateStepRequest& req, v1::Step* resp);
  absl::Status DoAcceptStep(const server::RequestContext& rc,
                            const v1::AcceptStepRequest& req, v1::Step* resp);
  absl::Status DoDeclineStep(const server::RequestContext& rc,
                             const v1::DeclineStepRequest& req, v1::Step* resp);
  absl::Status DoStartStep(const server::RequestContext& rc,
                           const v1::StartStepRequest& req, v1::Step* resp);
  absl::Status DoCompleteStep(const server::RequestContext& rc,
                              const v1::CompleteStepRequest& req,
                              v1::Step* resp);
  absl::Status DoCancelStep(const server::RequestContext& rc,
                            const v1::CancelStepRequest& req, v1::Step* resp);
  // The five transition RPCs, on the step `name` at `etag`.
  absl::Status DoTransition(const server::RequestContext& rc,
                            absl::string_view method, const std::string& name,
                            const std::string& etag,
                            const StepTransitionRequest& req, v1::Step* resp);
  // note_handlers.cc
  absl::Status DoCreateNote(const server::RequestContext& rc,
                            const v1::CreateNoteRequest& req, v1::Note* resp);
  absl::Status DoGetNote(const server::RequestContext& rc,
                         const v1::GetNoteRequest& req, v1::Note* resp);
  absl::Status DoListNotes(const server::RequestContext& rc,
                           const v1::ListNotesRequest& req,
                           v1::ListNotesResponse* resp);
  absl::Status DoUpdateNote(const server::RequestContext& rc,
                            const v1::UpdateNoteRequest& req, v1::Note* resp);
  absl::Status DoDeleteNote(const server::RequestContext& rc,
                            const v1::DeleteNoteRequest& req,
                            google::protobuf::Empty* resp);
  // view_handlers.cc
  absl::Status DoGetCaseView(const server::RequestContext& rc,
                             const v1::GetCaseViewRequest& req,
                             v1::CaseView* resp);
  // statistics_handlers.cc
  absl::Status DoStatistics(const server::RequestContext& rc,
                            const v1::GetWaitingTimeStatisticsRequest& req,
                            v1::WaitingTimeStatistics* resp);
  // watch_handlers.cc (WatchCaseEvents above)
  absl::StatusOr<WatchStart> ResolveWatch(
      const server::RequestContext& rc,
      const v1::WatchCaseEventsRequest& request);

  server::ServiceRuntime& runtime_;
  AccessChecker* access_;
  const CasesOptions options_;
  agencies::CallEnvironment call_env_;
  std::unique_ptr<WatchHub> hub_;
};

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_SERVICE_CASES_SERVICE_H_
