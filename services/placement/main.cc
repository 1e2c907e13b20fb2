// lotse_placement: the placement service process. See
// common/server/service_main.h for the shared flags, start-up and shutdown.
//
// Flags of this service (each also LOTSE_<NAME> in the environment):
//   --identity_*             where identity is and how to call it
//                            (common/clients/identity_client_flags.h).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "common/audit/audit_service.h"
#include "common/clients/identity_client.h"
#include "common/clients/identity_client_flags.h"
#include "common/server/flags.h"
#include "common/server/service_main.h"
#include "services/placement/service/placement_service.h"
#include "services/placement/store/migrations.h"

int main(int argc, char** argv) {
  lotse::server::ServiceDefinition definition;
  definition.name = "placement";
  definition.default_listen = "127.0.0.1:50054";
  definition.description =
      "The placement service of Lotse: job offers and apprenticeship places, "
      "candidate profiles, matching and placements.";
  definition.flag_groups = {lotse::clients::IdentityClientFlagGroup()};
  definition.health_service_names = {
      lotse::placement::v1::PlacementService::service_full_name()};
  definition.migrations = lotse::placement::PlacementMigrations();
  // Built by make_services, used by the event handler made after it.
  lotse::placement::PlacementServiceImpl* service = nullptr;
  definition.make_services = [&service](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    absl::StatusOr<std::unique_ptr<lotse::clients::GrpcIdentityClient>>
        identity = lotse::clients::IdentityClientFromFlags("placement",
                                                           runtime.metrics);
    if (!identity.ok()) return identity.status();
    lotse::placement::PlacementOptions options;
    options.identity = *std::move(identity);
    auto placement = std::make_unique<lotse::placement::PlacementServiceImpl>(
        runtime, std::move(options));
    // The match index is loaded now, before the port opens.
    if (absl::Status s = placement->CatchUpIndex(); !s.ok()) return s;
    service = placement.get();
    std::vector<std::unique_ptr<grpc::Service>> services;
    services.push_back(lotse::audit::MakeAuditService(
        runtime, "placement", service->call_env(),
        lotse::audit::MergedIdsFromTable("placement_person_merges", "merged",
                                         "survivor")));
    services.push_back(std::move(placement));
    return services;
  };
  // Identity's agency, residence and merge events and courses' results.
  definition.make_event_handler = [&service](lotse::server::ServiceRuntime&) {
    return service->EventHandler();
  };
  // Retention: the placement service's kinds (see PlacementPurgeTasks).
  definition.make_purge_tasks = [](lotse::server::ServiceRuntime&) {
    return lotse::placement::PlacementPurgeTasks();
  };
  return lotse::server::RunService(argc, argv, definition);
}
