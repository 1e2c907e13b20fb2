// Per-agency limits through a real server over mutual TLS (UnaryService with
// HandlerEnv::limiter, as every service process runs it): an agency over its
// rate or its calls in flight is refused with RESOURCE_EXHAUSTED, a reason,
// the limit in the metadata and a RetryInfo, before its work runs, while
// another agency at the same time is served; refusals are counted per
// agency and reason; Lotse service certificates are not limited.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/errors/status.h"
#include "common/server/agency_limits.h"
#include "common/server/handler.h"
#include "common/server/request_context.h"
#include "common/server/server.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/common/server/unary_service_test.grpc.pb.h"
#include "tests/support/dev_pki.h"
#include "tests/support/test_clock.h"

namespace lotse::server {
namespace {

using ::lotse::test::v1::EchoRequest;
using ::lotse::test::v1::EchoResponse;
using ::lotse::test::v1::UnaryTestService;
using ::lotse::testing::TestClock;

// Echoes; a request with text "hold" waits until the test releases it.
class HoldingEchoService final : public UnaryService {
 public:
  explicit HoldingEchoService(HandlerEnv env)
      : UnaryService(std::move(env), UnaryTestService::service_full_name()) {
    Handle("Echo", [this](const RequestContext& rc, const EchoRequest& request,
                          EchoResponse* response) {
      ++calls_;
      if (request.text() == "hold") {
        release_.WaitForNotificationWithTimeout(absl::Seconds(60));
      }
      response->set_text(request.text());
      response->set_caller(rc.caller.agency_id);
      return absl::OkStatus();
    });
  }

  // Lets held calls finish; idempotent (the test and TearDown call it).
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }
  int calls() const { return calls_.load(); }

 private:
  absl::Notification release_;
  std::atomic<int> calls_{0};
};

class AgencyLimitsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new std::string(testing::DevPkiDir()); }

  void SetUp() override {
    ASSERT_FALSE(pki_->empty()) << "dev PKI could not be generated";
  }

  void TearDown() override {
    if (service_ != nullptr) service_->Release();
    server_.reset();
    service_.reset();
    pool_.reset();
    limiter_.reset();
  }

  void Start(AgencyLimit defaults) {
    registry_ = std::make_shared<prometheus::Registry>();
    AgencyLimiterOptions options;
    options.defaults = defaults;
    options.clock = clock_->AsFunction();
    options.on_refused = ObserveRefusals(*registry_, "unary-test", 100);
    auto limiter = AgencyLimiter::Create(std::move(options));
    ASSERT_TRUE(limiter.ok()) << limiter.status();
    limiter_ = *std::move(limiter);
    pool_ = std::make_unique<WorkerPool>(4, 64);
    HandlerEnv env;
    env.pool = pool_.get();
    env.error_domain = "test.lotse";
    env.limiter = limiter_.get();
    service_ = std::make_unique<HoldingEchoService>(env);

    ServerOptions server_options;
    server_options.service_name = "unary-test";
    server_options.listen = "127.0.0.1:0";
    server_options.drain_grace = absl::ZeroDuration();
    server_options.shutdown_deadline = absl::Milliseconds(500);
    server_options.log_calls = false;
    server_options.tls = TlsFilesFromDir(*pki_, "echo");
    server_options.metrics_registry = registry_;
    auto server = Server::Start(server_options, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    server_->SetServing(true);
  }

  std::unique_ptr<UnaryTestService::Stub> Stub(const std::string& client) {
    auto creds = ClientCredentialsFromDir(*pki_, client);
    EXPECT_TRUE(creds.ok()) << creds.status();
    // A channel of its own per stub, so held calls of one agency never
    // share a connection's flow control with another's.
    grpc::ChannelArguments args;
    args.SetInt("lotse.test.channel", next_channel_++);
    return UnaryTestService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", server_->port()), *creds, args));
  }

  static grpc::Status Echo(UnaryTestService::Stub& stub,
                           const std::string& text) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    context.AddMetadata(kActorMetadataKey, "cw-4711");
    context.AddMetadata(kPurposeMetadataKey, "case-review");
    EchoRequest request;
    request.set_text(text);
    EchoResponse response;
    return stub.Echo(&context, request, &response);
  }

  double Refusals(const std::string& agency, const std::string& reason) {
    for (const prometheus::MetricFamily& family : registry_->Collect()) {
      if (family.name != "lotse_agency_refusals_total") continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        std::string a, r;
        for (const prometheus::ClientMetric::Label& l : metric.label) {
          if (l.name == "agency") a = l.value;
          if (l.name == "reason") r = l.value;
        }
        if (a == agency && r == reason) return metric.counter.value;
      }
    }
    return 0;
  }

  static std::string* pki_;
  std::shared_ptr<TestClock> clock_ = std::make_shared<TestClock>();
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<AgencyLimiter> limiter_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<HoldingEchoService> service_;
  std::unique_ptr<Server> server_;
  int next_channel_ = 0;
};

std::string* AgencyLimitsServerTest::pki_ = nullptr;

TEST_F(AgencyLimitsServerTest, AnAgencyOverItsRateIsRefusedAnotherIsServed) {
  // The test clock stands still: the bucket refills only when told to.
  Start({/*max_in_flight=*/0, /*rate=*/2, /*burst=*/3});
  auto flooder = Stub("kim-koeln");
  auto calm = Stub("jobcenter-koeln");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Echo(*flooder, "x").ok()) << "call " << i;
  }
  const int served = service_->calls();
  // The flooder keeps sending from several threads while the other agency
  // calls at the same time.
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        grpc::Status s = Echo(*flooder, "x");
        const absl::Status back = FromGrpcStatus(s);
        if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
            ReasonOf(back) == "AGENCY_RATE_LIMITED" &&
            MetadataOf(back, "limit") == "agency_rate" &&
            MetadataOf(back, "value") == "2" &&
            RetryDelayOf(back) == absl::Milliseconds(500)) {
          ++refused;
        } else {
          ADD_FAILURE() << s.error_code() << " " << s.error_message();
        }
      }
    });
  }
  grpc::Status first_other;
  for (int i = 0; i < 3; ++i) {
    grpc::Status s = Echo(*calm, "calm");
    if (s.ok()) ++other;
    if (i == 0) first_other = s;
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(refused.load(), 100);
  EXPECT_EQ(other.load(), 3) << first_other.error_message();
  // None of the refused calls ran.
  EXPECT_EQ(service_->calls(), served + 3);
  EXPECT_EQ(Refusals("kim-koeln", "AGENCY_RATE_LIMITED"), 100);
  EXPECT_EQ(Refusals("jobcenter-koeln", "AGENCY_RATE_LIMITED"), 0);

  // After the delay the flooder is admitted again.
  clock_->Advance(absl::Milliseconds(500));
  EXPECT_TRUE(Echo(*flooder, "x").ok());
}

TEST_F(AgencyLimitsServerTest, CallsInFlightAreCappedPerAgency) {
  Start({/*max_in_flight=*/2, /*rate=*/0, /*burst=*/0});
  auto busy = Stub("kim-koeln");
  auto calm = Stub("jobcenter-koeln");
  std::vector<std::thread> held;
  std::vector<grpc::Status> held_status(2);
  for (int i = 0; i < 2; ++i) {
    held.emplace_back([&, i] { held_status[i] = Echo(*busy, "hold"); });
  }
  // Wait (polling the limiter, no fixed sleep) until both are in flight.
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (limiter_->in_flight("kim-koeln") < 2 && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(limiter_->in_flight("kim-koeln"), 2);

  grpc::Status s = Echo(*busy, "x");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const absl::Status back = FromGrpcStatus(s);
  EXPECT_EQ(ReasonOf(back), "AGENCY_TOO_MANY_IN_FLIGHT");
  EXPECT_EQ(MetadataOf(back, "limit"), "agency_max_in_flight");
  EXPECT_EQ(MetadataOf(back, "value"), "2");
  EXPECT_EQ(RetryDelayOf(back), kInFlightRetryDelay);
  EXPECT_EQ(Refusals("kim-koeln", "AGENCY_TOO_MANY_IN_FLIGHT"), 1);
  // The other agency is not held up.
  EXPECT_TRUE(Echo(*calm, "calm").ok());

  service_->Release();
  for (std::thread& t : held) t.join();
  EXPECT_TRUE(held_status[0].ok()) << held_status[0].error_message();
  EXPECT_TRUE(held_status[1].ok()) << held_status[1].error_message();
  // The places were given back before the answers went out.
  EXPECT_EQ(limiter_->in_flight("kim-koeln"), 0);
  EXPECT_TRUE(Echo(*busy, "x").ok());
}

TEST_F(AgencyLimitsServerTest, LotseServicesAreNotLimited) {
  Start({/*max_in_flight=*/1, /*rate=*/1, /*burst=*/1});
  auto service = Stub("svc-cases");
  for (int i = 0; i < 20; ++i) {
    grpc::Status s = Echo(*service, "x");
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_message();
  }
  EXPECT_EQ(limiter_->tracked_agencies(), 0u);
}

}  // namespace
}  // namespace lotse::server
