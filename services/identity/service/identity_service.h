// The gRPC face of the identity service: lotse.identity.v1.IdentityService.
//
// The contract (proto/lotse/identity/v1/) is complete; the handlers are not yet
// written, so every RPC answers UNIMPLEMENTED (the generated base class's
// behaviour) until its issue is done. The process around it is real:
// mutual TLS, health, reflection, metrics, storage with the audit chain and
// the event outbox.
#ifndef LOTSE_SERVICES_IDENTITY_SERVICE_IDENTITY_SERVICE_H_
#define LOTSE_SERVICES_IDENTITY_SERVICE_IDENTITY_SERVICE_H_

#include "common/server/service_main.h"
#include "lotse/identity/v1/identity_service.grpc.pb.h"

namespace lotse::identity {

class IdentityServiceImpl final : public v1::IdentityService::CallbackService {
 public:
  explicit IdentityServiceImpl(server::ServiceRuntime& runtime)
      : runtime_(runtime) {}

 private:
  [[maybe_unused]] server::ServiceRuntime& runtime_;
};

}  // namespace lotse::identity

#endif  // LOTSE_SERVICES_IDENTITY_SERVICE_IDENTITY_SERVICE_H_
