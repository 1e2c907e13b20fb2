// What a TLS server re-reads while it runs: the CRLs client certificates
// are checked against (--tls_crl), and its own certificate, key and CA
// bundle, which reach the handshakes through gRPC's
// FileWatcherCertificateProvider reading checked copies (served_*()).
//
// Why revocation is checked here and not with gRPC's set_crl_directory:
// with gRPC 1.51 and OpenSSL the CRL directory is read by OpenSSL's
// hash-directory lookup into the SSL_CTX's X509_STORE, which caches a CRL
// once loaded and never reads a rewritten file again; the SSL_CTX is only
// rebuilt when the certificates change. A CRL updated on disk would thus
// not be enforced until a restart.
//
// Failure modes: at start a CRL that cannot be read, does not parse, is
// not signed by a CA of the bundle or is past its nextUpdate refuses the
// start (FAILED_PRECONDITION naming the file). Later, such a CRL is logged,
// counted (lotse_tls_reload_failures_total{material="crl"}) and ignored:
// the last good CRLs stay in force. A CRL that goes past its nextUpdate
// while no fresh one arrives also stays in force, logged once; alert on
// lotse_tls_crl_next_update_seconds.
//
// The same for the server certificate: one that does not parse, does not
// match its key or has expired (or a CA bundle without a certificate)
// refuses the start, and later is logged, counted
// (material="server_certificate") and not served; gRPC 1.51 would
// otherwise load it and fail every new handshake until it is fixed.
#ifndef LOTSE_COMMON_SERVER_INTERNAL_TLS_RELOADER_H_
#define LOTSE_COMMON_SERVER_INTERNAL_TLS_RELOADER_H_

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/server/internal/crl.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace lotse::server::internal {

struct TlsReloadOptions {
  std::string service;  // for log lines
  std::string cert;     // server certificate chain (PEM file)
  std::string key;      // server private key (PEM file)
  std::string ca;       // CA bundle; CRLs must be signed by one of its CAs
  std::string crl;      // CRL file or directory; empty: no revocation check
  absl::Duration interval = absl::Minutes(1);
};

class TlsReloader {
 public:
  // Checks the server certificate and key (they parse, match, have not
  // expired) and loads the CRLs, then re-reads all of them every
  // `interval` on a thread of its own. FAILED_PRECONDITION naming the file
  // and the fault when the start material is unusable. Metrics go to
  // `registry`, which must outlive the server's handshakes.
  static absl::StatusOr<std::shared_ptr<TlsReloader>> Start(
      const TlsReloadOptions& options, prometheus::Registry& registry);

  TlsReloader(const TlsReloader&) = delete;
  TlsReloader& operator=(const TlsReloader&) = delete;
  ~TlsReloader();  // Stop()

  // Ends the reload thread and removes the served copies (call it once the
  // server no longer accepts connections); the CRLs last loaded stay in
  // force for CheckPeer. Idempotent.
  void Stop();

  // OK unless the client certificate `cert_pem` is revoked by the CRLs in
  // force (UNAUTHENTICATED, counted in lotse_tls_revoked_handshakes_total
  // and logged with its serial and subject) or does not parse
  // (UNAUTHENTICATED). Thread-safe.
  absl::Status CheckPeer(absl::string_view cert_pem);

  // One round of re-reading, as the thread does every interval.
  void ReloadOnce();

  // The copies of certificate, key and CA bundle gRPC's file watcher reads:
  // only material that passed the checks of Start is copied there (in a
  // private directory under /dev/shm, else $TMPDIR or /tmp, removed by
  // Stop), so a broken or half-written file on disk never reaches the
  // handshakes. Valid once Start returned, until Stop.
  std::string served_cert() const;
  std::string served_key() const;
  std::string served_ca() const;

 private:
  struct Metrics {
    explicit Metrics(prometheus::Registry& registry);
    prometheus::Family<prometheus::Counter>& reloads;
    prometheus::Family<prometheus::Counter>& failures;
    prometheus::Gauge& crl_next_update;
    prometheus::Gauge& crl_revoked;
    prometheus::Gauge& cert_not_after;
    prometheus::Counter& revoked_handshakes;
  };

  TlsReloader(TlsReloadOptions options, prometheus::Registry& registry);

  // Reads and checks the CRLs; when `at_start`, any fault is returned,
  // else it is logged, counted and the old CRLs stay.
  absl::Status ReloadCrl(bool at_start);
  absl::Status ReloadServerCertificate(bool at_start);
  // Writes a new generation of the served copies and points `current` at
  // it (a symlink swap, atomic for readers).
  absl::Status Serve(absl::string_view cert, absl::string_view key,
                     absl::string_view ca);
  void Run();

  const TlsReloadOptions options_;
  Metrics metrics_;
  absl::Notification stop_;
  std::thread thread_;

  absl::Mutex mu_;
  std::shared_ptr<const CrlSet> crls_ ABSL_GUARDED_BY(mu_);
  absl::Time crl_next_update_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();

  // Refused handshakes are logged at most once per kRefusalLogInterval,
  // with how many the line stands for: a revoked client that keeps
  // reconnecting must not flood the log.
  absl::Mutex log_mu_;
  absl::Time last_refusal_log_ ABSL_GUARDED_BY(log_mu_) = absl::InfinitePast();
  int64_t unlogged_refusals_ ABSL_GUARDED_BY(log_mu_) = 0;

  // Only the reload thread (and Start, before it runs) touch these: the
  // material last looked at, so unchanged files are not parsed again and a
  // broken file is reported once, not every interval.
  std::string crl_seen_;
  std::string cert_seen_;
  std::string served_dir_;
  int generation_ = 0;
  time_t last_mtime_ = 0;
  bool stale_logged_ = false;
};

// The certificate verifier a TLS server hands to gRPC: after the chain was
// verified, it refuses the handshake of a client whose certificate
// `reloader` says is revoked.
std::shared_ptr<grpc::experimental::CertificateVerifier> RevocationVerifier(
    std::shared_ptr<TlsReloader> reloader);

}  // namespace lotse::server::internal

#endif  // LOTSE_COMMON_SERVER_INTERNAL_TLS_RELOADER_H_
