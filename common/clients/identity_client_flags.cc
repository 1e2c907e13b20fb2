#include "common/clients/identity_client_flags.h"

#include <cstdint>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/server/flags.h"
#include "common/server/log.h"
#include "common/server/server.h"
#include "grpcpp/security/credentials.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"

ABSL_FLAG(std::string, identity_target, "127.0.0.1:50051",
          "host:port of the identity service (access decisions, standing, "
          "persons, residence status, agencies not yet heard of)");
ABSL_FLAG(std::string, identity_client_cert, "",
          "client certificate (under <tls_dir>/clients/) for calls to "
          "identity; empty means svc-<service>");
ABSL_FLAG(absl::Duration, identity_timeout, absl::Seconds(2),
          "longest wait for one call to identity");
ABSL_FLAG(int32_t, identity_breaker_failures, 5,
          "unanswered calls to identity in a row after which the service "
          "stops asking: calls that need identity fail UNAVAILABLE "
          "(CHECK_UNAVAILABLE) at once instead of each waiting; 0 never "
          "stops asking");
ABSL_FLAG(absl::Duration, identity_breaker_open_for, absl::Seconds(1),
          "while the service has stopped asking identity, one call every "
          "this long tries it again; the first one answered resumes all");

namespace lotse::clients {

server::FlagGroup IdentityClientFlagGroup() {
  return {"Identity client",
          {"identity_target", "identity_client_cert", "identity_timeout",
           "identity_breaker_failures", "identity_breaker_open_for"}};
}

absl::StatusOr<std::unique_ptr<GrpcIdentityClient>> IdentityClientFromFlags(
    absl::string_view service, prometheus::Registry* metrics) {
  GrpcIdentityClient::Options options;
  options.target = absl::GetFlag(FLAGS_identity_target);
  if (options.target.empty()) {
    return absl::FailedPreconditionError("--identity_target is empty");
  }
  options.actor = absl::GetFlag(FLAGS_identity_client_cert);
  if (options.actor.empty()) options.actor = absl::StrCat("svc-", service);
  options.max_call_time = absl::GetFlag(FLAGS_identity_timeout);
  if (options.max_call_time <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--identity_timeout must be positive");
  }
  options.breaker_failures = absl::GetFlag(FLAGS_identity_breaker_failures);
  if (options.breaker_failures < 0) {
    return absl::InvalidArgumentError(
        "--identity_breaker_failures must be 0 (never stop asking) or more");
  }
  options.breaker_open_for = absl::GetFlag(FLAGS_identity_breaker_open_for);
  if (options.breaker_open_for <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--identity_breaker_open_for must be positive");
  }
  prometheus::Gauge* stopped_gauge = nullptr;
  prometheus::Counter* stops = nullptr;
  if (metrics != nullptr) {
    stopped_gauge = &prometheus::BuildGauge()
                         .Name("lotse_identity_breaker_open")
                         .Help(
                             "1 while the service has stopped asking "
                             "identity (it did not answer "
                             "--identity_breaker_failures calls in a row)")
                         .Register(*metrics)
                         .Add({});
    stops = &prometheus::BuildCounter()
                 .Name("lotse_identity_breaker_opened_total")
                 .Help("Times the service stopped asking identity")
                 .Register(*metrics)
                 .Add({});
  }
  options.on_breaker_change =
      [target = options.target,
       every = absl::FormatDuration(options.breaker_open_for), stopped_gauge,
       stops](bool stopped) {
        if (stopped_gauge != nullptr) stopped_gauge->Set(stopped ? 1 : 0);
        if (stopped && stops != nullptr) stops->Increment();
        if (stopped) {
          server::Log(server::LogLevel::kWarning,
                      "identity is not answering; calls that need it fail "
                      "UNAVAILABLE at once, one is let through to try it again",
                      {{"target", target}, {"every", every}});
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
