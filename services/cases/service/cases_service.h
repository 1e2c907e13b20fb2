// The gRPC face of the cases service: lotse.cases.v1.CasesService.
//
// The contract (proto/lotse/cases/v1/) is complete; the handlers are not yet
// written, so every RPC answers UNIMPLEMENTED (the generated base class's
// behaviour) until its issue is done. The process around it is real:
// mutual TLS, health, reflection, metrics, storage with the audit chain and
// the event outbox.
#ifndef LOTSE_SERVICES_CASES_SERVICE_CASES_SERVICE_H_
#define LOTSE_SERVICES_CASES_SERVICE_CASES_SERVICE_H_

#include "common/server/service_main.h"
#include "lotse/cases/v1/cases_service.grpc.pb.h"

namespace lotse::cases {

class CasesServiceImpl final : public v1::CasesService::CallbackService {
 public:
  explicit CasesServiceImpl(server::ServiceRuntime& runtime)
      : runtime_(runtime) {}

 private:
  [[maybe_unused]] server::ServiceRuntime& runtime_;
};

}  // namespace lotse::cases

#endif  // LOTSE_SERVICES_CASES_SERVICE_CASES_SERVICE_H_
