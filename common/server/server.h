// The one way a Lotse service process serves gRPC.
//
// A Server listens on one address with mutual TLS (or, only when explicitly
// asked for with insecure_dev, plaintext), and offers besides the given
// services: grpc.health.v1.Health, server reflection and, on a separate
// port, Prometheus metrics. Every call is observed once for a JSON log line
// and per-RPC metrics.
//
// Optionally a second, plaintext port serves grpc.health.v1.Health alone,
// mirroring the main port's status. Orchestrators' built-in gRPC probes
// (Kubernetes `grpc:`) cannot present a client certificate; this port lets
// them ask without opening anything else to unauthenticated callers.
//
// Life cycle: Start() returns a server that already accepts calls but
// reports NOT_SERVING, so the process can finish starting (migrations)
// before a load balancer sends traffic; SetServing(true) then opens it.
// Drain() is the SIGTERM path: NOT_SERVING at once, a grace period so load
// balancers notice, then a shutdown that lets in-flight calls finish until
// a deadline and cancels the rest.
#ifndef LOTSE_COMMON_SERVER_SERVER_H_
#define LOTSE_COMMON_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/server.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace lotse::server {

namespace internal {
class TlsReloader;  // internal/tls_reloader.h
}  // namespace internal

struct TlsFiles {
  std::string cert;  // server certificate chain (PEM file)
  std::string key;   // server private key (PEM file)
  std::string ca;    // CA bundle client certificates must chain to
  // CRL file, or directory of CRL files, signed by a CA of `ca`: client
  // certificates they list are refused at the handshake. Empty: none.
  std::string crl;
};

// How long calls in flight may run on when a connection reached its
// max_connection_age.
inline constexpr absl::Duration kMaxConnectionAgeGrace = absl::Minutes(1);

struct ServerOptions {
  std::string service_name;  // short name for logs and metrics: "identity"
  // Full gRPC service names health checks may ask for by name.
  std::vector<std::string> health_service_names;
  std::string listen = "127.0.0.1:0";
  std::string metrics_listen;  // empty: no metrics endpoint
  std::string health_listen;   // empty: health only on `listen`, behind TLS
  TlsFiles tls;
  bool insecure_dev = false;  // plaintext, no client certificates
  // How often the server certificate, key, CA bundle and CRLs are re-read
  // from disk; changes apply to connections opened afterwards. Connections
  // already open keep the peer they were opened with until they close
  // (bound by max_connection_age). Rounded up to whole seconds.
  absl::Duration tls_reload_interval = absl::Minutes(1);
  int max_message_bytes = 4 * 1024 * 1024;
  absl::Duration drain_grace = absl::Seconds(2);
  absl::Duration shutdown_deadline = absl::Seconds(10);
  // After this long a client connection is asked (GOAWAY) to reconnect, so
  // clients spread over replicas added since; calls in flight then get
  // kMaxConnectionAgeGrace to finish. Infinite: connections live on.
  absl::Duration max_connection_age = absl::InfiniteDuration();
  bool log_calls = true;
  // Where the server's metrics go; null: a registry of its own. Lets a
  // process register metrics of parts that start before the server.
  std::shared_ptr<prometheus::Registry> metrics_registry;
};

class Server {
 public:
  // Builds and starts the server. `services` must outlive it.
  // FAILED_PRECONDITION when TLS files are missing and insecure_dev is not
  // set, when the certificate or key is unusable (unparsable, not a pair,
  // expired), or when the CRL is (unreadable, unparsable, not signed by a
  // CA of the bundle, past its nextUpdate); UNAVAILABLE when the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options,
      const std::vector<grpc::Service*>& services);

  ~Server();

  int port() const { return port_; }
  int metrics_port() const;
  int health_port() const { return health_port_; }  // 0: no health port
  prometheus::Registry& metrics_registry() { return *registry_; }

  // Reports SERVING or NOT_SERVING for the whole server and every service.
  void SetServing(bool serving);

  // NOT_SERVING, wait drain_grace, run `before_shutdown` (if any), stop
  // accepting, let in-flight calls run until shutdown_deadline, then cancel
  // them. Idempotent. `before_shutdown` is where long-lived streams end
  // themselves with a status that tells clients to reconnect elsewhere,
  // instead of being cancelled at the deadline.
  void Drain(const std::function<void()>& before_shutdown = nullptr);

 private:
  Server() = default;

  ServerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  // Re-reads TLS material; shared with the handshakes' revocation check.
  std::shared_ptr<internal::TlsReloader> tls_reloader_;
  std::unique_ptr<grpc::Server> health_server_;
  std::unique_ptr<grpc::Server> server_;
  int health_port_ = 0;
  int port_ = 0;
  bool drained_ = false;
};

// Reads TLS material for `service` from a dev-pki directory (see
// tools/dev-pki.sh): servers/<service>.crt/.key and ca.crt.
TlsFiles TlsFilesFromDir(const std::string& dir, const std::string& service);

// Makes channel credentials for calling a Lotse service as `client`
// (a certificate name under <dir>/clients/) — for tools, tests and
// service-to-service calls.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
ClientCredentialsFromDir(const std::string& dir, const std::string& client);

// Reads a whole file (PEM material). NOT_FOUND if it cannot be read.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace lotse::server

#endif  // LOTSE_COMMON_SERVER_SERVER_H_
