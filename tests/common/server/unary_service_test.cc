// UnaryService through a real server over mutual TLS: requests protobuf
// cannot parse get INVALID_ARGUMENT with the offending fields, everything
// the pool, the deadline and the error mapping hold, and on the wire it is the
// same service (typed stubs, reflection, health, call observer).

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/errors/status.h"
#include "common/server/handler.h"
#include "common/server/request_context.h"
#include "common/server/server.h"
#include "common/storage/database.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/common/server/unary_service_test.grpc.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/process.h"

namespace lotse::server {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::lotse::test::v1::EchoRequest;
using ::lotse::test::v1::EchoResponse;
using ::lotse::test::v1::UnaryTestService;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kEchoMethod[] = "/lotse.test.v1.UnaryTestService/Echo";

// Every "~BAD~" becomes five bytes that are not UTF-8, framing intact.
std::string WireWithInvalidUtf8(const EchoRequest& request) {
  return absl::StrReplaceAll(request.SerializeAsString(),
                             {{"~BAD~", "\xff\xfe\xc0\xaf\x80"}});
}

// Writes `count` responses "<text> 1", "<text> 2", ..., then finishes OK.
class CountingStream final : public grpc::ServerWriteReactor<EchoResponse> {
 public:
  CountingStream(int64_t count, std::string text)
      : count_(count), text_(std::move(text)) {
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (written_ == count_) {
      Finish(grpc::Status::OK);
      return;
    }
    ++written_;
    response_.set_text(absl::StrCat(text_, " ", written_));
    StartWrite(&response_);
  }

  const int64_t count_;
  const std::string text_;
  int64_t written_ = 0;
  EchoResponse response_;
};

// Echoes the request and who called; counts the calls its work saw.
class EchoTestService final : public UnaryService {
 public:
  explicit EchoTestService(HandlerEnv env)
      : UnaryService(std::move(env), UnaryTestService::service_full_name()) {
    // The streaming RPC first: the unary ones after it must still be
    // served by their own handlers.
    HandleServerStream<EchoRequest, EchoResponse>(
        "Stream", [](grpc::CallbackServerContext*, const EchoRequest* request) {
          return new CountingStream(request->number(), request->text());
        });
    Handle("Echo", this, &EchoTestService::DoEcho);
  }

  int calls() const { return calls_.load(); }

 private:
  absl::Status DoEcho(const RequestContext& rc, const EchoRequest& request,
                      EchoResponse* response) {
    ++calls_;
    if (request.text() == "invalid") {
      FieldViolations violations;
      violations.Add("text", "must not be 'invalid'");
      return violations.ToStatus();
    }
    if (request.text() == "slow") absl::SleepFor(absl::Milliseconds(1500));
    response->set_text(request.text());
    response->set_caller(absl::StrCat(rc.caller.agency_id, "|",
                                      rc.caller.legal_domain, "|", rc.actor,
                                      "|", rc.purpose));
    return absl::OkStatus();
  }

  std::atomic<int> calls_{0};
};

struct RawResult {
  grpc::Status status;
  std::string response;
};

std::string BytesOf(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// The value of the lotse_rpc_calls_total sample for Echo and `code`, or -1.
double EchoCalls(const std::string& metrics, absl::string_view code) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (!absl::StartsWith(line, "lotse_rpc_calls_total{") ||
        !absl::StrContains(line,
                           absl::StrCat("method=\"", kEchoMethod, "\"")) ||
        !absl::StrContains(line, absl::StrCat("code=\"", code, "\""))) {
      continue;
    }
    return std::stod(std::string(line.substr(line.rfind(' ') + 1)));
  }
  return -1;
}

class UnaryServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new std::string(testing::DevPkiDir()); }

  void SetUp() override {
    ASSERT_FALSE(pki_->empty()) << "dev PKI could not be generated";
    pool_ = std::make_unique<WorkerPool>(4, 64);
  }

  HandlerEnv Env() {
    HandlerEnv env;
    env.pool = pool_.get();
    env.error_domain = "test.lotse";
    return env;
  }

  void StartServer(grpc::Service* service, bool metrics = false,
                   bool log_calls = false) {
    ServerOptions options;
    options.service_name = "unary-test";
    options.listen = "127.0.0.1:0";
    options.drain_grace = absl::ZeroDuration();
    options.shutdown_deadline = absl::Milliseconds(500);
    options.log_calls = log_calls;
    options.health_service_names = {UnaryTestService::service_full_name()};
    options.tls = TlsFilesFromDir(*pki_, "echo");
    if (metrics) options.metrics_listen = "127.0.0.1:0";
    auto server = Server::Start(options, {service});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    server_->SetServing(true);
    auto creds = ClientCredentialsFromDir(*pki_, "kim-koeln");
    ASSERT_TRUE(creds.ok()) << creds.status();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   *creds);
  }

  void StartEchoServer(bool metrics = false, bool log_calls = false) {
    service_ = std::make_unique<EchoTestService>(Env());
    StartServer(service_.get(), metrics, log_calls);
  }

  static void AddCallMetadata(grpc::ClientContext* context, bool actor) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    if (actor) context->AddMetadata(kActorMetadataKey, "cw-4711");
    context->AddMetadata(kPurposeMetadataKey, "case-review");
  }

  // Sends `bytes` as the request of `method`, as any client could.
  RawResult CallRaw(const std::string& bytes, bool actor = true,
                    const std::string& method = kEchoMethod) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext context;
    AddCallMetadata(&context, actor);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    RawResult result;
    absl::Notification done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status status) {
                     result.status = std::move(status);
                     done.Notify();
                   });
    done.WaitForNotification();
    if (result.status.ok()) result.response = BytesOf(response);
    return result;
  }

  grpc::Status CallTyped(const EchoRequest& request, EchoResponse* response) {
    auto stub = UnaryTestService::NewStub(channel_);
    grpc::ClientContext context;
    AddCallMetadata(&context, true);
    return stub->Echo(&context, request, response);
  }

  // Speaks the server reflection protocol as raw bytes: sends one
  // ServerReflectionRequest and returns the response's bytes.
  std::string Reflect(const std::string& request_bytes) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    grpc::CompletionQueue cq;
    void* tag;
    bool ok;
    auto call = stub.PrepareCall(
        &context,
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
    call->StartCall(reinterpret_cast<void*>(1));
    cq.Next(&tag, &ok);
    grpc::Slice slice(request_bytes);
    grpc::ByteBuffer request(&slice, 1);
    call->Write(request, reinterpret_cast<void*>(2));
    cq.Next(&tag, &ok);
    call->WritesDone(reinterpret_cast<void*>(3));
    cq.Next(&tag, &ok);
    grpc::ByteBuffer response;
    call->Read(&response, reinterpret_cast<void*>(4));
    cq.Next(&tag, &ok);
    std::string bytes = ok ? BytesOf(response) : "";
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(5));
    cq.Next(&tag, &ok);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return bytes;
  }

  static std::string* pki_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<EchoTestService> service_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

std::string* UnaryServiceTest::pki_ = nullptr;

TEST_F(UnaryServiceTest, ValidRequestIsServedToTypedAndRawClients) {
  StartEchoServer();
  EchoRequest request;
  request.set_text("Muhammad Müller");
  request.mutable_person()->mutable_name()->set_given("Łukasz");
  EchoResponse response;
  grpc::Status status = CallTyped(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "Muhammad Müller");
  EXPECT_EQ(response.caller(), "kim-koeln|KOMMUNE|cw-4711|case-review");

  RawResult raw = CallRaw(request.SerializeAsString());
  ASSERT_TRUE(raw.status.ok()) << raw.status.error_message();
  EchoResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(raw.response));
  EXPECT_EQ(parsed.text(), "Muhammad Müller");
  EXPECT_EQ(service_->calls(), 2);
}

TEST_F(UnaryServiceTest, EmptyRequestIsAValidMessage) {
  StartEchoServer();
  RawResult raw = CallRaw("");
  ASSERT_TRUE(raw.status.ok()) << raw.status.error_message();
  EchoResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(raw.response));
  EXPECT_EQ(parsed.caller(), "kim-koeln|KOMMUNE|cw-4711|case-review");
}

TEST_F(UnaryServiceTest, GeneratedClientSendingInvalidUtf8GetsFieldViolation) {
  StartEchoServer();
  // C++ protobuf serializes invalid UTF-8 with only a logged error, so this
  // is what a careless client really sends.
  EchoRequest request;
  request.set_text("Mu\xffhammad");
  EchoResponse response;
  grpc::Status status = CallTyped(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
  std::vector<FieldViolation> violations =
      FieldViolationsOf(FromGrpcStatus(status));
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].field, "text");
  EXPECT_EQ(violations[0].description, "must be valid UTF-8");
  EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "INVALID_UTF8");
  EXPECT_EQ(service_->calls(), 0);
}

TEST_F(UnaryServiceTest, InvalidUtf8IsNamedWhereverItIs) {
  StartEchoServer();
  struct Case {
    const char* what;
    EchoRequest request;
    std::string path;
  };
  std::vector<Case> cases(5);
  cases[0].what = "top-level field";
  cases[0].request.set_text("Mu~BAD~hammad");
  cases[0].path = "text";
  cases[1].what = "nested message";
  cases[1].request.mutable_person()->mutable_name()->set_family("~BAD~");
  cases[1].path = "person.name.family";
  cases[2].what = "repeated element";
  cases[2].request.add_people();
  cases[2].request.add_people()->add_names()->add_aliases("ok");
  cases[2].request.mutable_people(1)->mutable_names(0)->add_aliases("~BAD~");
  cases[2].path = "people[1].names[0].aliases[1]";
  cases[3].what = "map value";
  (*cases[3].request.mutable_person()->mutable_labels())["de"] = "~BAD~";
  cases[3].path = "person.labels[\"de\"]";
  cases[4].what = "oneof member";
  cases[4].request.mutable_person()->mutable_guardian()->set_given("~BAD~");
  cases[4].path = "person.guardian.given";
  for (const Case& c : cases) {
    RawResult raw = CallRaw(WireWithInvalidUtf8(c.request));
    EXPECT_EQ(raw.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.what << ": " << raw.status.error_message();
    std::vector<FieldViolation> violations =
        FieldViolationsOf(FromGrpcStatus(raw.status));
    EXPECT_THAT(violations,
                ElementsAre(FieldViolation{c.path, "must be valid UTF-8"}))
        << c.what;
    EXPECT_NE(raw.status.error_message().find(c.path), std::string::npos)
        << raw.status.error_message();
    EXPECT_EQ(ReasonOf(FromGrpcStatus(raw.status)), "INVALID_UTF8") << c.what;
  }
  EXPECT_EQ(service_->calls(), 0) << "a refused request must change nothing";
}

TEST_F(UnaryServiceTest, EveryOffendingFieldIsNamedInOneAnswer) {
  StartEchoServer();
  EchoRequest request;
  request.set_text("~BAD~");
  request.mutable_person()->mutable_name()->set_given("~BAD~");
  request.add_tags("ok");
  request.add_tags("~BAD~");
  RawResult raw = CallRaw(WireWithInvalidUtf8(request));
  EXPECT_EQ(raw.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  std::vector<FieldViolation> violations =
      FieldViolationsOf(FromGrpcStatus(raw.status));
  std::vector<std::string> paths;
  for (const FieldViolation& v : violations) paths.push_back(v.field);
  EXPECT_THAT(paths, ElementsAre("text", "person.name.given", "tags[1]"));
}

TEST_F(UnaryServiceTest, BytesThatAreNoMessageAreRefused) {
  StartEchoServer();
  EchoRequest request;
  request.set_text("a text long enough to cut in half");
  const std::string whole = request.SerializeAsString();
  for (const std::string& bytes :
       {std::string("\xff\xff\xff\xff", 4), whole.substr(0, whole.size() / 2),
        std::string("\x0a\x7f", 2)}) {
    RawResult raw = CallRaw(bytes);
    EXPECT_EQ(raw.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(raw.status.error_message(),
              "the request is not a valid lotse.test.v1.EchoRequest");
    EXPECT_THAT(FieldViolationsOf(FromGrpcStatus(raw.status)), IsEmpty());
    EXPECT_EQ(ReasonOf(FromGrpcStatus(raw.status)), "MALFORMED_REQUEST");
  }
  EXPECT_EQ(service_->calls(), 0);
}

TEST_F(UnaryServiceTest, MissingActorIsRefusedBeforeTheRequestIsRead) {
  StartEchoServer();
  EchoRequest request;
  request.set_text("hi");
  RawResult valid = CallRaw(request.SerializeAsString(), /*actor=*/false);
  EXPECT_EQ(valid.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(valid.status)), "MISSING_ACTOR");

  request.set_text("~BAD~");
  RawResult invalid = CallRaw(WireWithInvalidUtf8(request), /*actor=*/false);
  EXPECT_EQ(invalid.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(invalid.status)), "MISSING_ACTOR");
  EXPECT_EQ(service_->calls(), 0);
}

TEST_F(UnaryServiceTest, ErrorsOfTheWorkReachTheClient) {
  StartEchoServer();
  EchoRequest request;
  request.set_text("invalid");
  EchoResponse response;
  grpc::Status status = CallTyped(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FieldViolationsOf(FromGrpcStatus(status)),
              ElementsAre(FieldViolation{"text", "must not be 'invalid'"}));
}

TEST(ToClientStatusTest, StorageOutageGetsAReasonARetryDelayAndNoInternals) {
  const grpc::Status status = ToClientStatus(
      storage::StorageUnavailableError(
          "postgres: commit: connection lost: server closed the connection "
          "unexpectedly"),
      "test.lotse");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(absl::StrContains(status.error_message(), "postgres"))
      << status.error_message();
  const absl::Status back = FromGrpcStatus(status);
  EXPECT_EQ(ReasonOf(back), "STORAGE_UNAVAILABLE");
  EXPECT_EQ(RetryDelayOf(back), kUnavailableRetryDelay);
}

TEST(ToClientStatusTest, AnOutageIsLoggedOnceASecondWithItsCount) {
  auto lines = [](const std::string& log) {
    int n = 0;
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      n += absl::StrContains(line, "storage unavailable");
    }
    return n;
  };
  const absl::Status lost = storage::StorageUnavailableError("lost");
  absl::SleepFor(absl::Milliseconds(1100));  // past any earlier line
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 200; ++i) ToClientStatus(lost, "test.lotse");
  const std::string burst = ::testing::internal::GetCapturedStderr();
  // One line, or two if this loop straddled a second on a stalled machine.
  EXPECT_GE(lines(burst), 1) << burst;
  EXPECT_LE(lines(burst), 2) << burst;

  absl::SleepFor(absl::Milliseconds(1100));
  ::testing::internal::CaptureStderr();
  ToClientStatus(lost, "test.lotse");
  const std::string next = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(lines(next), 1) << next;
  EXPECT_TRUE(absl::StrContains(next, "\"calls_since_last_line\":")) << next;
}

TEST(ToClientStatusTest, OtherUnavailableWithoutAReasonIsWithheldToo) {
  const grpc::Status status = ToClientStatus(
      absl::UnavailableError("no client credentials for calls to identity"),
      "test.lotse");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(absl::StrContains(status.error_message(), "credentials"));
  const absl::Status back = FromGrpcStatus(status);
  EXPECT_EQ(ReasonOf(back), "SERVICE_UNAVAILABLE");
  EXPECT_EQ(RetryDelayOf(back), kUnavailableRetryDelay);
}

TEST(ToClientStatusTest, AnswersWrittenForClientsPassUnchanged) {
  const absl::Status check =
      ErrorWithReason(absl::StatusCode::kUnavailable, "CHECK_UNAVAILABLE",
                      "identity cannot be asked right now");
  const absl::Status back = FromGrpcStatus(ToClientStatus(check, "t.lotse"));
  EXPECT_EQ(back.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(back.message(), check.message());
  EXPECT_EQ(ReasonOf(back), "CHECK_UNAVAILABLE");
  EXPECT_EQ(RetryDelayOf(back), std::nullopt);

  const absl::Status not_found = ErrorWithReason(
      absl::StatusCode::kNotFound, "PERSON_NOT_FOUND", "no such person");
  EXPECT_EQ(FromGrpcStatus(ToClientStatus(not_found, "t.lotse")).message(),
            "no such person");
  EXPECT_EQ(ToClientStatus(absl::InternalError("sqlite: disk image is "
                                               "malformed"),
                           "t.lotse")
                .error_message(),
            "internal error");
}

TEST_F(UnaryServiceTest, ExpiredDeadlineIsReportedAsDeadlineExceeded) {
  StartEchoServer();
  auto stub = UnaryTestService::NewStub(channel_);
  grpc::ClientContext context;
  context.AddMetadata(kActorMetadataKey, "cw");
  context.AddMetadata(kPurposeMetadataKey, "p");
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(200));
  EchoRequest request;
  request.set_text("slow");
  EchoResponse response;
  EXPECT_EQ(stub->Echo(&context, request, &response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(UnaryServiceTest, FullPoolAnswersResourceExhausted) {
  pool_ = std::make_unique<WorkerPool>(1, /*max_queued=*/0);
  StartEchoServer();
  EchoRequest request;
  request.set_text("hi");
  RawResult raw = CallRaw(request.SerializeAsString());
  EXPECT_EQ(raw.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(raw.status)), "SERVER_OVERLOADED");
  EXPECT_EQ(service_->calls(), 0);
}

TEST_F(UnaryServiceTest, RpcWithoutHandlerIsUnimplemented) {
  StartEchoServer();
  RawResult raw =
      CallRaw("", true, "/lotse.test.v1.UnaryTestService/NotHandled");
  EXPECT_EQ(raw.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(UnaryServiceTest, LambdaWorkIsServedToo) {
  UnaryService service(Env(), UnaryTestService::service_full_name());
  service.Handle("Echo", [](const RequestContext& rc, const EchoRequest& r,
                            EchoResponse* out) {
    out->set_text(absl::StrCat("lambda:", r.text()));
    return absl::OkStatus();
  });
  StartServer(&service);
  EchoRequest request;
  request.set_text("x");
  EchoResponse response;
  grpc::Status status = CallTyped(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "lambda:x");
  server_.reset();  // before `service` goes away
}

TEST_F(UnaryServiceTest, CallObserverSeesRawCallsAndTheirCodes) {
  StartEchoServer(/*metrics=*/true, /*log_calls=*/true);
  EchoRequest good;
  good.set_text("hi");
  EchoRequest bad;
  bad.set_text("~BAD~");
  ::testing::internal::CaptureStderr();
  RawResult ok1 = CallRaw(good.SerializeAsString());
  RawResult ok2 = CallRaw(good.SerializeAsString());
  RawResult invalid = CallRaw(WireWithInvalidUtf8(bad));
  RawResult garbage = CallRaw(std::string("\xff\xff", 2));
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(ok1.status.ok());
  ASSERT_TRUE(ok2.status.ok());
  ASSERT_EQ(invalid.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_EQ(garbage.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  int ok_lines = 0, invalid_lines = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, "\"msg\":\"rpc\"") ||
        !absl::StrContains(line, absl::StrCat("\"method\":\"", kEchoMethod))) {
      continue;
    }
    EXPECT_TRUE(absl::StrContains(line, "\"agency\":\"kim-koeln\"")) << line;
    if (absl::StrContains(line, "\"code\":\"OK\"")) ++ok_lines;
    if (absl::StrContains(line, "\"code\":\"INVALID_ARGUMENT\"")) {
      ++invalid_lines;
    }
  }
  EXPECT_EQ(ok_lines, 2) << log;
  EXPECT_EQ(invalid_lines, 2) << log;

  const std::string metrics =
      ::lotse::testing::HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_EQ(EchoCalls(metrics, "OK"), 2) << metrics;
  EXPECT_EQ(EchoCalls(metrics, "INVALID_ARGUMENT"), 2) << metrics;
}

TEST_F(UnaryServiceTest, ReflectionListsTheServiceAndItsMethods) {
  StartEchoServer();
  // ServerReflectionRequest{list_services: "*"} (field 7).
  std::string listing = Reflect(std::string("\x3a\x01*", 3));
  EXPECT_NE(listing.find("lotse.test.v1.UnaryTestService"), std::string::npos);
  EXPECT_NE(listing.find("grpc.health.v1.Health"), std::string::npos);
  // ServerReflectionRequest{file_containing_symbol: <service>} (field 4):
  // the answer carries the file's descriptor with every method.
  const std::string symbol = UnaryTestService::service_full_name();
  std::string file = Reflect(absl::StrCat(
      "\x22", std::string(1, static_cast<char>(symbol.size())), symbol));
  EXPECT_NE(file.find("UnaryTestService"), std::string::npos);
  EXPECT_NE(file.find("Echo"), std::string::npos);
  EXPECT_NE(file.find("NotHandled"), std::string::npos);
}

TEST_F(UnaryServiceTest, HealthAnswersForTheService) {
  StartEchoServer();
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  HealthCheckRequest request;
  request.set_service(UnaryTestService::service_full_name());
  HealthCheckResponse response;
  ASSERT_TRUE(stub->Check(&context, request, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
}

// Mistakes in the handler table are caught when the service is built.
TEST_F(UnaryServiceTest, ServerStreamIsServedNextToUnaryRpcs) {
  StartEchoServer();
  auto stub = UnaryTestService::NewStub(channel_);
  grpc::ClientContext context;
  AddCallMetadata(&context, true);
  EchoRequest request;
  request.set_text("seat");
  request.set_number(3);
  std::unique_ptr<grpc::ClientReader<EchoResponse>> reader =
      stub->Stream(&context, request);
  std::vector<std::string> texts;
  EchoResponse response;
  while (reader->Read(&response)) texts.push_back(response.text());
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(texts, ElementsAre("seat 1", "seat 2", "seat 3"));

  EchoRequest after;
  after.set_text("after the stream");
  EchoResponse echoed;
  ASSERT_TRUE(CallTyped(after, &echoed).ok());
  EXPECT_EQ(echoed.text(), "after the stream");
}

// CallInProcess serves the work as the edge does, without a server.
TEST(UnaryServiceInProcessTest, ParsesRunsAndSerializesLikeTheEdge) {
  EchoTestService service{HandlerEnv()};
  RequestContext rc;
  rc.caller = {"kim-koeln", "KOMMUNE"};
  rc.actor = "cm-1";
  rc.purpose = "case-management";

  EchoRequest request;
  request.set_text("hallo");
  std::string out;
  ASSERT_TRUE(
      service.CallInProcess("Echo", rc, request.SerializeAsString(), &out)
          .ok());
  EchoResponse response;
  ASSERT_TRUE(response.ParseFromString(out));
  EXPECT_EQ(response.text(), "hallo");
  EXPECT_EQ(response.caller(), "kim-koeln|KOMMUNE|cm-1|case-management");

  // The work's refusal comes back unchanged, with its field violations.
  request.set_text("invalid");
  absl::Status refused =
      service.CallInProcess("Echo", rc, request.SerializeAsString(), &out);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldViolationsOf(refused).size(), 1u);

  // Bytes the edge refuses are refused alike, before the work runs.
  const int calls = service.calls();
  request.set_text("~BAD~");
  absl::Status utf8 =
      service.CallInProcess("Echo", rc, WireWithInvalidUtf8(request), &out);
  EXPECT_EQ(utf8.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(utf8), kInvalidUtf8Reason);
  absl::Status garbage =
      service.CallInProcess("Echo", rc, std::string("\xff\xff\xff", 3), &out);
  EXPECT_EQ(ReasonOf(garbage), kMalformedRequestReason);
  EXPECT_EQ(service.calls(), calls);

  // An RPC without work, and a name that is no RPC, are UNIMPLEMENTED.
  EXPECT_EQ(service.CallInProcess("NotHandled", rc, "", &out).code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(service.CallInProcess("Stream", rc, "", &out).code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(service.CallInProcess("Nope", rc, "", &out).code(),
            absl::StatusCode::kUnimplemented);
}

TEST(UnaryServiceDeathTest, MisconfiguredHandlersStopTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto echo = [](const RequestContext&, const EchoRequest&, EchoResponse*) {
    return absl::OkStatus();
  };
  EXPECT_DEATH(
      {
        UnaryService service(HandlerEnv(),
                             UnaryTestService::service_full_name());
        service.Handle("NoSuchRpc", echo);
      },
      "no RPC lotse.test.v1.UnaryTestService.NoSuchRpc");
  EXPECT_DEATH(
      {
        UnaryService service(HandlerEnv(),
                             UnaryTestService::service_full_name());
        service.Handle("Stream", echo);
      },
      "is a streaming RPC");
  EXPECT_DEATH(
      {
        UnaryService service(HandlerEnv(),
                             UnaryTestService::service_full_name());
        service.Handle("Echo", [](const RequestContext&, const EchoResponse&,
                                  EchoResponse*) { return absl::OkStatus(); });
      },
      "takes lotse.test.v1.EchoRequest");
  EXPECT_DEATH(
      {
        UnaryService service(HandlerEnv(),
                             UnaryTestService::service_full_name());
        service.Handle("Echo", echo);
        service.Handle("Echo", echo);
      },
      "handled twice");
  // A helper, because template arguments' commas would split the macros'.
  auto stream = [](UnaryService& service, const char* method) {
    service.HandleServerStream<EchoRequest, EchoResponse>(
        method,
        [](grpc::CallbackServerContext*, const EchoRequest*)
            -> grpc::ServerWriteReactor<EchoResponse>* { return nullptr; });
  };
  EXPECT_DEATH(
      {
        UnaryService service(HandlerEnv(),
                             UnaryTestService::service_full_name());
        stream(service, "Echo");
      },
      "is not a server-streaming RPC");
  EXPECT_DEATH(
      {
        UnaryService service(HandlerEnv(),
                             UnaryTestService::service_full_name());
        stream(service, "Stream");
        stream(service, "Stream");
      },
      "handled twice");
  EXPECT_DEATH(UnaryService(HandlerEnv(), "lotse.test.v1.NoSuchService"),
               "no service lotse.test.v1.NoSuchService");
}

}  // namespace
}  // namespace lotse::server
