// EventDelivery: destinations from configuration, one relay per destination,
// each receiver gets the whole outbox over real gRPC channels.
#include "common/events/delivery.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/events/outbox.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/common/events/event_test_util.h"
#include "tests/support/test_database.h"

namespace lotse::events {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testutil::MakeEvent;
using testutil::Receiver;
using testutil::WaitFor;

TEST(ParseDestinationsTest, ReadsNamesAndAddresses) {
  absl::StatusOr<std::vector<Destination>> d =
      ParseDestinations(" cases=127.0.0.1:50052, placement=placement:50054,");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0].name, "cases");
  EXPECT_EQ((*d)[0].address, "127.0.0.1:50052");
  EXPECT_EQ((*d)[1].name, "placement");
  EXPECT_EQ((*d)[1].address, "placement:50054");
  absl::StatusOr<std::vector<Destination>> none = ParseDestinations("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(ParseDestinationsTest, RefusesMalformedEntries) {
  for (const char* bad : {"cases", "cases=", "=host:1", "Cases=h:1",
                          "cases=h:1,cases=h:2", "a=b=c"}) {
    absl::StatusOr<std::vector<Destination>> d = ParseDestinations(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(std::string(ParseDestinations("x=h:1,x=h:2").status().message()),
              HasSubstr("twice"));
}

class EventDeliveryTest : public lotse::testing::BothBackendsTest {};

TEST_P(EventDeliveryTest, EveryDestinationReceivesEveryEventOnce) {
  ASSERT_TRUE(storage::ApplyMigrations(db(), OutboxMigrations()).ok());
  std::vector<std::unique_ptr<storage::Database>> receiver_dbs;
  std::vector<std::unique_ptr<Receiver>> receivers;
  for (int i = 0; i < 2; ++i) {
    auto rdb = lotse::testing::NewTestDatabase(dialect());
    ASSERT_TRUE(rdb.ok()) << rdb.status();
    receiver_dbs.push_back(*std::move(rdb));
    receivers.push_back(std::make_unique<Receiver>(*receiver_dbs.back()));
    ASSERT_TRUE(receivers.back()->Start().ok());
  }
  RelayOptions options;
  options.poll_interval = absl::Seconds(30);  // only Notify() wakes them
  options.backoff_initial = absl::Milliseconds(20);
  options.backoff_max = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<EventDelivery>> delivery =
      EventDelivery::Start(db(),
                           {{"cases", receivers[0]->target()},
                            {"placement", receivers[1]->target()}},
                           grpc::InsecureChannelCredentials(), options);
  ASSERT_TRUE(delivery.ok()) << delivery.status();

  ASSERT_TRUE(storage::RunInTransaction(db(), [](storage::Transaction& tx) {
                absl::Status s = EnqueueEvent(tx, MakeEvent("p1", 0));
                if (s.ok()) s = EnqueueEvent(tx, MakeEvent("p1", 1));
                return s;
              }).ok());
  (*delivery)->Notify();
  for (auto& receiver : receivers) {
    EXPECT_TRUE(WaitFor([&] { return receiver->Applied().size() == 2; }));
    EXPECT_THAT(receiver->Applied(), ElementsAre("p1#0", "p1#1"));
  }
  // The receiver commits before the relay records the delivery.
  EXPECT_TRUE(WaitFor([&] { return (*delivery)->stats().delivered == 4; }));
  EXPECT_EQ((*delivery)->stats().delivered, 4);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(EventDeliveryTest);

}  // namespace
}  // namespace lotse::events
