// lotse_cases: the cases service process. See common/server/service_main.h
// for flags, start-up and shutdown.
#include <memory>
#include <vector>

#include "common/server/service_main.h"
#include "services/cases/service/cases_service.h"
#include "services/cases/store/migrations.h"

int main(int argc, char** argv) {
  lotse::server::ServiceDefinition definition;
  definition.name = "cases";
  definition.default_listen = "127.0.0.1:50052";
  definition.health_service_names = {
      lotse::cases::v1::CasesService::service_full_name()};
  definition.migrations = lotse::cases::CasesMigrations();
  definition.make_services = [](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    std::vector<std::unique_ptr<grpc::Service>> services;
    services.push_back(
        std::make_unique<lotse::cases::CasesServiceImpl>(runtime));
    return services;
  };
  return lotse::server::RunService(argc, argv, definition);
}
