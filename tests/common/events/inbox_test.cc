// The inbox: each event id applied once, failures leave no trace.
#include "common/events/inbox.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "tests/common/events/event_test_util.h"
#include "tests/support/test_database.h"

namespace lotse::events {
namespace {

using lotse::events::v1::Event;

class InboxTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    std::vector<storage::Migration> m = InboxMigrations();
    m.push_back({"test.inbox.0001", "CREATE TABLE effects (v TEXT NOT NULL);"});
    ASSERT_TRUE(storage::ApplyMigrations(db(), m).ok());
  }

  // Writes one row to `effects` per application.
  ApplyFn Effect() {
    return [](storage::Transaction& tx, const Event& e) {
      return tx
          .Execute("INSERT INTO effects (v) VALUES ($1)",
                   {storage::Value(e.event_id())})
          .status();
    };
  }

  int64_t Count(const char* table) {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    auto rows = (*tx)->Query(std::string("SELECT COUNT(*) FROM ") + table);
    return *(*rows)[0].GetInt(0);
  }
};

TEST_P(InboxTest, AppliesOnceAndReportsDuplicates) {
  Event e = testutil::MakeEvent("k", 0);
  e.set_event_id("e-1");
  auto first = ApplyEventOnce(db(), e, Effect());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  auto again = ApplyEventOnce(db(), e, Effect());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(Count("effects"), 1);
  EXPECT_EQ(Count("event_inbox"), 1);
}

TEST_P(InboxTest, FailedApplyRecordsNothingSoRedeliveryRetries) {
  Event e = testutil::MakeEvent("k", 0);
  e.set_event_id("e-1");
  auto failed = ApplyEventOnce(
      db(), e, [](storage::Transaction& tx, const Event&) -> absl::Status {
        // A partial effect before the failure must roll back too.
        auto n = tx.Execute("INSERT INTO effects (v) VALUES ('partial')");
        if (!n.ok()) return n.status();
        return absl::UnavailableError("dependency down");
      });
  EXPECT_TRUE(absl::IsUnavailable(failed.status())) << failed.status();
  EXPECT_EQ(Count("effects"), 0);
  EXPECT_EQ(Count("event_inbox"), 0);
  auto retried = ApplyEventOnce(db(), e, Effect());
  ASSERT_TRUE(retried.ok());
  EXPECT_TRUE(*retried);
  EXPECT_EQ(Count("effects"), 1);
}

TEST_P(InboxTest, ApplyReturningAlreadyExistsIsAnErrorNotADuplicate) {
  Event e = testutil::MakeEvent("k", 0);
  e.set_event_id("e-1");
  auto r = ApplyEventOnce(db(), e, [](storage::Transaction&, const Event&) {
    return absl::AlreadyExistsError("handler's own conflict");
  });
  EXPECT_TRUE(absl::IsAlreadyExists(r.status()));
  EXPECT_EQ(Count("event_inbox"), 0);
}

TEST_P(InboxTest, RejectsEventWithoutId) {
  Event e = testutil::MakeEvent("k", 0);
  EXPECT_TRUE(
      absl::IsInvalidArgument(ApplyEventOnce(db(), e, Effect()).status()));
}

TEST_P(InboxTest, ConcurrentDeliveriesOfOneIdApplyOnce) {
  Event e = testutil::MakeEvent("k", 0);
  e.set_event_id("e-1");
  std::atomic<int> applied{0}, duplicates{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto r = ApplyEventOnce(
          db(), e, [&](storage::Transaction& tx, const Event& ev) {
            // Hold the transaction open so the others overlap with it.
            absl::SleepFor(absl::Milliseconds(50));
            return tx
                .Execute("INSERT INTO effects (v) VALUES ($1)",
                         {storage::Value(ev.event_id())})
                .status();
          });
      if (!r.ok()) {
        ++errors;
      } else if (*r) {
        ++applied;
      } else {
        ++duplicates;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(applied.load(), 1);
  EXPECT_EQ(duplicates.load(), 3);
  EXPECT_EQ(Count("effects"), 1);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(InboxTest);

}  // namespace
}  // namespace lotse::events
