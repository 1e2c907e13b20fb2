// Entitlements, bookings, holds and waitlists through a real in-process
// mTLS server, on SQLite and PostgreSQL — including the race of many
// concurrent bookers for the last seats.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/courses/service/courses_server_fixture.h"

namespace lotse::courses {
namespace {

class BookingTest : public CoursesServerTest {
 protected:
  grpc::Status Join(const std::string& as, const std::string& course,
                    const std::string& person, v1::WaitlistEntry* out) {
    v1::JoinWaitlistRequest request;
    request.set_parent(course);
    request.set_request_id(absl::StrCat("join-", ++request_counter_));
    request.mutable_waitlist_entry()->set_person(person);
    auto ctx = Ctx();
    return As(as)->JoinWaitlist(ctx.get(), request, out);
  }
  grpc::Status Cancel(const std::string& as, const v1::Booking& b,
                      v1::Booking* out) {
    v1::CancelBookingRequest request;
    request.set_name(b.name());
    request.set_etag(b.etag());
    request.set_reason(v1::BOOKING_CANCEL_REASON_PERSON_WITHDREW);
    auto ctx = Ctx();
    return As(as)->CancelBooking(ctx.get(), request, out);
  }
  v1::Booking GetBooking(const std::string& as, const std::string& name) {
    v1::GetBookingRequest request;
    request.set_name(name);
    v1::Booking out;
    auto ctx = Ctx();
    grpc::Status status = As(as)->GetBooking(ctx.get(), request, &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }
};

// Entitlements --------------------------------------------------------------

TEST_P(BookingTest, EntitlementsByTheRightDomainsOnly) {
  const std::string p = NewPerson();
  v1::Entitlement admission = Entitle(p);
  EXPECT_EQ(admission.state(), v1::ENTITLEMENT_STATE_ACTIVE);
  EXPECT_EQ(admission.issuing_agency(), "agencies/bamf-nuernberg");
  v1::Entitlement obligation = Entitle(p, /*obligation=*/true);
  EXPECT_EQ(obligation.kind(), v1::ENTITLEMENT_KIND_OBLIGATION);

  v1::RecordEntitlementRequest request;
  request.set_request_id("x");
  auto* e = request.mutable_entitlement();
  e->set_person(p);
  e->set_kind(v1::ENTITLEMENT_KIND_ADMISSION);
  e->add_course_kinds(v1::COURSE_KIND_INTEGRATION_GENERAL);
  e->set_units(100);
  *e->mutable_valid_from() = Today();
  *e->mutable_valid_until() = InDays(10);
  v1::Entitlement out;
  for (const char* wrong : {"jobcenter-koeln", "kim-koeln", "vhs-koeln"}) {
    auto ctx = Ctx();
    grpc::Status status =
        As(wrong)->RecordEntitlement(ctx.get(), request, &out);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << wrong;
    EXPECT_EQ(Reason(status), "WRONG_LEGAL_DOMAIN");
  }
  // Unknown persons are refused like persons the issuer has no relation
  // to (checked in identity); bad fields all reported; nothing stored.
  e->set_person("persons/aaaaaaaaaaaaaaaaaaaaaaaaaa");
  auto ctx = Ctx();
  grpc::Status unknown =
      As("bamf-nuernberg")->RecordEntitlement(ctx.get(), request, &out);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(unknown), "NO_RELATION");
  e->set_person(p);
  e->set_units(0);
  *e->mutable_valid_until() = InDays(-3);
  auto ctx2 = Ctx();
  grpc::Status bad =
      As("bamf-nuernberg")->RecordEntitlement(ctx2.get(), request, &out);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      ViolatedFields(bad),
      (std::set<std::string>{"entitlement.units", "entitlement.valid_until"}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_entitlements"), 2);
  ASSERT_EQ(Emitted<v1::EntitlementRecorded>().size(), 2u);
}

TEST_P(BookingTest, EntitlementReadsNeedOwnershipOrAccess) {
  const std::string p = NewPerson();
  v1::Entitlement e = Entitle(p);
  v1::GetEntitlementRequest get;
  get.set_name(e.name());
  v1::Entitlement out;
  auto ctx = Ctx();
  ASSERT_TRUE(As("bamf-nuernberg")->GetEntitlement(ctx.get(), get, &out).ok());
  auto ctx2 = Ctx();
  grpc::Status denied = As("kim-koeln")->GetEntitlement(ctx2.get(), get, &out);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(denied), "NO_LEGAL_BASIS");
  int denied_records = 0;
  for (const audit::AuditRecord& r : AuditOf(p)) {
    if (r.outcome == audit::Outcome::kDenied &&
        r.resource == absl::StrCat(p, "/", e.name())) {
      ++denied_records;
      EXPECT_EQ(r.agency_id, "kim-koeln");
      EXPECT_EQ(r.reason, "NO_LEGAL_BASIS");
    }
  }
  EXPECT_EQ(denied_records, 1);
  identity_->set_unavailable(true);
  auto ctx3 = Ctx();
  grpc::Status down = As("kim-koeln")->GetEntitlement(ctx3.get(), get, &out);
  EXPECT_EQ(down.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Reason(down), "CHECK_UNAVAILABLE");
  identity_->set_unavailable(false);
  identity_->Allow("agencies/kim-koeln", type::v1::DATA_CATEGORY_LANGUAGE);
  auto ctx4 = Ctx();
  ASSERT_TRUE(As("kim-koeln")->GetEntitlement(ctx4.get(), get, &out).ok());

  // Lists leave out what the caller may not read.
  v1::ListEntitlementsRequest list;
  list.set_person(p);
  v1::ListEntitlementsResponse listed;
  auto ctx5 = Ctx();
  ASSERT_TRUE(
      As("abh-koeln")->ListEntitlements(ctx5.get(), list, &listed).ok());
  EXPECT_EQ(listed.entitlements_size(), 0);
  auto ctx6 = Ctx();
  ASSERT_TRUE(
      As("bamf-nuernberg")->ListEntitlements(ctx6.get(), list, &listed).ok());
  EXPECT_EQ(listed.entitlements_size(), 1);

  v1::RevokeEntitlementRequest revoke;
  revoke.set_name(e.name());
  revoke.set_etag(e.etag());
  revoke.set_reason("Zulassung zurückgenommen");
  auto ctx7 = Ctx();
  ASSERT_TRUE(
      As("bamf-nuernberg")->RevokeEntitlement(ctx7.get(), revoke, &out).ok());
  EXPECT_EQ(out.state(), v1::ENTITLEMENT_STATE_REVOKED);
  revoke.set_etag(out.etag());
  auto ctx8 = Ctx();
  grpc::Status twice =
      As("bamf-nuernberg")->RevokeEntitlement(ctx8.get(), revoke, &out);
  EXPECT_EQ(twice.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(twice), "TRANSITION_NOT_ALLOWED");
}

// Bookings -------------------------------------------------------------------

TEST_P(BookingTest, HoldConfirmCancelAndEvents) {
  v1::Course course = CreateCourse(ValidCourse(3));
  const std::string p = NewPerson();
  v1::Entitlement e = Entitle(p);
  v1::Booking held;
  ASSERT_TRUE(Book("kim-koeln", course.name(), p, &held).ok());
  EXPECT_EQ(held.state(), v1::BOOKING_STATE_HELD);
  EXPECT_EQ(held.entitlement(), e.name());
  EXPECT_EQ(held.booking_agency(), "agencies/kim-koeln");
  EXPECT_EQ(absl::FromUnixSeconds(held.hold_expire_time().seconds()),
            clock_->Now() + absl::Hours(72));
  EXPECT_EQ(GetCourse(course.name()).free_seats(), 2);

  v1::ConfirmBookingRequest confirm;
  confirm.set_name(held.name());
  confirm.set_etag(held.etag());
  v1::Booking confirmed;
  auto ctx = Ctx();
  grpc::Status not_provider =
      As("kim-koeln")->ConfirmBooking(ctx.get(), confirm, &confirmed);
  EXPECT_EQ(Reason(not_provider), "NOT_COURSE_PROVIDER");
  auto ctx2 = Ctx();
  ASSERT_TRUE(
      As("vhs-koeln")->ConfirmBooking(ctx2.get(), confirm, &confirmed).ok());
  EXPECT_EQ(confirmed.state(), v1::BOOKING_STATE_CONFIRMED);

  v1::Booking cancelled;
  grpc::Status stale = Cancel("kim-koeln", held, &cancelled);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED);
  ASSERT_TRUE(Cancel("kim-koeln", confirmed, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::BOOKING_STATE_CANCELLED);
  EXPECT_EQ(GetCourse(course.name()).free_seats(), 3);

  auto booked = Emitted<v1::CourseBooked>();
  ASSERT_EQ(booked.size(), 1u);
  EXPECT_EQ(booked[0].context().person(), p);
  EXPECT_EQ(booked[0].context().entitlement_issuing_agency(),
            "agencies/bamf-nuernberg");
  EXPECT_EQ(booked[0].state(), v1::BOOKING_STATE_HELD);
  EXPECT_EQ(Emitted<v1::BookingConfirmed>().size(), 1u);
  EXPECT_EQ(Emitted<v1::BookingCancelled>().size(), 1u);
  // The booking's units went back to the entitlement.
  v1::GetEntitlementRequest get;
  get.set_name(e.name());
  v1::Entitlement after;
  auto ctx3 = Ctx();
  ASSERT_TRUE(
      As("bamf-nuernberg")->GetEntitlement(ctx3.get(), get, &after).ok());
  EXPECT_EQ(after.units_used(), 0);
  // Every booking call is on the person's audit trail as LANGUAGE access.
  int language_records = 0;
  for (const audit::AuditRecord& r : AuditOf(p)) {
    if (absl::StartsWith(r.resource, absl::StrCat(p, "/courses/")) &&
        r.data_categories == std::vector<std::string>{"LANGUAGE"}) {
      ++language_records;
    }
  }
  EXPECT_GE(language_records, 3);
}

TEST_P(BookingTest, BookingIsIdempotentAndOnePerPersonAndCourse) {
  v1::Course course = CreateCourse(ValidCourse(5));
  const std::string p = NewPerson();
  Entitle(p);
  v1::Booking first, again;
  ASSERT_TRUE(Book("kim-koeln", course.name(), p, &first, "same-id").ok());
  ASSERT_TRUE(Book("kim-koeln", course.name(), p, &again, "same-id").ok());
  EXPECT_EQ(first.name(), again.name());
  grpc::Status twice = Book("jobcenter-koeln", course.name(), p, &again);
  EXPECT_EQ(twice.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Reason(twice), "ACTIVE_BOOKING_EXISTS");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_bookings"), 1);
  EXPECT_EQ(GetCourse(course.name()).booked_seats(), 1);
}

TEST_P(BookingTest, BadBookingsAreRefusedAndStoreNothing) {
  v1::Course course = CreateCourse(ValidCourse(5));
  const std::string entitled = NewPerson(), bare = NewPerson();
  Entitle(entitled);
  v1::Booking out;
  grpc::Status unknown_course =
      Book("kim-koeln", "courses/aaaaaaaaaaaaaaaaaaaaaaaaaa", entitled, &out);
  EXPECT_EQ(unknown_course.error_code(), grpc::StatusCode::NOT_FOUND);
  // A person identity does not know reads like one the caller has no
  // relation to.
  grpc::Status unknown_person = Book(
      "kim-koeln", course.name(), "persons/bbbbbbbbbbbbbbbbbbbbbbbbbb", &out);
  EXPECT_EQ(unknown_person.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(unknown_person), "NO_RELATION");
  grpc::Status no_entitlement = Book("kim-koeln", course.name(), bare, &out);
  EXPECT_EQ(no_entitlement.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(no_entitlement), "NO_ENTITLEMENT");
  grpc::Status wrong_domain =
      Book("caritas-koeln", course.name(), entitled, &out);
  EXPECT_EQ(wrong_domain.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // "courses/x" is well-formed (any id form ever issued), just unknown.
  grpc::Status malformed = Book("kim-koeln", "courses/x/y", "nobody", &out);
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(malformed),
            (std::set<std::string>{"parent", "booking.person"}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_bookings"), 0);
  EXPECT_EQ(GetCourse(course.name()).booked_seats(), 0);
  EXPECT_EQ(Emitted<v1::CourseBooked>().size(), 0u);
}

// Booking, waiting and admitting give the caller a relation to the person
// (it serves them, identity then shows it their data): an agency without
// one gets none of them, and nothing is stored or sent.
TEST_P(BookingTest, AStrangerCannotBookWaitOrAdmit) {
  v1::Course course = CreateCourse(ValidCourse(1));
  const std::string person = NewPerson();
  Entitle(person);
  identity_->MakeStranger("agencies/vhs-koeln");
  identity_->MakeStranger("agencies/jobcenter-koeln");
  v1::Booking out;
  grpc::Status booked = Book("vhs-koeln", course.name(), person, &out);
  EXPECT_EQ(booked.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(booked), "NO_RELATION");

  v1::JoinWaitlistRequest wait;
  wait.set_parent(course.name());
  wait.set_request_id("stranger-wait");
  wait.mutable_waitlist_entry()->set_person(person);
  v1::WaitlistEntry entry;
  auto ctx = Ctx();
  grpc::Status waited = As("vhs-koeln")->JoinWaitlist(ctx.get(), wait, &entry);
  EXPECT_EQ(waited.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(waited), "NO_RELATION");

  v1::RecordEntitlementRequest oblige;
  oblige.set_request_id("stranger-obligation");
  v1::Entitlement* e = oblige.mutable_entitlement();
  e->set_person(person);
  e->set_kind(v1::ENTITLEMENT_KIND_OBLIGATION);
  e->add_course_kinds(v1::COURSE_KIND_INTEGRATION_GENERAL);
  e->set_units(300);
  *e->mutable_valid_from() = Today();
  *e->mutable_valid_until() = InDays(365);
  v1::Entitlement recorded;
  auto ctx2 = Ctx();
  grpc::Status admitted =
      As("jobcenter-koeln")->RecordEntitlement(ctx2.get(), oblige, &recorded);
  EXPECT_EQ(admitted.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(admitted), "NO_RELATION");

  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_bookings"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_entitlements"), 1);
  EXPECT_EQ(Emitted<v1::CourseBooked>().size(), 0u);

  // Identity down: the check fails closed with a retryable code.
  identity_->set_unavailable(true);
  grpc::Status unchecked = Book("kim-koeln", course.name(), person, &out);
  EXPECT_EQ(unchecked.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Reason(unchecked), "CHECK_UNAVAILABLE");
}

TEST_P(BookingTest, HoldsExpireAndFreeTheSeat) {
  v1::Course course = CreateCourse(ValidCourse(1));
  const std::string p = NewPerson(), q = NewPerson();
  Entitle(p);
  Entitle(q);
  v1::Booking held;
  ASSERT_TRUE(Book("kim-koeln", course.name(), p, &held).ok());
  v1::WaitlistEntry entry;
  ASSERT_TRUE(Join("kim-koeln", course.name(), q, &entry).ok());
  EXPECT_EQ(entry.position(), 1);

  absl::StatusOr<int> swept = service_->SweepExpiredHolds();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 0);
  clock_->Advance(absl::Hours(72));
  swept = service_->SweepExpiredHolds();
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 1);
  EXPECT_EQ(GetBooking("kim-koeln", held.name()).state(),
            v1::BOOKING_STATE_EXPIRED);
  // The freed seat went to the waitlist's head as a new hold.
  auto promoted = Emitted<v1::WaitlistPromoted>();
  ASSERT_EQ(promoted.size(), 1u);
  EXPECT_EQ(promoted[0].context().person(), q);
  EXPECT_EQ(Emitted<v1::BookingHoldExpired>().size(), 1u);
  v1::Course after = GetCourse(course.name());
  EXPECT_EQ(after.booked_seats(), 1);
  EXPECT_EQ(after.waitlist_length(), 0);
  v1::Booking promoted_booking =
      GetBooking("kim-koeln", promoted[0].context().booking());
  EXPECT_EQ(promoted_booking.state(), v1::BOOKING_STATE_HELD);
  EXPECT_EQ(promoted_booking.waitlist_entry(), entry.name());
  // A confirm after expiry is refused.
  v1::ConfirmBookingRequest confirm;
  confirm.set_name(held.name());
  confirm.set_etag(GetBooking("kim-koeln", held.name()).etag());
  v1::Booking out;
  auto ctx = Ctx();
  grpc::Status late = As("vhs-koeln")->ConfirmBooking(ctx.get(), confirm, &out);
  EXPECT_EQ(Reason(late), "TRANSITION_NOT_ALLOWED");
}

TEST_P(BookingTest, WaitlistPutsObligationsFirstAndPromotesOnCancel) {
  v1::Course course = CreateCourse(ValidCourse(1));
  const std::string holder = NewPerson(), early = NewPerson(),
                    obliged = NewPerson();
  Entitle(holder);
  Entitle(early);
  Entitle(obliged, /*obligation=*/true);
  v1::Booking seat;
  ASSERT_TRUE(Book("kim-koeln", course.name(), holder, &seat).ok());
  v1::Booking out;
  grpc::Status full = Book("kim-koeln", course.name(), early, &out);
  EXPECT_EQ(Reason(full), "COURSE_FULL");
  v1::WaitlistEntry e1, e2, dup;
  ASSERT_TRUE(Join("kim-koeln", course.name(), early, &e1).ok());
  ASSERT_TRUE(Join("jobcenter-koeln", course.name(), obliged, &e2).ok());
  EXPECT_EQ(e2.priority(), v1::WAITLIST_PRIORITY_OBLIGATION);
  EXPECT_EQ(e2.position(), 1);
  grpc::Status again = Join("kim-koeln", course.name(), early, &dup);
  EXPECT_EQ(Reason(again), "ALREADY_ON_WAITLIST");
  grpc::Status booked = Join("kim-koeln", course.name(), holder, &dup);
  EXPECT_EQ(Reason(booked), "ACTIVE_BOOKING_EXISTS");

  v1::ListWaitlistEntriesRequest list;
  list.set_parent(course.name());
  v1::ListWaitlistEntriesResponse listed;
  auto ctx = Ctx();
  ASSERT_TRUE(
      As("vhs-koeln")->ListWaitlistEntries(ctx.get(), list, &listed).ok());
  ASSERT_EQ(listed.waitlist_entries_size(), 2);
  EXPECT_EQ(listed.waitlist_entries(0).person(), obliged);
  EXPECT_EQ(listed.waitlist_entries(1).person(), early);
  EXPECT_EQ(listed.waitlist_entries(1).position(), 2);

  v1::Booking cancelled;
  ASSERT_TRUE(Cancel("kim-koeln", seat, &cancelled).ok());
  auto promoted = Emitted<v1::WaitlistPromoted>();
  ASSERT_EQ(promoted.size(), 1u);
  EXPECT_EQ(promoted[0].context().person(), obliged);
  EXPECT_EQ(promoted[0].context().booking_agency(), "agencies/jobcenter-koeln");

  // Raising the capacity promotes the next one.
  v1::Course current = GetCourse(course.name());
  v1::UpdateCourseRequest update;
  *update.mutable_course() = current;
  update.mutable_course()->set_capacity(2);
  update.mutable_update_mask()->add_paths("capacity");
  v1::Course updated;
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("vhs-koeln")->UpdateCourse(ctx2.get(), update, &updated).ok());
  EXPECT_EQ(updated.booked_seats(), 2);
  EXPECT_EQ(updated.waitlist_length(), 0);
  ASSERT_EQ(Emitted<v1::WaitlistPromoted>().size(), 2u);
  EXPECT_EQ(Emitted<v1::WaitlistPromoted>()[1].context().person(), early);

  // Joining a course with free seats is refused.
  v1::Course c2 = CreateCourse(ValidCourse(3));
  grpc::Status free = Join("kim-koeln", c2.name(), holder, &dup);
  EXPECT_EQ(Reason(free), "COURSE_HAS_FREE_SEATS");
}

TEST_P(BookingTest, LeaveWaitlist) {
  v1::Course course = CreateCourse(ValidCourse(1));
  const std::string a = NewPerson(), b = NewPerson();
  Entitle(a);
  Entitle(b);
  v1::Booking seat;
  ASSERT_TRUE(Book("kim-koeln", course.name(), a, &seat).ok());
  v1::WaitlistEntry entry;
  ASSERT_TRUE(Join("kim-koeln", course.name(), b, &entry).ok());
  v1::LeaveWaitlistRequest leave;
  leave.set_name(entry.name());
  leave.set_etag(entry.etag());
  v1::WaitlistEntry left;
  auto ctx = Ctx();
  ASSERT_TRUE(As("kim-koeln")->LeaveWaitlist(ctx.get(), leave, &left).ok());
  EXPECT_EQ(left.state(), v1::WAITLIST_ENTRY_STATE_LEFT);
  EXPECT_EQ(left.position(), 0);
  EXPECT_EQ(GetCourse(course.name()).waitlist_length(), 0);
  ASSERT_EQ(Emitted<v1::WaitlistLeft>().size(), 1u);
}

TEST_P(BookingTest, ListBookingsLeavesOutWhatTheCallerMayNotRead) {
  v1::Course course = CreateCourse(ValidCourse(5));
  const std::string a = NewPerson(), b = NewPerson();
  Entitle(a);
  Entitle(b);
  v1::Booking out;
  ASSERT_TRUE(Book("kim-koeln", course.name(), a, &out).ok());
  ASSERT_TRUE(Book("abh-koeln", course.name(), b, &out).ok());
  v1::ListBookingsRequest list;
  list.set_parent(course.name());
  v1::ListBookingsResponse listed;
  auto ctx = Ctx();
  ASSERT_TRUE(As("vhs-koeln")->ListBookings(ctx.get(), list, &listed).ok());
  EXPECT_EQ(listed.bookings_size(), 2);  // the provider owns both
  auto ctx2 = Ctx();
  ASSERT_TRUE(As("kim-koeln")->ListBookings(ctx2.get(), list, &listed).ok());
  ASSERT_EQ(listed.bookings_size(), 1);  // only its own
  EXPECT_EQ(listed.bookings(0).person(), a);
  list.set_parent("courses/-");
  auto ctx3 = Ctx();
  EXPECT_EQ(
      As("kim-koeln")->ListBookings(ctx3.get(), list, &listed).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  list.set_person(b);
  auto ctx4 = Ctx();
  ASSERT_TRUE(As("abh-koeln")->ListBookings(ctx4.get(), list, &listed).ok());
  EXPECT_EQ(listed.bookings_size(), 1);
}

// The race: many concurrent bookers, few seats. Exactly `capacity` win.
TEST_P(BookingTest, ConcurrentBookersNeverOverbook) {
  constexpr int kSeats = 10;
  constexpr int kBookers = 60;
  v1::Course course = CreateCourse(ValidCourse(kSeats));
  std::vector<std::string> persons;
  for (int i = 0; i < kBookers; ++i) {
    persons.push_back(NewPerson());
    Entitle(persons.back());
  }
  std::vector<std::unique_ptr<v1::CoursesService::Stub>> stubs;
  const char* agencies[] = {"kim-koeln", "jobcenter-koeln", "abh-koeln",
                            "bamf-nuernberg"};
  for (int i = 0; i < 4; ++i) stubs.push_back(As(agencies[i]));
  std::atomic<int> ok{0}, full{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kBookers; ++i) {
    threads.emplace_back([&, i] {
      v1::CreateBookingRequest request;
      request.set_parent(course.name());
      request.set_request_id(absl::StrCat("race-", i));
      request.mutable_booking()->set_person(persons[i]);
      v1::Booking out;
      auto ctx = Ctx();
      grpc::Status s = stubs[i % 4]->CreateBooking(ctx.get(), request, &out);
      if (s.ok()) {
        ++ok;
      } else if (Reason(s) == "COURSE_FULL") {
        ++full;
      } else {
        ++other;
        ADD_FAILURE() << s.error_code() << " " << s.error_message();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kSeats);
  EXPECT_EQ(full.load(), kBookers - kSeats);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_bookings WHERE state IN (1, 2, "
                  "3)"),
            kSeats);
  v1::Course after = GetCourse(course.name());
  EXPECT_EQ(after.booked_seats(), kSeats);
  EXPECT_EQ(after.free_seats(), 0);
  EXPECT_EQ(Emitted<v1::CourseBooked>().size(), static_cast<size_t>(kSeats));
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(BookingTest);

// The same race with one transaction per booking instead of group commit.
class BookingWithoutGroupCommitTest : public BookingTest {
 protected:
  bool GroupCommit() const override { return false; }
};

TEST_P(BookingWithoutGroupCommitTest, ConcurrentBookersNeverOverbook) {
  constexpr int kSeats = 5;
  constexpr int kBookers = 30;
  v1::Course course = CreateCourse(ValidCourse(kSeats));
  std::vector<std::string> persons;
  for (int i = 0; i < kBookers; ++i) {
    persons.push_back(NewPerson());
    Entitle(persons.back());
  }
  auto stub = As("kim-koeln");
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kBookers; ++i) {
    threads.emplace_back([&, i] {
      v1::CreateBookingRequest request;
      request.set_parent(course.name());
      request.set_request_id(absl::StrCat("race-", i));
      request.mutable_booking()->set_person(persons[i]);
      v1::Booking out;
      auto ctx = Ctx();
      grpc::Status s = stub->CreateBooking(ctx.get(), request, &out);
      if (s.ok())
        ++ok;
      else
        EXPECT_EQ(Reason(s), "COURSE_FULL") << s.error_message();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kSeats);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM course_bookings"), kSeats);
}

LOTSE_INSTANTIATE_BOTH_BACKENDS(BookingWithoutGroupCommitTest);

}  // namespace
}  // namespace lotse::courses
