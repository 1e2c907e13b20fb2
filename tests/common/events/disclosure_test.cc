// Disclosure by event: the table of person-naming payloads (checked against
// the events contracts) and the relay's audit record of every delivery of
// one, on both backends.
#include "common/events/disclosure.h"

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/audit/audit_log.h"
#include "common/events/outbox.h"
#include "common/events/relay.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/events.pb.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/placement/v1/events.pb.h"
#include "tests/common/events/event_test_util.h"
#include "tests/support/test_database.h"

namespace lotse::events {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::FileDescriptor;
using ::lotse::events::v1::Event;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Every string field path below `d` whose name says it holds a person
// ("person", "survivor", "merged", "*_person").
void PersonPaths(const Descriptor* d, const std::string& prefix,
                 std::set<std::string>* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string path = prefix + f->name();
    if (f->type() == FieldDescriptor::TYPE_MESSAGE && !f->is_repeated() &&
        f->message_type()->file()->package().rfind("lotse.", 0) == 0) {
      PersonPaths(f->message_type(), path + ".", out);
    } else if (f->type() == FieldDescriptor::TYPE_STRING &&
               (f->name() == "person" || f->name() == "survivor" ||
                f->name() == "merged" ||
                absl::EndsWith(f->name(), "_person"))) {
      out->insert(path);
    }
  }
}

TEST(DisclosureRulesTest, CoverEveryPersonFieldOfTheEventsContracts) {
  // Messages of the events files that are parts of events, not events.
  const std::set<std::string> parts = {"lotse.courses.v1.BookingContext",
                                       "lotse.placement.v1.PlacementContext"};
  // The lifecycle events name a person by id only; every other event that
  // names a person carries data of some category of theirs.
  const std::set<std::string> ids_only = {
      "lotse.identity.v1.PersonErased", "lotse.identity.v1.ErasureReported",
      "lotse.identity.v1.LegalHoldPlaced",
      "lotse.identity.v1.LegalHoldReleased"};
  std::map<std::string, std::set<std::string>> table;
  for (const DisclosureRule& r : DisclosureRules()) {
    ASSERT_NE(r.prototype, nullptr);
    const std::string& name = r.prototype->GetDescriptor()->full_name();
    auto& paths = table[name];
    paths.insert(r.person_fields.begin(), r.person_fields.end());
    EXPECT_EQ(r.categories.empty(), ids_only.count(name) > 0) << name;
  }
  for (const std::string& name : ids_only) {
    EXPECT_EQ(table.count(name), 1u) << name << " is not in the table";
  }
  for (const FileDescriptor* file :
       {lotse::identity::v1::PersonMerged::descriptor()->file(),
        lotse::cases::v1::CaseOpened::descriptor()->file(),
        lotse::courses::v1::CourseBooked::descriptor()->file(),
        lotse::placement::v1::PlacementProposed::descriptor()->file()}) {
    for (int i = 0; i < file->message_type_count(); ++i) {
      const Descriptor* d = file->message_type(i);
      if (parts.count(d->full_name()) > 0) continue;
      std::set<std::string> paths;
      PersonPaths(d, "", &paths);
      auto it = table.find(d->full_name());
      if (paths.empty()) {
        EXPECT_TRUE(it == table.end())
            << d->full_name() << " names no person but is in the table";
      } else {
        ASSERT_TRUE(it != table.end())
            << d->full_name() << " names a person but is not in the table";
        EXPECT_EQ(it->second, paths) << d->full_name();
      }
    }
  }
}

Event EventOf(const google::protobuf::Message& payload,
              const std::string& key) {
  Event e;
  e.set_ordering_key(key);
  e.set_source("test");
  e.mutable_payload()->PackFrom(payload);
  return e;
}

TEST(DisclosureOfTest, NamesThePersonsAndCategoriesOfAPayload) {
  lotse::courses::v1::CourseResultRecorded result;
  result.mutable_context()->set_person("persons/p1");
  absl::StatusOr<Disclosure> d = DisclosureOf(EventOf(result, "persons/p1"));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->payload_type, "lotse.courses.v1.CourseResultRecorded");
  EXPECT_THAT(d->persons, ElementsAre("persons/p1"));
  EXPECT_THAT(d->categories, ElementsAre("LANGUAGE"));

  lotse::identity::v1::PersonMerged merged;
  merged.set_survivor("persons/s");
  merged.set_merged("persons/m");
  d = DisclosureOf(EventOf(merged, "persons/s"));
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->persons, ElementsAre("persons/s", "persons/m"));
}

TEST(DisclosureOfTest, LifecycleEventsNameThePersonWithoutCategories) {
  lotse::identity::v1::LegalHoldPlaced placed;
  placed.mutable_hold()->set_subject("cases/c1");
  placed.mutable_hold()->set_person("persons/p1");
  absl::StatusOr<Disclosure> d = DisclosureOf(EventOf(placed, "persons/p1"));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->persons, ElementsAre("persons/p1"));
  EXPECT_THAT(d->categories, IsEmpty());

  lotse::identity::v1::PersonRectified rectified;
  rectified.set_person("persons/p1");
  rectified.add_changed_fields("family_name");
  d = DisclosureOf(EventOf(rectified, "persons/p1"));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(d->categories, ElementsAre("CORE_IDENTITY"));
}

TEST(DisclosureOfTest, EventsWithoutAPersonDiscloseNothing) {
  lotse::identity::v1::AgencyRegistered agency;
  absl::StatusOr<Disclosure> d = DisclosureOf(EventOf(agency, "agencies/a"));
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->persons, IsEmpty());
  // A person-naming type with the field left empty names nobody.
  d = DisclosureOf(EventOf(lotse::courses::v1::CourseBooked(), "x"));
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->persons, IsEmpty());
}

TEST(DisclosureOfTest, AnUnreadablePayloadIsDataLoss) {
  Event e;
  e.mutable_payload()->set_type_url(
      "type.googleapis.com/lotse.cases.v1.CaseOpened");
  e.mutable_payload()->set_value("\xff\xff\xff");
  EXPECT_EQ(DisclosureOf(e).status().code(), absl::StatusCode::kDataLoss);
}

class RelayDisclosureTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    std::vector<storage::Migration> m = OutboxMigrations();
    for (auto& a : audit::AuditMigrations()) m.push_back(a);
    ASSERT_TRUE(storage::ApplyMigrations(db(), m).ok());
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

  std::vector<audit::AuditRecord> AuditOf(const std::string& resource) {
    auto rows = audit::ListAuditForResource(db(), resource);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<audit::AuditRecord>();
  }
};

TEST_P(RelayDisclosureTest, EveryDeliveryOfPersonDataIsAudited) {
  lotse::courses::v1::CourseResultRecorded result;
  result.mutable_context()->set_person("persons/p1");
  Enqueue({EventOf(result, "persons/p1"),
           EventOf(lotse::identity::v1::AgencyRegistered(), "agencies/a")});
  testutil::FakeSender sender;
  RelayOptions options;
  options.destination = "placement";
  OutboxRelay relay(db(), sender, options);
  absl::StatusOr<int> delivered = relay.DeliverPendingOnce();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 2);

  std::vector<audit::AuditRecord> records = AuditOf("persons/p1");
  ASSERT_EQ(records.size(), 1u);
  const audit::AuditRecord& r = records[0];
  EXPECT_EQ(r.operation, "event:lotse.courses.v1.CourseResultRecorded");
  EXPECT_EQ(r.agency_id, "placement");
  EXPECT_EQ(r.legal_domain, "SERVICE");
  EXPECT_EQ(r.resource, "persons/p1");
  EXPECT_THAT(r.data_categories, ElementsAre("LANGUAGE"));
  EXPECT_EQ(r.outcome, audit::Outcome::kAllowed);
  // The event about an agency disclosed nobody's data.
  absl::StatusOr<audit::AuditHead> head = audit::ReadAuditHead(db());
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 1);
  // The chain stays intact.
  absl::StatusOr<audit::VerifyReport> verified = audit::VerifyAuditChain(db());
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->intact) << verified->problem;
}

TEST_P(RelayDisclosureTest, DeliveringALifecycleEventIsNoDisclosure) {
  lotse::identity::v1::PersonErased erased;
  erased.set_person("persons/p4");
  erased.set_requesting_agency("agencies/kommune");
  Enqueue({EventOf(erased, "persons/p4")});
  testutil::FakeSender sender;
  RelayOptions options;
  options.destination = "courses";
  OutboxRelay relay(db(), sender, options);
  absl::StatusOr<int> delivered = relay.DeliverPendingOnce();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 1);
  EXPECT_THAT(AuditOf("persons/p4"), IsEmpty());
}

TEST_P(RelayDisclosureTest, AFailedSendRecordsNothing) {
  lotse::cases::v1::CaseOpened opened;
  opened.set_person("persons/p2");
  Enqueue({EventOf(opened, "persons/p2")});
  testutil::FakeSender sender;
  std::atomic<int> calls{0};
  sender.set_respond([&](const Event&) {
    return ++calls == 1 ? absl::UnavailableError("down") : absl::OkStatus();
  });
  RelayOptions options;
  options.destination = "identity";
  options.backoff_initial = absl::Milliseconds(1);
  options.backoff_max = absl::Milliseconds(1);
  OutboxRelay relay(db(), sender, options);
  ASSERT_TRUE(relay.DeliverPendingOnce().ok());
  EXPECT_THAT(AuditOf("persons/p2"), IsEmpty());
  absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(relay.DeliverPendingOnce().ok());
  EXPECT_EQ(AuditOf("persons/p2").size(), 1u);
}

TEST_P(RelayDisclosureTest, DeliveryAloneWritesNoAudit) {
  lotse::cases::v1::CaseOpened opened;
  opened.set_person("persons/p3");
  Enqueue({EventOf(opened, "persons/p3")});
  testutil::FakeSender sender;
  RelayOptions options;
  options.destination = "identity";
  options.audit_disclosures = false;
  OutboxRelay relay(db(), sender, options);
  ASSERT_TRUE(relay.DeliverPendingOnce().ok());
  EXPECT_THAT(AuditOf("persons/p3"), IsEmpty());
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(RelayDisclosureTest);

}  // namespace
}  // namespace lotse::events
