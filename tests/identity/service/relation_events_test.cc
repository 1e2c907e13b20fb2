// Relations that identity learns from the events of cases, courses and
// placement (relation_events.h), on SQLite and PostgreSQL.
#include "services/identity/service/relation_events.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/events/inbox.h"
#include "common/storage/migrations.h"
#include "gmock/gmock.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "lotse/cases/v1/events.pb.h"
#include "lotse/courses/v1/events.pb.h"
#include "lotse/placement/v1/events.pb.h"
#include "services/identity/store/migrations.h"
#include "services/identity/store/relation_store.h"
#include "tests/support/test_database.h"

namespace lotse::identity {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Person ids are 26 characters of [a-z2-7].
constexpr char kAnna[] = "aaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kBoris[] = "bbbbbbbbbbbbbbbbbbbbbbbbbb";

std::string P(const char* id) { return std::string("persons/") + id; }

// A fresh event id per call, across payload types.
std::string NextEventId() {
  static int n = 0;
  return "relation-test-" + std::to_string(++n);
}

template <typename M>
lotse::events::v1::Event EventOf(const M& payload) {
  lotse::events::v1::Event event;
  event.set_event_id(NextEventId());
  event.set_source("test");
  event.mutable_payload()->PackFrom(payload);
  return event;
}

class RelationEventsTest : public lotse::testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(storage::ApplyMigrations(db(), IdentityMigrations()).ok());
  }

  template <typename M>
  absl::Status Deliver(const M& payload) {
    absl::StatusOr<bool> applied =
        events::ApplyEventOnce(db(), EventOf(payload), ApplyRelationEvent);
    return applied.status();
  }

  std::vector<Relation> Between(const char* person, const std::string& agency) {
    std::vector<Relation> out;
    EXPECT_TRUE(storage::RunInTransaction(
                    db(),
                    [&](storage::Transaction& tx) -> absl::Status {
                      auto r = RelationsBetween(tx, person, agency);
                      if (!r.ok()) return r.status();
                      out = *r;
                      return absl::OkStatus();
                    },
                    storage::TxMode::kReadOnly)
                    .ok());
    return out;
  }

  std::vector<std::string> RelatedTo(const std::string& agency) {
    std::vector<std::string> out;
    EXPECT_TRUE(storage::RunInTransaction(
                    db(),
                    [&](storage::Transaction& tx) -> absl::Status {
                      auto r = PersonsRelatedTo(tx, agency, "", 10);
                      if (!r.ok()) return r.status();
                      out = *r;
                      return absl::OkStatus();
                    },
                    storage::TxMode::kReadOnly)
                    .ok());
    return out;
  }
};

TEST_P(RelationEventsTest, CaseLifeCycleGrantsAndEndsRelations) {
  lotse::cases::v1::CaseOpened opened;
  opened.set_case_name("cases/c1");
  opened.set_person(P(kAnna));
  opened.set_owner_agency("agencies/kim-koeln");
  ASSERT_TRUE(Deliver(opened).ok());
  EXPECT_THAT(Between(kAnna, "kim-koeln"), ElementsAre(Relation::kCaseOwner));

  lotse::cases::v1::StepReferred referred;
  referred.set_step("cases/c1/steps/s1");
  referred.set_case_name("cases/c1");
  referred.set_person(P(kAnna));
  referred.set_receiving_agency("agencies/jobcenter-koeln");
  referred.set_referring_agency("agencies/kim-koeln");
  ASSERT_TRUE(Deliver(referred).ok());
  EXPECT_THAT(Between(kAnna, "jobcenter-koeln"),
              ElementsAre(Relation::kCaseParticipant));

  lotse::cases::v1::CaseTransferred moved;
  moved.set_case_name("cases/c1");
  moved.set_person(P(kAnna));
  moved.set_from_agency("agencies/kim-koeln");
  moved.set_to_agency("agencies/kim-bonn");
  ASSERT_TRUE(Deliver(moved).ok());
  EXPECT_THAT(Between(kAnna, "kim-koeln"), IsEmpty());
  EXPECT_THAT(Between(kAnna, "kim-bonn"), ElementsAre(Relation::kCaseOwner));
  EXPECT_THAT(Between(kAnna, "jobcenter-koeln"),
              ElementsAre(Relation::kCaseParticipant));

  lotse::cases::v1::CaseClosed closed;
  closed.set_case_name("cases/c1");
  closed.set_person(P(kAnna));
  ASSERT_TRUE(Deliver(closed).ok());
  EXPECT_THAT(Between(kAnna, "kim-bonn"), IsEmpty());
  EXPECT_THAT(Between(kAnna, "jobcenter-koeln"), IsEmpty());
}

TEST_P(RelationEventsTest, CasePersonCorrectionMovesOnlyThatCase) {
  for (const char* c : {"cases/c1", "cases/c2"}) {
    lotse::cases::v1::CaseOpened opened;
    opened.set_case_name(c);
    opened.set_person(P(kAnna));
    opened.set_owner_agency("agencies/kim-koeln");
    ASSERT_TRUE(Deliver(opened).ok());
  }
  lotse::cases::v1::CasePersonChanged changed;
  changed.set_case_name("cases/c2");
  changed.set_from_person(P(kAnna));
  changed.set_to_person(P(kBoris));
  ASSERT_TRUE(Deliver(changed).ok());
  EXPECT_THAT(Between(kAnna, "kim-koeln"), ElementsAre(Relation::kCaseOwner));
  EXPECT_THAT(Between(kBoris, "kim-koeln"), ElementsAre(Relation::kCaseOwner));
  EXPECT_THAT(RelatedTo("kim-koeln"), ElementsAre(kAnna, kBoris));

  lotse::cases::v1::CaseClosed closed;
  closed.set_case_name("cases/c1");
  ASSERT_TRUE(Deliver(closed).ok());
  EXPECT_THAT(RelatedTo("kim-koeln"), ElementsAre(kBoris));
}

TEST_P(RelationEventsTest, BookingsEntitlementsAndPlacementsServeThePerson) {
  lotse::courses::v1::CourseBooked booked;
  booked.mutable_context()->set_booking("courses/k1/bookings/b1");
  booked.mutable_context()->set_course("courses/k1");
  booked.mutable_context()->set_person(P(kAnna));
  booked.mutable_context()->set_provider_agency("agencies/vhs-koeln");
  booked.mutable_context()->set_booking_agency("agencies/jobcenter-koeln");
  ASSERT_TRUE(Deliver(booked).ok());
  EXPECT_THAT(Between(kAnna, "vhs-koeln"),
              ElementsAre(Relation::kServesPerson));
  EXPECT_THAT(Between(kAnna, "jobcenter-koeln"),
              ElementsAre(Relation::kServesPerson));

  lotse::courses::v1::EntitlementRecorded entitled;
  entitled.set_entitlement("entitlements/e1");
  entitled.set_person(P(kAnna));
  entitled.set_issuing_agency("agencies/bamf-nuernberg");
  ASSERT_TRUE(Deliver(entitled).ok());
  EXPECT_THAT(Between(kAnna, "bamf-nuernberg"),
              ElementsAre(Relation::kServesPerson));

  lotse::placement::v1::PlacementProposed proposed;
  proposed.mutable_context()->set_placement("placements/p1");
  proposed.mutable_context()->set_person(P(kBoris));
  proposed.mutable_context()->set_proposing_agency("agencies/aa-koeln");
  ASSERT_TRUE(Deliver(proposed).ok());
  EXPECT_THAT(Between(kBoris, "aa-koeln"),
              ElementsAre(Relation::kServesPerson));

  // A seat from the waitlist is a booking too; it ends with its hold.
  lotse::courses::v1::WaitlistPromoted promoted;
  promoted.set_waitlist_entry("courses/k2/waitlistEntries/w1");
  *promoted.mutable_context() = booked.context();
  promoted.mutable_context()->set_booking("courses/k2/bookings/b2");
  promoted.mutable_context()->set_course("courses/k2");
  promoted.mutable_context()->set_person(P(kBoris));
  promoted.mutable_context()->set_provider_agency("agencies/caritas-koeln");
  ASSERT_TRUE(Deliver(promoted).ok());
  EXPECT_THAT(Between(kBoris, "caritas-koeln"),
              ElementsAre(Relation::kServesPerson));
  lotse::courses::v1::BookingHoldExpired expired;
  *expired.mutable_context() = promoted.context();
  ASSERT_TRUE(Deliver(expired).ok());
  EXPECT_THAT(Between(kBoris, "caritas-koeln"), IsEmpty());

  lotse::courses::v1::BookingCancelled cancelled;
  *cancelled.mutable_context() = booked.context();
  ASSERT_TRUE(Deliver(cancelled).ok());
  EXPECT_THAT(Between(kAnna, "vhs-koeln"), IsEmpty());
  EXPECT_THAT(Between(kAnna, "jobcenter-koeln"), IsEmpty());

  lotse::courses::v1::EntitlementRevoked revoked;
  revoked.set_entitlement("entitlements/e1");
  revoked.set_person(P(kAnna));
  revoked.set_issuing_agency("agencies/bamf-nuernberg");
  ASSERT_TRUE(Deliver(revoked).ok());
  EXPECT_THAT(Between(kAnna, "bamf-nuernberg"), IsEmpty());
}

TEST_P(RelationEventsTest, MalformedNamesAreRefusedAndStoreNothing) {
  lotse::cases::v1::CaseOpened opened;
  opened.set_case_name("cases/c1");
  opened.set_person("persons/not-an-id");
  opened.set_owner_agency("kim-koeln");  // not a resource name
  absl::Status s = Deliver(opened);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(RelatedTo("kim-koeln"), IsEmpty());
}

TEST_P(RelationEventsTest, EventsIdentityDoesNotConsumeAreIgnored) {
  google::protobuf::StringValue other;
  other.set_value("something else");
  EXPECT_TRUE(Deliver(other).ok());
  lotse::cases::v1::IntegrationPlanUpdated plan;
  plan.set_case_name("cases/c1");
  plan.set_person(P(kAnna));
  EXPECT_TRUE(Deliver(plan).ok());
}

TEST_P(RelationEventsTest, MergeMovesRelationsWithoutDuplicates) {
  for (const char* person : {kAnna, kBoris}) {
    lotse::cases::v1::CaseOpened opened;
    opened.set_case_name(std::string("cases/of-") + person[0]);
    opened.set_person(P(person));
    opened.set_owner_agency("agencies/kim-koeln");
    ASSERT_TRUE(Deliver(opened).ok());
  }
  ASSERT_TRUE(storage::RunInTransaction(db(), [](storage::Transaction& tx) {
                return MoveRelations(tx, kBoris, kAnna);
              }).ok());
  EXPECT_THAT(RelatedTo("kim-koeln"), ElementsAre(kAnna));
  EXPECT_THAT(Between(kAnna, "kim-koeln"), ElementsAre(Relation::kCaseOwner));
  // Both cases' relations survive: closing one leaves the other.
  lotse::cases::v1::CaseClosed closed;
  closed.set_case_name("cases/of-a");
  ASSERT_TRUE(Deliver(closed).ok());
  EXPECT_THAT(Between(kAnna, "kim-koeln"), ElementsAre(Relation::kCaseOwner));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(RelationEventsTest);

}  // namespace
}  // namespace lotse::identity
