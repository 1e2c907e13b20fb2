// Outbox and relay against a fake sender: storage behaviour, ordering,
// backoff and per-destination state, on both backends.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "common/events/outbox.h"
#include "common/events/relay.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/events/event_test_util.h"
#include "tests/support/test_database.h"

namespace lotse::events {
namespace {

using lotse::events::v1::Event;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using testutil::FakeSender;
using testutil::MakeEvent;

class OutboxRelayTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(storage::ApplyMigrations(db(), OutboxMigrations()).ok());
  }

  void Enqueue(const std::vector<Event>& events) {
    absl::Status s =
        storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
          for (const Event& e : events) {
            if (absl::Status s = EnqueueEvent(tx, e); !s.ok()) return s;
          }
          return absl::OkStatus();
        });
    ASSERT_TRUE(s.ok()) << s;
  }

  // Enqueues `events` in one transaction on behalf of a call collecting
  // into `sink`; returns the commit's status.
  absl::Status EnqueueFor(CommittedEvents* sink,
                          const std::vector<Event>& events) {
    const CollectCommittedEvents collect(sink);
    return storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
      for (const Event& e : events) {
        if (absl::Status s = EnqueueEvent(tx, e); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
  }

  RelayOptions Options(const std::string& destination) {
    RelayOptions o;
    o.destination = destination;
    o.poll_interval = absl::Milliseconds(20);
    o.call_timeout = absl::Milliseconds(500);
    o.backoff_initial = absl::Milliseconds(40);
    o.backoff_max = absl::Milliseconds(200);
    return o;
  }

  int Deliver(OutboxRelay& relay) {
    auto n = relay.DeliverPendingOnce();
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : -1;
  }
};

TEST_P(OutboxRelayTest, EnqueueAssignsIdAndTimeAndStoresTheEvent) {
  Enqueue({MakeEvent("persons/a", 0)});
  FakeSender sender;
  std::vector<Event> sent;
  sender.set_respond([&](const Event& e) {
    sent.push_back(e);
    return absl::OkStatus();
  });
  OutboxRelay relay(db(), sender, Options("cases"));
  EXPECT_EQ(Deliver(relay), 1);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_THAT(
      sent[0].event_id(),
      MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{"
                   "3}-[0-9a-f]{12}"));
  EXPECT_GT(sent[0].occurred_at().seconds(), 1600000000);
  EXPECT_EQ(sent[0].ordering_key(), "persons/a");
  EXPECT_EQ(testutil::PayloadText(sent[0]), "persons/a#0");
  EXPECT_NE(NewEventId(), NewEventId());
}

TEST_P(OutboxRelayTest, EnqueueRejectsEventWithoutPayloadAndDuplicateId) {
  Event no_payload;
  no_payload.set_ordering_key("k");
  absl::Status s = storage::RunInTransaction(
      db(),
      [&](storage::Transaction& tx) { return EnqueueEvent(tx, no_payload); });
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;

  Event e = MakeEvent("k", 0);
  e.set_event_id("fixed-id");
  Enqueue({e});
  s = storage::RunInTransaction(
      db(), [&](storage::Transaction& tx) { return EnqueueEvent(tx, e); });
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
}

TEST_P(OutboxRelayTest, RolledBackEventIsNeverDelivered) {
  {
    auto tx = db().Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(EnqueueEvent(**tx, MakeEvent("k", 99)).ok());
    // No commit: the caller's change failed, so the event never happened.
  }
  Enqueue({MakeEvent("k", 0)});
  FakeSender sender;
  OutboxRelay relay(db(), sender, Options("cases"));
  EXPECT_EQ(Deliver(relay), 1);
  EXPECT_EQ(Deliver(relay), 0);
  EXPECT_THAT(sender.attempts(), ElementsAre("k#0"));
}

TEST_P(OutboxRelayTest, DeliversInSeqOrderOnceAndPicksUpLaterEvents) {
  Enqueue({MakeEvent("a", 0), MakeEvent("b", 0), MakeEvent("a", 1)});
  FakeSender sender;
  OutboxRelay relay(db(), sender, Options("cases"));
  EXPECT_EQ(Deliver(relay), 3);
  EXPECT_EQ(Deliver(relay), 0);
  Enqueue({MakeEvent("b", 1)});
  EXPECT_EQ(Deliver(relay), 1);
  EXPECT_THAT(sender.attempts(), ElementsAre("a#0", "b#0", "a#1", "b#1"));
  EXPECT_EQ(relay.stats().delivered, 4);
  EXPECT_EQ(relay.stats().failed_attempts, 0);
}

TEST_P(OutboxRelayTest, BatchSizeBoundsOneCycle) {
  std::vector<Event> events;
  for (int i = 0; i < 5; ++i) events.push_back(MakeEvent("k", i));
  Enqueue(events);
  FakeSender sender;
  RelayOptions options = Options("cases");
  options.batch_size = 2;
  OutboxRelay relay(db(), sender, options);
  EXPECT_EQ(Deliver(relay), 2);
  EXPECT_EQ(Deliver(relay), 2);
  EXPECT_EQ(Deliver(relay), 1);
  EXPECT_EQ(testutil::CheckOncePerKeyInOrder(sender.delivered(), {{"k", 5}}),
            "");
}

TEST_P(OutboxRelayTest, FailingKeyWaitsWhileOtherKeysProceed) {
  Enqueue({MakeEvent("K", 0), MakeEvent("L", 0), MakeEvent("K", 1),
           MakeEvent("L", 1), MakeEvent("L", 2)});
  FakeSender sender;
  std::atomic<bool> accept_k{false};
  sender.set_respond([&](const Event& e) {
    if (e.ordering_key() == "K" && !accept_k) {
      return absl::UnavailableError("receiver cannot apply K yet");
    }
    return absl::OkStatus();
  });
  // A backoff long enough that the second cycle below surely falls inside
  // it, even on a loaded machine where one cycle on PostgreSQL takes tens
  // of milliseconds.
  RelayOptions options = Options("cases");
  options.backoff_initial = absl::Seconds(2);
  options.backoff_max = absl::Seconds(2);
  OutboxRelay relay(db(), sender, options);
  EXPECT_EQ(Deliver(relay), 3);
  // K#1 was never tried while K#0 failed.
  EXPECT_THAT(sender.attempts(), ElementsAre("K#0", "L#0", "L#1", "L#2"));
  // Still inside K#0's backoff: K is not tried again.
  EXPECT_EQ(Deliver(relay), 0);
  EXPECT_EQ(sender.attempts().size(), 4u);
  EXPECT_EQ(relay.stats().failed_attempts, 1);

  accept_k = true;
  ASSERT_TRUE(testutil::WaitFor([&] { return Deliver(relay) > 0; }));
  EXPECT_THAT(sender.delivered(),
              ElementsAre("L#0", "L#1", "L#2", "K#0", "K#1"));
}

TEST_P(OutboxRelayTest, ObserversSeeEachFailureAndEachDelivery) {
  Enqueue({MakeEvent("K", 0), MakeEvent("L", 0)});
  FakeSender sender;
  std::atomic<bool> accept_k{false};
  sender.set_respond([&](const Event& e) {
    if (e.ordering_key() == "K" && !accept_k) {
      return absl::UnavailableError("receiver down");
    }
    return absl::OkStatus();
  });
  std::vector<DeliveryFailure> failures;
  std::vector<std::string> delivered_to;
  RelayOptions options = Options("cases");
  options.on_failure = [&](const DeliveryFailure& f) { failures.push_back(f); };
  options.on_delivered = [&](const std::string& d) {
    delivered_to.push_back(d);
  };
  OutboxRelay relay(db(), sender, options);
  const absl::Time before = absl::Now();
  EXPECT_EQ(Deliver(relay), 1);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].destination, "cases");
  EXPECT_EQ(failures[0].attempts, 1);
  EXPECT_EQ(failures[0].code, absl::StatusCode::kUnavailable);
  EXPECT_EQ(failures[0].message, "receiver down");
  EXPECT_GT(failures[0].next_attempt, before);
  EXPECT_THAT(delivered_to, ElementsAre("cases"));

  // The second failure of the same event counts its attempts.
  ASSERT_TRUE(testutil::WaitFor([&] {
    Deliver(relay);
    return failures.size() == 2;
  }));
  EXPECT_EQ(failures[1].seq, failures[0].seq);
  EXPECT_EQ(failures[1].attempts, 2);

  accept_k = true;
  ASSERT_TRUE(testutil::WaitFor([&] { return Deliver(relay) > 0; }));
  EXPECT_THAT(delivered_to, ElementsAre("cases", "cases"));
}

TEST_P(OutboxRelayTest, BackoffGrowsWithAttemptsAndIsCapped) {
  Enqueue({MakeEvent("k", 0)});
  FakeSender sender;
  sender.set_respond(
      [](const Event&) { return absl::UnavailableError("down"); });
  RelayOptions options = Options("cases");
  options.backoff_initial = absl::Milliseconds(20);
  options.backoff_max = absl::Milliseconds(80);
  OutboxRelay relay(db(), sender, options);
  // Expected delay before attempt n+1 is min(20ms * 2^(n-1), 80ms), jittered
  // into [delay/2, delay].
  const int64_t expected_ms[] = {20, 40, 80, 80};
  for (int64_t want : expected_ms) {
    // The failure happened between `before` and `after`, so the jittered
    // delay lies within [due - after, due - before].
    int64_t before = 0;
    ASSERT_TRUE(testutil::WaitFor([&] {
      const size_t attempts = sender.attempts().size();
      before = absl::ToUnixMicros(absl::Now());
      Deliver(relay);
      return sender.attempts().size() > attempts;
    }));
    const int64_t after = absl::ToUnixMicros(absl::Now());
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    auto rows = (*tx)->Query(
        "SELECT next_attempt_at, last_error FROM event_outbox_delivery");
    ASSERT_TRUE(rows.ok());
    const int64_t due = *(*rows)[0].GetInt(0);
    EXPECT_LE(due - after, want * 1000);
    EXPECT_GE(due - before, want * 1000 / 2);
    EXPECT_EQ(*(*rows)[0].GetText(1), "UNAVAILABLE: down");
  }
  EXPECT_EQ(relay.stats().failed_attempts, 4);
}

// While the receiver cannot be reached the retries back off only to
// unreachable_backoff_max, so that what queued up follows soon after it is
// back; a refusal the receiver keeps making backs off to backoff_max.
TEST_P(OutboxRelayTest, UnreachableReceiverIsRetriedAtTheLowerCap) {
  Enqueue({MakeEvent("down", 0), MakeEvent("refused", 0)});
  FakeSender sender;
  sender.set_respond([](const Event& e) -> absl::Status {
    return testutil::PayloadText(e) == "down#0"
               ? absl::UnavailableError("down")
               : absl::InvalidArgumentError("refused");
  });
  RelayOptions options = Options("cases");
  options.backoff_initial = absl::Milliseconds(20);
  options.backoff_max = absl::Minutes(1);
  options.unreachable_backoff_max = absl::Milliseconds(60);
  OutboxRelay relay(db(), sender, options);
  auto due_of = [&](const std::string& key) -> int64_t {
    auto tx = db().Begin(storage::TxMode::kReadOnly);
    auto rows = (*tx)->Query(
        "SELECT next_attempt_at FROM event_outbox_delivery "
        "WHERE ordering_key = $1",
        {storage::Value(key)});
    EXPECT_TRUE(rows.ok() && rows->size() == 1);
    return rows.ok() && rows->size() == 1 ? *(*rows)[0].GetInt(0) : 0;
  };
  // Six failures of each: the unreachable one's delay stays at most 60 ms,
  // the refused one's grows to 20 ms * 2^5 = 640 ms (at least half of it).
  auto tries = [&](const std::string& payload) {
    int n = 0;
    for (const std::string& a : sender.attempts()) n += a == payload;
    return n;
  };
  for (int i = 1; i <= 6; ++i) {
    ASSERT_TRUE(testutil::WaitFor(
        [&] {
          Deliver(relay);
          return tries("refused#0") >= i && tries("down#0") >= i;
        },
        absl::Seconds(30)))
        << i;
    const int64_t after = absl::ToUnixMicros(absl::Now());
    EXPECT_LE(due_of("down") - after, 60 * 1000) << i;
  }
  EXPECT_GE(due_of("refused") - absl::ToUnixMicros(absl::Now()),
            640 * 1000 / 2 - 100 * 1000);
}

TEST_P(OutboxRelayTest, DestinationsHaveIndependentState) {
  Enqueue({MakeEvent("k", 0), MakeEvent("k", 1), MakeEvent("j", 0)});
  FakeSender cases, placement;
  placement.set_respond(
      [](const Event&) { return absl::UnavailableError("down"); });
  OutboxRelay to_cases(db(), cases, Options("cases"));
  OutboxRelay to_placement(db(), placement, Options("placement"));
  EXPECT_EQ(Deliver(to_placement), 0);
  EXPECT_EQ(Deliver(to_cases), 3);
  EXPECT_EQ(Deliver(to_cases), 0);
  EXPECT_THAT(placement.delivered(), IsEmpty());

  placement.set_respond(nullptr);
  int total = 0;
  ASSERT_TRUE(testutil::WaitFor([&] {
    total += Deliver(to_placement);
    return total == 3;
  }));
  EXPECT_EQ(testutil::CheckOncePerKeyInOrder(placement.delivered(),
                                             {{"k", 2}, {"j", 1}}),
            "");
  EXPECT_EQ(cases.delivered().size(), 3u);
}

TEST_P(OutboxRelayTest, ReplicasTakeTurnsAndAStandbyTakesOver) {
  // Two replicas: each its own pool over the same database, each with a
  // relay for the same destination.
  auto replica = storage::OpenDatabase(url());
  ASSERT_TRUE(replica.ok()) << replica.status();
  Enqueue({MakeEvent("k", 0), MakeEvent("k", 1), MakeEvent("j", 0)});
  FakeSender first_sender, second_sender;
  RelayOptions options = Options("cases");
  options.standby_retry = absl::ZeroDuration();
  auto first = std::make_unique<OutboxRelay>(db(), first_sender, options);
  OutboxRelay second(**replica, second_sender, options);
  EXPECT_EQ(Deliver(*first), 3);
  EXPECT_TRUE(first->stats().leading);
  Enqueue({MakeEvent("k", 2)});
  // The standby sends nothing while the first holds the lead.
  EXPECT_EQ(Deliver(second), 0);
  EXPECT_FALSE(second.stats().leading);
  EXPECT_THAT(second_sender.delivered(), IsEmpty());

  // The first stops (a rolling update): the standby takes over and goes
  // on from where the first left off.
  first->Stop();
  EXPECT_FALSE(first->stats().leading);
  EXPECT_EQ(Deliver(second), 1);
  EXPECT_TRUE(second.stats().leading);
  ASSERT_EQ(second_sender.delivered().size(), 1u);
  EXPECT_EQ(second_sender.delivered()[0], "k#2");
  EXPECT_EQ(first_sender.delivered().size(), 3u);
}

TEST_P(OutboxRelayTest, AStandbyTriesToTakeOverOnlyEveryStandbyRetry) {
  auto replica = storage::OpenDatabase(url());
  ASSERT_TRUE(replica.ok()) << replica.status();
  Enqueue({MakeEvent("k", 0)});
  FakeSender first_sender, second_sender;
  RelayOptions options = Options("cases");
  options.standby_retry = absl::Hours(1);
  auto first = std::make_unique<OutboxRelay>(db(), first_sender, options);
  OutboxRelay second(**replica, second_sender, options);
  EXPECT_EQ(Deliver(*first), 1);
  EXPECT_EQ(Deliver(second), 0);  // tried, lost, waits an hour
  first.reset();
  Enqueue({MakeEvent("k", 1)});
  EXPECT_EQ(Deliver(second), 0);
  EXPECT_FALSE(second.stats().leading);
}

TEST_P(OutboxRelayTest, PruneKeepsWhatAnyDestinationStillNeeds) {
  Enqueue({MakeEvent("k", 0), MakeEvent("k", 1), MakeEvent("k", 2)});
  FakeSender ok_sender;
  FakeSender failing;
  failing.set_respond([](const Event& e) {
    return testutil::PayloadText(e) == "k#2"
               ? absl::UnavailableError("receiver down")
               : absl::OkStatus();
  });
  OutboxRelay cases(db(), ok_sender, Options("cases"));
  OutboxRelay placement(db(), failing, Options("placement"));
  EXPECT_EQ(Deliver(cases), 3);
  EXPECT_EQ(Deliver(placement), 2);
  Enqueue({MakeEvent("k", 3)});  // not yet taken by either destination

  // Too young: nothing goes.
  EXPECT_EQ(
      PruneDeliveredEvents(db(), absl::Now() - absl::Hours(1)).value_or(-1), 0);
  // Old enough: k#0 and k#1 are acknowledged by both destinations; k#2 is
  // still pending for placement, k#3 was taken by nobody.
  const absl::Time later = absl::Now() + absl::Hours(1);
  EXPECT_EQ(PruneDeliveredEvents(db(), later, 1).value_or(-1), 1);
  EXPECT_EQ(PruneDeliveredEvents(db(), later).value_or(-1), 1);
  EXPECT_EQ(PruneDeliveredEvents(db(), later).value_or(-1), 0);

  // Delivery goes on with what is left.
  failing.set_respond([](const Event&) { return absl::OkStatus(); });
  absl::SleepFor(absl::Milliseconds(250));  // past placement's backoff
  EXPECT_EQ(Deliver(placement), 2);
  EXPECT_EQ(Deliver(cases), 1);
  EXPECT_EQ(PruneDeliveredEvents(db(), later).value_or(-1), 2);
  EXPECT_THAT(failing.delivered(), ElementsAre("k#0", "k#1", "k#2", "k#3"));
}

TEST_P(OutboxRelayTest, ThreadWakesOnNotifyAndStopsPromptly) {
  FakeSender sender;
  RelayOptions options = Options("cases");
  options.poll_interval = absl::Seconds(30);  // only Notify can wake it
  OutboxRelay relay(db(), sender, options);
  relay.Start();
  absl::SleepFor(absl::Milliseconds(50));  // let it go to sleep
  Enqueue({MakeEvent("k", 0)});
  relay.Notify();
  EXPECT_TRUE(testutil::WaitFor([&] { return relay.stats().delivered == 1; },
                                absl::Seconds(5)));
  const absl::Time start = absl::Now();
  relay.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST_P(OutboxRelayTest, ACommitThatEnqueuedEventsWakesTheRelays) {
  FakeSender sender;
  RelayOptions options = Options("cases");
  options.poll_interval = absl::Seconds(30);  // nothing else wakes it
  OutboxRelay relay(db(), sender, options);
  relay.Start();
  absl::SleepFor(absl::Milliseconds(50));  // let it go to sleep
  {
    // Not before the commit: an event not yet visible would be missed.
    auto tx = db().Begin();
    ASSERT_TRUE(tx.ok()) << tx.status();
    ASSERT_TRUE(EnqueueEvent(**tx, MakeEvent("k", 0)).ok());
    absl::SleepFor(absl::Milliseconds(100));
    ASSERT_TRUE((*tx)->Commit().ok());
  }
  EXPECT_TRUE(testutil::WaitFor([&] { return relay.stats().delivered == 1; },
                                absl::Seconds(5)));
  // A commit without events leaves it asleep.
  const int64_t attempts = sender.attempts().size();
  ASSERT_TRUE(storage::RunInTransaction(db(), [](storage::Transaction&) {
                return absl::OkStatus();
              }).ok());
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(sender.attempts().size(), attempts);
}

TEST_P(OutboxRelayTest, ACallCollectsTheSeqsOfWhatItCommittedOnly) {
  CommittedEvents call;
  ASSERT_TRUE(EnqueueFor(&call, {MakeEvent("a", 0), MakeEvent("b", 0)}).ok());
  EXPECT_EQ(call.seqs().size(), 2u);
  // Rolled back: nothing to wait for.
  CommittedEvents failed;
  {
    const CollectCommittedEvents collect(&failed);
    absl::Status s =
        storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
          if (absl::Status e = EnqueueEvent(tx, MakeEvent("c", 0)); !e.ok()) {
            return e;
          }
          return absl::InvalidArgumentError("the call's own error");
        });
    EXPECT_FALSE(s.ok());
    // Outside the scope, another call's events are not this call's.
    const CollectCommittedEvents none(nullptr);
    Enqueue({MakeEvent("d", 0)});
  }
  EXPECT_THAT(failed.seqs(), IsEmpty());
  EXPECT_EQ(CollectCommittedEvents::Current(), nullptr);
}

TEST_P(OutboxRelayTest, AwaitDeliveredReturnsWhenTheDestinationHasTheEvents) {
  FakeSender sender;
  sender.set_respond([](const Event&) {
    absl::SleepFor(absl::Milliseconds(150));  // a slow receiver
    return absl::OkStatus();
  });
  RelayOptions options = Options("identity");
  options.poll_interval = absl::Seconds(30);
  OutboxRelay relay(db(), sender, options);
  relay.Start();
  CommittedEvents call;
  ASSERT_TRUE(EnqueueFor(&call, {MakeEvent("a", 0), MakeEvent("b", 0)}).ok());
  const absl::Time start = absl::Now();
  EXPECT_TRUE(relay.AwaitDelivered(call.seqs(), start + absl::Seconds(10)));
  EXPECT_THAT(sender.delivered(), ElementsAre("a#0", "b#0"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  // Already delivered: at once.
  EXPECT_TRUE(relay.AwaitDelivered(call.seqs(), absl::Now()));
  EXPECT_TRUE(relay.AwaitDelivered({}, absl::Now()));
}

TEST_P(OutboxRelayTest, AwaitDeliveredGivesUpAtTheDeadlineOrWhenUnreachable) {
  FakeSender sender;
  std::atomic<bool> reachable{true};
  sender.set_respond([&](const Event&) {
    if (!reachable) return absl::UnavailableError("connection refused");
    absl::SleepFor(absl::Milliseconds(500));
    return absl::OkStatus();
  });
  RelayOptions options = Options("identity");
  options.poll_interval = absl::Seconds(30);
  OutboxRelay relay(db(), sender, options);
  relay.Start();
  CommittedEvents slow;
  ASSERT_TRUE(EnqueueFor(&slow, {MakeEvent("a", 0)}).ok());
  absl::Time start = absl::Now();
  EXPECT_FALSE(
      relay.AwaitDelivered(slow.seqs(), start + absl::Milliseconds(100)));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(400));
  ASSERT_TRUE(testutil::WaitFor([&] { return relay.stats().delivered == 1; }));

  // The destination goes away: once a send failed for want of a
  // connection, callers are not held until their deadline.
  reachable = false;
  CommittedEvents lost;
  ASSERT_TRUE(EnqueueFor(&lost, {MakeEvent("b", 0)}).ok());
  start = absl::Now();
  EXPECT_FALSE(relay.AwaitDelivered(lost.seqs(), start + absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(sender.delivered().size(), 1u);
}

TEST_P(OutboxRelayTest, AwaitDeliveredSeesWhatAnotherReplicaDelivered) {
  auto replica = storage::OpenDatabase(url());
  ASSERT_TRUE(replica.ok()) << replica.status();
  FakeSender leader_sender, standby_sender;
  RelayOptions options = Options("identity");
  options.standby_retry = absl::Hours(1);
  OutboxRelay leader(**replica, leader_sender, options);
  OutboxRelay standby(db(), standby_sender, options);
  EXPECT_EQ(Deliver(leader), 0);  // takes the lead
  EXPECT_EQ(Deliver(standby), 0);
  ASSERT_FALSE(standby.stats().leading);
  CommittedEvents call;
  ASSERT_TRUE(EnqueueFor(&call, {MakeEvent("a", 0)}).ok());
  std::thread other_process([&] {
    absl::SleepFor(absl::Milliseconds(150));
    Deliver(leader);
  });
  EXPECT_TRUE(
      standby.AwaitDelivered(call.seqs(), absl::Now() + absl::Seconds(5)));
  other_process.join();
  EXPECT_THAT(standby_sender.attempts(), IsEmpty());
}

TEST_P(OutboxRelayTest, ThreadRetriesAfterBackoffWithoutNotify) {
  Enqueue({MakeEvent("k", 0), MakeEvent("k", 1)});
  FakeSender sender;
  std::atomic<int> failures_left{3};
  sender.set_respond([&](const Event&) {
    if (failures_left-- > 0) return absl::UnavailableError("flaky");
    return absl::OkStatus();
  });
  RelayOptions options = Options("cases");
  options.poll_interval = absl::Seconds(30);  // the backoff expiry wakes it
  OutboxRelay relay(db(), sender, options);
  relay.Start();
  EXPECT_TRUE(testutil::WaitFor([&] { return relay.stats().delivered == 2; },
                                absl::Seconds(5)));
  EXPECT_THAT(sender.delivered(), ElementsAre("k#0", "k#1"));
  EXPECT_EQ(relay.stats().failed_attempts, 3);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(OutboxRelayTest);

}  // namespace
}  // namespace lotse::events
