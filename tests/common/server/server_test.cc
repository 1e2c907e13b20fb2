// The shared server runtime through real sockets: mutual TLS with good and
// bad client certificates, the request context, error details at the edge,
// health during drain, metrics.
#include "common/server/server.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "common/errors/status.h"
#include "common/server/handler.h"
#include "common/server/request_context.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "lotse/bench/v1/echo.grpc.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::server {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::lotse::bench::v1::EchoRequest;
using ::lotse::bench::v1::EchoResponse;
using ::lotse::bench::v1::EchoService;
using ::testing::HasSubstr;

// Echoes who the runtime says is calling, or fails on demand, so the tests
// can see the request context and the error mapping from the client side.
class ContextEchoService final : public UnaryService {
 public:
  explicit ContextEchoService(HandlerEnv env)
      : UnaryService(std::move(env), EchoService::service_full_name()) {
    Handle("Echo",
           [](const RequestContext& rc, const EchoRequest& req,
              EchoResponse* resp) -> absl::Status {
             if (req.payload() == "invalid") {
               FieldViolations v;
               v.Add("payload", "must not be 'invalid'");
               v.Add("other", "also wrong");
               return v.ToStatus();
             }
             if (req.payload() == "denied") {
               return ErrorWithReason(absl::StatusCode::kPermissionDenied,
                                      "NO_LEGAL_BASIS", "not allowed");
             }
             if (req.payload() == "internal") {
               return absl::InternalError("SELECT secret FROM table failed");
             }
             if (req.payload() == "slow")
               absl::SleepFor(absl::Milliseconds(1500));
             resp->set_payload(absl::StrCat(rc.caller.agency_id, "|",
                                            rc.caller.legal_domain, "|",
                                            rc.actor, "|", rc.purpose));
             return absl::OkStatus();
           });
  }
};

// Asks the server reflection service to list services, speaking its
// protocol as raw bytes: Debian ships no reflection client headers, and a
// second compiled copy of reflection.proto would clash with the library's.
std::string ListServicesByReflection(
    const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  auto call = stub.PrepareCall(
      &context,
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  // ServerReflectionRequest{list_services: "*"}: field 7, length-delimited.
  grpc::Slice slice(std::string("\x3a\x01*", 3));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  call->WritesDone(reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  std::string bytes;
  if (ok) {
    std::vector<grpc::Slice> slices;
    (void)response.Dump(&slices);
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return bytes;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new std::string(testing::DevPkiDir()); }

  void SetUp() override {
    ASSERT_FALSE(pki_->empty()) << "dev PKI could not be generated";
    pool_ = std::make_unique<WorkerPool>(4, 64);
    env_.pool = pool_.get();
    env_.error_domain = "test.lotse";
    service_ = std::make_unique<ContextEchoService>(env_);
  }

  // Tests that are not about draining should not wait for it.
  static ServerOptions QuickDrain() {
    ServerOptions options;
    options.drain_grace = absl::ZeroDuration();
    options.shutdown_deadline = absl::Milliseconds(500);
    return options;
  }

  // Starts the echo server; `serving` false leaves health at NOT_SERVING,
  // as a process that is still starting up.
  void StartServer(ServerOptions options = QuickDrain(), bool serving = true) {
    options.service_name = "echo";
    options.listen = "127.0.0.1:0";
    options.log_calls = false;
    options.health_service_names = {"lotse.bench.v1.EchoService"};
    if (!options.insecure_dev) options.tls = TlsFilesFromDir(*pki_, "echo");
    auto server = Server::Start(options, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    if (serving) server_->SetServing(true);
  }

  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& client) {
    auto creds = ClientCredentialsFromDir(*pki_, client);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                               *creds);
  }

  std::shared_ptr<grpc::Channel> ChannelWithFiles(const std::string& ca,
                                                  const std::string& cert,
                                                  const std::string& key) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *ReadFile(ca);
    if (!cert.empty()) ssl.pem_cert_chain = *ReadFile(cert);
    if (!key.empty()) ssl.pem_private_key = *ReadFile(key);
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                               grpc::SslCredentials(ssl));
  }

  static grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel,
                           const std::string& payload, EchoResponse* response,
                           bool with_actor = true, bool with_purpose = true) {
    auto stub = EchoService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    if (with_actor) context.AddMetadata(kActorMetadataKey, "cw-4711");
    if (with_purpose) context.AddMetadata(kPurposeMetadataKey, "case-review");
    EchoRequest request;
    request.set_payload(payload);
    return stub->Echo(&context, request, response);
  }

  HealthCheckResponse::ServingStatus Health(const std::string& service) {
    return HealthOn(ChannelAs("kim-koeln"), service);
  }

  std::shared_ptr<grpc::Channel> PlaintextHealthChannel() {
    return grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->health_port()),
        grpc::InsecureChannelCredentials());
  }

  static HealthCheckResponse::ServingStatus HealthOn(
      const std::shared_ptr<grpc::Channel>& channel,
      const std::string& service) {
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (!status.ok()) return HealthCheckResponse::UNKNOWN;
    return response.status();
  }

  static std::string* pki_;
  HandlerEnv env_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<ContextEchoService> service_;
  std::unique_ptr<Server> server_;
};

std::string* ServerTest::pki_ = nullptr;

TEST_F(ServerTest, CallerComesFromTheVerifiedClientCertificate) {
  StartServer();
  EchoResponse response;
  grpc::Status status = Call(ChannelAs("jobcenter-koeln"), "hi", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.payload(),
            "jobcenter-koeln|JOBCENTER|cw-4711|case-review");
}

TEST_F(ServerTest, CallWithoutClientCertificateIsRefused) {
  StartServer();
  EchoResponse response;
  grpc::Status status =
      Call(ChannelWithFiles(*pki_ + "/ca.crt", "", ""), "hi", &response);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_TRUE(response.payload().empty());
}

TEST_F(ServerTest, ClientCertificateFromAnotherCaIsRefused) {
  StartServer();
  EchoResponse response;
  grpc::Status status =
      Call(ChannelWithFiles(*pki_ + "/ca.crt", *pki_ + "/test/rogue-client.crt",
                            *pki_ + "/test/rogue-client.key"),
           "hi", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_TRUE(response.payload().empty());
}

TEST_F(ServerTest, ExpiredClientCertificateIsRefused) {
  StartServer();
  EchoResponse response;
  grpc::Status status = Call(
      ChannelWithFiles(*pki_ + "/ca.crt", *pki_ + "/test/expired-client.crt",
                       *pki_ + "/test/expired-client.key"),
      "hi", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_TRUE(response.payload().empty());
}

TEST_F(ServerTest, ServerRefusesToStartWithoutTlsUnlessInsecureDev) {
  ServerOptions options;
  options.service_name = "echo";
  options.listen = "127.0.0.1:0";
  auto server = Server::Start(options, {service_.get()});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ServerTest, MissingActorOrPurposeIsRefusedWithAReason) {
  StartServer();
  for (bool actor : {false, true}) {
    for (bool purpose : {false, true}) {
      if (actor && purpose) continue;
      EchoResponse response;
      grpc::Status status =
          Call(ChannelAs("kim-koeln"), "hi", &response, actor, purpose);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
      absl::Status back = FromGrpcStatus(status);
      EXPECT_EQ(ReasonOf(back), actor ? "MISSING_PURPOSE" : "MISSING_ACTOR");
      EXPECT_NE(status.error_message().find(actor ? "x-lotse-purpose"
                                                  : "x-lotse-actor"),
                std::string::npos)
          << status.error_message();
      EXPECT_TRUE(response.payload().empty());
    }
  }
}

// Calls Echo with the given metadata values.
grpc::Status EchoAs(const std::shared_ptr<grpc::Channel>& channel,
                    const std::string& actor, const std::string& purpose) {
  auto stub = EchoService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  context.AddMetadata(kActorMetadataKey, actor);
  context.AddMetadata(kPurposeMetadataKey, purpose);
  EchoRequest request;
  request.set_payload("hi");
  EchoResponse response;
  return stub->Echo(&context, request, &response);
}

TEST_F(ServerTest, ActorIsOneTo128PrintableCharacters) {
  StartServer();
  auto channel = ChannelAs("kim-koeln");
  for (const std::string& actor :
       {std::string("cw-4711"), std::string("Frau Meier (Team 3)"),
        std::string(128, 'a')}) {
    EXPECT_TRUE(EchoAs(channel, actor, "case-review").ok()) << actor;
  }
  grpc::Status status = EchoAs(channel, std::string(129, 'a'), "case-review");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "INVALID_ACTOR");
  EXPECT_THAT(status.error_message(), HasSubstr("1..128"));
}

TEST_F(ServerTest, PurposeMustBeAPurposeCode) {
  StartServer();
  auto channel = ChannelAs("kim-koeln");
  for (const std::string& purpose :
       {std::string("case-review"), std::string("a"), std::string("b1-2024"),
        std::string(64, 'p')}) {
    EXPECT_TRUE(EchoAs(channel, "cw-4711", purpose).ok()) << purpose;
  }
  for (const std::string& purpose :
       {std::string("register demo agencies"), std::string("Case-Review"),
        std::string("case_review"), std::string("case.review"),
        std::string(65, 'p')}) {
    grpc::Status status = EchoAs(channel, "cw-4711", purpose);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << purpose;
    EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "INVALID_PURPOSE") << purpose;
    EXPECT_THAT(status.error_message(), HasSubstr("x-lotse-purpose"));
    EXPECT_THAT(status.error_message(),
                HasSubstr("1..64 characters of [a-z0-9-]"));
  }
}

TEST_F(ServerTest, ErrorDetailsReachTheClient) {
  StartServer();
  auto channel = ChannelAs("kim-koeln");
  EchoResponse response;

  grpc::Status invalid = Call(channel, "invalid", &response);
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  std::vector<FieldViolation> violations =
      FieldViolationsOf(FromGrpcStatus(invalid));
  ASSERT_EQ(violations.size(), 2u);
  EXPECT_EQ(violations[0].field, "payload");
  EXPECT_EQ(violations[1].field, "other");

  grpc::Status denied = Call(channel, "denied", &response);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(denied)), "NO_LEGAL_BASIS");

  grpc::Status internal = Call(channel, "internal", &response);
  EXPECT_EQ(internal.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(internal.error_message(), "internal error");
}

TEST_F(ServerTest, ExpiredDeadlineIsReportedAsDeadlineExceeded) {
  StartServer();
  auto stub = EchoService::NewStub(ChannelAs("kim-koeln"));
  grpc::ClientContext context;
  context.AddMetadata(kActorMetadataKey, "cw");
  context.AddMetadata(kPurposeMetadataKey, "p");
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(200));
  EchoRequest request;
  request.set_payload("slow");
  EchoResponse response;
  grpc::Status status = stub->Echo(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(ServerTest, HealthGoesNotServingWhileDraining) {
  ServerOptions options;
  options.drain_grace = absl::Seconds(2);
  options.shutdown_deadline = absl::Seconds(1);
  StartServer(options);
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("lotse.bench.v1.EchoService"), HealthCheckResponse::SERVING);

  std::thread drain([&] { server_->Drain(); });
  // During the grace period the server still answers, but says NOT_SERVING.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(Health(""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health("lotse.bench.v1.EchoService"),
            HealthCheckResponse::NOT_SERVING);
  EchoResponse response;
  EXPECT_TRUE(Call(ChannelAs("kim-koeln"), "still here", &response).ok());
  drain.join();
  // After the drain, nothing answers any more.
  EXPECT_EQ(Health(""), HealthCheckResponse::UNKNOWN);
}

TEST_F(ServerTest, HealthIsNotServingUntilTheServiceSaysSo) {
  StartServer(QuickDrain(), /*serving=*/false);
  EXPECT_EQ(Health(""), HealthCheckResponse::NOT_SERVING);
  server_->SetServing(true);
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
}

TEST_F(ServerTest, HealthPortIsPlaintextHealthOnlyAndFollowsTheDrain) {
  ServerOptions options;
  options.drain_grace = absl::Seconds(2);
  options.shutdown_deadline = absl::Milliseconds(500);
  options.health_listen = "127.0.0.1:0";
  StartServer(options, /*serving=*/false);
  ASSERT_NE(server_->health_port(), 0);
  ASSERT_NE(server_->health_port(), server_->port());
  std::shared_ptr<grpc::Channel> probe = PlaintextHealthChannel();
  EXPECT_EQ(HealthOn(probe, ""), HealthCheckResponse::NOT_SERVING);
  server_->SetServing(true);
  EXPECT_EQ(HealthOn(probe, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(HealthOn(probe, "lotse.bench.v1.EchoService"),
            HealthCheckResponse::SERVING);
  // Nothing but health is reachable without a certificate.
  EchoResponse response;
  EXPECT_EQ(Call(probe, "hello", &response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  std::thread drain([&] { server_->Drain(); });
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(HealthOn(probe, ""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(HealthOn(probe, "lotse.bench.v1.EchoService"),
            HealthCheckResponse::NOT_SERVING);
  drain.join();
  EXPECT_EQ(HealthOn(probe, ""), HealthCheckResponse::UNKNOWN);
}

TEST_F(ServerTest, NoHealthPortUnlessAskedFor) {
  StartServer();
  EXPECT_EQ(server_->health_port(), 0);
}

TEST_F(ServerTest, HealthPortThatCannotBeBoundFailsTheStart) {
  StartServer();
  ServerOptions options = QuickDrain();
  options.service_name = "echo";
  options.listen = "127.0.0.1:0";
  options.health_listen = absl::StrCat("127.0.0.1:", server_->port());
  options.tls = TlsFilesFromDir(*pki_, "echo");
  auto second = Server::Start(options, {});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable)
      << second.status();
}

TEST_F(ServerTest, ConnectionsOlderThanMaxAgeAreAskedToReconnect) {
  ServerOptions options = QuickDrain();
  options.max_connection_age = absl::Milliseconds(300);
  StartServer(options);
  std::shared_ptr<grpc::Channel> channel = ChannelAs("kim-koeln");
  EchoResponse response;
  ASSERT_TRUE(Call(channel, "first", &response).ok());
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // The server's GOAWAY takes the channel out of READY; the next call
  // connects afresh.
  EXPECT_TRUE(::lotse::testing::Eventually(
      [&] { return channel->GetState(false) != GRPC_CHANNEL_READY; },
      absl::Seconds(10)));
  EXPECT_TRUE(Call(channel, "second", &response).ok());
}

TEST_F(ServerTest, InsecureDevTakesAgencyFromMetadata) {
  ServerOptions options = QuickDrain();
  options.insecure_dev = true;
  env_.insecure_dev = true;
  service_ = std::make_unique<ContextEchoService>(env_);
  StartServer(options);
  auto stub = EchoService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                          grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.AddMetadata(kActorMetadataKey, "cw");
  context.AddMetadata(kPurposeMetadataKey, "p");
  context.AddMetadata(kDevAgencyMetadataKey, "bamf-nuernberg");
  context.AddMetadata(kDevDomainMetadataKey, "BAMF");
  EchoRequest request;
  EchoResponse response;
  grpc::Status status = stub->Echo(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.payload(), "bamf-nuernberg|BAMF|cw|p");
}

TEST_F(ServerTest, MetricsCountCallsByMethodAndCode) {
  // Only this test pays for the metrics HTTP server's slow stop.
  ServerOptions options = QuickDrain();
  options.metrics_listen = "127.0.0.1:0";
  StartServer(options);
  auto channel = ChannelAs("kim-koeln");
  EchoResponse response;
  ASSERT_TRUE(Call(channel, "a", &response).ok());
  ASSERT_TRUE(Call(channel, "b", &response).ok());
  ASSERT_FALSE(Call(channel, "denied", &response).ok());
  // Scrape the metrics endpoint the way Prometheus would, over HTTP.
  int port = server_->metrics_port();
  ASSERT_GT(port, 0);
  std::string body = ::lotse::testing::HttpGet(port, "/metrics");
  const std::string method = "method=\"/lotse.bench.v1.EchoService/Echo\"";
  bool ok_line = false, denied_line = false;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (line.find("lotse_rpc_calls_total{") == 0 &&
        line.find(method) != absl::string_view::npos) {
      if (line.find("code=\"OK\"") != absl::string_view::npos) {
        EXPECT_TRUE(absl::EndsWith(line, " 2")) << line;
        ok_line = true;
      }
      if (line.find("code=\"PERMISSION_DENIED\"") != absl::string_view::npos) {
        EXPECT_TRUE(absl::EndsWith(line, " 1")) << line;
        denied_line = true;
      }
    }
  }
  EXPECT_TRUE(ok_line) << body;
  EXPECT_TRUE(denied_line) << body;
  EXPECT_NE(body.find("lotse_rpc_duration_seconds_bucket"), std::string::npos);
}

TEST_F(ServerTest, OversizeMessagesAreRefused) {
  ServerOptions options = QuickDrain();
  options.max_message_bytes = 1024;
  StartServer(options);
  EchoResponse response;
  grpc::Status status =
      Call(ChannelAs("kim-koeln"), std::string(4096, 'x'), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  EXPECT_TRUE(Call(ChannelAs("kim-koeln"), "small", &response).ok());
}

TEST_F(ServerTest, ReflectionListsTheServices) {
  StartServer();
  std::string listing = ListServicesByReflection(ChannelAs("kim-koeln"));
  EXPECT_NE(listing.find("lotse.bench.v1.EchoService"), std::string::npos);
  EXPECT_NE(listing.find("grpc.health.v1.Health"), std::string::npos);
}

TEST(SubjectAttributeTest, ParsesRfc2253Subjects) {
  EXPECT_EQ(SubjectAttribute("CN=kim-koeln,OU=KOMMUNE,O=Lotse Dev", "OU"),
            "KOMMUNE");
  EXPECT_EQ(SubjectAttribute("O=Lotse Dev,OU=BAMF,CN=bamf", "CN"), "bamf");
  EXPECT_EQ(SubjectAttribute("CN=a\\,b,OU=X", "CN"), "a,b");
  EXPECT_EQ(SubjectAttribute("CN=a", "OU"), "");
  EXPECT_EQ(SubjectAttribute("", "OU"), "");
}

}  // namespace
}  // namespace lotse::server
