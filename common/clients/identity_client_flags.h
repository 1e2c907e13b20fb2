// The flags that point a service at identity, and the client they make.
// Cases, courses and placement call identity (CheckAccess, standing, person
// and residence reads, unknown agencies) with the same flags, each also
// LOTSE_<NAME> in the environment (server/flags.h):
//   --identity_target            host:port of identity (127.0.0.1:50051,
//                                the address identity listens on by
//                                default)
//   --identity_client_cert       client certificate under
//                                <tls_dir>/clients/ used towards identity;
//                                empty means svc-<service>
//   --identity_timeout           longest wait for one identity call
//   --identity_breaker_failures  unanswered calls in a row after which the
//                                client stops asking (0: never)
//   --identity_breaker_open_for  how often a stopped client tries again
// (GrpcIdentityClient::Options says what the last two do.)
#ifndef LOTSE_COMMON_CLIENTS_IDENTITY_CLIENT_FLAGS_H_
#define LOTSE_COMMON_CLIENTS_IDENTITY_CLIENT_FLAGS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clients/identity_client.h"
#include "common/server/usage.h"
#include "prometheus/registry.h"

ABSL_DECLARE_FLAG(std::string, identity_target);
ABSL_DECLARE_FLAG(std::string, identity_client_cert);
ABSL_DECLARE_FLAG(absl::Duration, identity_timeout);
ABSL_DECLARE_FLAG(int32_t, identity_breaker_failures);
ABSL_DECLARE_FLAG(absl::Duration, identity_breaker_open_for);

namespace lotse::clients {

// The --help group of the flags above ("Identity client").
server::FlagGroup IdentityClientFlagGroup();

// The identity client of service `service` ("courses") as the flags (and
// --tls_dir, --insecure_dev) describe it: mutual TLS with the service's
// client certificate under --tls_dir, or plaintext with --insecure_dev.
// Calls carry the certificate's name as actor. Without either, the client
// has no credentials and every call fails UNAVAILABLE (the process itself
// refuses to serve without TLS material). With `metrics`, the client's
// breaker is observable: gauge lotse_identity_breaker_open (1 while the
// client has stopped asking) and counter
// lotse_identity_breaker_opened_total. FAILED_PRECONDITION when
// --identity_target is empty; INVALID_ARGUMENT naming the flag when
// --identity_timeout or --identity_breaker_open_for is not positive or
// --identity_breaker_failures is negative; the certificate files' error
// when they cannot be read.
absl::StatusOr<std::unique_ptr<GrpcIdentityClient>> IdentityClientFromFlags(
    absl::string_view service, prometheus::Registry* metrics = nullptr);

}  // namespace lotse::clients

#endif  // LOTSE_COMMON_CLIENTS_IDENTITY_CLIENT_FLAGS_H_
