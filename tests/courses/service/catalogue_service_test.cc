// The catalogue (CreateCourse, GetCourse, ListCourses, UpdateCourse,
// CancelCourse, SearchCourses) and calling conventions (unknown and
// suspended agencies, legal domains, request ids, etags) through a real
// in-process mTLS server, on SQLite and PostgreSQL.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/courses/service/courses_server_fixture.h"

namespace lotse::courses {
namespace {

class CatalogueTest : public CoursesServerTest {};

TEST_P(CatalogueTest, ProviderPublishesAndAnyAgencyReads) {
  v1::Course created = CreateCourse(ValidCourse(12));
  EXPECT_TRUE(absl::StartsWith(created.name(), "courses/"));
  EXPECT_EQ(created.provider_agency(), "agencies/vhs-koeln");
  EXPECT_EQ(created.state(), v1::COURSE_STATE_PLANNED);
  EXPECT_EQ(created.free_seats(), 12);
  EXPECT_FALSE(created.etag().empty());
  v1::Course read = GetCourse(created.name());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(created, read))
      << read.DebugString();
  // Catalogue reads carry no personal data and are not audited; the
  // create is.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_read_log"), 0);
}

TEST_P(CatalogueTest, CreateIsIdempotentByRequestId) {
  v1::CreateCourseRequest request;
  request.set_request_id("same");
  *request.mutable_course() = ValidCourse();
  v1::Course first, second;
  auto ctx1 = Ctx();
  ASSERT_TRUE(As("vhs-koeln")->CreateCourse(ctx1.get(), request, &first).ok());
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("vhs-koeln")->CreateCourse(ctx2.get(), request, &second).ok());
  EXPECT_EQ(first.name(), second.name());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM courses"), 1);
  request.mutable_course()->set_title("Anderer Titel");
  auto ctx3 = Ctx();
  grpc::Status reused =
      As("vhs-koeln")->CreateCourse(ctx3.get(), request, &second);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Reason(reused), "REQUEST_ID_REUSED");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM courses"), 1);
}

TEST_P(CatalogueTest, OnlyCourseProvidersPublish) {
  v1::CreateCourseRequest request;
  request.set_request_id("r1");
  *request.mutable_course() = ValidCourse();
  v1::Course out;
  auto ctx = Ctx();
  grpc::Status status = As("kim-koeln")->CreateCourse(ctx.get(), request, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(status), "WRONG_LEGAL_DOMAIN");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM courses"), 0);
  // Denied calls are audited too.
  EXPECT_EQ(
      Count("SELECT COUNT(*) FROM audit_read_log WHERE outcome = 'DENIED'"), 1);
}

TEST_P(CatalogueTest, UnknownAndSuspendedAgenciesAreRefused) {
  v1::GetCourseRequest request;
  request.set_name("courses/aaaaaaaaaaaaaaaaaaaaaaaaaa");
  v1::Course out;
  auto ctx = Ctx();
  grpc::Status unknown = As("ihk-koeln")->GetCourse(ctx.get(), request, &out);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(unknown), "UNKNOWN_AGENCY");

  ASSERT_TRUE(ApplyAgencyEvent("kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE,
                               /*suspended=*/true)
                  .ok());
  auto ctx2 = Ctx();
  grpc::Status suspended =
      As("kim-koeln")->GetCourse(ctx2.get(), request, &out);
  EXPECT_EQ(suspended.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(suspended), "AGENCY_SUSPENDED");

  ASSERT_TRUE(ApplyAgencyEvent("kim-koeln", type::v1::LEGAL_DOMAIN_KOMMUNE,
                               /*suspended=*/false)
                  .ok());
  auto ctx3 = Ctx();
  EXPECT_EQ(As("kim-koeln")->GetCourse(ctx3.get(), request, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_P(CatalogueTest, BadCourseReportsEveryFieldAndStoresNothing) {
  v1::Course c = ValidCourse();
  *c.mutable_schedule()->mutable_start_date() = InDays(-1);  // past
  *c.mutable_schedule()->mutable_end_date() = InDays(-5);    // before start
  c.set_capacity(0);
  c.set_title("");
  c.mutable_place()->set_postal_code("5066");
  c.set_kind(v1::COURSE_KIND_ORIENTATION);  // with a target level
  v1::CreateCourseRequest request;
  request.set_request_id("bad");
  *request.mutable_course() = c;
  v1::Course out;
  auto ctx = Ctx();
  grpc::Status status = As("vhs-koeln")->CreateCourse(ctx.get(), request, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const std::set<std::string> fields = ViolatedFields(status);
  for (const char* f :
       {"course.schedule.start_date", "course.schedule.end_date",
        "course.capacity", "course.title", "course.place.postal_code",
        "course.target_level"}) {
    EXPECT_EQ(fields.count(f), 1u) << f;
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM courses"), 0);
}

TEST_P(CatalogueTest, UpdateNeedsFreshEtagAndKeepsCapacityAboveBookings) {
  v1::Course course = CreateCourse(ValidCourse(2));
  const std::string p1 = NewPerson(), p2 = NewPerson();
  Entitle(p1);
  Entitle(p2);
  v1::Booking b;
  ASSERT_TRUE(Book("kim-koeln", course.name(), p1, &b).ok());
  ASSERT_TRUE(Book("kim-koeln", course.name(), p2, &b).ok());

  v1::UpdateCourseRequest request;
  *request.mutable_course() = course;  // stale etag: bookings changed it
  request.mutable_course()->set_capacity(3);
  request.mutable_update_mask()->add_paths("capacity");
  v1::Course out;
  auto ctx = Ctx();
  grpc::Status stale = As("vhs-koeln")->UpdateCourse(ctx.get(), request, &out);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Reason(stale), "ETAG_MISMATCH");

  v1::Course fresh = GetCourse(course.name());
  EXPECT_EQ(fresh.booked_seats(), 2);
  request.mutable_course()->set_etag(fresh.etag());
  request.mutable_course()->set_capacity(1);
  auto ctx2 = Ctx();
  grpc::Status below = As("vhs-koeln")->UpdateCourse(ctx2.get(), request, &out);
  EXPECT_EQ(below.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(below), "CAPACITY_BELOW_BOOKINGS");
  EXPECT_EQ(GetCourse(course.name()).capacity(), 2);

  // Only the provider may change it.
  request.mutable_course()->set_capacity(5);
  auto ctx3 = Ctx();
  grpc::Status other = As("kim-koeln")->UpdateCourse(ctx3.get(), request, &out);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(other), "NOT_COURSE_PROVIDER");

  auto ctx4 = Ctx();
  ASSERT_TRUE(As("vhs-koeln")->UpdateCourse(ctx4.get(), request, &out).ok());
  EXPECT_EQ(out.capacity(), 5);
  EXPECT_EQ(out.free_seats(), 3);
  ASSERT_EQ(Emitted<v1::CourseUpdated>().size(), 1u);
  EXPECT_EQ(Emitted<v1::CourseUpdated>()[0].changed_fields(0), "capacity");
}

TEST_P(CatalogueTest, CancelCourseCancelsBookingsAndRefusesNewOnes) {
  v1::Course course = CreateCourse(ValidCourse(1));
  const std::string p1 = NewPerson(), p2 = NewPerson(), p3 = NewPerson();
  Entitle(p1);
  Entitle(p2);
  Entitle(p3);
  v1::Booking b;
  ASSERT_TRUE(Book("kim-koeln", course.name(), p1, &b).ok());
  v1::JoinWaitlistRequest join;
  join.set_parent(course.name());
  join.set_request_id("join-1");
  join.mutable_waitlist_entry()->set_person(p2);
  v1::WaitlistEntry entry;
  auto jctx = Ctx();
  ASSERT_TRUE(As("kim-koeln")->JoinWaitlist(jctx.get(), join, &entry).ok());

  v1::CancelCourseRequest cancel;
  cancel.set_name(course.name());
  cancel.set_etag(GetCourse(course.name()).etag());
  cancel.set_reason("Lehrkraft erkrankt");
  v1::Course out;
  auto ctx = Ctx();
  ASSERT_TRUE(As("vhs-koeln")->CancelCourse(ctx.get(), cancel, &out).ok());
  EXPECT_EQ(out.state(), v1::COURSE_STATE_CANCELLED);
  EXPECT_EQ(out.booked_seats(), 0);
  EXPECT_EQ(out.waitlist_length(), 0);
  auto cancelled = Emitted<v1::BookingCancelled>();
  ASSERT_EQ(cancelled.size(), 1u);
  EXPECT_EQ(cancelled[0].reason(), v1::BOOKING_CANCEL_REASON_COURSE_CANCELLED);
  EXPECT_EQ(cancelled[0].context().person(), p1);
  ASSERT_EQ(Emitted<v1::WaitlistLeft>().size(), 1u);
  ASSERT_EQ(Emitted<v1::CourseCancelled>().size(), 1u);
  EXPECT_EQ(Emitted<v1::CourseCancelled>()[0].cancelled_booking_count(), 1);

  grpc::Status again = Book("kim-koeln", course.name(), p3, &b);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(again), "COURSE_CANCELLED");
}

TEST_P(CatalogueTest, ListCoursesPagesByStartDate) {
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    v1::Course c = ValidCourse();
    *c.mutable_schedule()->mutable_start_date() = InDays(30 - i);
    names.insert(names.begin(), CreateCourse(c).name());
  }
  std::vector<std::string> seen;
  v1::ListCoursesRequest request;
  request.set_page_size(2);
  for (int page = 0; page < 5; ++page) {
    v1::ListCoursesResponse response;
    auto ctx = Ctx();
    ASSERT_TRUE(
        As("kim-koeln")->ListCourses(ctx.get(), request, &response).ok());
    for (const auto& c : response.courses()) seen.push_back(c.name());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_EQ(seen, names);
  request.set_page_size(-1);
  v1::ListCoursesResponse response;
  auto ctx = Ctx();
  EXPECT_EQ(
      As("kim-koeln")->ListCourses(ctx.get(), request, &response).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(CatalogueTest, SearchOrdersByStartThenDistanceAndFilters) {
  // Köln-Innenstadt (506xx), Bonn (531xx), Düsseldorf (402xx), München.
  auto at = [&](const std::string& postal, int start_in, bool childcare,
                int capacity) {
    v1::Course c = ValidCourse(capacity);
    c.mutable_place()->set_postal_code(postal);
    *c.mutable_schedule()->mutable_start_date() = InDays(start_in);
    c.set_childcare_offered(childcare);
    return CreateCourse(c).name();
  };
  const std::string koeln = at("50667", 20, true, 5);
  const std::string bonn = at("53111", 20, true, 5);
  const std::string duesseldorf = at("40213", 10, false, 5);
  const std::string muenchen = at("80331", 5, true, 5);
  const std::string full = at("50667", 20, true, 1);
  const std::string p = NewPerson();
  Entitle(p);
  v1::Booking b;
  ASSERT_TRUE(Book("kim-koeln", full, p, &b).ok());

  v1::SearchCoursesRequest request;
  request.mutable_near()->set_postal_code("50823");  // Köln-Ehrenfeld
  request.mutable_near()->set_max_distance_km(50);
  v1::SearchCoursesResponse response;
  auto ctx = Ctx();
  ASSERT_TRUE(
      As("kim-koeln")->SearchCourses(ctx.get(), request, &response).ok());
  std::vector<std::string> got;
  for (const auto& r : response.results()) got.push_back(r.course().name());
  EXPECT_EQ(got, (std::vector<std::string>{duesseldorf, koeln, bonn}));
  EXPECT_LT(response.results(1).distance_km(),
            response.results(2).distance_km());

  request.set_include_full(true);
  request.set_childcare_required(true);
  auto ctx2 = Ctx();
  ASSERT_TRUE(
      As("kim-koeln")->SearchCourses(ctx2.get(), request, &response).ok());
  got.clear();
  for (const auto& r : response.results()) got.push_back(r.course().name());
  EXPECT_EQ(got, (std::vector<std::string>{koeln, bonn, full}));

  // Paging gives the same order.
  request.set_page_size(1);
  std::vector<std::string> paged;
  for (int i = 0; i < 5; ++i) {
    auto c = Ctx();
    ASSERT_TRUE(
        As("kim-koeln")->SearchCourses(c.get(), request, &response).ok());
    for (const auto& r : response.results()) paged.push_back(r.course().name());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_EQ(paged, got);

  v1::SearchCoursesRequest everywhere;
  *everywhere.mutable_start_before() = InDays(12);
  auto ctx3 = Ctx();
  ASSERT_TRUE(
      As("kim-koeln")->SearchCourses(ctx3.get(), everywhere, &response).ok());
  got.clear();
  for (const auto& r : response.results()) got.push_back(r.course().name());
  EXPECT_EQ(got, (std::vector<std::string>{muenchen, duesseldorf}));

  v1::SearchCoursesRequest unknown;
  unknown.mutable_near()->set_postal_code("99999");
  unknown.mutable_near()->set_max_distance_km(10);
  auto ctx4 = Ctx();
  grpc::Status bad =
      As("kim-koeln")->SearchCourses(ctx4.get(), unknown, &response);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(bad).count("near.postal_code"), 1u);
}

// A weekday outside 1..7 (found by fuzz/courses_service_fuzzer: 2027 as a
// weekday) is a field violation, for every bad entry, and nothing else.
TEST_P(CatalogueTest, SearchWithWeekdaysOutOfRangeNamesThem) {
  v1::SearchCoursesRequest request;
  request.add_weekdays(type::v1::DAY_OF_WEEK_MONDAY);
  request.add_weekdays(static_cast<type::v1::DayOfWeek>(2027));
  request.add_weekdays(static_cast<type::v1::DayOfWeek>(-64));
  v1::SearchCoursesResponse response;
  auto ctx = Ctx();
  grpc::Status bad =
      As("kim-koeln")->SearchCourses(ctx.get(), request, &response);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(bad),
            (std::set<std::string>{"weekdays[1]", "weekdays[2]"}));
}

TEST_P(CatalogueTest, SearchForPersonNeedsLanguageAccess) {
  CreateCourse(ValidCourse());
  const std::string p = NewPerson();
  Entitle(p);
  v1::SearchCoursesRequest request;
  request.set_for_person(p);
  v1::SearchCoursesResponse response;
  auto ctx = Ctx();
  grpc::Status denied =
      As("kim-koeln")->SearchCourses(ctx.get(), request, &response);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(denied), "NO_LEGAL_BASIS");
  identity_->Allow("agencies/kim-koeln", type::v1::DATA_CATEGORY_LANGUAGE);
  auto ctx2 = Ctx();
  ASSERT_TRUE(
      As("kim-koeln")->SearchCourses(ctx2.get(), request, &response).ok());
  EXPECT_EQ(response.results_size(), 1);
  EXPECT_GE(AuditOf(p).size(), 2u);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(CatalogueTest);

}  // namespace
}  // namespace lotse::courses
