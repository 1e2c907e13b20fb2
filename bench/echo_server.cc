// lotse_echo_server: a bare gRPC echo server, the baseline every Lotse
// performance figure is read against. It does nothing but copy the payload
// back, so its throughput is what gRPC, TLS and the loopback network allow on
// this machine; a Lotse service can only be slower.
//
// It deliberately uses the callback API rather than the sync API: the sync
// API dedicates a thread to each call in progress, which with many calls in
// flight measures thread switching more than gRPC. It has no health service,
// reflection, logging or metrics: those belong to the Lotse server runtime and
// would blur the baseline.

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/internal/tls.h"
#include "grpcpp/grpcpp.h"
#include "lotse/bench/v1/echo.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50090",
          "host:port to listen on; port 0 picks a free port (printed).");
ABSL_FLAG(std::string, tls_dir, "",
          "A tools/dev-pki.sh directory. If set, serve mutual TLS with "
          "servers/echo.{crt,key} and require client certificates signed by "
          "ca.crt; if empty, serve plaintext.");
ABSL_FLAG(int, shutdown_grace_s, 5,
          "On SIGTERM/SIGINT, seconds in-flight calls get to finish before "
          "they are cancelled.");

namespace lotse::bench {
namespace {

using ::lotse::bench::v1::EchoRequest;
using ::lotse::bench::v1::EchoResponse;
using ::lotse::bench::v1::EchoService;

class EchoServiceImpl final : public EchoService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const EchoRequest* request,
                                 EchoResponse* response) override {
    response->set_payload(request->payload());
    // The default reactor finishes inline on the gRPC thread: no extra
    // allocation or thread hop, which is the point of a baseline.
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Replaces the port in "host:port" (host may be a bracketed IPv6 literal).
std::string WithPort(absl::string_view address, int port) {
  const size_t colon = address.rfind(':');
  const absl::string_view host =
      colon == absl::string_view::npos ? address : address.substr(0, colon);
  return absl::StrCat(host, ":", port);
}

absl::Status Run() {
  // Block the shutdown signals before gRPC starts its threads, so that they
  // inherit the mask and only this thread receives them, via sigwait().
  // That avoids doing anything in an async signal handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return absl::InternalError("cannot block SIGINT/SIGTERM");
  }

  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::string tls_dir = absl::GetFlag(FLAGS_tls_dir);
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (tls_dir.empty()) {
    credentials = grpc::InsecureServerCredentials();
  } else {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls =
        MakeMutualTlsServerCredentials(tls_dir, "echo");
    if (!tls.ok()) return tls.status();
    credentials = *std::move(tls);
  }

  EchoServiceImpl service;
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(listen, credentials, &bound_port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
  // Scripts parse this line to learn the port when --listen ends in :0.
  std::printf("listening on %s (%s)\n", WithPort(listen, bound_port).c_str(),
              tls_dir.empty() ? "plaintext" : "mutual TLS");
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::fprintf(stderr, "received %s, shutting down\n",
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::seconds(absl::GetFlag(FLAGS_shutdown_grace_s)));
  server->Wait();
  return absl::OkStatus();
}

}  // namespace
}  // namespace lotse::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Bare gRPC echo server, the Lotse performance baseline.\n"
      "  lotse_echo_server [--listen=127.0.0.1:50090] [--tls_dir=DIR]");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = lotse::bench::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "lotse_echo_server: %s\n", status.ToString().c_str());
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
