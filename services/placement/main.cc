// lotse_placement: the placement service process. See
// common/server/service_main.h for the shared flags, start-up and shutdown.
//
// Flags of this service (each also LOTSE_<NAME> in the environment):
//   --identity_target        host:port of the identity service
//                            (default 127.0.0.1:50051); access decisions,
//                            persons and the fresh work-permission check
//                            are asked there, with a deadline.
//   --identity_client_cert   client certificate under <tls_dir>/clients/
//                            used towards identity (default svc-placement);
//                            with --insecure_dev, plaintext instead.
//   --identity_timeout       longest wait for one identity call (2s).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "common/clients/identity_client.h"
#include "common/server/flags.h"
#include "common/server/server.h"
#include "common/server/service_main.h"
#include "grpcpp/security/credentials.h"
#include "services/placement/service/placement_service.h"
#include "services/placement/store/migrations.h"

ABSL_FLAG(std::string, identity_target, "127.0.0.1:50051",
          "host:port of the identity service");
ABSL_FLAG(std::string, identity_client_cert, "svc-placement",
          "client certificate (under <tls_dir>/clients/) for calls to "
          "identity");
ABSL_FLAG(absl::Duration, identity_timeout, absl::Seconds(2),
          "longest wait for one call to identity");

int main(int argc, char** argv) {
  lotse::server::ServiceDefinition definition;
  definition.name = "placement";
  definition.default_listen = "127.0.0.1:50054";
  definition.description =
      "The placement service of Lotse: job offers and apprenticeship places, "
      "candidate profiles, matching and placements.";
  definition.flag_groups = {
      {"Identity client",
       {"identity_target", "identity_client_cert", "identity_timeout"}}};
  definition.health_service_names = {
      lotse::placement::v1::PlacementService::service_full_name()};
  definition.migrations = lotse::placement::PlacementMigrations();
  // Built by make_services, used by the event handler made after it.
  lotse::placement::PlacementServiceImpl* service = nullptr;
  definition.make_services = [&service](lotse::server::ServiceRuntime& runtime)
      -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
    lotse::clients::GrpcIdentityClient::Options identity;
    identity.target = absl::GetFlag(FLAGS_identity_target);
    identity.actor = absl::GetFlag(FLAGS_identity_client_cert);
    identity.max_call_time = absl::GetFlag(FLAGS_identity_timeout);
    if (absl::GetFlag(FLAGS_insecure_dev)) {
      identity.credentials = grpc::InsecureChannelCredentials();
    } else if (!absl::GetFlag(FLAGS_tls_dir).empty()) {
      absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
          lotse::server::ClientCredentialsFromDir(
              absl::GetFlag(FLAGS_tls_dir),
              absl::GetFlag(FLAGS_identity_client_cert));
      if (!creds.ok()) return creds.status();
      identity.credentials = *std::move(creds);
    }
    lotse::placement::PlacementOptions options;
    options.identity = std::make_shared<lotse::clients::GrpcIdentityClient>(
        std::move(identity));
    auto placement = std::make_unique<lotse::placement::PlacementServiceImpl>(
        runtime, std::move(options));
    // The match index is loaded now, before the port opens.
    if (absl::Status s = placement->CatchUpIndex(); !s.ok()) return s;
    service = placement.get();
    std::vector<std::unique_ptr<grpc::Service>> services;
    services.push_back(std::move(placement));
    return services;
  };
  // Identity's agency, residence and merge events and courses' results.
  definition.make_event_handler = [&service](lotse::server::ServiceRuntime&) {
    return service->EventHandler();
  };
  return lotse::server::RunService(argc, argv, definition);
}
