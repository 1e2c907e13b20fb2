// The cases service: construction, the registration of its RPCs, and
// what all handlers share (audit records, loading, case events).
#include "services/cases/service/cases_service.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/api/etag.h"
#include "common/api/time.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/server/handler.h"
#include "common/server/log.h"
#include "google/protobuf/descriptor.h"
#include "lotse/cases/v1/events.pb.h"
#include "lotse/events/v1/events.pb.h"
#include "services/cases/domain/rules.h"
#include "services/cases/service/internal.h"

namespace lotse::cases {
namespace internal {

void AuditAs(agencies::AuditedCall& call, const std::string& resource,
             std::vector<std::string> categories) {
  call.set_target(resource);
  call.set_target_categories(std::move(categories));
}

void AuditResource(agencies::AuditedCall& call, const std::string& resource,
                   std::vector<std::string> categories) {
  call.TouchResource(resource, std::move(categories));
}

bool Participates(const v1::Case& c, const std::string& agency_name) {
  return std::find(c.participating_agencies().begin(),
                   c.participating_agencies().end(),
                   agency_name) != c.participating_agencies().end();
}

absl::StatusOr<CaseRow> LoadCase(storage::Transaction& tx,
                                 const std::string& case_id,
                                 const std::string& agency_name) {
  absl::StatusOr<std::optional<CaseRow>> found = ReadCase(tx, case_id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return ErrorWithReason(absl::StatusCode::kNotFound, "CASE_NOT_FOUND",
                           absl::StrCat("no case ", CaseName(case_id)));
  }
  if (!agency_name.empty() && !Participates((*found)->record, agency_name)) {
    return ErrorWithReason(absl::StatusCode::kPermissionDenied, "NO_RELATION",
                           "the calling agency does not participate in the "
                           "case");
  }
  return **std::move(found);
}

absl::StatusOr<StepRow> LoadStep(storage::Transaction& tx,
                                 const std::string& case_id,
                                 const std::string& step_id) {
  absl::StatusOr<std::optional<StepRow>> found = ReadStep(tx, case_id, step_id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return ErrorWithReason(
        absl::StatusCode::kNotFound, "STEP_NOT_FOUND",
        absl::StrCat("no step ", StepName(case_id, step_id)));
  }
  return **std::move(found);
}

absl::StatusOr<CaseRow> LoadOwnOpenCase(storage::Transaction& tx,
                                        const std::string& case_id,
                                        const std::string& agency_name,
                                        absl::string_view etag) {
  if (absl::Status s = LockCase(tx, case_id); !s.ok()) return s;
  absl::StatusOr<CaseRow> c = LoadCase(tx, case_id, agency_name);
  if (!c.ok()) return c.status();
  if (c->record.owner_agency() != agency_name) return NotCaseOwner();
  if (absl::Status s = api::CheckEtag(etag, CaseToProto(*c).etag()); !s.ok()) {
    return s;
  }
  if (c->record.state() == v1::CASE_STATE_CLOSED) return CaseClosed();
  return c;
}

absl::Status NotCaseOwner() {
  return ErrorWithReason(absl::StatusCode::kPermissionDenied, "NOT_CASE_OWNER",
                         "only the case owner may do this");
}

absl::Status CaseClosed() {
  return ErrorWithReason(absl::StatusCode::kFailedPrecondition, "CASE_CLOSED",
                         "the case is closed");
}

absl::Status Emit(storage::Transaction& tx, const v1::Case& c,
                  const google::protobuf::Message& payload,
                  const std::vector<std::string>& extra_audience) {
  v1::CaseEvent event;
  event.set_event_id(events::NewEventId());
  event.set_case_name(c.name());
  *event.mutable_occur_time() = api::ToTimestamp(api::StoreNow());
  const google::protobuf::OneofDescriptor* oneof =
      v1::CaseEvent::descriptor()->FindOneofByName("payload");
  bool set = false;
  for (int i = 0; i < oneof->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = oneof->field(i);
    if (field->message_type() == payload.GetDescriptor()) {
      event.GetReflection()->MutableMessage(&event, field)->CopyFrom(payload);
      set = true;
      break;
    }
  }
  if (!set) return absl::InternalError("not a case event payload");
  lotse::events::v1::Event out;
  out.set_event_id(event.event_id());
  out.set_ordering_key(c.name());
  out.set_source("cases");
  *out.mutable_occurred_at() = event.occur_time();
  out.mutable_payload()->PackFrom(payload);
  if (absl::Status s = events::EnqueueEvent(tx, std::move(out)); !s.ok()) {
    return s;
  }
  std::vector<std::string> audience(c.participating_agencies().begin(),
                                    c.participating_agencies().end());
  for (const std::string& a : extra_audience) {
    if (std::find(audience.begin(), audience.end(), a) == audience.end()) {
      audience.push_back(a);
    }
  }
  return AppendCaseEvent(tx, event, c.person(), audience).status();
}

}  // namespace internal

using server::RequestContext;
using storage::Transaction;

CasesServiceImpl::CasesServiceImpl(server::ServiceRuntime& runtime,
                                   AccessChecker* access, CasesOptions options)
    : UnaryService(runtime.env, v1::CasesService::service_full_name()),
      runtime_(runtime),
      access_(access),
      options_(std::move(options)) {
  // A caller whose registration has not reached cases yet is looked up in
  // identity rather than refused (common/agencies/registry.h). Writes go
  // through the process's group committer, which cases wants with one
  // writer (the default): every write takes the global outbox, case-event
  // and audit locks, so two batches in flight would only wait for each
  // other — and, holding case locks in different orders, deadlock on
  // PostgreSQL.
  agencies::AgencyLookup lookup;
  if (access_ != nullptr) {
    lookup = [access](absl::string_view agency, absl::Time deadline) {
      return access->GetAgency(agency, deadline);
    };
  }
  call_env_ = agencies::CallEnvironment::ForRuntime(
      v1::CasesService::service_full_name(), runtime_, std::move(lookup));
  // Audit records of "cases/x/..." name the case's person.
  call_env_.persons_of_resource = PersonsOfCaseResource;
  // Case status and notes are this service's own data; their audit
  // records name the ground it applies (domain/rules.h).
  call_env_.basis_of_access =
      [](Transaction& tx, const agencies::LocalAgency& caller,
         const std::string& resource, const std::string& category)
      -> absl::StatusOr<std::optional<audit::LegalBasis>> {
    absl::StatusOr<std::optional<std::string>> owner =
        OwnerOfCaseResource(tx, resource);
    if (!owner.ok()) return owner.status();
    if (!*owner) return std::nullopt;
    return CaseGroundOf(caller.name(), **owner, category);
  };
  using Self = CasesServiceImpl;
  Handle("OpenCase", this, &Self::DoOpenCase);
  Handle("GetCase", this, &Self::DoGetCase);
  Handle("ListCases", this, &Self::DoListCases);
  Handle("UpdateCase", this, &Self::DoUpdateCase);
  Handle("ChangeCaseState", this, &Self::DoChangeCaseState);
  Handle("TransferCase", this, &Self::DoTransferCase);
  Handle("CloseCase", this, &Self::DoCloseCase);
  Handle("GetIntegrationPlan", this, &Self::DoGetPlan);
  Handle("ListIntegrationPlanVersions", this, &Self::DoListPlans);
  Handle("UpdateIntegrationPlan", this, &Self::DoUpdatePlan);
  Handle("CreateStep", this, &Self::DoCreateStep);
  Handle("GetStep", this, &Self::DoGetStep);
  Handle("ListSteps", this, &Self::DoListSteps);
  Handle("UpdateStep", this, &Self::DoUpdateStep);
  Handle("AcceptStep", this, &Self::DoAcceptStep);
  Handle("DeclineStep", this, &Self::DoDeclineStep);
  Handle("StartStep", this, &Self::DoStartStep);
  Handle("CompleteStep", this, &Self::DoCompleteStep);
  Handle("CancelStep", this, &Self::DoCancelStep);
  Handle("CreateNote", this, &Self::DoCreateNote);
  Handle("GetNote", this, &Self::DoGetNote);
  Handle("ListNotes", this, &Self::DoListNotes);
  Handle("UpdateNote", this, &Self::DoUpdateNote);
  Handle("DeleteNote", this, &Self::DoDeleteNote);
  Handle("GetCaseView", this, &Self::DoGetCaseView);
  Handle("GetWaitingTimeStatistics", this, &Self::DoStatistics);
  HandleServerStream<v1::WatchCaseEventsRequest, v1::WatchCaseEventsResponse>(
      "WatchCaseEvents", [this](grpc::CallbackServerContext* ctx,
                                const v1::WatchCaseEventsRequest* req) {
        return WatchCaseEvents(ctx, req);
      });
  WatchOptions watch = options_.watch;
  watch.error_domain = runtime_.env.error_domain;
  hub_ = std::make_unique<WatchHub>(
      *runtime_.database, access_,
      [this](const RequestContext& rc, const v1::WatchCaseEventsRequest& r) {
        return ResolveWatch(rc, r);
      },
      watch);
}

CasesServiceImpl::~CasesServiceImpl() { hub_.reset(); }

void CasesServiceImpl::NotifyWatchers() { hub_->Notify(); }
void CasesServiceImpl::DrainWatchers() { hub_->Drain(); }
int CasesServiceImpl::open_watch_streams() const {
  return hub_->open_streams();
}

absl::StatusOr<bool> CasesServiceImpl::ApplyEvent(
    const lotse::events::v1::Event& event) {
  absl::StatusOr<bool> applied =
      events::ApplyEventOnce(*runtime_.database, event, EventApplier());
  if (applied.ok() && *applied) hub_->Notify();
  return applied;
}

absl::Status CasesServiceImpl::WriteAndWake(
    agencies::AuditedCall& call, const agencies::AuditedCall::Body& body) {
  absl::Status status = call.Write(body);
  // A committed write may have appended case events.
  if (status.ok()) hub_->Notify();
  return status;
}

// UnaryService serves unary RPCs only (common/server/handler.h); the watch
// stream is added here as a callback method of the same service, since
// gRPC registers a service name once. It must be added after every
// Handle(): UnaryService marks its methods by their position.
}  // namespace lotse::cases
