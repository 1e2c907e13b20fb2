// The receiving end of event delivery: an EventSinkService that applies each
// delivered event once (inbox.h) with a service-specific handler.
#ifndef LOTSE_COMMON_EVENTS_SINK_H_
#define LOTSE_COMMON_EVENTS_SINK_H_

#include <functional>

#include "absl/status/status.h"
#include "common/events/inbox.h"
#include "common/storage/database.h"
#include "grpcpp/support/server_callback.h"
#include "lotse/events/v1/events.grpc.pb.h"

namespace lotse::events {

// DeliverEvent replies:
//   OK, duplicate=false   the handler applied the event and it committed;
//   OK, duplicate=true    the event id had been applied before;
//   INVALID_ARGUMENT      no event, no event_id or no payload;
//   UNAUTHENTICATED / PERMISSION_DENIED   `authorize` refused the caller
//                         (its code is kept when UNAUTHENTICATED, otherwise
//                         PERMISSION_DENIED); nothing is applied;
//   any other error       the handler's (or the database's) status code, so
//                         that UNAVAILABLE, INTERNAL etc. make the relay
//                         retry later.
// The handler runs inside the inbox transaction and must change the
// database only through it. It runs on a gRPC callback thread; it should be
// a short database transaction, not a wait on something remote.
class EventSinkService final
    : public lotse::events::v1::EventSinkService::CallbackService {
 public:
  using AuthorizeFn = std::function<absl::Status(grpc::CallbackServerContext*)>;

  // `db` must outlive the service. `authorize` may be empty (allow all).
  EventSinkService(storage::Database& db, ApplyFn handler,
                   AuthorizeFn authorize = nullptr);

  grpc::ServerUnaryReactor* DeliverEvent(
      grpc::CallbackServerContext* context,
      const lotse::events::v1::DeliverEventRequest* request,
      lotse::events::v1::DeliverEventResponse* response) override;

 private:
  grpc::Status Handle(grpc::CallbackServerContext* context,
                      const lotse::events::v1::DeliverEventRequest& request,
                      lotse::events::v1::DeliverEventResponse& response);

  storage::Database& db_;
  const ApplyFn handler_;
  const AuthorizeFn authorize_;
};

}  // namespace lotse::events

#endif  // LOTSE_COMMON_EVENTS_SINK_H_
