// lotse_loadgen: drives lotse_echo_server with a closed loop of concurrent
// Echo calls and prints QPS and latency percentiles, once for humans and once
// as a JSON line for scripts. The measurement itself lives in
// bench/internal/load.h so that later benchmarks measure the same way.
//
// Exit status: 0 on a clean run; 1 if any call failed, no call completed in
// the measurement window, or set-up failed.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/internal/load.h"
#include "bench/internal/tls.h"
#include "grpcpp/grpcpp.h"
#include "lotse/bench/v1/echo.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50090", "Echo server address.");
ABSL_FLAG(int, concurrency, 64, "Calls kept in flight at all times.");
ABSL_FLAG(int, channels, 2,
          "Channels (hence TCP connections) the calls are spread over, "
          "round-robin.");
ABSL_FLAG(double, duration_s, 10, "Length of the measurement window.");
ABSL_FLAG(double, warmup_s, 1,
          "Seconds of load before measuring starts (not counted).");
ABSL_FLAG(int, payload_bytes, 64,
          "Size of each request (and response) payload.");
ABSL_FLAG(std::string, tls_dir, "",
          "A tools/dev-pki.sh directory; if set, use mutual TLS with "
          "clients/<client>.{crt,key} and trust only its ca.crt. If empty, "
          "plaintext.");
ABSL_FLAG(std::string, client, "kim-koeln",
          "Client certificate name under <tls_dir>/clients/.");
ABSL_FLAG(std::string, server_name_override, "",
          "TLS server name to verify instead of the target's host (only for "
          "targets the server certificate does not name).");
ABSL_FLAG(int, rpc_timeout_ms, 5000,
          "Deadline of each call; a call exceeding it counts as an error.");
ABSL_FLAG(double, connect_timeout_s, 10,
          "How long each channel may take to connect before the run fails.");

namespace lotse::bench {
namespace {

using ::lotse::bench::v1::EchoRequest;
using ::lotse::bench::v1::EchoResponse;
using ::lotse::bench::v1::EchoService;

// Echo payloads beyond this would hit gRPC's default 4 MiB message limit.
constexpr int kMaxPayloadBytes = 4 * 1000 * 1000;

// Everything an in-flight call needs. Shared with the call callbacks, so a
// call that completes late (after the driver gave up waiting) still finds
// valid channels and request.
struct EchoClient {
  std::vector<std::unique_ptr<EchoService::Stub>> stubs;
  EchoRequest request;
  absl::Duration rpc_timeout;
  std::atomic<uint64_t> next{0};
};

// One call's state; gRPC requires the context and response to outlive it.
struct EchoCall {
  grpc::ClientContext context;
  EchoResponse response;
};

absl::StatusOr<std::shared_ptr<EchoClient>> Connect() {
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string tls_dir = absl::GetFlag(FLAGS_tls_dir);
  const int channels = absl::GetFlag(FLAGS_channels);
  const int payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
  if (channels < 1)
    return absl::InvalidArgumentError("--channels must be >= 1");
  if (payload_bytes < 0 || payload_bytes > kMaxPayloadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--payload_bytes must be in [0, ", kMaxPayloadBytes, "]"));
  }

  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (tls_dir.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        MakeMutualTlsChannelCredentials(tls_dir, absl::GetFlag(FLAGS_client));
    if (!tls.ok()) return tls.status();
    credentials = *std::move(tls);
  }

  auto client = std::make_shared<EchoClient>();
  client->request.set_payload(std::string(payload_bytes, 'x'));
  client->rpc_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_rpc_timeout_ms));
  const absl::Duration connect_timeout =
      absl::Seconds(absl::GetFlag(FLAGS_connect_timeout_s));

  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    // gRPC shares one subchannel (one TCP connection) between channels with
    // identical arguments; a distinct argument per channel forces a
    // connection each, so --channels really spreads the load.
    args.SetInt("lotse.bench.channel_index", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    const std::string override_name = absl::GetFlag(FLAGS_server_name_override);
    if (!override_name.empty()) args.SetSslTargetNameOverride(override_name);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(target, credentials, args);
    auto stub = EchoService::NewStub(channel);

    // A probe call per channel connects it (TCP and TLS handshake) before
    // the clock starts, and turns a wrong address or a refused certificate
    // into one clear error instead of a run full of failures.
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + connect_timeout));
    EchoResponse response;
    const grpc::Status status =
        stub->Echo(&context, client->request, &response);
    if (!status.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "probe call on channel ", i, " to ", target, " failed: ",
          StatusCodeName(status.error_code()), ": ", status.error_message()));
    }
    client->stubs.push_back(std::move(stub));
  }
  return client;
}

StartCall MakeStartCall(std::shared_ptr<EchoClient> client) {
  return [client = std::move(client)](CallDone done) {
    auto* call = new EchoCall;
    call->context.set_deadline(
        absl::ToChronoTime(absl::Now() + client->rpc_timeout));
    EchoService::Stub& stub =
        *client->stubs[client->next.fetch_add(1, std::memory_order_relaxed) %
                       client->stubs.size()];
    stub.async()->Echo(
        &call->context, &client->request, &call->response,
        [client, call, done = std::move(done)](grpc::Status status) {
          // A server that answers OK with the wrong bytes is broken too.
          if (status.ok() && call->response.payload().size() !=
                                 client->request.payload().size()) {
            status = grpc::Status(grpc::StatusCode::DATA_LOSS,
                                  "echoed payload has the wrong size");
          }
          delete call;
          done(status);
        });
  };
}

int Run() {
  absl::StatusOr<std::shared_ptr<EchoClient>> client = Connect();
  if (!client.ok()) {
    std::fprintf(stderr, "lotse_loadgen: %s\n",
                 client.status().ToString().c_str());
    return EXIT_FAILURE;
  }
  const int channels = static_cast<int>((*client)->stubs.size());

  LoadOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.warmup = absl::Seconds(absl::GetFlag(FLAGS_warmup_s));
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  // The slowest possible straggler is bounded by its deadline.
  options.drain_timeout = (*client)->rpc_timeout + absl::Seconds(1);
  absl::StatusOr<LoadResult> result =
      RunClosedLoop(options, MakeStartCall(*client));
  if (!result.ok()) {
    std::fprintf(stderr, "lotse_loadgen: %s\n",
                 result.status().ToString().c_str());
    return EXIT_FAILURE;
  }

  const bool tls = !absl::GetFlag(FLAGS_tls_dir).empty();
  const std::string mode =
      tls ? absl::StrCat("mTLS as ", absl::GetFlag(FLAGS_client)) : "plaintext";
  std::printf(
      "echo %s (%s), concurrency %d on %d channel(s), %d B payload: %s\n",
      absl::GetFlag(FLAGS_target).c_str(), mode.c_str(), options.concurrency,
      channels, absl::GetFlag(FLAGS_payload_bytes),
      FormatHuman(*result).c_str());
  std::printf(
      "{%s,\"concurrency\":%d,\"channels\":%d,\"payload_bytes\":%d,"
      "\"tls\":%s}\n",
      FormatJsonFields(*result).c_str(), options.concurrency, channels,
      absl::GetFlag(FLAGS_payload_bytes), tls ? "true" : "false");
  std::fflush(stdout);

  if (!result->first_error.empty()) {
    std::fprintf(stderr, "lotse_loadgen: first error: %s\n",
                 result->first_error.c_str());
  }
  if (result->abandoned > 0) {
    std::fprintf(stderr, "lotse_loadgen: %d call(s) never completed\n",
                 static_cast<int>(result->abandoned));
    // Their callbacks still reference the channels; leave without running
    // destructors rather than tearing gRPC down under them.
    std::fflush(stderr);
    std::_Exit(EXIT_FAILURE);
  }
  return result->errors > 0 || result->calls == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

}  // namespace
}  // namespace lotse::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Closed-loop load generator for lotse_echo_server.\n"
      "  lotse_loadgen [--target=127.0.0.1:50090] [--concurrency=64] "
      "[--duration_s=10] [--tls_dir=DIR --client=kim-koeln]");
  absl::ParseCommandLine(argc, argv);
  return lotse::bench::Run();
}
