#include "common/clients/identity_client_flags.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/server/flags.h"
#include "common/server/log.h"
#include "common/server/server.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(std::string, identity_target, "127.0.0.1:50051",
          "host:port of the identity service (access decisions, standing, "
          "persons, residence status, agencies not yet heard of)");
ABSL_FLAG(std::string, identity_client_cert, "",
          "client certificate (under <tls_dir>/clients/) for calls to "
          "identity; empty means svc-<service>");
ABSL_FLAG(absl::Duration, identity_timeout, absl::Seconds(2),
          "longest wait for one call to identity");

namespace lotse::clients {

server::FlagGroup IdentityClientFlagGroup() {
  return {"Identity client",
          {"identity_target", "identity_client_cert", "identity_timeout"}};
}

absl::StatusOr<std::unique_ptr<GrpcIdentityClient>> IdentityClientFromFlags(
    absl::string_view service) {
  GrpcIdentityClient::Options options;
  options.target = absl::GetFlag(FLAGS_identity_target);
  if (options.target.empty()) {
    return absl::FailedPreconditionError("--identity_target is empty");
  }
  options.actor = absl::GetFlag(FLAGS_identity_client_cert);
  if (options.actor.empty()) options.actor = absl::StrCat("svc-", service);
  options.max_call_time = absl::GetFlag(FLAGS_identity_timeout);
  options.on_breaker_change = [target = options.target](bool stopped) {
    if (stopped) {
      server::Log(server::LogLevel::kWarning,
                  "identity is not answering; calls that need it fail "
                  "UNAVAILABLE at once, one is let through every second",
                  {{"target", target}});
    } else {
      server::Log(server::LogLevel::kInfo, "identity answers again",
                  {{"target", target}});
    }
  };
  if (absl::GetFlag(FLAGS_insecure_dev)) {
    options.credentials = grpc::InsecureChannelCredentials();
  } else if (!absl::GetFlag(FLAGS_tls_dir).empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        server::ClientCredentialsFromDir(absl::GetFlag(FLAGS_tls_dir),
                                         options.actor);
    if (!credentials.ok()) return credentials.status();
    options.credentials = *std::move(credentials);
  }
  return std::make_unique<GrpcIdentityClient>(std::move(options));
}

}  // namespace lotse::clients
