// The shared main() of every Lotse service: flags (with LOTSE_* environment
// overrides), the service's database with its migrations, the gRPC server
// with TLS, health, reflection and metrics, and the SIGTERM drain.
//
// Start-up order: open the database, apply migrations, build the handlers,
// start serving (health NOT_SERVING), then report SERVING. A replica that
// cannot migrate never opens its port, so it never receives traffic. SIGTERM or
// SIGINT drain the server (see Server::Drain) and the process exits 0.
#ifndef LOTSE_COMMON_SERVER_SERVICE_MAIN_H_
#define LOTSE_COMMON_SERVER_SERVICE_MAIN_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/server/handler.h"
#include "common/storage/database.h"
#include "common/storage/migrations.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "prometheus/registry.h"

namespace lotse::server {

// What a service's handlers get from the process.
struct ServiceRuntime {
  storage::Database* database = nullptr;
  HandlerEnv env;
  prometheus::Registry* metrics = nullptr;
};

struct ServiceDefinition {
  std::string name;            // "identity": logs, metrics, TLS file names
  std::string default_listen;  // e.g. "127.0.0.1:50051"
  std::vector<std::string> health_service_names;
  std::vector<storage::Migration> migrations;
  // Called once the database is migrated; the returned services are
  // registered with the server and live until the process exits.
  std::function<absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>>(
      ServiceRuntime&)>
      make_services;
};

// Runs the service until SIGTERM/SIGINT. Returns the process exit code.
int RunService(int argc, char** argv, const ServiceDefinition& definition);

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_SERVICE_MAIN_H_
