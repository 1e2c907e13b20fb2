// lotse_placement: the placement service process. See
// common/server/service_main.h for flags, start-up and shutdown.
#include <memory>
#include <vector>

#include "common/server/service_main.h"
#include "services/placement/service/placement_service.h"
#include "services/placement/store/migrations.h"

int main(int argc, char** argv) {
  lotse::server::ServiceDefinition definition;
  definition.name = "placement";
  definition.default_listen = "127.0.0.1:50054";
  definition.health_service_names = {
      lotse::placement::v1::PlacementService::service_full_name()};
  definition.migrations = lotse::placement::PlacementMigrations();
  definition.make_services = [](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    std::vector<std::unique_ptr<grpc::Service>> services;
    services.push_back(
        std::make_unique<lotse::placement::PlacementServiceImpl>(runtime));
    return services;
  };
  return lotse::server::RunService(argc, argv, definition);
}
