// Crypto-shredding in the outbox: payloads about one person are sealed
// with their key, opened by the relay, and skipped once the key is
// shredded; on both backends.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "common/audit/audit_log.h"
#include "common/errors/status.h"
#include "common/events/outbox.h"
#include "common/events/relay.h"
#include "common/lifecycle/person_keys.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/events.pb.h"
#include "tests/common/events/event_test_util.h"
#include "tests/support/test_database.h"

namespace lotse::events {
namespace {

using ::lotse::events::v1::Event;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kMarker[] = "MARKER-Oezdemir-1987";

Event Rectified(const std::string& person, const std::string& field) {
  lotse::identity::v1::PersonRectified p;
  p.set_person(person);
  p.add_changed_fields(field);
  Event e;
  e.set_ordering_key(person);
  e.set_source("identity");
  e.mutable_payload()->PackFrom(p);
  return e;
}

Event Erased(const std::string& person) {
  lotse::identity::v1::ErasureReported r;
  r.set_person(person);
  r.set_service("identity");
  Event e;
  e.set_ordering_key(person);
  e.set_source("identity");
  e.mutable_payload()->PackFrom(r);
  return e;
}

// The changed field of a PersonRectified, the person of an
// ErasureReported.
std::string Text(const Event& e) {
  lotse::identity::v1::PersonRectified p;
  if (e.payload().UnpackTo(&p) && p.changed_fields_size() == 1) {
    return p.changed_fields(0);
  }
  lotse::identity::v1::ErasureReported r;
  if (e.payload().UnpackTo(&r)) return "erased " + r.person();
  return "?";
}

// Records the events it is given.
class RecordingSender : public EventSender {
 public:
  absl::Status Send(const Event& event, absl::Time) override {
    sent.push_back(Text(event));
    return absl::OkStatus();
  }
  std::vector<std::string> sent;
};

class OutboxSealingTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    std::vector<storage::Migration> m = OutboxMigrations();
    for (auto& a : audit::AuditMigrations()) m.push_back(a);
    ASSERT_TRUE(storage::ApplyMigrations(db(), m).ok());
  }

  absl::Status Enqueue(const std::vector<Event>& events) {
    return storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
      for (const Event& e : events) {
        if (absl::Status s = EnqueueEvent(tx, e); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
  }

  // person (or "NULL") and raw payload of every outbox row, in seq order.
  std::vector<std::pair<std::string, std::string>> Rows() {
    std::vector<std::pair<std::string, std::string>> out;
    EXPECT_TRUE(storage::RunInTransaction(
                    db(),
                    [&](storage::Transaction& tx) -> absl::Status {
                      auto rows = tx.Query(
                          "SELECT person, payload FROM event_outbox "
                          "ORDER BY seq");
                      if (!rows.ok()) return rows.status();
                      for (const storage::Row& r : *rows) {
                        out.emplace_back(
                            r.IsNull(0) ? "NULL" : r.GetText(0).value_or("?"),
                            r.GetBytes(1).value_or(""));
                      }
                      return absl::OkStatus();
                    },
                    storage::TxMode::kReadOnly)
                    .ok());
    return out;
  }

  absl::Status Shred(const std::string& person) {
    return storage::RunInTransaction(db(), [&](storage::Transaction& tx) {
      return lifecycle::ShredPersonKey(tx, person);
    });
  }
};

TEST_P(OutboxSealingTest, PayloadAboutOnePersonIsStoredSealed) {
  lotse::identity::v1::PersonMerged merged;
  merged.set_survivor("persons/s");
  merged.set_merged("persons/m");
  Event two;
  two.set_ordering_key("persons/s");
  two.mutable_payload()->PackFrom(merged);
  ASSERT_TRUE(Enqueue({Rectified("persons/p1", kMarker), Erased("persons/p1"),
                       two, testutil::MakeEvent("agencies/a", 0)})
                  .ok());

  auto rows = Rows();
  ASSERT_EQ(rows.size(), 4u);
  // Sealed: the person is named by id, the payload holds no plaintext.
  EXPECT_EQ(rows[0].first, "p1");
  EXPECT_TRUE(lifecycle::IsSealed(rows[0].second));
  EXPECT_FALSE(absl::StrContains(rows[0].second, kMarker));
  EXPECT_FALSE(absl::StrContains(rows[0].second, "PersonRectified"));
  // In the clear: a lifecycle event, an event naming two persons, one
  // naming nobody.
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].first, "NULL") << i;
    Event e;
    EXPECT_TRUE(e.ParseFromString(rows[i].second)) << i;
  }

  ASSERT_TRUE(storage::RunInTransaction(
                  db(),
                  [&](storage::Transaction& tx) -> absl::Status {
                    auto seq = tx.Query("SELECT MIN(seq) FROM event_outbox");
                    if (!seq.ok()) return seq.status();
                    auto event = ReadOutboxEvent(tx, *(*seq)[0].GetInt(0));
                    if (!event.ok()) return event.status();
                    EXPECT_EQ(Text(*event), kMarker);
                    EXPECT_EQ(event->ordering_key(), "persons/p1");
                    EXPECT_EQ(ReadOutboxEvent(tx, 999).status().code(),
                              absl::StatusCode::kNotFound);
                    return absl::OkStatus();
                  })
                  .ok());
}

TEST_P(OutboxSealingTest, RelaySendsTheOpenedEventAndAuditsIt) {
  ASSERT_TRUE(Enqueue({Rectified("persons/p1", kMarker)}).ok());
  RecordingSender sender;
  RelayOptions options;
  options.destination = "cases";
  OutboxRelay relay(db(), sender, options);
  absl::StatusOr<int> n = relay.DeliverPendingOnce();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_THAT(sender.sent, ElementsAre(kMarker));
  auto audit = audit::ListAuditForResource(db(), "persons/p1");
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].operation, "event:lotse.identity.v1.PersonRectified");
}

TEST_P(OutboxSealingTest, ShreddedEventIsSkippedAndOthersFlow) {
  ASSERT_TRUE(Enqueue({Rectified("persons/p1", "first of p1"),
                       Rectified("persons/p2", "first of p2")})
                  .ok());
  ASSERT_TRUE(Shred("p1").ok());
  // Nothing new is sealed for the erased person...
  absl::Status refused = Enqueue({Rectified("persons/p1", "late")});
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(refused), "PERSON_ERASED");
  // ...but ids-only events of the same ordering key still go out.
  ASSERT_TRUE(
      Enqueue({Erased("persons/p1"), Rectified("persons/p2", "second of p2")})
          .ok());

  RecordingSender sender;
  RelayOptions options;
  options.destination = "courses";
  OutboxRelay relay(db(), sender, options);
  absl::StatusOr<int> n = relay.DeliverPendingOnce();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 3);
  EXPECT_THAT(sender.sent,
              ElementsAre("first of p2", "erased persons/p1", "second of p2"));
  EXPECT_EQ(relay.stats().shredded, 1);
  EXPECT_EQ(relay.stats().failed_attempts, 0);

  // The skipped event is settled, says why, and the next cycle sends
  // nothing again.
  ASSERT_TRUE(storage::RunInTransaction(
                  db(),
                  [&](storage::Transaction& tx) -> absl::Status {
                    auto rows = tx.Query(
                        "SELECT last_error FROM event_outbox_delivery "
                        "WHERE delivered_at IS NULL OR last_error IS NOT NULL");
                    if (!rows.ok()) return rows.status();
                    EXPECT_EQ(rows->size(), 1u);
                    if (rows->size() == 1) {
                      EXPECT_EQ((*rows)[0].GetText(0).value_or(""),
                                kShreddedError);
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  n = relay.DeliverPendingOnce();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(sender.sent.size(), 3u);
  // Nothing was disclosed about the erased person by the skipped event.
  auto audit = audit::ListAuditForResource(db(), "persons/p1");
  ASSERT_TRUE(audit.ok());
  EXPECT_THAT(*audit, IsEmpty());
}

TEST_P(OutboxSealingTest, AlteredSealedPayloadHoldsItsKeyBack) {
  ASSERT_TRUE(
      Enqueue({Rectified("persons/p1", "a"), Rectified("persons/p1", "b"),
               Rectified("persons/p2", "c")})
          .ok());
  // Swap the first two payloads: each is bound to its own event.
  ASSERT_TRUE(
      storage::RunInTransaction(
          db(),
          [&](storage::Transaction& tx) -> absl::Status {
            auto rows =
                tx.Query("SELECT seq, payload FROM event_outbox ORDER BY seq");
            if (!rows.ok()) return rows.status();
            const int64_t s0 = *(*rows)[0].GetInt(0);
            const int64_t s1 = *(*rows)[1].GetInt(0);
            auto p0 = (*rows)[0].GetBytes(1);
            auto p1 = (*rows)[1].GetBytes(1);
            auto a = tx.Execute(
                "UPDATE event_outbox SET payload = $1 WHERE seq = $2",
                {storage::Value(storage::Bytes{*p1}), storage::Value(s0)});
            if (!a.ok()) return a.status();
            return tx
                .Execute(
                    "UPDATE event_outbox SET payload = $1 WHERE seq = $2",
                    {storage::Value(storage::Bytes{*p0}), storage::Value(s1)})
                .status();
          })
          .ok());
  RecordingSender sender;
  RelayOptions options;
  options.destination = "courses";
  options.backoff_initial = absl::Minutes(1);
  OutboxRelay relay(db(), sender, options);
  ASSERT_TRUE(relay.DeliverPendingOnce().ok());
  EXPECT_THAT(sender.sent, ElementsAre("c"));
  EXPECT_EQ(relay.stats().failed_attempts, 1);
  EXPECT_EQ(relay.stats().shredded, 0);
}

TEST_P(OutboxSealingTest, UnreadablePayloadOfAKnownTypeIsRefused) {
  Event e;
  e.set_ordering_key("persons/p1");
  e.mutable_payload()->set_type_url(
      "type.googleapis.com/lotse.identity.v1.PersonRectified");
  e.mutable_payload()->set_value("\xff\xff\xff");
  EXPECT_EQ(Enqueue({e}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Rows(), IsEmpty());
}

TEST_P(OutboxSealingTest, EventsWrittenBeforeSealingStillGoOut) {
  // A database whose outbox predates the person column.
  auto old_db = lotse::testing::NewTestDatabase(dialect());
  ASSERT_TRUE(old_db.ok()) << old_db.status();
  storage::Database& db2 = **old_db;
  std::vector<storage::Migration> first = {OutboxMigrations().front()};
  ASSERT_TRUE(storage::ApplyMigrations(db2, first).ok());
  Event plain = Rectified("persons/p1", "from before");
  plain.set_event_id("e-old");
  std::string bytes;
  ASSERT_TRUE(plain.SerializeToString(&bytes));
  ASSERT_TRUE(storage::RunInTransaction(db2, [&](storage::Transaction& tx) {
                return tx
                    .Execute(
                        "INSERT INTO event_outbox (event_id, ordering_key, "
                        "payload, created_at) VALUES ('e-old', 'persons/p1', "
                        "$1, 0)",
                        {storage::Value(storage::Bytes{bytes})})
                    .status();
              }).ok());
  std::vector<storage::Migration> all = OutboxMigrations();
  for (auto& a : audit::AuditMigrations()) all.push_back(a);
  ASSERT_TRUE(storage::ApplyMigrations(db2, all).ok());
  ASSERT_TRUE(storage::RunInTransaction(db2, [&](storage::Transaction& tx) {
                return EnqueueEvent(tx, Rectified("persons/p1", "after"));
              }).ok());

  RecordingSender sender;
  RelayOptions options;
  options.destination = "cases";
  OutboxRelay relay(db2, sender, options);
  ASSERT_TRUE(relay.DeliverPendingOnce().ok());
  EXPECT_THAT(sender.sent, ElementsAre("from before", "after"));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(OutboxSealingTest);

}  // namespace
}  // namespace lotse::events
