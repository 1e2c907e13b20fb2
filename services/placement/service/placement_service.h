// The gRPC face of the placement service: lotse.placement.v1.PlacementService.
//
// The contract (proto/lotse/placement/v1/) is complete; the handlers are not
// yet written, so every RPC answers UNIMPLEMENTED (the generated base class's
// behaviour) until its issue is done. The process around it is real:
// mutual TLS, health, reflection, metrics, storage with the audit chain and
// the event outbox.
#ifndef LOTSE_SERVICES_PLACEMENT_SERVICE_PLACEMENT_SERVICE_H_
#define LOTSE_SERVICES_PLACEMENT_SERVICE_PLACEMENT_SERVICE_H_

#include "common/server/service_main.h"
#include "lotse/placement/v1/placement_service.grpc.pb.h"

namespace lotse::placement {

class PlacementServiceImpl final
    : public v1::PlacementService::CallbackService {
 public:
  explicit PlacementServiceImpl(server::ServiceRuntime& runtime)
      : runtime_(runtime) {}

 private:
  [[maybe_unused]] server::ServiceRuntime& runtime_;
};

}  // namespace lotse::placement

#endif  // LOTSE_SERVICES_PLACEMENT_SERVICE_PLACEMENT_SERVICE_H_
