// The courses service's share of the data lifecycle, on SQLite and
// PostgreSQL: identity's PersonErased through the event handler (records
// erased or anonymised, seat counts and occupancy unchanged, kept-by-rule
// records reported and still readable by their owners), events about an
// erased person dropped, legal holds, and the purge tasks (due, not due,
// held).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/events/outbox.h"
#include "common/lifecycle/erasure.h"
#include "common/lifecycle/purge.h"
#include "common/lifecycle/retention.h"
#include "gtest/gtest.h"
#include "lotse/identity/v1/events.pb.h"
#include "lotse/identity/v1/lifecycle.pb.h"
#include "tests/courses/service/courses_server_fixture.h"

namespace lotse::courses {
namespace {

using ::lotse::identity::v1::ErasureReported;
using ::lotse::identity::v1::ServiceErasure;

// The courses lines of config/retention.conf.
constexpr char kRules[] = R"(
retain booking category=LANGUAGE keep=2y from=END basis="bookings"
retain waitlist-entry category=LANGUAGE keep=1y from=END basis="waitlist"
retain attendance category=LANGUAGE keep=5y from=END erasure=keep basis="IntV 14"
retain course-result category=LANGUAGE keep=5y from=CREATE erasure=keep basis="IntV 17"
retain entitlement category=LANGUAGE keep=2y from=END basis="entitlements"
)";

class LifecycleTest : public CoursesServerTest {
 protected:
  void SetUp() override {
    CoursesServerTest::SetUp();
    if (HasFatalFailure()) return;
    absl::StatusOr<lifecycle::RetentionRules> rules =
        lifecycle::RetentionRules::Parse(kRules);
    ASSERT_TRUE(rules.ok()) << rules.status();
    rules_ = *std::move(rules);
    runtime_.retention = &rules_;
  }

  absl::StatusOr<bool> Deliver(const google::protobuf::Message& payload) {
    lotse::events::v1::Event event;
    event.set_event_id(absl::StrCat("identity-", ++event_counter_));
    event.set_source("identity");
    event.mutable_payload()->PackFrom(payload);
    return events::ApplyEventOnce(db(), event, service_->EventHandler());
  }

  absl::StatusOr<bool> Erase(const std::string& person) {
    identity::v1::PersonErased erased;
    erased.set_person(person);
    erased.set_requesting_agency("agencies/kim-koeln");
    return Deliver(erased);
  }

  absl::Status Hold(const std::string& person) {
    identity::v1::LegalHoldPlaced placed;
    identity::v1::LegalHold* hold = placed.mutable_hold();
    hold->set_name(absl::StrCat("legalHolds/h", ++event_counter_));
    hold->set_subject(person);
    hold->set_person(person);
    hold->set_reason("court case");
    *hold->mutable_end_date() = InDays(3650);
    return Deliver(placed).status();
  }

  // The ErasureReported events in the outbox (lifecycle events are not
  // sealed, so they read as they were written).
  std::vector<ErasureReported> Reports() {
    std::vector<ErasureReported> out;
    for (int64_t seq = 1;
         seq <= Count("SELECT COALESCE(MAX(seq), 0) FROM event_outbox");
         ++seq) {
      auto tx = db().Begin(storage::TxMode::kReadOnly);
      EXPECT_TRUE(tx.ok());
      if (!tx.ok()) return out;
      absl::StatusOr<lotse::events::v1::Event> e =
          events::ReadOutboxEvent(**tx, seq);
      if (!e.ok()) continue;  // sealed under a shredded key, or no row
      ErasureReported r;
      if (e->payload().UnpackTo(&r)) out.push_back(r);
    }
    return out;
  }

  grpc::Status Join(const std::string& course, const std::string& person,
                    v1::WaitlistEntry* out) {
    v1::JoinWaitlistRequest request;
    request.set_parent(course);
    request.set_request_id(absl::StrCat("join-", ++request_counter_));
    request.mutable_waitlist_entry()->set_person(person);
    auto ctx = Ctx();
    return As("kim-koeln")->JoinWaitlist(ctx.get(), request, out);
  }

  int Position(const std::string& entry) {
    v1::GetWaitlistEntryRequest request;
    request.set_name(entry);
    v1::WaitlistEntry out;
    auto ctx = Ctx();
    grpc::Status s =
        As("kim-koeln")->GetWaitlistEntry(ctx.get(), request, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.position();
  }

  grpc::StatusCode GetBookingCode(const std::string& as,
                                  const std::string& name) {
    v1::GetBookingRequest request;
    request.set_name(name);
    v1::Booking out;
    auto ctx = Ctx();
    return As(as)->GetBooking(ctx.get(), request, &out).error_code();
  }

  // Runs one batch of the purge task of `kind` at `now`, with the rule's
  // cutoff.
  lifecycle::PurgeBatch Purge(const std::string& kind, absl::Time now) {
    lifecycle::PurgeBatch batch;
    for (const lifecycle::PurgeTask& task : CoursesPurgeTasks()) {
      if (task.kind != kind) continue;
      const absl::Time cutoff = rules_.Find(kind)->Cutoff(now);
      absl::Status s = storage::RunInTransaction(
          db(), [&](storage::Transaction& tx) -> absl::Status {
            absl::StatusOr<lifecycle::PurgeBatch> b =
                task.run(tx, cutoff, now, 100);
            if (!b.ok()) return b.status();
            batch = *b;
            return absl::OkStatus();
          });
      EXPECT_TRUE(s.ok()) << s;
    }
    return batch;
  }

  lifecycle::RetentionRules rules_;
  int event_counter_ = 0;
};

TEST_P(LifecycleTest, ErasureKeepsSeatsAndTheWaitlistOrderOfOthers) {
  identity_->Allow("agencies/kim-koeln", type::v1::DATA_CATEGORY_LANGUAGE);
  v1::Course full = CreateCourse(ValidCourse(2));
  const std::string gone = NewPerson(), other = NewPerson();
  const std::string first = NewPerson(), last = NewPerson();
  const v1::Entitlement gone_entitlement =
      Entitle(gone, /*obligation=*/false, /*units=*/1500);
  Entitle(other);
  Entitle(first);
  Entitle(last);
  v1::Booking gone_booking, other_booking;
  ASSERT_TRUE(Book("kim-koeln", full.name(), gone, &gone_booking).ok());
  ASSERT_TRUE(Book("kim-koeln", full.name(), other, &other_booking).ok());
  // A second course, full, with the person between two others on its
  // waitlist.
  v1::Course queued = CreateCourse(ValidCourse(1));
  const std::string holder = NewPerson();
  Entitle(holder);
  v1::Booking queued_seat;
  ASSERT_TRUE(Book("kim-koeln", queued.name(), holder, &queued_seat).ok());
  v1::WaitlistEntry w_first, w_gone, w_last;
  ASSERT_TRUE(Join(queued.name(), first, &w_first).ok());
  ASSERT_TRUE(Join(queued.name(), gone, &w_gone).ok());
  ASSERT_TRUE(Join(queued.name(), last, &w_last).ok());
  const v1::Course before = GetCourse(full.name());
  ASSERT_EQ(before.booked_seats(), 2);
  ASSERT_EQ(GetCourse(queued.name()).waitlist_length(), 3);
  ASSERT_EQ(Position(w_last.name()), 3);

  absl::StatusOr<bool> applied = Erase(gone);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(*applied);

  const v1::Course after = GetCourse(full.name());
  // The seats: the anonymised booking still holds its seat.
  EXPECT_EQ(after.booked_seats(), before.booked_seats());
  EXPECT_EQ(after.free_seats(), before.free_seats());
  EXPECT_EQ(after.capacity(), before.capacity());
  // The waitlist: the erased person left it; the others keep their order
  // (the one behind moves up, as when anyone leaves).
  EXPECT_EQ(GetCourse(queued.name()).waitlist_length(), 2);
  EXPECT_EQ(GetCourse(queued.name()).booked_seats(), 1);
  EXPECT_EQ(Position(w_first.name()), 1);
  EXPECT_EQ(Position(w_last.name()), 2);
  // Nothing of the person answers any more.
  EXPECT_EQ(GetBookingCode("kim-koeln", gone_booking.name()),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(GetBookingCode("vhs-koeln", gone_booking.name()),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(GetBookingCode("kim-koeln", other_booking.name()),
            grpc::StatusCode::OK);
  v1::GetEntitlementRequest get_ent;
  get_ent.set_name(gone_entitlement.name());
  v1::Entitlement ent;
  auto ctx = Ctx();
  EXPECT_EQ(As("bamf-nuernberg")
                ->GetEntitlement(ctx.get(), get_ent, &ent)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::GetWaitlistEntryRequest get_entry;
  get_entry.set_name(w_gone.name());
  v1::WaitlistEntry entry;
  auto ctx2 = Ctx();
  EXPECT_EQ(As("kim-koeln")
                ->GetWaitlistEntry(ctx2.get(), get_entry, &entry)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ListBookingsRequest list;
  list.set_parent(full.name());
  v1::ListBookingsResponse listed;
  auto ctx3 = Ctx();
  ASSERT_TRUE(As("vhs-koeln")->ListBookings(ctx3.get(), list, &listed).ok());
  ASSERT_EQ(listed.bookings_size(), 1);
  EXPECT_EQ(listed.bookings(0).name(), other_booking.name());
  // No row names the person any more.
  const std::string id = gone.substr(sizeof("persons/") - 1);
  for (const char* table : {"course_bookings", "course_waitlist",
                            "course_entitlements", "course_results"}) {
    EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM ", table,
                                 " WHERE person = '", gone, "'")),
              0)
        << table;
  }
  EXPECT_EQ(Count(absl::StrCat(
                "SELECT COUNT(*) FROM lifecycle_person_keys WHERE person = '",
                id, "' AND data_key IS NULL")),
            1);

  // Reported once: booking anonymised, waitlist entry and entitlement gone.
  std::vector<ErasureReported> reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].person(), gone);
  EXPECT_EQ(reports[0].service(), "courses");
  EXPECT_EQ(reports[0].state(), ServiceErasure::STATE_DONE);
  EXPECT_EQ(reports[0].erased_records(), 3);
  EXPECT_TRUE(reports[0].kept().empty());
}

TEST_P(LifecycleTest, KeptAttendanceAndResultsStayForTheirOwners) {
  v1::Course course = CreateCourse(ValidCourse(3));
  const std::string gone = NewPerson();
  Entitle(gone);
  v1::Booking booking;
  ASSERT_TRUE(Book("vhs-koeln", course.name(), gone, &booking).ok());
  // Confirmed directly by the provider, then the course starts.
  v1::ConfirmBookingRequest confirm;
  confirm.set_name(booking.name());
  confirm.set_etag(booking.etag());
  auto c0 = Ctx();
  ASSERT_TRUE(
      As("vhs-koeln")->ConfirmBooking(c0.get(), confirm, &booking).ok());
  clock_->Advance(absl::Hours(24 * 14));
  v1::StartCourseRequest start;
  start.set_name(course.name());
  start.set_etag(GetCourse(course.name()).etag());
  auto c1 = Ctx();
  ASSERT_TRUE(As("vhs-koeln")->StartCourse(c1.get(), start, &course).ok());
  v1::RecordAttendanceRequest attend;
  attend.set_parent(booking.name());
  attend.set_request_id("att-1");
  *attend.mutable_attendance_record()->mutable_date() = Today();
  attend.mutable_attendance_record()->set_status(v1::ATTENDANCE_STATUS_PRESENT);
  attend.mutable_attendance_record()->set_units_attended(4);
  v1::AttendanceRecord record;
  auto c2 = Ctx();
  ASSERT_TRUE(
      As("vhs-koeln")->RecordAttendance(c2.get(), attend, &record).ok());
  v1::RecordCourseResultRequest result_request;
  result_request.set_parent(booking.name());
  result_request.set_request_id("res-1");
  result_request.mutable_result()->set_exam(v1::EXAM_KIND_DTZ);
  result_request.mutable_result()->set_passed(true);
  result_request.mutable_result()->set_achieved_level(type::v1::CEFR_LEVEL_B1);
  *result_request.mutable_result()->mutable_exam_date() = Today();
  v1::CourseResult result;
  auto c3 = Ctx();
  ASSERT_TRUE(As("vhs-koeln")
                  ->RecordCourseResult(c3.get(), result_request, &result)
                  .ok());
  const v1::Course before = GetCourse(course.name());

  absl::StatusOr<bool> applied = Erase(gone);
  ASSERT_TRUE(applied.ok()) << applied.status();

  // Kept by rule: one attendance record (its course has not finished, so
  // no end yet) and the result (5 years from its creation).
  std::vector<ErasureReported> reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].state(), ServiceErasure::STATE_KEPT_BY_RULE);
  EXPECT_EQ(reports[0].erased_records(), 2);  // entitlement, booking
  ASSERT_EQ(reports[0].kept_size(), 2);
  EXPECT_EQ(reports[0].kept(0).resource_kind(), "attendance");
  EXPECT_EQ(reports[0].kept(0).record_count(), 1);
  EXPECT_EQ(reports[0].kept(0).legal_reference(), "IntV 14");
  EXPECT_FALSE(reports[0].kept(0).has_keep_until());
  EXPECT_EQ(reports[0].kept(1).resource_kind(), "course-result");
  EXPECT_EQ(reports[0].kept(1).record_count(), 1);
  EXPECT_EQ(api::FromTimestamp(reports[0].kept(1).keep_until()),
            rules_.Find("course-result")
                ->DueAt(api::FromTimestamp(result.create_time())));

  // Occupancy unchanged.
  const v1::Course after = GetCourse(course.name());
  EXPECT_EQ(after.booked_seats(), before.booked_seats());
  EXPECT_EQ(after.free_seats(), before.free_seats());

  // The provider (owner) still reads the kept result; another agency would
  // need identity's decision about a person identity no longer has: denied.
  v1::GetCourseResultRequest get;
  get.set_name(result.name());
  v1::CourseResult read;
  auto c4 = Ctx();
  grpc::Status owner = As("vhs-koeln")->GetCourseResult(c4.get(), get, &read);
  ASSERT_TRUE(owner.ok()) << owner.error_message();
  EXPECT_EQ(read.person(), gone);
  EXPECT_EQ(read.achieved_level(), type::v1::CEFR_LEVEL_B1);
  auto c5 = Ctx();
  EXPECT_EQ(As("kim-koeln")->GetCourseResult(c5.get(), get, &read).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::ListAttendanceRecordsRequest list;
  list.set_parent(booking.name());
  v1::ListAttendanceRecordsResponse listed;
  auto c6 = Ctx();
  ASSERT_TRUE(
      As("vhs-koeln")->ListAttendanceRecords(c6.get(), list, &listed).ok());
  EXPECT_EQ(listed.attendance_records_size(), 1);
  auto c7 = Ctx();
  EXPECT_EQ(As("kim-koeln")
                ->ListAttendanceRecords(c7.get(), list, &listed)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Nothing new about the person: the booking is gone for writes.
  attend.set_request_id("att-2");
  *attend.mutable_attendance_record()->mutable_date() = InDays(-1);
  auto c8 = Ctx();
  EXPECT_EQ(
      As("vhs-koeln")->RecordAttendance(c8.get(), attend, &record).error_code(),
      grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(GetBookingCode("vhs-koeln", booking.name()),
            grpc::StatusCode::NOT_FOUND);
}

TEST_P(LifecycleTest, EventsAboutAnErasedPersonAreDropped) {
  v1::Course course = CreateCourse(ValidCourse(3));
  const std::string gone = NewPerson(), survivor = NewPerson();
  Entitle(gone);
  Entitle(survivor);
  v1::Booking booking;
  ASSERT_TRUE(Book("kim-koeln", course.name(), survivor, &booking).ok());
  ASSERT_TRUE(Erase(gone).ok());
  const int64_t outbox = Count("SELECT COUNT(*) FROM event_outbox");

  // A merge naming the erased person, arriving late, changes nothing.
  identity::v1::PersonMerged merged;
  merged.set_survivor(survivor);
  merged.set_merged(gone);
  absl::StatusOr<bool> applied = Deliver(merged);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_person_merges"), 0);
  // A second erasure of the same person (another event) reports nothing.
  applied = Erase(gone);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM event_outbox"), outbox);
  EXPECT_EQ(Reports().size(), 1u);
  // Corrections of the core record need nothing here.
  identity::v1::PersonRectified rectified;
  rectified.set_person(survivor);
  rectified.add_changed_fields("family_name");
  applied = Deliver(rectified);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM event_outbox"), outbox);
}

TEST_P(LifecycleTest, BadPersonErasedIsRejectedAndChangesNothing) {
  v1::Course course = CreateCourse(ValidCourse(3));
  const std::string person = NewPerson();
  Entitle(person);
  const int64_t entitlements =
      Count("SELECT COUNT(*) FROM course_entitlements");
  for (const std::string& bad :
       {std::string(""), std::string("nobody"), std::string("persons/")}) {
    absl::StatusOr<bool> applied = Erase(bad);
    ASSERT_FALSE(applied.ok()) << bad;
    EXPECT_EQ(applied.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_entitlements"), entitlements);
  EXPECT_TRUE(Reports().empty());
}

TEST_P(LifecycleTest, PurgeTakesWhatIsDueAndSkipsHeldPersons) {
  v1::Course course = CreateCourse(ValidCourse(1));
  const std::string seated = NewPerson(), due = NewPerson(), held = NewPerson(),
                    recent = NewPerson();
  for (const std::string& p : {seated, due, held, recent}) Entitle(p);
  v1::Booking seat;
  ASSERT_TRUE(Book("kim-koeln", course.name(), seated, &seat).ok());
  v1::WaitlistEntry w_due, w_held, w_recent;
  ASSERT_TRUE(Join(course.name(), due, &w_due).ok());
  ASSERT_TRUE(Join(course.name(), held, &w_held).ok());
  ASSERT_TRUE(Join(course.name(), recent, &w_recent).ok());
  const absl::Time t0 = clock_->Now();
  auto leave = [&](const v1::WaitlistEntry& w) {
    v1::LeaveWaitlistRequest request;
    request.set_name(w.name());
    request.set_etag(w.etag());
    v1::WaitlistEntry out;
    auto ctx = Ctx();
    grpc::Status s = As("kim-koeln")->LeaveWaitlist(ctx.get(), request, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
  };
  leave(w_due);
  leave(w_held);
  clock_->Advance(absl::Hours(24 * 100));
  leave(w_recent);
  ASSERT_TRUE(Hold(held).ok());

  // A year and a month after the first two left: those are due, the held
  // one is kept and counted, the one that left 100 days later is not due.
  const absl::Time later = t0 + absl::Hours(24 * 395);
  lifecycle::PurgeBatch batch = Purge("waitlist-entry", later);
  EXPECT_EQ(batch.purged, 1);
  EXPECT_EQ(batch.held, 1);
  EXPECT_FALSE(batch.more);
  ASSERT_EQ(batch.persons.size(), 1u);
  EXPECT_EQ(absl::StrCat("persons/", batch.persons[0]), due);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM course_waitlist WHERE "
                               "person = '",
                               due, "'")),
            0);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM course_waitlist WHERE "
                               "person = '",
                               held, "'")),
            1);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM course_waitlist WHERE "
                               "person = '",
                               recent, "'")),
            1);
  // Nothing else is due yet: the booking holds its seat (no end), the
  // entitlements run a year and are kept two more.
  EXPECT_EQ(Purge("booking", later).purged, 0);
  EXPECT_EQ(Purge("entitlement", later).purged, 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_entitlements"), 4);
  // Three years on, the entitlements of all but the held person are due.
  const absl::Time much_later = t0 + absl::Hours(24 * 365 * 3 + 24 * 10);
  lifecycle::PurgeBatch ents = Purge("entitlement", much_later);
  EXPECT_EQ(ents.purged, 3);
  EXPECT_EQ(ents.held, 1);
}

TEST_P(LifecycleTest, CancelledBookingIsPurgedTwoYearsAfterItEnded) {
  v1::Course course = CreateCourse(ValidCourse(3));
  const std::string person = NewPerson();
  Entitle(person);
  v1::Booking booking;
  ASSERT_TRUE(Book("kim-koeln", course.name(), person, &booking).ok());
  v1::CancelBookingRequest cancel;
  cancel.set_name(booking.name());
  cancel.set_etag(booking.etag());
  cancel.set_reason(v1::BOOKING_CANCEL_REASON_PERSON_WITHDREW);
  auto ctx = Ctx();
  ASSERT_TRUE(As("kim-koeln")->CancelBooking(ctx.get(), cancel, &booking).ok());
  const absl::Time ended = clock_->Now();
  EXPECT_EQ(Purge("booking", ended + absl::Hours(24 * 365)).purged, 0);
  lifecycle::PurgeBatch batch =
      Purge("booking", ended + absl::Hours(24 * (365 * 2 + 2)));
  EXPECT_EQ(batch.purged, 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_bookings"), 0);
  EXPECT_EQ(GetCourse(course.name()).booked_seats(), 0);
}

TEST_P(LifecycleTest, PurgeJobRunsTheTasksAndAuditsWhatItPurged) {
  v1::Course course = CreateCourse(ValidCourse(1));
  const std::string seated = NewPerson(), due = NewPerson(), held = NewPerson();
  for (const std::string& p : {seated, due, held}) Entitle(p);
  v1::Booking seat;
  ASSERT_TRUE(Book("kim-koeln", course.name(), seated, &seat).ok());
  for (const std::string& p : {due, held}) {
    v1::WaitlistEntry w;
    ASSERT_TRUE(Join(course.name(), p, &w).ok());
    v1::LeaveWaitlistRequest request;
    request.set_name(w.name());
    request.set_etag(w.etag());
    auto ctx = Ctx();
    ASSERT_TRUE(As("kim-koeln")->LeaveWaitlist(ctx.get(), request, &w).ok());
  }
  ASSERT_TRUE(Hold(held).ok());

  lifecycle::PurgeOptions options;
  options.service = "courses";
  options.pause = absl::ZeroDuration();
  lifecycle::PurgeJob job(db(), rules_, CoursesPurgeTasks(), options,
                          /*metrics=*/nullptr);
  absl::StatusOr<lifecycle::PurgeReport> report =
      job.RunOnce(clock_->Now() + absl::Hours(24 * 400));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->purged["waitlist-entry"], 1);
  EXPECT_EQ(report->held["waitlist-entry"], 1);
  EXPECT_EQ(report->purged["booking"], 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_waitlist"), 1);
  // One audit record for the batch, naming the purged person by id.
  int purges = 0;
  for (const audit::AuditRecord& r : AuditOf("retention/waitlist-entry")) {
    if (r.operation != "lotse.lifecycle/Purge") continue;
    ++purges;
    ASSERT_EQ(r.persons.size(), 1u);
    EXPECT_EQ(absl::StrCat("persons/", r.persons[0]), due);
  }
  EXPECT_EQ(purges, 1);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(LifecycleTest);

}  // namespace
}  // namespace lotse::courses
