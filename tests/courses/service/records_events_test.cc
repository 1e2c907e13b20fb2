// A course's life after booking (start, attendance, results, finish), the
// events that carry it to cases and placement, and the consumed identity
// events (person merges), on SQLite and PostgreSQL.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/courses/service/courses_server_fixture.h"

namespace lotse::courses {
namespace {

class RecordsTest : public CoursesServerTest {
 protected:
  // A running course with one attending participant; returns the booking.
  v1::Booking Attending(v1::Course* course, std::string* person) {
    *course = CreateCourse(ValidCourse(3));
    *person = NewPerson();
    Entitle(*person);
    v1::CreateBookingRequest book;
    book.set_parent(course->name());
    book.set_request_id("b1");
    book.mutable_booking()->set_person(*person);
    book.mutable_booking()->set_case_step("cases/c1/steps/s1");
    book.set_confirm(true);  // the provider books confirmed directly
    v1::Booking booking;
    auto ctx = Ctx();
    EXPECT_TRUE(As("vhs-koeln")->CreateBooking(ctx.get(), book, &booking).ok());
    EXPECT_EQ(booking.state(), v1::BOOKING_STATE_CONFIRMED);
    clock_->Advance(absl::Hours(24 * 14));  // the start date
    v1::StartCourseRequest start;
    start.set_name(course->name());
    start.set_etag(GetCourse(course->name()).etag());
    auto ctx2 = Ctx();
    EXPECT_TRUE(As("vhs-koeln")->StartCourse(ctx2.get(), start, course).ok());
    EXPECT_EQ(course->state(), v1::COURSE_STATE_RUNNING);
    return booking;
  }

  grpc::Status Attend(const v1::Booking& b, const type::v1::Date& day,
                      v1::AttendanceStatus status, v1::AttendanceRecord* out) {
    v1::RecordAttendanceRequest request;
    request.set_parent(b.name());
    request.set_request_id(absl::StrCat("att-", ++request_counter_));
    *request.mutable_attendance_record()->mutable_date() = day;
    request.mutable_attendance_record()->set_status(status);
    request.mutable_attendance_record()->set_units_attended(
        status == v1::ATTENDANCE_STATUS_PRESENT ? 4 : 0);
    auto ctx = Ctx();
    return As("vhs-koeln")->RecordAttendance(ctx.get(), request, out);
  }
};

TEST_P(RecordsTest, StartAttendanceResultBecomeEvents) {
  v1::Course course;
  std::string person;
  v1::Booking booking = Attending(&course, &person);
  auto started = Emitted<v1::CourseStarted>();
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].context().case_step(), "cases/c1/steps/s1");

  v1::AttendanceRecord record;
  ASSERT_TRUE(
      Attend(booking, Today(), v1::ATTENDANCE_STATUS_PRESENT, &record).ok());
  EXPECT_EQ(record.recording_actor(), "cw-1");
  grpc::Status twice =
      Attend(booking, Today(), v1::ATTENDANCE_STATUS_PRESENT, &record);
  EXPECT_EQ(twice.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  grpc::Status future =
      Attend(booking, InDays(1), v1::ATTENDANCE_STATUS_PRESENT, &record);
  EXPECT_EQ(future.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status before_start =
      Attend(booking, InDays(-1), v1::ATTENDANCE_STATUS_PRESENT, &record);
  EXPECT_EQ(before_start.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  clock_->Advance(absl::Hours(24));
  ASSERT_TRUE(
      Attend(booking, Today(), v1::ATTENDANCE_STATUS_ABSENT_UNEXCUSED, &record)
          .ok());
  auto attended = Emitted<v1::AttendanceRecorded>();
  ASSERT_EQ(attended.size(), 2u);
  EXPECT_EQ(attended[1].units_attended_total(), 4);
  EXPECT_EQ(attended[1].unexcused_absence_days_total(), 1);

  v1::ListAttendanceRecordsRequest list;
  list.set_parent(booking.name());
  list.set_page_size(1);
  v1::ListAttendanceRecordsResponse listed;
  auto lctx = Ctx();
  ASSERT_TRUE(
      As("vhs-koeln")->ListAttendanceRecords(lctx.get(), list, &listed).ok());
  EXPECT_EQ(listed.attendance_records_size(), 1);
  EXPECT_FALSE(listed.next_page_token().empty());

  v1::RecordCourseResultRequest result;
  result.set_parent(booking.name());
  result.set_request_id("res-1");
  result.mutable_result()->set_exam(v1::EXAM_KIND_DTZ);
  result.mutable_result()->set_passed(true);
  result.mutable_result()->set_achieved_level(type::v1::CEFR_LEVEL_B1);
  *result.mutable_result()->mutable_exam_date() = Today();
  v1::CourseResult out;
  auto ctx = Ctx();
  grpc::Status not_provider =
      As("kim-koeln")->RecordCourseResult(ctx.get(), result, &out);
  EXPECT_EQ(Reason(not_provider), "NOT_COURSE_PROVIDER");
  auto ctx2 = Ctx();
  ASSERT_TRUE(
      As("vhs-koeln")->RecordCourseResult(ctx2.get(), result, &out).ok());
  EXPECT_EQ(out.person(), person);
  EXPECT_EQ(out.name(), absl::StrCat(booking.name(), "/result"));
  result.set_request_id("res-2");
  auto ctx3 = Ctx();
  grpc::Status again =
      As("vhs-koeln")->RecordCourseResult(ctx3.get(), result, &out);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reason(again), "RESULT_EXISTS");

  auto recorded = Emitted<v1::CourseResultRecorded>();
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].achieved_level(), type::v1::CEFR_LEVEL_B1);
  EXPECT_TRUE(recorded[0].passed());
  EXPECT_EQ(recorded[0].context().person(), person);
  EXPECT_EQ(recorded[0].context().target_level(), type::v1::CEFR_LEVEL_B1);

  v1::ListCourseResultsRequest results;
  results.set_person(person);
  v1::ListCourseResultsResponse listed_results;
  auto ctx4 = Ctx();
  ASSERT_TRUE(As("vhs-koeln")
                  ->ListCourseResults(ctx4.get(), results, &listed_results)
                  .ok());
  EXPECT_EQ(listed_results.results_size(), 1);  // the provider owns it
  auto ctx5 = Ctx();
  ASSERT_TRUE(As("abh-koeln")
                  ->ListCourseResults(ctx5.get(), results, &listed_results)
                  .ok());
  EXPECT_EQ(listed_results.results_size(), 0);  // no access

  v1::FinishCourseRequest finish;
  finish.set_name(course.name());
  finish.set_etag(GetCourse(course.name()).etag());
  v1::Course finished;
  auto ctx6 = Ctx();
  ASSERT_TRUE(
      As("vhs-koeln")->FinishCourse(ctx6.get(), finish, &finished).ok());
  EXPECT_EQ(finished.state(), v1::COURSE_STATE_FINISHED);
  v1::Booking out_booking;
  grpc::Status closed =
      Book("kim-koeln", course.name(), NewPerson(), &out_booking);
  EXPECT_EQ(closed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_P(RecordsTest, BadResultsAreRefused) {
  v1::Course course;
  std::string person;
  v1::Booking booking = Attending(&course, &person);
  v1::RecordCourseResultRequest result;
  result.set_parent(booking.name());
  result.set_request_id("r");
  result.mutable_result()->set_exam(v1::EXAM_KIND_LEBEN_IN_DEUTSCHLAND);
  result.mutable_result()->set_passed(false);
  result.mutable_result()->set_achieved_level(type::v1::CEFR_LEVEL_B1);
  *result.mutable_result()->mutable_exam_date() = InDays(3);
  v1::CourseResult out;
  auto ctx = Ctx();
  grpc::Status bad =
      As("vhs-koeln")->RecordCourseResult(ctx.get(), result, &out);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(bad), (std::set<std::string>{"result.achieved_level",
                                                        "result.exam_date"}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_results"), 0);
}

TEST_P(RecordsTest, StartRefusesPendingHoldsUnlessCancelled) {
  v1::Course course = CreateCourse(ValidCourse(2));
  const std::string p = NewPerson();
  Entitle(p);
  v1::Booking held;
  ASSERT_TRUE(Book("kim-koeln", course.name(), p, &held).ok());
  v1::StartCourseRequest start;
  start.set_name(course.name());
  start.set_etag(GetCourse(course.name()).etag());
  v1::Course out;
  auto ctx = Ctx();
  grpc::Status pending = As("vhs-koeln")->StartCourse(ctx.get(), start, &out);
  EXPECT_EQ(Reason(pending), "HOLDS_PENDING");
  start.set_cancel_pending_holds(true);
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("vhs-koeln")->StartCourse(ctx2.get(), start, &out).ok());
  EXPECT_EQ(out.booked_seats(), 0);
  auto cancelled = Emitted<v1::BookingCancelled>();
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0].reason(),
            v1::BOOKING_CANCEL_REASON_PROVIDER_CANCELLED);
}

TEST_P(RecordsTest, SeatsConfirmedInARunningCourseAttendAtOnce) {
  v1::Course course;
  std::string person;
  Attending(&course, &person);
  const std::string late = NewPerson();
  Entitle(late);
  v1::Booking held;
  ASSERT_TRUE(Book("kim-koeln", course.name(), late, &held).ok());
  v1::ConfirmBookingRequest confirm;
  confirm.set_name(held.name());
  confirm.set_etag(held.etag());
  v1::Booking confirmed;
  auto ctx = Ctx();
  ASSERT_TRUE(
      As("vhs-koeln")->ConfirmBooking(ctx.get(), confirm, &confirmed).ok());
  EXPECT_EQ(confirmed.state(), v1::BOOKING_STATE_ATTENDING);
  EXPECT_EQ(Emitted<v1::CourseStarted>().size(), 2u);
  v1::AttendanceRecord record;
  EXPECT_TRUE(
      Attend(confirmed, Today(), v1::ATTENDANCE_STATUS_PRESENT, &record).ok());
}

// Consumed identity events ----------------------------------------------------

TEST_P(RecordsTest, PersonMergedMovesRecordsAndCancelsTheLaterBooking) {
  v1::Course shared = CreateCourse(ValidCourse(3));
  v1::Course only_merged = CreateCourse(ValidCourse(3));
  const std::string survivor = NewPerson(), merged = NewPerson();
  Entitle(survivor);
  Entitle(merged, /*obligation=*/false, /*units=*/1500);
  v1::Booking first, second, third;
  ASSERT_TRUE(Book("kim-koeln", shared.name(), survivor, &first).ok());
  clock_->Advance(absl::Minutes(1));
  ASSERT_TRUE(Book("kim-koeln", shared.name(), merged, &second).ok());
  ASSERT_TRUE(Book("kim-koeln", only_merged.name(), merged, &third).ok());

  identity::v1::PersonMerged payload;
  payload.set_survivor(survivor);
  payload.set_merged(merged);
  lotse::events::v1::Event event;
  event.set_event_id("merge-1");
  event.set_source("identity");
  event.mutable_payload()->PackFrom(payload);
  absl::StatusOr<bool> applied =
      events::ApplyEventOnce(db(), event, service_->EventHandler());
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(*applied);
  // Redelivery changes nothing.
  applied = events::ApplyEventOnce(db(), event, service_->EventHandler());
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(*applied);

  identity_->Allow("agencies/kim-koeln", type::v1::DATA_CATEGORY_LANGUAGE);
  v1::GetBookingRequest get;
  get.set_name(second.name());
  v1::Booking later;
  auto ctx = Ctx();
  ASSERT_TRUE(As("kim-koeln")->GetBooking(ctx.get(), get, &later).ok());
  EXPECT_EQ(later.person(), survivor);
  EXPECT_EQ(later.state(), v1::BOOKING_STATE_CANCELLED);
  get.set_name(third.name());
  v1::Booking moved;
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("kim-koeln")->GetBooking(ctx2.get(), get, &moved).ok());
  EXPECT_EQ(moved.person(), survivor);
  EXPECT_EQ(moved.state(), v1::BOOKING_STATE_HELD);
  EXPECT_EQ(GetCourse(shared.name()).booked_seats(), 1);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM course_entitlements "
                               "WHERE person = '",
                               survivor, "'")),
            2);
  // New requests naming the merged id act on the survivor.
  v1::Booking dup;
  grpc::Status status = Book("kim-koeln", only_merged.name(), merged, &dup);
  EXPECT_EQ(Reason(status), "ACTIVE_BOOKING_EXISTS");
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(RecordsTest);

}  // namespace
}  // namespace lotse::courses
