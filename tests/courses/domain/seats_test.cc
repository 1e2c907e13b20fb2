#include "services/courses/domain/seats.h"

#include <vector>

#include "gtest/gtest.h"

namespace lotse::courses {
namespace {

constexpr char kPerson[] = "persons/p1";

SeatCourseFacts Course() {
  SeatCourseFacts c;
  c.kind = v1::COURSE_KIND_INTEGRATION_GENERAL;
  c.start_day = 100;
  c.units = 10;
  return c;
}

EntitlementFacts Usable(const std::string& id) {
  EntitlementFacts e;
  e.id = id;
  e.person = kPerson;
  e.course_kinds = {v1::COURSE_KIND_INTEGRATION_GENERAL};
  e.valid_from = 90;
  e.valid_until = 200;
  e.units = 10;
  return e;
}

TEST(SeatsTest, AnEntitlementPaysOnlyForItsPersonKindDatesAndUnits) {
  const SeatCourseFacts course = Course();
  EXPECT_TRUE(EntitlementUsable(Usable("a"), kPerson, course, 95));

  EntitlementFacts e = Usable("a");
  e.person = "persons/other";
  EXPECT_FALSE(EntitlementUsable(e, kPerson, course, 95));
  e = Usable("a");
  e.revoked = true;
  EXPECT_FALSE(EntitlementUsable(e, kPerson, course, 95));
  e = Usable("a");
  e.course_kinds = {v1::COURSE_KIND_ORIENTATION};
  EXPECT_FALSE(EntitlementUsable(e, kPerson, course, 95));
  e = Usable("a");
  e.valid_until = 99;  // ends before the course starts
  EXPECT_FALSE(EntitlementUsable(e, kPerson, course, 95));
  e = Usable("a");
  e.valid_from = 101;  // not yet valid on the start date
  EXPECT_FALSE(EntitlementUsable(e, kPerson, course, 95));
  e = Usable("a");
  EXPECT_FALSE(EntitlementUsable(e, kPerson, course, 201));  // expired
  e.units_used = 1;  // 9 left, the course takes 10
  EXPECT_FALSE(EntitlementUsable(e, kPerson, course, 95));
}

TEST(SeatsTest, ObligationsFirstThenEarliestExpiryThenOldest) {
  const SeatCourseFacts course = Course();
  std::vector<EntitlementFacts> all = {Usable("late"), Usable("early"),
                                       Usable("unusable")};
  all[0].valid_until = 300;
  all[1].valid_until = 150;
  all[2].revoked = true;
  EXPECT_EQ(BestEntitlement(all, kPerson, course, 95), 1u);

  all[0].obligation = true;
  EXPECT_EQ(BestEntitlement(all, kPerson, course, 95), 0u);

  std::vector<EntitlementFacts> ties = {Usable("b"), Usable("a")};
  ties[0].create_us = 2;
  ties[1].create_us = 1;
  EXPECT_EQ(BestEntitlement(ties, kPerson, course, 95), 1u);
  ties[1].create_us = 2;
  EXPECT_EQ(BestEntitlement(ties, kPerson, course, 95), 1u);  // id "a"

  EXPECT_FALSE(BestEntitlement({all[2]}, kPerson, course, 95));
  EXPECT_FALSE(BestEntitlement({}, kPerson, course, 95));
}

TEST(SeatsTest, StatesSeatsAndReleases) {
  EXPECT_TRUE(HoldsSeat(v1::BOOKING_STATE_HELD));
  EXPECT_TRUE(HoldsSeat(v1::BOOKING_STATE_CONFIRMED));
  EXPECT_TRUE(HoldsSeat(v1::BOOKING_STATE_ATTENDING));
  EXPECT_FALSE(HoldsSeat(v1::BOOKING_STATE_CANCELLED));
  EXPECT_FALSE(HoldsSeat(v1::BOOKING_STATE_EXPIRED));
  EXPECT_FALSE(HoldsSeat(v1::BOOKING_STATE_COMPLETED));

  EXPECT_TRUE(TakesBookings(v1::COURSE_STATE_PLANNED));
  EXPECT_TRUE(TakesBookings(v1::COURSE_STATE_RUNNING));
  EXPECT_FALSE(TakesBookings(v1::COURSE_STATE_CANCELLED));
  EXPECT_FALSE(TakesBookings(v1::COURSE_STATE_FINISHED));

  EXPECT_EQ(FreeSeats(10, 3), 7);
  EXPECT_EQ(FreeSeats(3, 5), 0);

  EXPECT_EQ(NewBookingState(false, true), v1::BOOKING_STATE_HELD);
  EXPECT_EQ(NewBookingState(true, false), v1::BOOKING_STATE_CONFIRMED);
  EXPECT_EQ(NewBookingState(true, true), v1::BOOKING_STATE_ATTENDING);
  EXPECT_EQ(ConfirmedState(false), v1::BOOKING_STATE_CONFIRMED);
  EXPECT_EQ(ConfirmedState(true), v1::BOOKING_STATE_ATTENDING);

  const SeatRelease release = ReleaseSeat(4, 30, 10);
  EXPECT_EQ(release.booked_seats, 3);
  EXPECT_EQ(release.units_used, 20);
  const SeatRelease floor = ReleaseSeat(0, 5, 10);
  EXPECT_EQ(floor.booked_seats, 0);
  EXPECT_EQ(floor.units_used, 0);

  EXPECT_EQ(PriorityFor(false), v1::WAITLIST_PRIORITY_ADMISSION);
  EXPECT_EQ(PriorityFor(true), v1::WAITLIST_PRIORITY_OBLIGATION);
}

TEST(SeatsTest, TheWaitlistHeadIsPromotedOnlyWhenItCanBeServed) {
  const SeatCourseFacts course = Course();
  WaitlistHeadFacts head;
  head.person = kPerson;
  head.entitlements = {Usable("any")};

  head.has_active_booking = true;
  EXPECT_FALSE(DecideWaitlistHead(head, course, 95).promote);

  head.has_active_booking = false;
  head.requested = Usable("named");
  WaitlistHeadDecision d = DecideWaitlistHead(head, course, 95);
  EXPECT_TRUE(d.promote);
  EXPECT_TRUE(d.use_requested);

  // The named entitlement was used up meanwhile: the best other one pays.
  head.requested->units_used = 10;
  d = DecideWaitlistHead(head, course, 95);
  EXPECT_TRUE(d.promote);
  EXPECT_FALSE(d.use_requested);
  EXPECT_EQ(d.entitlement, 0u);

  head.entitlements[0].revoked = true;
  EXPECT_FALSE(DecideWaitlistHead(head, course, 95).promote);
}

}  // namespace
}  // namespace lotse::courses
