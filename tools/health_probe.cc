// lotse_health_probe: asks a Lotse service's grpc.health.v1.Health whether it
// is SERVING, over mutual TLS with a dev or real client certificate (or
// plaintext with --insecure). Exit 0 when SERVING, 1 otherwise. Used by the
// run command to wait for start-up; usable as an exec probe where a
// plaintext --health_listen port is not wanted.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/server/server.h"
#include "common/server/usage.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "host:port of the service");
ABSL_FLAG(std::string, service, "",
          "service name to ask about; empty: whole server");
ABSL_FLAG(std::string, tls_dir, "", "dev-pki directory (ca.crt, clients/)");
ABSL_FLAG(std::string, client, "kim-koeln",
          "client certificate name under clients/");
ABSL_FLAG(std::string, server_name, "",
          "name the server certificate must carry, when it differs from the "
          "host in --target (e.g. identity.lotse.svc while asking 127.0.0.1)");
ABSL_FLAG(bool, insecure, false,
          "plaintext (for --insecure_dev servers and --health_listen ports)");
ABSL_FLAG(absl::Duration, wait, absl::ZeroDuration(),
          "keep asking until SERVING or this much time has passed");

int main(int argc, char** argv) {
  lotse::server::ParseToolFlags(
      argc, argv,
      "Usage: lotse_health_probe [--flag=value ...]\n\n"
      "Asks a Lotse service's grpc.health.v1.Health whether it is SERVING.\n"
      "Exit status 0 when it is, 1 when not, 2 when the client certificate\n"
      "cannot be read.\n",
      {{"Target", {"target", "service", "server_name", "wait"}},
       {"TLS", {"tls_dir", "client", "insecure"}}});
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (absl::GetFlag(FLAGS_insecure)) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    auto tls = lotse::server::ClientCredentialsFromDir(
        absl::GetFlag(FLAGS_tls_dir), absl::GetFlag(FLAGS_client));
    if (!tls.ok()) {
      std::fprintf(stderr, "%s\n", tls.status().ToString().c_str());
      return 2;
    }
    creds = *tls;
  }
  grpc::ChannelArguments args;
  if (!absl::GetFlag(FLAGS_server_name).empty()) {
    args.SetSslTargetNameOverride(absl::GetFlag(FLAGS_server_name));
  }
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateCustomChannel(absl::GetFlag(FLAGS_target), creds, args));
  const absl::Time give_up = absl::Now() + absl::GetFlag(FLAGS_wait);
  std::string last = "no answer";
  do {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(absl::GetFlag(FLAGS_service));
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (status.ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      std::printf("SERVING\n");
      return 0;
    }
    last = status.ok()
               ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                     response.status())
               : status.error_message();
    if (absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < give_up);
  std::printf("%s\n", last.c_str());
  return 1;
}
