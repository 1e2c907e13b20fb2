#include "common/events/sink.h"

#include <string>
#include <utility>

namespace lotse::events {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  // absl and gRPC share the canonical code numbers.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

}  // namespace

EventSinkService::EventSinkService(storage::Database& db, ApplyFn handler,
                                   AuthorizeFn authorize)
    : db_(db), handler_(std::move(handler)), authorize_(std::move(authorize)) {}

grpc::ServerUnaryReactor* EventSinkService::DeliverEvent(
    grpc::CallbackServerContext* context,
    const lotse::events::v1::DeliverEventRequest* request,
    lotse::events::v1::DeliverEventResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(Handle(context, *request, *response));
  return reactor;
}

grpc::Status EventSinkService::Handle(
    grpc::CallbackServerContext* context,
    const lotse::events::v1::DeliverEventRequest& request,
    lotse::events::v1::DeliverEventResponse& response) {
  if (authorize_) {
    absl::Status allowed = authorize_(context);
    if (!allowed.ok()) {
      return grpc::Status(absl::IsUnauthenticated(allowed)
                              ? grpc::StatusCode::UNAUTHENTICATED
                              : grpc::StatusCode::PERMISSION_DENIED,
                          std::string(allowed.message()));
    }
  }
  if (!request.has_event() || request.event().event_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "event.event_id is required");
  }
  if (!request.event().has_payload() ||
      request.event().payload().type_url().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "event.payload is required");
  }
  // A caller that already gave up would retry anyway; applying now is still
  // right (the retry becomes a duplicate), so cancellation is not checked.
  absl::StatusOr<bool> applied = ApplyEventOnce(db_, request.event(), handler_);
  if (!applied.ok()) return ToGrpc(applied.status());
  response.set_duplicate(!*applied);
  return grpc::Status::OK;
}

}  // namespace lotse::events
