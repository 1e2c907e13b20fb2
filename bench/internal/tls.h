// Credentials for the benchmarks, built from a tools/dev-pki.sh directory.
// Shared by the echo server, the load generator and later benchmarks, so all
// of them run the same mutual-TLS configuration as the Lotse services.
#ifndef LOTSE_BENCH_INTERNAL_TLS_H_
#define LOTSE_BENCH_INTERNAL_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace lotse::bench {

// Reads a whole file; NOT_FOUND / PERMISSION_DENIED style errors name the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Server credentials for mutual TLS: presents servers/<server_name>.{crt,key}
// from `pki_dir` and requires a client certificate that verifies against
// `pki_dir`/ca.crt, so a client without one never completes the handshake.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
MakeMutualTlsServerCredentials(absl::string_view pki_dir,
                               absl::string_view server_name);

// Channel credentials for mutual TLS: trusts only `pki_dir`/ca.crt and
// presents clients/<client_name>.{crt,key}.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeMutualTlsChannelCredentials(absl::string_view pki_dir,
                                absl::string_view client_name);

}  // namespace lotse::bench

#endif  // LOTSE_BENCH_INTERNAL_TLS_H_
