#include "common/server/server.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/server/internal/call_observer.h"
#include "common/server/internal/tls_reloader.h"
#include "common/server/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/server_builder.h"

namespace lotse::server {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TlsFiles TlsFilesFromDir(const std::string& dir, const std::string& service) {
  return TlsFiles{absl::StrCat(dir, "/servers/", service, ".crt"),
                  absl::StrCat(dir, "/servers/", service, ".key"),
                  absl::StrCat(dir, "/ca.crt")};
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
ClientCredentialsFromDir(const std::string& dir, const std::string& client) {
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadFile(absl::StrCat(dir, "/ca.crt"));
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert =
      ReadFile(absl::StrCat(dir, "/clients/", client, ".crt"));
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key =
      ReadFile(absl::StrCat(dir, "/clients/", client, ".key"));
  if (!key.ok()) return key.status();
  ssl.pem_root_certs = *ca;
  ssl.pem_cert_chain = *cert;
  ssl.pem_private_key = *key;
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, const std::vector<grpc::Service*>& services) {
  std::unique_ptr<Server> server(new Server());
  server->options_ = options;

  server->registry_ = options.metrics_registry != nullptr
                          ? options.metrics_registry
                          : std::make_shared<prometheus::Registry>();
  if (!options.metrics_listen.empty()) {
    // civetweb throws when it cannot bind; keep exceptions inside.
    try {
      server->exposer_ =
          std::make_unique<prometheus::Exposer>(options.metrics_listen);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat(
          "cannot serve metrics on ", options.metrics_listen, ": ", e.what()));
    }
    server->exposer_->RegisterCollectable(server->registry_);
  }
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (options.insecure_dev) {
    Log(LogLevel::kWarning,
        "--insecure_dev: serving PLAINTEXT without client certificates; "
        "callers are not authenticated. Never use this outside development.",
        {{"service", options.service_name}, {"listen", options.listen}});
    credentials = grpc::InsecureServerCredentials();
  } else {
    if (options.tls.cert.empty() || options.tls.key.empty() ||
        options.tls.ca.empty()) {
      return absl::FailedPreconditionError(
          "mutual TLS needs --tls_dir or --tls_cert, --tls_key and --tls_ca "
          "(or --insecure_dev for plaintext development)");
    }
    if (absl::StatusOr<std::string> ca = ReadFile(options.tls.ca); !ca.ok()) {
      return absl::FailedPreconditionError(ca.status().message());
    }
    // The reloader checks certificate, key and CA bundle every interval
    // (whole seconds) and copies what passes to where gRPC's file watcher
    // reads it into the handshakes on the same interval; it also keeps the
    // CRLs the revocation check uses.
    const int64_t interval_s = std::max<int64_t>(
        1, absl::ToInt64Seconds(
               absl::Ceil(options.tls_reload_interval, absl::Seconds(1))));
    internal::TlsReloadOptions reload;
    reload.service = options.service_name;
    reload.cert = options.tls.cert;
    reload.key = options.tls.key;
    reload.ca = options.tls.ca;
    reload.crl = options.tls.crl;
    reload.interval = absl::Seconds(interval_s);
    absl::StatusOr<std::shared_ptr<internal::TlsReloader>> reloader =
        internal::TlsReloader::Start(reload, *server->registry_);
    if (!reloader.ok()) {
      return absl::FailedPreconditionError(reloader.status().message());
    }
    server->tls_reloader_ = *reloader;
    auto provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            server->tls_reloader_->served_key(),
            server->tls_reloader_->served_cert(),
            server->tls_reloader_->served_ca(),
            static_cast<unsigned int>(
                std::min<int64_t>(interval_s, 24 * 3600)));
    grpc::experimental::TlsServerCredentialsOptions tls(provider);
    tls.watch_root_certs();
    tls.watch_identity_key_cert_pairs();
    tls.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    tls.set_certificate_verifier(
        internal::RevocationVerifier(server->tls_reloader_));
    credentials = grpc::experimental::TlsServerCredentials(tls);
  }

  auto metrics = std::make_shared<internal::RpcMetrics>(options.service_name,
                                                        *server->registry_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  // The health port first: if the main port then fails, destroying the
  // half-built Server stops it without a drain.
  if (!options.health_listen.empty()) {
    grpc::ServerBuilder health_builder;
    health_builder.AddListeningPort(options.health_listen,
                                    grpc::InsecureServerCredentials(),
                                    &server->health_port_);
    health_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    health_builder.SetMaxReceiveMessageSize(4096);
    server->health_server_ = health_builder.BuildAndStart();
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot serve health checks on ", options.health_listen));
    }
  }

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Keepalive: ping idle connections every minute so that dead peers behind
  // NAT or load balancers are noticed; allow clients to ping every 20 s.
  // gRPC sets SO_REUSEPORT by default: a second process started on a port
  // in use would bind without error and silently receive part of the
  // connections. Refuse the bind instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 30 * 60 * 1000);
  if (options.max_connection_age != absl::InfiniteDuration()) {
    // gRPC takes an int of milliseconds: beyond about 24 days means never.
    const int64_t age_ms =
        std::min<int64_t>(absl::ToInt64Milliseconds(options.max_connection_age),
                          std::numeric_limits<int>::max());
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               static_cast<int>(std::max<int64_t>(age_ms, 1)));
    builder.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(kMaxConnectionAgeGrace)));
  }
  for (grpc::Service* service : services) {
    builder.RegisterService(service);
  }
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(std::make_unique<internal::CallObserverFactory>(
      metrics, options.log_calls, options.insecure_dev));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve gRPC on ", options.listen));
  }
  // Health answers for "" (the whole server) and for each service's full
  // name, e.g. "lotse.identity.v1.IdentityService"; all start NOT_SERVING.
  for (grpc::Server* s :
       {server->server_.get(), server->health_server_.get()}) {
    grpc::HealthCheckServiceInterface* health =
        s == nullptr ? nullptr : s->GetHealthCheckService();
    if (health == nullptr) continue;
    for (const std::string& name : options.health_service_names) {
      health->SetServingStatus(name, false);
    }
  }
  server->SetServing(false);
  Log(LogLevel::kInfo, "listening",
      {{"service", options.service_name},
       {"port", static_cast<int64_t>(server->port_)},
       {"tls", !options.insecure_dev},
       {"metrics_port", static_cast<int64_t>(server->metrics_port())},
       {"health_port", static_cast<int64_t>(server->health_port_)}});
  return server;
}

Server::~Server() {
  Drain();
  if (tls_reloader_ != nullptr) tls_reloader_->Stop();
}

int Server::metrics_port() const {
  if (exposer_ == nullptr) return 0;
  std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void Server::SetServing(bool serving) {
  for (grpc::Server* s : {server_.get(), health_server_.get()}) {
    if (s == nullptr) continue;
    grpc::HealthCheckServiceInterface* health = s->GetHealthCheckService();
    if (health != nullptr) health->SetServingStatus(serving);
  }
}

void Server::Drain(const std::function<void()>& before_shutdown) {
  if (drained_ || server_ == nullptr) return;
  drained_ = true;
  Log(LogLevel::kInfo, "draining",
      {{"service", options_.service_name},
       {"grace_ms", absl::ToInt64Milliseconds(options_.drain_grace)},
       {"deadline_ms", absl::ToInt64Milliseconds(options_.shutdown_deadline)}});
  SetServing(false);
  absl::SleepFor(options_.drain_grace);
  if (before_shutdown) before_shutdown();
  server_->Shutdown(
      absl::ToChronoTime(absl::Now() + options_.shutdown_deadline));
  server_->Wait();
  // The health port goes last, so probes read NOT_SERVING, not a refused
  // connection, for as long as the drain lasts.
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
  }
  if (tls_reloader_ != nullptr) tls_reloader_->Stop();
  Log(LogLevel::kInfo, "stopped", {{"service", options_.service_name}});
}

}  // namespace lotse::server
