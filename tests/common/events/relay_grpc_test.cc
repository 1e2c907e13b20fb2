// End to end over real sockets: outbox -> OutboxRelay -> GrpcEventSender ->
// grpc::Server with EventSinkService -> inbox, with receivers that are down,
// fail, time out and restart, and a relay that restarts.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/events/outbox.h"
#include "common/events/relay.h"
#include "common/events/sink.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/common/events/event_test_util.h"
#include "tests/support/test_database.h"

namespace lotse::events {
namespace {

using lotse::events::v1::Event;
using testutil::CheckOncePerKeyInOrder;
using testutil::MakeEvent;
using testutil::Receiver;
using testutil::WaitFor;

class RelayGrpcTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(storage::ApplyMigrations(db(), OutboxMigrations()).ok());
    auto receiver_db = lotse::testing::NewTestDatabase(dialect());
    ASSERT_TRUE(receiver_db.ok()) << receiver_db.status();
    receiver_db_ = *std::move(receiver_db);
    receiver_ = std::make_unique<Receiver>(*receiver_db_);
  }

  void TearDown() override {
    relay_.reset();
    receiver_.reset();
  }

  // Enqueues n events for each key, interleaved: a#0, b#0, a#1, b#1, ...
  void EnqueueInterleaved(const std::vector<std::string>& keys, int n) {
    absl::Status s =
        storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
          for (int i = 0; i < n; ++i) {
            for (const std::string& key : keys) {
              if (absl::Status s = EnqueueEvent(tx, MakeEvent(key, i));
                  !s.ok()) {
                return s;
              }
            }
          }
          return absl::OkStatus();
        });
    ASSERT_TRUE(s.ok()) << s;
  }

  RelayOptions Options() {
    RelayOptions o;
    o.destination = "cases";
    o.poll_interval = absl::Milliseconds(50);
    o.call_timeout = absl::Milliseconds(300);
    o.backoff_initial = absl::Milliseconds(20);
    o.backoff_max = absl::Milliseconds(100);
    return o;
  }

  void StartRelay(storage::Database& db, const std::string& target) {
    sender_ = std::make_unique<GrpcEventSender>(
        testutil::FastReconnectChannel(target));
    relay_ = std::make_unique<OutboxRelay>(db, *sender_, Options());
    relay_->Start();
  }

  bool AllApplied(size_t n) {
    return WaitFor([&] { return receiver_->Applied().size() >= n; });
  }

  std::unique_ptr<storage::Database> receiver_db_;
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<GrpcEventSender> sender_;
  std::unique_ptr<OutboxRelay> relay_;
};

TEST_P(RelayGrpcTest, ReceiverDownAtFirstThenUp) {
  // Reserve a port, then close it: the receiver is down.
  ASSERT_TRUE(receiver_->Start().ok());
  const int port = receiver_->port();
  receiver_->Stop();

  EnqueueInterleaved({"persons/a", "persons/b"}, 5);
  StartRelay(db(), receiver_->target());
  ASSERT_TRUE(WaitFor([&] { return relay_->stats().failed_attempts >= 2; }));
  EXPECT_EQ(relay_->stats().delivered, 0);

  ASSERT_TRUE(receiver_->Start(port).ok());
  ASSERT_TRUE(AllApplied(10));
  absl::SleepFor(absl::Milliseconds(100));  // nothing more arrives
  EXPECT_EQ(CheckOncePerKeyInOrder(receiver_->Applied(),
                                   {{"persons/a", 5}, {"persons/b", 5}}),
            "");
}

TEST_P(RelayGrpcTest, ReceiverFailsThenTimesOutAfterApplying) {
  ASSERT_TRUE(receiver_->Start().ok());
  // Calls 1-3 fail; call 4 applies but answers only after the relay's
  // deadline, so the relay retries an event that was in fact applied.
  std::atomic<int> calls{0};
  receiver_->set_fault([&](const Event&) -> absl::Status {
    const int call = ++calls;
    if (call <= 3) return absl::UnavailableError("not ready");
    if (call == 4) absl::SleepFor(absl::Milliseconds(600));
    return absl::OkStatus();
  });
  EnqueueInterleaved({"k", "j"}, 3);
  StartRelay(db(), receiver_->target());
  ASSERT_TRUE(AllApplied(6));
  ASSERT_TRUE(WaitFor([&] { return relay_->stats().delivered == 6; }));
  EXPECT_EQ(CheckOncePerKeyInOrder(receiver_->Applied(), {{"k", 3}, {"j", 3}}),
            "");
  // 3 errors + at least the timed-out call.
  EXPECT_GE(relay_->stats().failed_attempts, 4);
}

TEST_P(RelayGrpcTest, ReceiverRestartedMidStream) {
  ASSERT_TRUE(receiver_->Start().ok());
  const int port = receiver_->port();
  receiver_->set_fault([](const Event&) {
    absl::SleepFor(absl::Milliseconds(5));
    return absl::OkStatus();
  });
  EnqueueInterleaved({"a", "b", "c"}, 8);
  StartRelay(db(), receiver_->target());
  ASSERT_TRUE(WaitFor([&] { return receiver_->Applied().size() >= 5; }));
  receiver_->Stop();
  const size_t during_outage = receiver_->Applied().size();
  EXPECT_LT(during_outage, 24u);
  absl::SleepFor(absl::Milliseconds(150));
  ASSERT_TRUE(receiver_->Start(port).ok());
  ASSERT_TRUE(AllApplied(24));
  ASSERT_TRUE(WaitFor([&] { return relay_->stats().delivered == 24; }));
  EXPECT_EQ(CheckOncePerKeyInOrder(receiver_->Applied(),
                                   {{"a", 8}, {"b", 8}, {"c", 8}}),
            "");
}

TEST_P(RelayGrpcTest, RelayRestartOverTheSameDatabase) {
  ASSERT_TRUE(receiver_->Start().ok());
  receiver_->set_fault([](const Event&) {
    absl::SleepFor(absl::Milliseconds(5));
    return absl::OkStatus();
  });
  EnqueueInterleaved({"a", "b"}, 10);
  {
    // "Process" one: its own connection pool, killed mid-delivery.
    auto db1 = storage::OpenDatabase(url());
    ASSERT_TRUE(db1.ok()) << db1.status();
    StartRelay(**db1, receiver_->target());
    ASSERT_TRUE(WaitFor([&] { return receiver_->Applied().size() >= 4; }));
    relay_.reset();
    sender_.reset();
  }
  EXPECT_LT(receiver_->Applied().size(), 20u);
  // "Process" two: a fresh pool over the same database, a new relay.
  auto db2 = storage::OpenDatabase(url());
  ASSERT_TRUE(db2.ok()) << db2.status();
  StartRelay(**db2, receiver_->target());
  ASSERT_TRUE(AllApplied(20));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(
      CheckOncePerKeyInOrder(receiver_->Applied(), {{"a", 10}, {"b", 10}}), "");
  relay_.reset();
}

TEST_P(RelayGrpcTest, LostAcknowledgementIsAbsorbedByTheInbox) {
  ASSERT_TRUE(receiver_->Start().ok());
  // A sender that delivers and then reports failure, as when the answer is
  // lost on the way back.
  class LosingSender : public EventSender {
   public:
    explicit LosingSender(EventSender& inner) : inner_(inner) {}
    absl::Status Send(const Event& e, absl::Time deadline) override {
      absl::Status s = inner_.Send(e, deadline);
      if (s.ok() && lost_++ < 2) return absl::DeadlineExceededError("lost");
      return s;
    }
    EventSender& inner_;
    std::atomic<int> lost_{0};
  };
  GrpcEventSender grpc_sender(
      testutil::FastReconnectChannel(receiver_->target()));
  LosingSender losing(grpc_sender);
  EnqueueInterleaved({"k"}, 3);
  OutboxRelay relay(db(), losing, Options());
  relay.Start();
  ASSERT_TRUE(WaitFor([&] { return relay.stats().delivered == 3; }));
  EXPECT_EQ(CheckOncePerKeyInOrder(receiver_->Applied(), {{"k", 3}}), "");
  EXPECT_EQ(relay.stats().failed_attempts, 2);
}

TEST_P(RelayGrpcTest, TwoDestinationsAreIndependent) {
  ASSERT_TRUE(receiver_->Start().ok());
  auto other_db = lotse::testing::NewTestDatabase(dialect());
  ASSERT_TRUE(other_db.ok());
  Receiver placement(**other_db);
  ASSERT_TRUE(placement.Start().ok());
  const int placement_port = placement.port();
  placement.Stop();  // down

  EnqueueInterleaved({"a", "b"}, 4);
  GrpcEventSender to_cases(testutil::FastReconnectChannel(receiver_->target()));
  GrpcEventSender to_placement(
      testutil::FastReconnectChannel(placement.target()));
  RelayOptions cases_options = Options();
  RelayOptions placement_options = Options();
  placement_options.destination = "placement";
  OutboxRelay cases_relay(db(), to_cases, cases_options);
  OutboxRelay placement_relay(db(), to_placement, placement_options);
  cases_relay.Start();
  placement_relay.Start();

  ASSERT_TRUE(AllApplied(8));
  // The placement relay runs on its own thread and may not have tried yet
  // when the cases relay is already done; wait for its first failure.
  ASSERT_TRUE(
      WaitFor([&] { return placement_relay.stats().failed_attempts > 0; }));
  EXPECT_TRUE(placement.Applied().empty());

  ASSERT_TRUE(placement.Start(placement_port).ok());
  ASSERT_TRUE(WaitFor([&] { return placement.Applied().size() >= 8; }));
  EXPECT_EQ(CheckOncePerKeyInOrder(placement.Applied(), {{"a", 4}, {"b", 4}}),
            "");
  EXPECT_EQ(CheckOncePerKeyInOrder(receiver_->Applied(), {{"a", 4}, {"b", 4}}),
            "");
  cases_relay.Stop();
  placement_relay.Stop();
}

TEST_P(RelayGrpcTest, StopCancelsACallInFlight) {
  ASSERT_TRUE(receiver_->Start().ok());
  receiver_->set_fault([](const Event&) {
    absl::SleepFor(absl::Milliseconds(800));
    return absl::UnavailableError("slow");
  });
  EnqueueInterleaved({"k"}, 1);
  sender_ = std::make_unique<GrpcEventSender>(
      testutil::FastReconnectChannel(receiver_->target()));
  RelayOptions options = Options();
  options.call_timeout = absl::Seconds(10);
  relay_ = std::make_unique<OutboxRelay>(db(), *sender_, options);
  relay_->Start();
  ASSERT_TRUE(WaitFor([&] { return receiver_->handler_calls() >= 1; }));
  const absl::Time start = absl::Now();
  relay_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
}

// The sink's own answers, called directly over a real socket.
TEST_P(RelayGrpcTest, SinkValidatesAndReportsDuplicates) {
  ASSERT_TRUE(receiver_->Start().ok());
  auto stub = lotse::events::v1::EventSinkService::NewStub(
      testutil::FastReconnectChannel(receiver_->target()));
  auto call = [&](const Event& e,
                  lotse::events::v1::DeliverEventResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    lotse::events::v1::DeliverEventRequest request;
    *request.mutable_event() = e;
    return stub->DeliverEvent(&context, request, response);
  };
  lotse::events::v1::DeliverEventResponse response;
  Event no_id = MakeEvent("k", 0);
  EXPECT_EQ(call(no_id, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  Event no_payload;
  no_payload.set_event_id("x");
  EXPECT_EQ(call(no_payload, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  Event e = MakeEvent("k", 0);
  e.set_event_id("e-1");
  ASSERT_TRUE(call(e, &response).ok());
  EXPECT_FALSE(response.duplicate());
  ASSERT_TRUE(call(e, &response).ok());
  EXPECT_TRUE(response.duplicate());

  receiver_->set_fault(
      [](const Event&) { return absl::InternalError("handler broke"); });
  Event e2 = MakeEvent("k", 1);
  e2.set_event_id("e-2");
  grpc::Status failed = call(e2, &response);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(receiver_->Applied().size(), 1u);
}

TEST_P(RelayGrpcTest, SinkAuthorizeHookRefusesBeforeApplying) {
  std::atomic<int> applied{0};
  EventSinkService::AuthorizeFn deny_all = [](grpc::CallbackServerContext*) {
    return absl::PermissionDeniedError("agency may not send events");
  };
  for (auto [authorize, want] :
       {std::pair(deny_all, grpc::StatusCode::PERMISSION_DENIED),
        std::pair(
            EventSinkService::AuthorizeFn([](grpc::CallbackServerContext*) {
              return absl::UnauthenticatedError("no certificate");
            }),
            grpc::StatusCode::UNAUTHENTICATED)}) {
    EventSinkService sink(
        *receiver_db_,
        [&](storage::Transaction&, const Event&) {
          ++applied;
          return absl::OkStatus();
        },
        authorize);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&sink);
    auto server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr);
    auto stub = lotse::events::v1::EventSinkService::NewStub(
        testutil::FastReconnectChannel(absl::StrCat("127.0.0.1:", port)));
    grpc::ClientContext context;
    lotse::events::v1::DeliverEventRequest request;
    *request.mutable_event() = MakeEvent("k", 0);
    request.mutable_event()->set_event_id("e-1");
    lotse::events::v1::DeliverEventResponse response;
    EXPECT_EQ(stub->DeliverEvent(&context, request, &response).error_code(),
              want);
    server->Shutdown();
  }
  EXPECT_EQ(applied.load(), 0);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(RelayGrpcTest);

}  // namespace
}  // namespace lotse::events
