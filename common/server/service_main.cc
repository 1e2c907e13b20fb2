#include "common/server/service_main.h"

#include <csignal>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/server/flags.h"
#include "common/server/log.h"
#include "common/server/server.h"

namespace lotse::server {
namespace {

int Fail(const std::string& service, absl::string_view what,
         const absl::Status& status) {
  Log(LogLevel::kError, what,
      {{"service", service}, {"error", std::string(status.ToString())}});
  return 1;
}

}  // namespace

int RunService(int argc, char** argv, const ServiceDefinition& definition) {
  // Block the termination signals before any thread exists, so every thread
  // inherits the mask and only the sigwait below ever receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ParseFlags(argc, argv);
  const std::string& name = definition.name;

  std::string database_url = absl::GetFlag(FLAGS_database);
  if (database_url.empty()) database_url = absl::StrCat("sqlite:", name, ".db");
  absl::StatusOr<std::unique_ptr<storage::Database>> db =
      storage::OpenDatabase(database_url);
  if (!db.ok()) return Fail(name, "cannot open database", db.status());

  ServerOptions options;
  options.service_name = name;
  options.health_service_names = definition.health_service_names;
  options.listen = absl::GetFlag(FLAGS_listen);
  if (options.listen.empty()) options.listen = definition.default_listen;
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.insecure_dev = absl::GetFlag(FLAGS_insecure_dev);
  if (const std::string dir = absl::GetFlag(FLAGS_tls_dir); !dir.empty()) {
    options.tls = TlsFilesFromDir(dir, name);
  }
  if (!absl::GetFlag(FLAGS_tls_cert).empty())
    options.tls.cert = absl::GetFlag(FLAGS_tls_cert);
  if (!absl::GetFlag(FLAGS_tls_key).empty())
    options.tls.key = absl::GetFlag(FLAGS_tls_key);
  if (!absl::GetFlag(FLAGS_tls_ca).empty())
    options.tls.ca = absl::GetFlag(FLAGS_tls_ca);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.drain_grace = absl::GetFlag(FLAGS_drain_grace);
  options.shutdown_deadline = absl::GetFlag(FLAGS_shutdown_deadline);
  options.log_calls = absl::GetFlag(FLAGS_log_calls);

  // Handlers are created before the server starts (gRPC registers services
  // at build time) but only answer once migrations have run and health
  // says SERVING.
  WorkerPool pool(
      absl::GetFlag(FLAGS_worker_threads),
      /*max_queued=*/static_cast<size_t>(absl::GetFlag(FLAGS_worker_threads)) *
          256);
  ServiceRuntime runtime;
  runtime.database = db->get();
  runtime.env.pool = &pool;
  runtime.env.insecure_dev = options.insecure_dev;
  runtime.env.error_domain = absl::StrCat(name, ".lotse");

  if (absl::Status s = storage::ApplyMigrations(**db, definition.migrations);
      !s.ok()) {
    return Fail(name, "migrations failed", s);
  }

  auto services = definition.make_services(runtime);
  if (!services.ok())
    return Fail(name, "cannot build services", services.status());
  std::vector<grpc::Service*> raw;
  for (auto& s : *services) raw.push_back(s.get());

  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options, raw);
  if (!server.ok()) return Fail(name, "cannot start server", server.status());
  runtime.metrics = &(*server)->metrics_registry();
  (*server)->SetServing(true);
  Log(LogLevel::kInfo, "serving",
      {{"service", name}, {"port", static_cast<int64_t>((*server)->port())}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(LogLevel::kInfo, "signal received",
      {{"service", name}, {"signal", static_cast<int64_t>(signal_number)}});
  (*server)->Drain();
  return 0;
}

}  // namespace lotse::server
