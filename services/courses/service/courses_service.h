// The gRPC face of the courses service: lotse.courses.v1.CoursesService.
//
// The contract (proto/lotse/courses/v1/) is complete; the handlers are not yet
// written, so every RPC answers UNIMPLEMENTED (the generated base class's
// behaviour) until its issue is done. The process around it is real:
// mutual TLS, health, reflection, metrics, storage with the audit chain and
// the event outbox.
#ifndef LOTSE_SERVICES_COURSES_SERVICE_COURSES_SERVICE_H_
#define LOTSE_SERVICES_COURSES_SERVICE_COURSES_SERVICE_H_

#include "common/server/service_main.h"
#include "lotse/courses/v1/courses_service.grpc.pb.h"

namespace lotse::courses {

class CoursesServiceImpl final : public v1::CoursesService::CallbackService {
 public:
  explicit CoursesServiceImpl(server::ServiceRuntime& runtime)
      : runtime_(runtime) {}

 private:
  [[maybe_unused]] server::ServiceRuntime& runtime_;
};

}  // namespace lotse::courses

#endif  // LOTSE_SERVICES_COURSES_SERVICE_COURSES_SERVICE_H_
