// The courses tables on SQLite and PostgreSQL: round trips, the one-active-
// booking index, waitlist order, search candidates, the agency registry
// and merges.
#include "services/courses/store/course_store.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/api/names.h"
#include "common/storage/migrations.h"
#include "gtest/gtest.h"
#include "services/courses/domain/dates.h"
#include "services/courses/store/migrations.h"
#include "tests/support/test_database.h"

namespace lotse::courses {
namespace {

using ::lotse::storage::Transaction;

class CourseStoreTest : public testing::BothBackendsTest {
 protected:
  void SetUp() override {
    BothBackendsTest::SetUp();
    ASSERT_TRUE(storage::ApplyMigrations(db(), CoursesMigrations()).ok());
  }

  absl::Status Run(const std::function<absl::Status(Transaction&)>& body) {
    return storage::RunInTransaction(db(), body);
  }

  CourseRow Course(int start_day, const std::string& postal, int capacity) {
    CourseRow row;
    row.id = *api::NewId();
    row.course.set_provider_agency("agencies/vhs-koeln");
    row.course.set_kind(v1::COURSE_KIND_INTEGRATION_GENERAL);
    row.course.set_target_level(type::v1::CEFR_LEVEL_B1);
    row.course.mutable_place()->set_postal_code(postal);
    row.course.mutable_place()->set_municipality_code("05315000");
    *row.course.mutable_schedule()->mutable_start_date() =
        DateFromDay(start_day);
    row.course.mutable_schedule()->add_weekdays(type::v1::DAY_OF_WEEK_MONDAY);
    row.course.set_capacity(capacity);
    row.course.set_state(v1::COURSE_STATE_PLANNED);
    row.position = geo::PostalCodeCentre(postal);
    return row;
  }

  BookingRow Booking(const std::string& course, const std::string& person,
                     v1::BookingState state) {
    BookingRow b;
    b.id = *api::NewId();
    b.course_id = course;
    b.entitlement_id = "e";
    b.booking.set_person(person);
    b.booking.set_booking_agency("agencies/kim-koeln");
    b.booking.set_state(state);
    return b;
  }
};

TEST_P(CourseStoreTest, CourseRoundTripAndListOrder) {
  CourseRow late = Course(200, "50667", 5), early = Course(100, "53111", 5);
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return InsertCourse(tx, late); }).ok());
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return InsertCourse(tx, early); }).ok());
  ASSERT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                auto read = ReadCourse(tx, late.id);
                if (!read.ok()) return read.status();
                EXPECT_TRUE(read->has_value());
                EXPECT_EQ((*read)->course.place().postal_code(), "50667");
                EXPECT_TRUE((*read)->position.has_value());
                (*read)->course.set_booked_seats(5);
                ++(*read)->version;
                if (absl::Status s = WriteCourse(tx, **read); !s.ok()) return s;
                auto rows = ListCourseRows(tx, {}, 0, "", 10);
                if (!rows.ok()) return rows.status();
                EXPECT_EQ(rows->size(), 2u);
                EXPECT_EQ((*rows)[0].id, early.id);
                EXPECT_EQ((*rows)[1].course.booked_seats(), 5);
                EXPECT_EQ((*rows)[1].version, 2);
                return absl::OkStatus();
              }).ok());
  // The table refuses more bookings than seats.
  absl::Status over = Run([&](Transaction& tx) -> absl::Status {
    CourseRow row = late;
    row.course.set_booked_seats(6);
    return WriteCourse(tx, row);
  });
  EXPECT_FALSE(over.ok());
}

TEST_P(CourseStoreTest, SeatCountsAndUsedUnitsAreWrittenAlone) {
  CourseRow koeln = Course(100, "50667", 1);
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return InsertCourse(tx, koeln); }).ok());
  koeln.course.set_booked_seats(1);
  koeln.course.set_waitlist_length(3);
  koeln.version = 2;
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return WriteCourseSeats(tx, koeln); }).ok());
  ASSERT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                auto read = ReadCourse(tx, koeln.id);
                if (!read.ok()) return read.status();
                EXPECT_TRUE(read->has_value());
                if (!read->has_value()) return absl::OkStatus();
                EXPECT_EQ((*read)->course.booked_seats(), 1);
                EXPECT_EQ((*read)->course.waitlist_length(), 3);
                EXPECT_EQ((*read)->version, 2);
                // The search index sees the course full now.
                CourseSearch q;
                q.box = geo::BoxAround(*geo::PostalCodeCentre("50667"), 40);
                auto rows = SearchCourseCandidates(tx, q, 0, "", 10);
                if (!rows.ok()) return rows.status();
                EXPECT_EQ(rows->size(), 0u);
                CourseListFilter by_provider;
                by_provider.provider = "vhs-koeln";
                auto listed = ListCourseRows(tx, by_provider, 0, "", 10);
                if (!listed.ok()) return listed.status();
                EXPECT_EQ(listed->size(), 1u);
                return absl::OkStatus();
              }).ok());
  // The table still refuses more bookings than seats.
  CourseRow over = koeln;
  over.course.set_booked_seats(2);
  EXPECT_FALSE(
      Run([&](Transaction& tx) { return WriteCourseSeats(tx, over); }).ok());
  CourseRow missing = koeln;
  missing.id = *api::NewId();
  EXPECT_FALSE(
      Run([&](Transaction& tx) { return WriteCourseSeats(tx, missing); }).ok());

  EntitlementRow e;
  e.id = *api::NewId();
  e.version = 1;
  e.entitlement.set_person("persons/aaaaaaaaaaaaaaaaaaaaaaaaaa");
  e.entitlement.set_issuing_agency("agencies/bamf");
  e.entitlement.set_units(300);
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return InsertEntitlement(tx, e); }).ok());
  e.entitlement.set_units_used(100);
  e.version = 2;
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return WriteEntitlementUse(tx, e); }).ok());
  ASSERT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                auto read = ReadEntitlement(tx, e.id);
                if (!read.ok()) return read.status();
                EXPECT_TRUE(read->has_value());
                if (!read->has_value()) return absl::OkStatus();
                EXPECT_EQ((*read)->entitlement.units_used(), 100);
                EXPECT_EQ((*read)->version, 2);
                auto by_person = ListEntitlementRows(
                    tx, "persons/aaaaaaaaaaaaaaaaaaaaaaaaaa", "", 0, "", 10);
                if (!by_person.ok()) return by_person.status();
                EXPECT_EQ(by_person->size(), 1u);
                return absl::OkStatus();
              }).ok());
}

TEST_P(CourseStoreTest, OneActiveBookingPerPersonAndCourse) {
  const std::string person = "persons/aaaaaaaaaaaaaaaaaaaaaaaaaa";
  BookingRow first = Booking("c1", person, v1::BOOKING_STATE_HELD);
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return InsertBooking(tx, first); }).ok());
  absl::Status second = Run([&](Transaction& tx) {
    return InsertBooking(tx,
                         Booking("c1", person, v1::BOOKING_STATE_CONFIRMED));
  });
  EXPECT_EQ(second.code(), absl::StatusCode::kAlreadyExists);
  first.booking.set_state(v1::BOOKING_STATE_CANCELLED);
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return WriteBooking(tx, first); }).ok());
  EXPECT_TRUE(Run([&](Transaction& tx) {
                return InsertBooking(
                    tx, Booking("c1", person, v1::BOOKING_STATE_HELD));
              }).ok());
  EXPECT_TRUE(Run([&](Transaction& tx) {
                return InsertBooking(
                    tx, Booking("c2", person, v1::BOOKING_STATE_HELD));
              }).ok());
}

TEST_P(CourseStoreTest, WaitlistHeadIsTheFirstObligation) {
  std::vector<WaitlistRow> rows;
  for (int i = 0; i < 4; ++i) {
    WaitlistRow w;
    w.id = *api::NewId();
    w.course_id = "c1";
    w.seq = i + 1;
    w.entry.set_person(absl::StrCat("persons/p", i));
    w.entry.set_requesting_agency("agencies/kim-koeln");
    w.entry.set_state(v1::WAITLIST_ENTRY_STATE_WAITING);
    w.entry.set_priority(i == 2 ? v1::WAITLIST_PRIORITY_OBLIGATION
                                : v1::WAITLIST_PRIORITY_ADMISSION);
    rows.push_back(w);
    ASSERT_TRUE(
        Run([&](Transaction& tx) { return InsertWaitlist(tx, w); }).ok());
  }
  ASSERT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                auto head = WaitlistHead(tx, "c1");
                if (!head.ok()) return head.status();
                EXPECT_EQ((*head)->id, rows[2].id);
                auto pos = WaitlistPosition(tx, rows[1]);
                if (!pos.ok()) return pos.status();
                EXPECT_EQ(*pos, 3);
                auto seq = NextWaitlistSeq(tx, "c1");
                if (!seq.ok()) return seq.status();
                EXPECT_EQ(*seq, 5);
                auto listed = ListWaitlistRows(tx, "c1", "", {1}, 0, 0, "", 10);
                if (!listed.ok()) return listed.status();
                EXPECT_EQ(listed->size(), 4u);
                EXPECT_EQ((*listed)[0].id, rows[2].id);
                EXPECT_EQ((*listed)[1].id, rows[0].id);
                return absl::OkStatus();
              }).ok());
  // One WAITING entry per person and course.
  WaitlistRow dup = rows[0];
  dup.id = *api::NewId();
  EXPECT_EQ(
      Run([&](Transaction& tx) { return InsertWaitlist(tx, dup); }).code(),
      absl::StatusCode::kAlreadyExists);
}

TEST_P(CourseStoreTest, SearchCandidatesByBoxSeatsAndStart) {
  CourseRow koeln = Course(100, "50667", 2), bonn = Course(100, "53111", 2),
            berlin = Course(90, "10115", 2), full = Course(95, "50667", 1);
  full.course.set_booked_seats(1);
  for (CourseRow* r : {&koeln, &bonn, &berlin, &full}) {
    ASSERT_TRUE(
        Run([&](Transaction& tx) { return InsertCourse(tx, *r); }).ok());
  }
  ASSERT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                CourseSearch q;
                q.box = geo::BoxAround(*geo::PostalCodeCentre("50667"), 40);
                auto rows = SearchCourseCandidates(tx, q, 0, "", 10);
                if (!rows.ok()) return rows.status();
                EXPECT_EQ(rows->size(), 2u);  // not Berlin, not the full one
                q.include_full = true;
                rows = SearchCourseCandidates(tx, q, 0, "", 10);
                if (!rows.ok()) return rows.status();
                EXPECT_EQ(rows->size(), 3u);
                EXPECT_EQ((*rows)[0].id, full.id);  // earliest start first
                CourseSearch later;
                later.start_min = 96;
                rows = SearchCourseCandidates(tx, later, 0, "", 10);
                if (!rows.ok()) return rows.status();
                EXPECT_EQ(rows->size(), 2u);
                return absl::OkStatus();
              }).ok());
}

// A database migrated before the registry moved to common/agencies keeps
// the agencies it had learned.
TEST_P(CourseStoreTest, AgenciesLearnedBeforeTheRegistryMovedAreKept) {
  absl::StatusOr<std::unique_ptr<storage::Database>> old =
      testing::NewTestDatabase(GetParam());
  ASSERT_TRUE(old.ok()) << old.status();
  std::vector<storage::Migration> before;
  for (const storage::Migration& m : CoursesMigrations()) {
    if (m.id == "common.agencies.0001_init") break;
    before.push_back(m);
  }
  ASSERT_TRUE(storage::ApplyMigrations(**old, before).ok());
  ASSERT_TRUE(storage::RunInTransaction(**old, [](Transaction& tx) {
                return tx
                    .Execute(
                        "INSERT INTO course_agencies (id, "
                        "certificate_identity, legal_domain, suspended, "
                        "update_us) VALUES ('vhs-bonn', 'vhs-bonn-cert', "
                        "'KURSTRAEGER', 0, 42)")
                    .status();
              }).ok());
  ASSERT_TRUE(storage::ApplyMigrations(**old, CoursesMigrations()).ok());
  ASSERT_TRUE(storage::RunInTransaction(**old, [](Transaction& tx) {
                auto found = FindAgencyByCertificate(tx, "vhs-bonn-cert");
                EXPECT_TRUE(found.ok() && found->has_value());
                if (found.ok() && found->has_value()) {
                  EXPECT_EQ((*found)->id, "vhs-bonn");
                  EXPECT_EQ((*found)->legal_domain, "KURSTRAEGER");
                  EXPECT_EQ((*found)->update_us, 42);
                }
                return absl::OkStatus();
              }).ok());
}

TEST_P(CourseStoreTest, AgencyRegistryKeepsTheNewestAndMergesChain) {
  agencies::LocalAgency a{"vhs-koeln", "KURSTRAEGER", "",
                          "vhs-koeln", false,         10};
  ASSERT_TRUE(Run([&](Transaction& tx) { return UpsertAgency(tx, a); }).ok());
  agencies::LocalAgency older = a;
  older.suspended = true;
  older.update_us = 5;
  ASSERT_TRUE(
      Run([&](Transaction& tx) { return UpsertAgency(tx, older); }).ok());
  ASSERT_TRUE(Run([&](Transaction& tx) -> absl::Status {
                auto found = FindAgencyByCertificate(tx, "vhs-koeln");
                if (!found.ok()) return found.status();
                EXPECT_TRUE(found->has_value());
                EXPECT_FALSE((*found)->suspended);
                if (absl::Status s = RecordMerge(tx, "persons/a", "persons/b");
                    !s.ok()) {
                  return s;
                }
                if (absl::Status s = RecordMerge(tx, "persons/b", "persons/c");
                    !s.ok()) {
                  return s;
                }
                auto survivor = ResolveMerged(tx, "persons/a");
                if (!survivor.ok()) return survivor.status();
                EXPECT_EQ(*survivor, "persons/c");
                return absl::OkStatus();
              }).ok());
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(CourseStoreTest);

}  // namespace
}  // namespace lotse::courses
