// lotse_identity: the identity service process. See
// common/server/service_main.h for flags, start-up and shutdown.
#include <memory>
#include <vector>

#include "common/server/service_main.h"
#include "services/identity/service/identity_service.h"
#include "services/identity/store/migrations.h"

int main(int argc, char** argv) {
  lotse::server::ServiceDefinition definition;
  definition.name = "identity";
  definition.default_listen = "127.0.0.1:50051";
  definition.health_service_names = {
      lotse::identity::v1::IdentityService::service_full_name()};
  definition.migrations = lotse::identity::IdentityMigrations();
  definition.make_services = [](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    std::vector<std::unique_ptr<grpc::Service>> services;
    services.push_back(
        std::make_unique<lotse::identity::IdentityServiceImpl>(runtime));
    return services;
  };
  return lotse::server::RunService(argc, argv, definition);
}
